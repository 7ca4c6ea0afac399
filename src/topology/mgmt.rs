//! `mgmt:`: the management network, as containerlab makes it for every
//! lab (and nslab's own files ask for). Checked here and turned into
//! ordinary parts of the lab: a bridge node [`MGMT_BRIDGE`], a link from
//! each node's `eth0` to it with the node's addresses, and a link from the
//! host (an interface named after the lab, with the gateway addresses).
//! A node's `mgmt-ipv4`/`mgmt-ipv6` pin its addresses; the others get the
//! next free ones in file order; `network-mode: none` leaves a node off;
//! `ports` are forwarded from the host to the node's address.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use indexmap::IndexMap;
use ipnet::IpNet;

use super::Problem;
use super::model::{MgmtModel, NodeModel, Text};
use crate::spec::{
    Endpoint, HOST, Link, LinkState, MAX_IFNAME_BYTES, MGMT_BRIDGE, MGMT_IFACE, Mgmt, Node,
    NodeKind, PortForward, ifname_problem, parse_port_forward,
};

/// containerlab's default management subnets (used when `mgmt:` gives
/// neither family's).
const DEFAULT_IPV4_SUBNET: &str = "172.20.20.0/24";
const DEFAULT_IPV6_SUBNET: &str = "3fff:172:20:20::/64";

/// The management network of a lab, checked: what it adds to the lab's
/// nodes and links.
#[derive(Debug)]
pub(super) struct Network {
    pub mgmt: Mgmt,
    mtu: Option<u32>,
    /// The nodes on it, in file order, with their addresses.
    members: Vec<(String, Option<IpNet>, Option<IpNet>)>,
}

/// One family's addresses: the subnet, the gateway (the host's address),
/// the range nodes are numbered from, and the addresses already taken.
struct Pool {
    subnet: IpNet,
    gateway: IpAddr,
    range: IpNet,
    taken: HashSet<IpAddr>,
    next: u128,
}

impl Pool {
    fn new(
        family: &str,
        subnet: &str,
        gateway: Option<&Text>,
        range: Option<&Text>,
        problems: &mut Vec<Problem>,
    ) -> Option<Pool> {
        let path = |key: &str| format!("mgmt.{family}-{key}");
        let v4 = family == "ipv4";
        let subnet: IpNet = match subnet.parse::<IpNet>() {
            Ok(net) if net.addr().is_ipv4() == v4 => net.trunc(),
            _ => {
                problems.push(Problem::new(
                    path("subnet"),
                    format!("{subnet:?} is not an {family} subnet (ADDR/LEN)"),
                ));
                return None;
            }
        };
        if subnet.hosts().nth(1).is_none() {
            problems.push(Problem::new(
                path("subnet"),
                format!("{subnet} has no room for a gateway and a node"),
            ));
            return None;
        }
        let gateway = match gateway {
            None => first_host(subnet),
            Some(Text(text)) => match text.parse::<IpAddr>() {
                Ok(ip) if usable(subnet, ip) => ip,
                _ => {
                    problems.push(Problem::new(
                        path("gw"),
                        format!("{text:?} is not a host address of {subnet}"),
                    ));
                    return None;
                }
            },
        };
        let range = match range {
            None => subnet,
            Some(Text(text)) => match text.parse::<IpNet>() {
                Ok(r) if subnet.contains(&r) => r.trunc(),
                _ => {
                    problems.push(Problem::new(
                        path("range"),
                        format!("{text:?} is not a subnet within {subnet}"),
                    ));
                    return None;
                }
            },
        };
        Some(Pool {
            subnet,
            gateway,
            range,
            taken: HashSet::from([gateway]),
            next: bits(range.network()),
        })
    }

