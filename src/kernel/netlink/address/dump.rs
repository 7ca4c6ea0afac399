//! Listing the addresses of a namespace.

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::Handle;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};

use crate::kernel::netlink::NetlinkError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AddressInfo {
    pub index: u32,
    pub address: IpNet,
}

pub(crate) async fn dump_addresses(
    handle: &Handle,
    netns: &str,
) -> Result<Vec<AddressInfo>, NetlinkError> {
    let messages: Vec<AddressMessage> = handle
        .address()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(NetlinkError::request(format!("list addresses in {netns}")))?;
    Ok(messages
        .iter()
        .filter_map(AddressInfo::from_message)
        .collect())
}

impl AddressInfo {
    fn from_message(message: &AddressMessage) -> Option<Self> {
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's
        // on point-to-point links, so prefer LOCAL when both are present.
        let local = message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        });
        let address = local.or_else(|| {
            message.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            })
        })?;
        Some(AddressInfo {
            index: message.header.index,
            address: IpNet::new(address, message.header.prefix_len).ok()?,
        })
    }
}
