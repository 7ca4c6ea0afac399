//! Address requests.

mod add;
mod delete;
mod dump;

pub(crate) use add::AddAddress;
pub(crate) use delete::DeleteAddress;
pub(crate) use dump::{AddressInfo, dump_addresses};
