//! A vxlan born in a node's net namespace, its tunnel the host's: sent on
//! the host's socket, the kernel opens its UDP socket and routes its
//! packets in the namespace the request came from, with IFLA_NET_NS_PID
//! of the node. Learning is the kernel's default (on), as containerlab
//! asks for.

use std::net::IpAddr;

use rtnetlink::packet_route::link::InfoVxlan;
use rtnetlink::{Handle, LinkMessageBuilder, LinkVxlan};

use super::device::NewDevice;
use crate::kernel::netlink::NetlinkError;

#[derive(Debug, Clone)]
pub(crate) struct CreateVxlan {
    pub device: NewDevice,
    pub vni: u32,
    pub remote: IpAddr,
    pub port: u16,
    /// The one UDP source port, when fixed.
    pub source_port: Option<u16>,
    /// The ifindex of the host's interface the tunnel leaves by.
    pub underlay: Option<u32>,
    /// The host's address the tunnel is sent from.
    pub local: Option<IpAddr>,
}

impl CreateVxlan {
    pub(crate) async fn execute(self, handle: &Handle) -> Result<(), NetlinkError> {
        let mut builder = LinkMessageBuilder::<LinkVxlan>::new(&self.device.name)
            .id(self.vni)
            .port(self.port);
        builder = match self.remote {
            IpAddr::V4(v4) => builder.remote(v4),
            IpAddr::V6(v6) => builder.remote6(v6),
        };
        builder = match self.local {
            Some(IpAddr::V4(v4)) => builder.local(v4),
            Some(IpAddr::V6(v6)) => builder.local6(v6),
            None => builder,
        };
        if let Some(port) = self.source_port {
            // [low, high): the kernel takes an empty range for its own.
            builder =
                builder.append_info_data(InfoVxlan::PortRange((port, port.saturating_add(1))));
        }
        if let Some(index) = self.underlay {
            builder = builder.dev(index);
        }
        let message = self.device.describe(builder).build();
        handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(self.device.refused("vxlan"))
    }
}
