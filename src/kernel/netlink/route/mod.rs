//! Route requests.

mod add;
mod delete;

pub(crate) use add::AddRoute;
pub(crate) use delete::DeleteRoute;
