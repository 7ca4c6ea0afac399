//! Address requests.

mod add;
mod dump;

pub use add::AddAddress;
pub use dump::dump_addresses;
