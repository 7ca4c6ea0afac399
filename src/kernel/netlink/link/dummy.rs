//! A dummy interface, made on the node's own socket. The kind is a module
//! of its own (`dummy`) that some kernels lack: the error then says so.

use rtnetlink::{Handle, LinkDummy, LinkMessageBuilder};

use super::device::NewDevice;
use crate::kernel::netlink::NetlinkError;

#[derive(Debug, Clone)]
pub(crate) struct CreateDummy {
    pub device: NewDevice,
}

impl CreateDummy {
    pub(crate) async fn execute(self, handle: &Handle) -> Result<(), NetlinkError> {
        let builder = LinkMessageBuilder::<LinkDummy>::new(&self.device.name);
        let message = self.device.describe(builder).build();
        handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(self.device.refused("dummy"))
    }
}
