//! Route requests.

mod add;

pub use add::AddRoute;
