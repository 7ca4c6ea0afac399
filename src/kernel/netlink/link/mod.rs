//! Link requests.

mod bridge;
mod delete;
mod dump;
mod set;
mod veth;

pub(crate) use bridge::{AttachPort, CreateBridge};
pub(crate) use delete::DeleteLink;
pub(crate) use dump::{LinkCounters, LinkInfo, dump_links, operstate};
pub(crate) use set::{MarkLink, SetLinkState, SetMtu, SetUp};
pub(crate) use veth::{CreateVeth, VethEnd};
