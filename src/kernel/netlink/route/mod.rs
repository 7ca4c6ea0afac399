//! Route requests.

mod add;

pub(crate) use add::AddRoute;
