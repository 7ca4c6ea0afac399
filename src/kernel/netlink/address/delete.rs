//! Deleting an address from a link.

use ipnet::IpNet;
use rtnetlink::Handle;

use crate::kernel::netlink::{NetlinkError, errno};

#[derive(Debug, Clone)]
pub(crate) struct DeleteAddress {
    pub index: u32,
    pub address: IpNet,
    pub label: String,
}

impl DeleteAddress {
    /// Returns false when the link did not have it (an IPv6 address goes
    /// when its link goes down).
    pub(crate) async fn execute(self, handle: &Handle) -> Result<bool, NetlinkError> {
        // The message an add would send names the address exactly.
        let mut add =
            handle
                .address()
                .add(self.index, self.address.addr(), self.address.prefix_len());
        let message = add.message_mut().clone();
        match handle.address().del(message).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EADDRNOTAVAIL) => Ok(false),
            Err(e) => Err(NetlinkError::request(format!(
                "delete address {} from {}",
                self.address, self.label
            ))(e)),
        }
    }
}
