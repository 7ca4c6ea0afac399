//! rtnetlink notifications, decoded into what a lab's events need.

use std::net::IpAddr;

use ipnet::IpNet;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};

use crate::kernel::netlink::link::operstate;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteType,
};

/// `RT_TABLE_LOCAL`: the kernel's routes to the namespace's own addresses
/// (one per address, made and removed with it).
const LOCAL_TABLE: u32 = 255;

/// One change the kernel announced in a net namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// RTM_NEWLINK (`removed: false`) or RTM_DELLINK.
    Link {
        link: LinkChange,
        removed: bool,
    },
    /// RTM_NEWADDR (`added`) or RTM_DELADDR.
    Address {
        added: bool,
        index: u32,
        address: IpNet,
    },
    Route(RouteChange),
    /// A qdisc of the interface `index` was added, changed or deleted.
    Qdisc {
        index: u32,
    },
}

/// A link as a notification (or a dump) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkChange {
    pub index: u32,
    /// Empty when the message had no IFLA_IFNAME.
    pub name: String,
    pub state: LinkState,
}

/// What decides whether a link passes packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkState {
    /// IFF_UP: set up by an administrator.
    pub admin_up: bool,
    /// IFLA_CARRIER (IFF_LOWER_UP without it).
    pub carrier: bool,
    /// IFLA_OPERSTATE, as `ip link` spells it in lower case (RFC 2863).
    pub operstate: String,
}

impl LinkState {
    /// Whether the link is operationally up: `up`, or `unknown` (what
    /// drivers without operstate, such as lo, report) set up with a carrier.
    pub(crate) fn is_up(&self) -> bool {
        self.operstate == "up" || (self.operstate == "unknown" && self.admin_up && self.carrier)
    }
}

/// RTM_NEWROUTE (`added`) or RTM_DELROUTE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteChange {
    pub added: bool,
    pub destination: IpNet,
    pub gateway: Option<IpAddr>,
    /// The output interface's index.
    pub oif: Option<u32>,
    /// Who made it, as `ip route` spells it: kernel, boot, static, bird, ...
    pub protocol: String,
    pub table: u32,
    /// unicast, blackhole, unreachable, prohibit, ...
    pub kind: String,
}

/// The change a notification announces; `None` for what events leave out:
/// other messages, routes of the local table and cached clones (they
/// mirror addresses and traffic, not configuration).
pub(crate) fn decode(message: &RouteNetlinkMessage) -> Option<Change> {
    match message {
        RouteNetlinkMessage::NewLink(m) => Some(Change::Link {
            link: LinkChange::from_message(m),
            removed: false,
        }),
        RouteNetlinkMessage::DelLink(m) => Some(Change::Link {
            link: LinkChange::from_message(m),
            removed: true,
        }),
        RouteNetlinkMessage::NewAddress(m) => address(m, true),
        RouteNetlinkMessage::DelAddress(m) => address(m, false),
        RouteNetlinkMessage::NewRoute(m) => route(m, true).map(Change::Route),
        RouteNetlinkMessage::DelRoute(m) => route(m, false).map(Change::Route),
        RouteNetlinkMessage::NewQueueDiscipline(m) | RouteNetlinkMessage::DelQueueDiscipline(m) => {
            Some(Change::Qdisc {
                index: u32::try_from(m.header.index).ok()?,
            })
        }
        _ => None,
    }
}

impl LinkChange {
    pub(crate) fn from_message(message: &LinkMessage) -> Self {
        let flags = message.header.flags;
        let mut link = LinkChange {
            index: message.header.index,
            name: String::new(),
            state: LinkState {
                admin_up: flags.contains(LinkFlags::Up),
                carrier: flags.contains(LinkFlags::LowerUp),
                operstate: "unknown".into(),
            },
        };
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::IfName(name) => link.name = name.clone(),
                LinkAttribute::Carrier(carrier) => link.state.carrier = *carrier != 0,
                LinkAttribute::OperState(state) => link.state.operstate = operstate(*state),
                _ => {}
            }
        }
        link
    }
}

fn address(message: &AddressMessage, added: bool) -> Option<Change> {
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS the peer's on
    // point-to-point links (as in address/dump.rs).
    let find = |local: bool| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) if local => Some(*ip),
            AddressAttribute::Address(ip) if !local => Some(*ip),
            _ => None,
        })
    };
    let ip = find(true).or_else(|| find(false))?;
    Some(Change::Address {
        added,
        index: message.header.index,
        address: IpNet::new(ip, message.header.prefix_len).ok()?,
    })
}

fn route(message: &RouteMessage, added: bool) -> Option<RouteChange> {
    let header = &message.header;
    if header.flags.contains(RouteFlags::Cloned) {
        return None;
    }
    let mut change = RouteChange {
        added,
        destination: unspecified(header.address_family)?,
        gateway: None,
        oif: None,
        protocol: header.protocol.to_string(),
        table: u32::from(header.table),
        kind: route_kind(header.kind),
    };
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(to) => {
                change.destination =
                    IpNet::new(ip_of(to)?, header.destination_prefix_length).ok()?;
            }
            RouteAttribute::Gateway(via) => change.gateway = ip_of(via),
            RouteAttribute::Oif(index) => change.oif = Some(*index),
            RouteAttribute::Table(table) => change.table = *table,
            _ => {}
        }
    }
    (change.table != LOCAL_TABLE).then_some(change)
}

