//! Link requests.

mod bridge;
mod delete;
mod dump;
mod set;
mod veth;

pub use bridge::{AttachPort, CreateBridge};
pub use delete::DeleteLink;
pub use dump::{LinkInfo, dump_links};
pub use set::{MarkLink, SetUp};
pub use veth::{CreateVeth, VethEnd};
