//! A macvlan born in a node's net namespace on a parent in the host's:
//! sent on the host's socket, so that IFLA_LINK (the parent's ifindex) is
//! read there, with IFLA_NET_NS_PID of the node.

use rtnetlink::packet_route::link::MacVlanMode;
use rtnetlink::{Handle, LinkMacVlan, LinkMessageBuilder};

use super::device::NewDevice;
use crate::kernel::netlink::NetlinkError;
use crate::spec::MacvlanMode;

#[derive(Debug, Clone)]
pub(crate) struct CreateMacvlan {
    pub device: NewDevice,
    /// The parent's ifindex in the socket's namespace.
    pub parent: u32,
    pub mode: MacvlanMode,
}

impl CreateMacvlan {
    pub(crate) async fn execute(self, handle: &Handle) -> Result<(), NetlinkError> {
        let mode = match self.mode {
            MacvlanMode::Bridge => MacVlanMode::Bridge,
            MacvlanMode::Vepa => MacVlanMode::Vepa,
            MacvlanMode::Passthru => MacVlanMode::Passthrough,
            MacvlanMode::Private => MacVlanMode::Private,
            MacvlanMode::Source => MacVlanMode::Source,
        };
        let builder = LinkMessageBuilder::<LinkMacVlan>::new(&self.device.name)
            .link(self.parent)
            .mode(mode);
        let message = self.device.describe(builder).build();
        handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(self.device.refused("macvlan"))
    }
}
