//! Adding an address to a link.

use ipnet::IpNet;
use rtnetlink::Handle;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};

use crate::kernel::netlink::NetlinkError;

#[derive(Debug, Clone)]
pub(crate) struct AddAddress {
    pub index: u32,
    pub address: IpNet,
    pub label: String,
}

impl AddAddress {
    pub(crate) async fn execute(self, handle: &Handle) -> Result<(), NetlinkError> {
        let mut request =
            handle
                .address()
                .add(self.index, self.address.addr(), self.address.prefix_len());
        if self.address.addr().is_ipv6() {
            // A lab's addresses are planned, so skip duplicate address
            // detection: without this an IPv6 address stays "tentative" and
            // unusable for a second or two after the link comes up.
            request
                .message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        request
            .execute()
            .await
            .map_err(NetlinkError::request(format!(
                "address {} on {}",
                self.address, self.label
            )))
    }
}
