//! Deleting a static route nslab added.

use rtnetlink::Handle;

use super::AddRoute;
use crate::kernel::netlink::{NetlinkError, errno};

/// Deletes the route that the [`AddRoute`] inside would add.
#[derive(Debug, Clone)]
pub(crate) struct DeleteRoute(pub AddRoute);

impl DeleteRoute {
    /// Returns false when no such route was there (the kernel had removed
    /// it with its link, say).
    pub(crate) async fn execute(self, handle: &Handle) -> Result<bool, NetlinkError> {
        let message = self.0.message()?;
        match handle.route().del(message).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::ESRCH) => Ok(false),
            Err(e) => Err(NetlinkError::request(format!("delete {}", self.0.label))(e)),
        }
    }
}
