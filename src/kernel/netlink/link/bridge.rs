//! A bridge device and its ports.

use rtnetlink::{Handle, LinkBridge, LinkUnspec};

use crate::kernel::netlink::NetlinkError;

/// Creates a bridge, already up, in the socket's namespace.
#[derive(Debug, Clone)]
pub(crate) struct CreateBridge {
    pub name: String,
}

impl CreateBridge {
    pub(crate) async fn execute(self, handle: &Handle) -> Result<(), NetlinkError> {
        handle
            .link()
            .add(LinkBridge::new(&self.name).build())
            .execute()
            .await
            .map_err(NetlinkError::request(format!("bridge {}", self.name)))
    }
}

/// Makes a link a port of a bridge and brings it up, in one RTM_SETLINK.
#[derive(Debug, Clone)]
pub(crate) struct AttachPort {
    pub port: u32,
    pub bridge: u32,
    pub label: String,
}

impl AttachPort {
    pub(crate) async fn execute(self, handle: &Handle) -> Result<(), NetlinkError> {
        handle
            .link()
            .set(
                LinkUnspec::new_with_index(self.port)
                    .controller(self.bridge)
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(NetlinkError::request(self.label))
    }
}