    /// A node's own address: in the subnet, not the gateway's, not taken.
    fn claim(&mut self, text: &str, at: String, problems: &mut Vec<Problem>) -> Option<IpNet> {
        let Ok(ip) = text.parse::<IpAddr>() else {
            problems.push(Problem::new(at, format!("{text:?} is not an IP address")));
            return None;
        };
        let why = if !usable(self.subnet, ip) {
            format!(
                "{ip} is not a host address of the management subnet {}",
                self.subnet
            )
        } else if ip == self.gateway {
            format!("{ip} is the management network's gateway (the host's address)")
        } else if !self.taken.insert(ip) {
            format!("{ip} is another node's management address")
        } else {
            return IpNet::new(ip, self.subnet.prefix_len()).ok();
        };
        problems.push(Problem::new(at, why));
        None
    }

    /// The next free address of the range.
    fn next_free(&mut self) -> Option<IpNet> {
        let last = bits(self.range.broadcast());
        while self.next <= last {
            let ip = from_bits(self.next, self.subnet.addr().is_ipv4());
            self.next += 1;
            if usable(self.subnet, ip) && self.taken.insert(ip) {
                return IpNet::new(ip, self.subnet.prefix_len()).ok();
            }
        }
        None
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4).into(),
        IpAddr::V6(v6) => v6.into(),
    }
}

fn from_bits(n: u128, v4: bool) -> IpAddr {
    match v4 {
        true => IpAddr::V4((n as u32).into()),
        false => IpAddr::V6(n.into()),
    }
}

/// An address of `subnet` a host may have: not its network address (nor,
/// in IPv4, its broadcast address).
fn usable(subnet: IpNet, ip: IpAddr) -> bool {
    subnet.contains(&ip)
        && ip != subnet.network()
        && (ip.is_ipv6() || subnet.prefix_len() >= 31 || ip != subnet.broadcast())
}

fn first_host(subnet: IpNet) -> IpAddr {
    from_bits(bits(subnet.network()) + 1, subnet.addr().is_ipv4())
}

/// The host's interface on the management network of lab `lab`.
fn host_iface(lab: &str) -> String {
    let named = format!("mgmt-{lab}");
    if named.len() <= MAX_IFNAME_BYTES {
        return named;
    }
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash = lab.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("mgmt-{:010x}", hash & 0xff_ffff_ffff)
}

