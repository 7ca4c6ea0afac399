//! Link requests.

mod bridge;
mod delete;
mod device;
mod dummy;
mod dump;
mod macvlan;
mod set;
mod veth;
mod vxlan;

pub(crate) use bridge::{AttachPort, CreateBridge};
pub(crate) use delete::DeleteLink;
pub(crate) use device::NewDevice;
pub(crate) use dummy::CreateDummy;
pub(crate) use dump::{LinkCounters, LinkInfo, dump_links, operstate};
pub(crate) use macvlan::CreateMacvlan;
pub(crate) use set::{MarkLink, SetLinkState, SetMtu, SetUp};
pub(crate) use veth::{CreateVeth, VethEnd};
pub(crate) use vxlan::CreateVxlan;
