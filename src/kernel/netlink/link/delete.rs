//! Deleting one link (only host-side ends ever need it: a node's links go
//! with its namespace).

use rtnetlink::Handle;

use crate::kernel::netlink::{NetlinkError, errno};

#[derive(Debug, Clone)]
pub(crate) struct DeleteLink {
    pub index: u32,
    pub label: String,
}

impl DeleteLink {
    /// Returns false when the link was already gone.
    pub(crate) async fn execute(self, handle: &Handle) -> Result<bool, NetlinkError> {
        match handle.link().del(self.index).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(NetlinkError::request(format!("delete {}", self.label))(e)),
        }
    }
}