/// Checks `mgmt:` and the nodes' management keys; `None` when a problem
/// leaves nothing to build (all of them are in `problems`).
pub(super) fn plan(
    model: &MgmtModel,
    lab: &str,
    nodes: &IndexMap<String, Node>,
    models: &IndexMap<String, Option<NodeModel>>,
    problems: &mut Vec<Problem>,
) -> Option<Network> {
    let before = problems.len();
    if model.driver_opts.is_some() {
        problems.push(Problem::new(
            "mgmt.driver-opts",
            "containerlab's `driver-opts` configure Docker's bridge, and nslab runs no Docker",
        ));
    }
    let host_iface = match &model.bridge {
        None => host_iface(lab),
        Some(Text(name)) => {
            if let Some(why) = ifname_problem(name) {
                problems.push(Problem::new("mgmt.bridge", format!("{name:?} {why}")));
            }
            name.clone()
        }
    };
    let mtu = match model.mtu {
        None => None,
        Some(m) if (68..=65535).contains(&m) => Some(m as u32),
        Some(m) => {
            problems.push(Problem::new(
                "mgmt.mtu",
                format!("MTU {m} is not between 68 and 65535"),
            ));
            None
        }
    };
    let (v4_subnet, v6_subnet) = match (&model.ipv4_subnet, &model.ipv6_subnet) {
        (None, None) => (Some(DEFAULT_IPV4_SUBNET), Some(DEFAULT_IPV6_SUBNET)),
        (v4, v6) => (
            v4.as_ref().map(|t| t.0.as_str()),
            v6.as_ref().map(|t| t.0.as_str()),
        ),
    };
    let mut v4 = v4_subnet.and_then(|s| {
        let (gw, range) = (model.ipv4_gw.as_ref(), model.ipv4_range.as_ref());
        Pool::new("ipv4", s, gw, range, problems)
    });
    let mut v6 = v6_subnet.and_then(|s| {
        let (gw, range) = (model.ipv6_gw.as_ref(), model.ipv6_range.as_ref());
        Pool::new("ipv6", s, gw, range, problems)
    });
    for (key, given, family) in [
        ("ipv4-gw", model.ipv4_gw.is_some(), v4_subnet),
        ("ipv4-range", model.ipv4_range.is_some(), v4_subnet),
        ("ipv6-gw", model.ipv6_gw.is_some(), v6_subnet),
        ("ipv6-range", model.ipv6_range.is_some(), v6_subnet),
    ] {
        if given && family.is_none() {
            problems.push(Problem::new(
                format!("mgmt.{key}"),
                "give the subnet it belongs to as well",
            ));
        }
    }

    // The nodes on the network, pinned addresses first so that the others
    // are numbered around them.
    let off_network = |m: &NodeModel| m.network_mode.as_ref().is_some_and(|t| t.0 == "none");
    let on_network: Vec<(&String, Option<&NodeModel>)> = nodes
        .iter()
        .filter(|(_, n)| n.kind == NodeKind::Node)
        .map(|(name, _)| (name, models.get(name).and_then(Option::as_ref)))
        .filter(|(_, m)| !m.is_some_and(off_network))
        .collect();
    // An address on a network the node is kept off is a contradiction.
    for (name, m) in models.iter().filter_map(|(n, m)| Some((n, m.as_ref()?))) {
        let given = [("mgmt-ipv4", &m.mgmt_ipv4), ("mgmt-ipv6", &m.mgmt_ipv6)];
        for (key, _) in given.iter().filter(|(_, v)| v.is_some() && off_network(m)) {
            problems.push(Problem::new(
                format!("topology.nodes.{name}.{key}"),
                "the node has `network-mode: none`: it is not on the management network",
            ));
        }
    }
    let mut pinned: HashMap<&str, (Option<IpNet>, Option<IpNet>)> = HashMap::new();
    for (name, m) in &on_network {
        let Some(m) = m else { continue };
        let path = |key: &str| format!("topology.nodes.{name}.{key}");
        let mut claim = |pool: &mut Option<Pool>, given: &Option<Text>, key: &str| {
            let Text(text) = given.as_ref()?;
            match pool {
                Some(pool) => pool.claim(text, path(key), problems),
                None => {
                    let family = &key[5..];
                    problems.push(Problem::new(
                        path(key),
                        format!("the management network has no {family} subnet"),
                    ));
                    None
                }
            }
        };
        let addresses = (
            claim(&mut v4, &m.mgmt_ipv4, "mgmt-ipv4"),
            claim(&mut v6, &m.mgmt_ipv6, "mgmt-ipv6"),
        );
        pinned.insert(name.as_str(), addresses);
    }
    let mut members = Vec::new();
    for (name, m) in &on_network {
        let (own4, own6) = pinned.get(name.as_str()).copied().unwrap_or_default();
        let given = |f: fn(&NodeModel) -> bool| m.is_some_and(f);
        let mut next = |pool: &mut Option<Pool>, own: Option<IpNet>, given: bool, family: &str| {
            if own.is_some() || given {
                return own;
            }
            let pool = pool.as_mut()?;
            let ip = pool.next_free();
            if ip.is_none() {
                problems.push(Problem::new(
                    format!("topology.nodes.{name}"),
                    format!(
                        "the management {family} range {} has no address left for node {name:?}",
                        pool.range
                    ),
                ));
            }
            ip
        };
        let ipv4 = next(&mut v4, own4, given(|m| m.mgmt_ipv4.is_some()), "IPv4");
        let ipv6 = next(&mut v6, own6, given(|m| m.mgmt_ipv6.is_some()), "IPv6");
        members.push(((*name).clone(), ipv4, ipv6));
    }

    let mut ports = Vec::new();
    let mut listening = HashSet::new();
    for (name, m) in models {
        let Some(list) = m.as_ref().and_then(|m| m.ports.as_ref()) else {
            continue;
        };
        let member = members.iter().find(|(n, ..)| n == name);
        for (i, Text(text)) in list.0.iter().enumerate() {
            let at = format!("topology.nodes.{name}.ports[{i}]");
            let (listen, port, protocol) = match parse_port_forward(text) {
                Ok(parsed) => parsed,
                Err(why) => {
                    problems.push(Problem::new(at, why));
                    continue;
                }
            };
            let Some((_, ipv4, ipv6)) = member else {
                problems.push(Problem::new(
                    at,
                    format!("node {name:?} is not on the management network, which ports are forwarded over"),
                ));
                break;
            };
            let Some(to) = ipv4.or(*ipv6).map(|a| SocketAddr::new(a.addr(), port)) else {
                continue;
            };
            if !listening.insert((listen, protocol)) {
                problems.push(Problem::new(
                    at,
                    format!("{listen}/{protocol} of the host is forwarded twice"),
                ));
                continue;
            }
            ports.push(PortForward {
                node: name.clone(),
                listen,
                to,
                protocol,
            });
        }
    }
    if problems.len() > before {
        return None;
    }
    let gateway = |pool: &Option<Pool>| {
        let pool = pool.as_ref()?;
        IpNet::new(pool.gateway, pool.subnet.prefix_len()).ok()
    };
    Some(Network {
        mgmt: Mgmt {
            host_iface,
            ipv4: gateway(&v4),
            ipv6: gateway(&v6),
            ports,
        },
        mtu,
        members,
    })
}

