//! Address requests.

mod add;
mod dump;

pub(crate) use add::AddAddress;
pub(crate) use dump::dump_addresses;
