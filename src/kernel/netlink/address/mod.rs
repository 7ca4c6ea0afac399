//! Address requests.

mod add;
mod dump;

pub use add::AddAddress;
pub use dump::{AddressInfo, dump_addresses};