impl Network {
    /// The bridge node.
    pub(super) fn bridge(&self) -> Node {
        Node {
            name: MGMT_BRIDGE.to_owned(),
            kind: NodeKind::Bridge,
            hostname: MGMT_BRIDGE.to_owned(),
            tmpfs: Vec::new(),
            binds: Vec::new(),
            sysctls: Vec::new(),
            routes: Vec::new(),
            env: Vec::new(),
            exec: Vec::new(),
            limits: Default::default(),
            userns: false,
            startup_delay: None,
            wait_for: Vec::new(),
        }
    }

    /// The links: the host's first, then each node's, its port on the
    /// bridge named after it where it can be and not in `taken` (ports the
    /// file's own `mgmt-net:IFACE` links named).
    pub(super) fn links(&self, taken: &HashSet<&str>) -> Vec<Link> {
        let end = |node: &str, iface: String, ipv4, ipv6| Endpoint {
            node: node.to_owned(),
            iface,
            ipv4,
            ipv6,
            mac: None,
            impair: None,
            state: LinkState::Up,
            master: None,
        };
        let mut used: HashSet<String> = taken.iter().map(|s| (*s).to_owned()).collect();
        let mut port = |wanted: &str| {
            let mut name = wanted.to_owned();
            let mut n = 0;
            while ifname_problem(&name).is_some() || used.contains(&name) {
                n += 1;
                name = format!("port{n}");
            }
            used.insert(name.clone());
            name
        };
        let mut links = vec![Link {
            endpoints: [
                end(
                    HOST,
                    self.mgmt.host_iface.clone(),
                    self.mgmt.ipv4,
                    self.mgmt.ipv6,
                ),
                end(MGMT_BRIDGE, port("host"), None, None),
            ],
            mtu: self.mtu,
        }];
        for (name, ipv4, ipv6) in &self.members {
            links.push(Link {
                endpoints: [
                    end(name, MGMT_IFACE.to_owned(), *ipv4, *ipv6),
                    end(MGMT_BRIDGE, port(name), None, None),
                ],
                mtu: self.mtu,
            });
        }
        links
    }
}