/// `0.0.0.0/0` or `::/0`: a route without RTA_DST is a default route.
fn unspecified(family: rtnetlink::packet_route::AddressFamily) -> Option<IpNet> {
    use rtnetlink::packet_route::AddressFamily;
    match family {
        AddressFamily::Inet => Some(IpNet::V4(Default::default())),
        AddressFamily::Inet6 => Some(IpNet::V6(Default::default())),
        _ => None,
    }
}

fn ip_of(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

fn route_kind(kind: RouteType) -> String {
    match kind {
        RouteType::Unicast => "unicast".into(),
        RouteType::Local => "local".into(),
        RouteType::Broadcast => "broadcast".into(),
        RouteType::Anycast => "anycast".into(),
        RouteType::Multicast => "multicast".into(),
        RouteType::BlackHole => "blackhole".into(),
        RouteType::Unreachable => "unreachable".into(),
        RouteType::Prohibit => "prohibit".into(),
        RouteType::Throw => "throw".into(),
        RouteType::Nat => "nat".into(),
        other => format!("type{}", u8::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::AddressFamily;
    use rtnetlink::packet_route::link::State;
    use rtnetlink::packet_route::route::RouteProtocol;

    #[test]
    fn decodes_a_link_going_down_for_lack_of_carrier() {
        let mut message = LinkMessage::default();
        message.header.index = 7;
        message.header.flags = LinkFlags::Up | LinkFlags::Broadcast;
        message.attributes = vec![
            LinkAttribute::IfName("eth0".into()),
            LinkAttribute::Carrier(0),
            LinkAttribute::OperState(State::LowerLayerDown),
        ];
        let Some(Change::Link { link, removed }) = decode(&RouteNetlinkMessage::NewLink(message))
        else {
            panic!("a link change");
        };
        assert!(!removed);
        assert_eq!(link.index, 7);
        assert_eq!(link.name, "eth0");
        assert_eq!(
            link.state,
            LinkState {
                admin_up: true,
                carrier: false,
                operstate: "lowerlayerdown".into()
            }
        );
        assert!(!link.state.is_up());
        // lo: unknown, but up with a carrier.
        let lo = LinkState {
            admin_up: true,
            carrier: true,
            operstate: "unknown".into(),
        };
        assert!(lo.is_up());
    }

    #[test]
    fn decodes_addresses_preferring_the_local_one() {
        let mut message = AddressMessage::default();
        message.header.index = 3;
        message.header.prefix_len = 24;
        message.attributes = vec![
            AddressAttribute::Address("10.0.0.9".parse().expect("ip")),
            AddressAttribute::Local("10.0.0.1".parse().expect("ip")),
        ];
        assert_eq!(
            decode(&RouteNetlinkMessage::DelAddress(message)),
            Some(Change::Address {
                added: false,
                index: 3,
                address: "10.0.0.1/24".parse().expect("net"),
            })
        );
    }

    fn route_message(table: u8) -> RouteMessage {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.destination_prefix_length = 24;
        message.header.table = table;
        message.header.protocol = RouteProtocol::Bird;
        message.header.kind = RouteType::Unicast;
        message.attributes = vec![
            RouteAttribute::Destination(RouteAddress::Inet("10.3.0.0".parse().expect("ip"))),
            RouteAttribute::Gateway(RouteAddress::Inet("10.0.12.2".parse().expect("ip"))),
            RouteAttribute::Oif(2),
        ];
        message
    }

    #[test]
    fn decodes_routes_and_leaves_out_the_local_table_and_clones() {
        let decoded = decode(&RouteNetlinkMessage::NewRoute(route_message(254)));
        assert_eq!(
            decoded,
            Some(Change::Route(RouteChange {
                added: true,
                destination: "10.3.0.0/24".parse().expect("net"),
                gateway: Some("10.0.12.2".parse().expect("ip")),
                oif: Some(2),
                protocol: "bird".into(),
                table: 254,
                kind: "unicast".into(),
            }))
        );
        assert_eq!(
            decode(&RouteNetlinkMessage::NewRoute(route_message(255))),
            None
        );
        let mut cloned = route_message(254);
        cloned.header.flags = RouteFlags::Cloned;
        assert_eq!(decode(&RouteNetlinkMessage::DelRoute(cloned)), None);
        // No RTA_DST: the default route.
        let mut default = route_message(254);
        default.header.destination_prefix_length = 0;
        default.attributes.remove(0);
        let Some(Change::Route(route)) = decode(&RouteNetlinkMessage::DelRoute(default)) else {
            panic!("a route");
        };
        assert_eq!(route.destination.to_string(), "0.0.0.0/0");
        assert!(!route.added);
    }
}
