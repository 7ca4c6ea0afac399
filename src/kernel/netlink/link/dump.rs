//! Listing the links of a namespace.

use futures::TryStreamExt;
use rtnetlink::Handle;
use rtnetlink::packet_route::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkInfo as Info, LinkMessage, State,
};

use crate::kernel::netlink::NetlinkError;

/// What nslab needs to know of a live link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkInfo {
    pub index: u32,
    pub name: String,
    pub kind: Option<String>,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    pub up: bool,
    /// Operationally up (RFC 2863 `UP`): the kernel has seen the carrier
    /// and given the link its transmit queue, so packets pass.
    pub running: bool,
    /// The operational state (IFLA_OPERSTATE, RFC 2863) in lowercase, as
    /// `ip link` shows it: `up`, `down`, `lowerlayerdown` (a veth whose
    /// peer is down), `unknown` (lo), ...
    pub operstate: String,
    pub alias: Option<String>,
    /// For a veth: the peer's ifindex (in the peer's namespace).
    pub peer_index: Option<u32>,
    /// The bridge this link is a port of.
    pub controller: Option<u32>,
    /// Its counters (`IFLA_STATS64`), when the kernel sent them.
    pub counters: Option<LinkCounters>,
}

/// The counters of a link since it was made, as `ip -s link` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LinkCounters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_dropped: u64,
}

pub(crate) async fn dump_links(
    handle: &Handle,
    netns: &str,
) -> Result<Vec<LinkInfo>, NetlinkError> {
    handle
        .link()
        .get()
        .execute()
        .map_ok(|m| LinkInfo::from_message(&m))
        .try_collect()
        .await
        .map_err(NetlinkError::request(format!("list links in {netns}")))
}

impl LinkInfo {
    /// Whether packets pass it: operationally up, or up when it is of a
    /// kind whose operational state the kernel leaves `unknown` for good
    /// (a vxlan, a dummy: no carrier event ever comes, and their queue is
    /// theirs from the moment they are up).
    pub(crate) fn passes(&self) -> bool {
        let unmanaged = matches!(self.kind.as_deref(), Some("vxlan" | "dummy"));
        self.running || (unmanaged && self.up && self.operstate == "unknown")
    }

    fn from_message(message: &LinkMessage) -> Self {
        let mut info = LinkInfo {
            index: message.header.index,
            name: String::new(),
            kind: None,
            mtu: None,
            mac: None,
            up: message.header.flags.contains(LinkFlags::Up),
            running: false,
            operstate: "unknown".into(),
            alias: None,
            peer_index: None,
            controller: None,
            counters: None,
        };
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::IfName(name) => info.name = name.clone(),
                LinkAttribute::Mtu(mtu) => info.mtu = Some(*mtu),
                LinkAttribute::Address(mac) => info.mac = <[u8; 6]>::try_from(mac.as_slice()).ok(),
                LinkAttribute::OperState(state) => {
                    info.running = *state == State::Up;
                    info.operstate = operstate(*state);
                }
                LinkAttribute::IfAlias(alias) => info.alias = Some(alias.clone()),
                LinkAttribute::Link(peer) => info.peer_index = Some(*peer),
                LinkAttribute::Controller(bridge) => info.controller = Some(*bridge),
                LinkAttribute::Stats64(stats) => {
                    info.counters = Some(LinkCounters {
                        rx_bytes: stats.rx_bytes,
                        rx_packets: stats.rx_packets,
                        rx_dropped: stats.rx_dropped,
                        tx_bytes: stats.tx_bytes,
                        tx_packets: stats.tx_packets,
                        tx_dropped: stats.tx_dropped,
                    })
                }
                LinkAttribute::LinkInfo(infos) => {
                    info.kind = infos.iter().find_map(|i| match i {
                        Info::Kind(InfoKind::Other(k)) => Some(k.clone()),
                        Info::Kind(k) => Some(k.to_string()),
                        _ => None,
                    })
                }
                _ => {}
            }
        }
        info
    }
}

/// The kernel's name of an operational state, lowercase.
pub(crate) fn operstate(state: State) -> String {
    match state {
        State::Unknown => "unknown".into(),
        State::NotPresent => "notpresent".into(),
        State::Down => "down".into(),
        State::LowerLayerDown => "lowerlayerdown".into(),
        State::Testing => "testing".into(),
        State::Dormant => "dormant".into(),
        State::Up => "up".into(),
        State::Other(n) => format!("other({n})"),
        _ => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(kind: &str, up: bool, operstate: &str) -> LinkInfo {
        LinkInfo {
            index: 2,
            name: "x".into(),
            kind: Some(kind.into()),
            mtu: None,
            mac: None,
            up,
            running: operstate == "up",
            operstate: operstate.into(),
            alias: None,
            peer_index: None,
            controller: None,
            counters: None,
        }
    }

    #[test]
    fn a_vxlan_or_dummy_up_passes_packets_in_its_unknown_state() {
        assert!(link("veth", true, "up").passes());
        // A veth before the kernel's link-watch work ran: not yet.
        assert!(!link("veth", true, "unknown").passes());
        assert!(!link("macvlan", true, "lowerlayerdown").passes());
        assert!(link("vxlan", true, "unknown").passes());
        assert!(link("dummy", true, "unknown").passes());
        assert!(!link("vxlan", false, "unknown").passes());
        assert!(!link("vxlan", true, "down").passes());
    }
}
