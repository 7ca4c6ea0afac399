//! A lab spread over hosts: which host each node goes to, and each host's
//! part, an ordinary one-host lab of its nodes in which every link that
//! crosses to another host is a VXLAN interface of its node's (the two
//! ends of one link share a VNI, each sends to the other's host).
//!
//! Placement: nodes with `host:` stay there and count first. The others go
//! in file order, a bridge together with the nodes linked to it (its LAN
//! stays on one host, no tunnel between its ports), filling each host up
//! to an even share (`ceil(nodes / hosts)`) before the next, so that nodes
//! next to each other in the file (a chain) mostly share a host. A group
//! that fits on no host whole goes to the one with fewest nodes.

use std::collections::HashMap;
use std::net::IpAddr;

use indexmap::IndexMap;
use ipnet::IpNet;

use super::{Place, Plan};
use crate::spec::{
    Device, DeviceKind, Endpoint, Expect, ExpectTarget, Machine, NodeKind, Spread, Topology,
    VXLAN_OVERHEAD_V4, VXLAN_OVERHEAD_V6,
};

/// The MTU of a cross-host link's ends when the file sets none: a veth's
/// 1500 less what the tunnel adds on the underlay.
pub fn tunnel_mtu(underlay: IpAddr) -> u32 {
    match underlay {
        IpAddr::V4(_) => 1500 - VXLAN_OVERHEAD_V4,
        IpAddr::V6(_) => 1500 - VXLAN_OVERHEAD_V6,
    }
}

/// Each node's host, by node name, in file order.
pub fn placement(t: &Topology, spread: &Spread) -> IndexMap<String, String> {
    let nodes: Vec<(&str, bool)> = (t.nodes.values())
        .map(|n| (n.name.as_str(), n.kind == NodeKind::Bridge))
        .collect();
    let links =
        (t.links.iter()).map(|l| (l.endpoints[0].node.as_str(), l.endpoints[1].node.as_str()));
    place(&nodes, links, spread)
}

impl Plan {
    /// The host of each node of a spread lab's whole plan (see
    /// [`placement`]), by node name; `None` for a lab of one host.
    pub fn placement(&self) -> Option<IndexMap<String, String>> {
        let spread = self.spread.as_ref()?;
        let nodes: Vec<(&str, bool)> = (self.nodes.iter())
            .map(|n| (n.name.as_str(), n.kind == NodeKind::Bridge))
            .collect();
        let name = |place: Place| match place {
            Place::Node(id) => self.nodes[id].name.as_str(),
            Place::Host => crate::spec::HOST,
        };
        let links =
            (self.links.iter()).map(|l| (name(l.endpoints[0].place), name(l.endpoints[1].place)));
        Some(place(&nodes, links, spread))
    }
}

/// [`placement`] of `nodes` (name, is a bridge) in file order, linked by
/// `links` (the node names at their ends).
fn place<'a>(
    nodes: &[(&'a str, bool)],
    links: impl Iterator<Item = (&'a str, &'a str)>,
    spread: &Spread,
) -> IndexMap<String, String> {
    let hosts: Vec<&String> = spread.hosts.keys().collect();
    let mut placed: IndexMap<String, String> = IndexMap::new();
    if hosts.is_empty() {
        return placed;
    }
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (*n, i))
        .collect();
    // Groups: a bridge with every node linked to it.
    let mut group: Vec<usize> = (0..nodes.len()).collect();
    fn root(group: &mut [usize], mut i: usize) -> usize {
        while group[i] != i {
            group[i] = group[group[i]];
            i = group[i];
        }
        i
    }
    let is_bridge = |n: &str| index.get(n).is_some_and(|&i| nodes[i].1);
    for (a, b) in links {
        if !(is_bridge(a) || is_bridge(b)) {
            continue;
        }
        if let (Some(&x), Some(&y)) = (index.get(a), index.get(b)) {
            let (rx, ry) = (root(&mut group, x), root(&mut group, y));
            group[rx.max(ry)] = rx.min(ry);
        }
    }
    let mut members: IndexMap<usize, Vec<&str>> = IndexMap::new();
    for (i, (name, _)) in nodes.iter().enumerate() {
        let r = root(&mut group, i);
        members.entry(r).or_default().push(name);
    }

    let mut load: HashMap<&str, usize> = HashMap::new();
    for host in spread.pinned.values() {
        *load.entry(host).or_default() += 1;
    }
    let share = nodes.len().div_ceil(hosts.len());
    let mut cursor = 0;
    for names in members.values() {
        let free: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !spread.pinned.contains_key(*n))
            .collect();
        // The bridge's host, when it is pinned, else the first pinned
        // member's: the LAN goes where its bridge is.
        let bridge_host = (names.iter())
            .filter(|n| index.get(**n).is_some_and(|&i| nodes[i].1))
            .find_map(|n| spread.pinned.get(*n));
        let pinned_host = bridge_host.or_else(|| names.iter().find_map(|n| spread.pinned.get(*n)));
        let host: &str = match pinned_host {
            Some(host) => host,
            None => {
                let fits = (cursor..hosts.len()).find(|&h| {
                    load.get(hosts[h].as_str()).copied().unwrap_or(0) + free.len() <= share
                });
                match fits {
                    Some(h) => {
                        cursor = h;
                        hosts[h]
                    }
                    None => hosts
                        .iter()
                        .min_by_key(|h| load.get(h.as_str()).copied().unwrap_or(0))
                        .expect("hosts is not empty"),
                }
            }
        };
        *load.entry(host).or_default() += free.len();
        for name in free {
            placed.insert(name.to_owned(), host.to_owned());
        }
    }
    // File order, pinned nodes among the others.
    nodes
        .iter()
        .map(|(n, _)| {
            let host = spread.pinned.get(*n).or_else(|| placed.get(*n)).cloned();
            ((*n).to_owned(), host.expect("every node is placed"))
        })
        .collect()
}

/// One host's part of a spread lab.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The host's name in `hosts:`.
    pub host: String,
    pub machine: Machine,
    /// Its lab: the nodes placed on it, their links with each other, and
    /// a VXLAN device for each end of a link to another host.
    pub topology: Topology,
    /// The other hosts' nodes with their addresses, for its `/etc/hosts`.
    pub remote_names: Vec<(String, Vec<IpNet>)>,
}

impl Part {
    /// The plan the host builds, its file's path made absolute (as
    /// [`Plan::from_file`] makes it).
    pub fn plan(&self) -> Plan {
        let mut plan = Plan::from_topology(&self.topology);
        plan.remote_names = self.remote_names.clone();
        plan.source = plan.source.and_then(|p| std::path::absolute(p).ok());
        plan
    }
}

/// A link between two hosts: its ends (`node`, `iface`), their hosts, the
/// VNI both use and their MTU.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tunnel {
    pub ends: [(String, String); 2],
    pub hosts: [String; 2],
    pub vni: u32,
    pub mtu: u32,
}

impl Tunnel {
    /// Its two ends, the lesser first: the same link whichever end the
    /// file writes first.
    pub fn key(&self) -> [(String, String); 2] {
        let [a, b] = self.ends.clone();
        if a <= b { [a, b] } else { [b, a] }
    }
}

impl std::fmt::Display for Tunnel {
    /// `r2:eth1 (a) <-> r3:eth0 (b) vni 8192 mtu 1450`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [(a, ai), (b, bi)] = &self.ends;
        let [ha, hb] = &self.hosts;
        write!(
            f,
            "{a}:{ai} ({ha}) <-> {b}:{bi} ({hb}) vni {} mtu {}",
            self.vni, self.mtu
        )
    }
}

/// Every host's part (hosts without nodes too: they have nothing to
/// build, and are left out), with the tunnels between them.
pub fn parts(t: &Topology, spread: &Spread) -> (Vec<Part>, Vec<Tunnel>) {
    parts_keeping(t, spread, &[])
}

/// [`parts`] for a lab that runs: a link of `running` keeps its VNI, a new
/// one takes the lowest free from the first (`apply`, which also keeps
/// running nodes on their hosts through `spread.pinned`).
pub fn parts_keeping(
    t: &Topology,
    spread: &Spread,
    running: &[Tunnel],
) -> (Vec<Part>, Vec<Tunnel>) {
    let kept: HashMap<[(String, String); 2], u32> =
        running.iter().map(|t| (t.key(), t.vni)).collect();
    let mut taken: std::collections::HashSet<u32> = std::collections::HashSet::new();
    let placed = placement(t, spread);
    let host_of = |node: &str| placed.get(node).map(String::as_str);
    let mut parts: IndexMap<&str, Topology> = IndexMap::new();
    for name in spread.hosts.keys() {
        let mut part = t.clone();
        part.spread = None;
        // The controller plays the scenario, on every host.
        part.scenario = Default::default();
        part.nodes.retain(|n, _| host_of(n) == Some(name.as_str()));
        part.links.clear();
        part.devices
            .retain(|d| host_of(&d.end.node) == Some(name.as_str()));
        part.expect.clear();
        parts.insert(name, part);
    }
    let mut tunnels = Vec::new();
    for link in &t.links {
        let [a, b] = &link.endpoints;
        let (Some(ha), Some(hb)) = (host_of(&a.node), host_of(&b.node)) else {
            continue;
        };
        if ha == hb {
            parts[ha].links.push(link.clone());
            continue;
        }
        let key = {
            let ends = [
                (a.node.clone(), a.iface.clone()),
                (b.node.clone(), b.iface.clone()),
            ];
            Tunnel {
                ends,
                hosts: Default::default(),
                vni: 0,
                mtu: 0,
            }
            .key()
        };
        let vni = match kept.get(&key) {
            Some(&vni) if !taken.contains(&vni) => vni,
            _ => (spread.first_vni..)
                .find(|v| !taken.contains(v) && !kept.values().any(|k| k == v))
                .unwrap_or(spread.first_vni),
        };
        taken.insert(vni);
        // A bridge's port keeps the LAN's MTU (a bridge drops a frame too
        // big for a port without a word); its tunnel's packets are then
        // fragmented on the underlay. A routed link gets the tunnel's, so
        // that path MTU discovery sees it.
        let on_bridge = [a, b].iter().any(|e| {
            t.nodes
                .get(&e.node)
                .is_some_and(|n| n.kind == NodeKind::Bridge)
        });
        let mtu = match (link.mtu, on_bridge) {
            (Some(mtu), _) => mtu,
            (None, true) => super::DEFAULT_MTU,
            (None, false) => tunnel_mtu(spread.hosts[ha].underlay),
        };
        for (end, host, other) in [(a, ha, hb), (b, hb, ha)] {
            let (here, there) = (&spread.hosts[host], &spread.hosts[other]);
            parts[host].devices.push(Device {
                end: end.clone(),
                mtu: Some(mtu),
                kind: DeviceKind::Vxlan {
                    remote: there.underlay,
                    vni,
                    port: spread.vxlan_port,
                    source_port: None,
                    parent: None,
                    local: Some(here.underlay),
                },
            });
        }
        tunnels.push(Tunnel {
            ends: [
                (a.node.clone(), a.iface.clone()),
                (b.node.clone(), b.iface.clone()),
            ],
            hosts: [ha.to_owned(), hb.to_owned()],
            vni,
            mtu,
        });
    }
    // Expectations are checked from the node they start at; a target on
    // another host is named by its addresses.
    for expect in &t.expect {
        let Some(host) = host_of(&expect.from) else {
            continue;
        };
        let remote = |node: &str| host_of(node) != Some(host);
        let targets = match &expect.to {
            ExpectTarget::Node(node) if remote(node) => addresses(t, node, None),
            ExpectTarget::Interface { node, iface } if remote(node) => {
                addresses(t, node, Some(iface))
            }
            other => vec![other.clone()],
        };
        for to in targets {
            parts[host].expect.push(Expect {
                to,
                ..expect.clone()
            });
        }
    }
    // A start order across hosts cannot be kept: each part starts alone.
    for part in parts.values_mut() {
        let here: Vec<String> = part.nodes.keys().cloned().collect();
        for node in part.nodes.values_mut() {
            node.wait_for.retain(|n| here.contains(n));
        }
    }
    let whole = Plan::from_topology(t);
    let names: Vec<(String, Vec<IpNet>)> = (whole.name_addresses().into_iter())
        .map(|(id, addresses)| (whole.nodes[id].name.clone(), addresses))
        .collect();
    let parts = parts
        .into_iter()
        .filter(|(_, part)| !part.nodes.is_empty())
        .map(|(host, topology)| Part {
            host: host.to_owned(),
            machine: spread.hosts[host].clone(),
            remote_names: (names.iter())
                .filter(|(n, _)| host_of(n) != Some(host))
                .cloned()
                .collect(),
            topology,
        })
        .collect();
    (parts, tunnels)
}

/// The addresses of `node` (of its interface `iface` only, if given), as
/// expectation targets.
fn addresses(t: &Topology, node: &str, iface: Option<&str>) -> Vec<ExpectTarget> {
    let ends = (t.links.iter().flat_map(|l| &l.endpoints)).chain(t.devices.iter().map(|d| &d.end));
    let mine = |e: &&Endpoint| e.node == node && iface.is_none_or(|i| e.iface == i);
    ends.filter(mine)
        .flat_map(|e| e.ipv4.iter().chain(&e.ipv6))
        .map(|net: &IpNet| ExpectTarget::Address(net.addr()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Topology;

    fn topology(yaml: &str) -> Topology {
        crate::topology::parse_str(yaml, "spread.yml".as_ref(), "/".as_ref()).expect("valid")
    }

    const HOSTS: &str = "hosts:\n  a: {ssh: root@192.0.2.1, underlay: 192.0.2.1}\n  b: {ssh: root@192.0.2.2, underlay: 192.0.2.2}\n  c: {ssh: hc, underlay: 192.0.2.3, nslab: /opt/nslab}\nvxlan: {vni: 100}\n";

    #[test]
    fn a_chain_is_cut_into_even_runs_joined_by_tunnels() {
        let mut yaml = format!("name: chain\n{HOSTS}topology:\n  nodes:\n");
        for i in 1..=6 {
            yaml.push_str(&format!("    r{i}: {{}}\n"));
        }
        yaml.push_str("  links:\n");
        for i in 1..6 {
            yaml.push_str(&format!(
                "    - endpoints: [r{i}:eth1, r{}:eth0]\n      ipv4: [10.0.{i}.1/30, 10.0.{i}.2/30]\n",
                i + 1
            ));
        }
        let t = topology(&yaml);
        let spread = t.spread.as_ref().expect("hosts");
        let placed = placement(&t, spread);
        let placed: Vec<&str> = placed.values().map(String::as_str).collect();
        assert_eq!(placed, ["a", "a", "b", "b", "c", "c"]);
        let (parts, tunnels) = parts(&t, spread);
        assert_eq!(parts.len(), 3);
        assert_eq!(
            tunnels.iter().map(|t| t.vni).collect::<Vec<_>>(),
            [100, 101]
        );
        assert_eq!(
            tunnels[0].ends,
            [("r2".into(), "eth1".into()), ("r3".into(), "eth0".into())]
        );
        assert!(tunnels.iter().all(|t| t.mtu == 1450));
        let b = &parts[1];
        assert_eq!(b.host, "b");
        assert_eq!(b.topology.nodes.keys().collect::<Vec<_>>(), ["r3", "r4"]);
        assert_eq!(b.topology.links.len(), 1, "r3-r4 stays a veth");
        assert!(b.topology.spread.is_none(), "a part is a plain lab");
        let ends: Vec<String> = (b.topology.devices.iter())
            .map(|d| {
                format!(
                    "{}:{} {} mtu {:?} {}",
                    d.end.node,
                    d.end.iface,
                    d.end.ipv4.expect("v4"),
                    d.mtu,
                    d.kind
                )
            })
            .collect();
        assert_eq!(
            ends,
            [
                "r3:eth0 10.0.2.2/30 mtu Some(1450) vxlan to 192.0.2.1 vni 100 port 4789 from 192.0.2.2",
                "r4:eth1 10.0.4.1/30 mtu Some(1450) vxlan to 192.0.2.3 vni 101 port 4789 from 192.0.2.2",
            ]
        );
        assert_eq!(parts[2].machine.nslab, "/opt/nslab");
    }

    #[test]
    fn a_bridge_keeps_its_ports_and_pinned_nodes_stay_put() {
        let yaml = format!(
            "name: lan\n{HOSTS}topology:\n  nodes:\n    sw: {{kind: bridge, host: a}}\n    h1: {{}}\n    h2: {{}}\n    h3: {{host: c}}\n    h4: {{}}\n  links:\n    - endpoints: [h1:eth0, sw:p1]\n      ipv4: [10.0.0.1/24, null]\n    - endpoints: [h2:eth0, sw:p2]\n      ipv4: [10.0.0.2/24, null]\n    - endpoints: [h3:eth0, sw:p3]\n      ipv4: [10.0.0.3/24, null]\n      mtu: 1400\nexpect:\n  - {{from: h3, to: h1}}\n  - {{from: h1, to: h2}}\n"
        );
        let t = topology(&yaml);
        let spread = t.spread.as_ref().expect("hosts");
        let placed = placement(&t, spread);
        // The bridge's ports go with it, a port pinned elsewhere stays there.
        assert_eq!(
            [&placed["sw"], &placed["h1"], &placed["h2"]],
            ["a", "a", "a"]
        );
        assert_eq!(placed["h3"], "c");
        assert_eq!(placed["h4"], "b", "a: full (share 2, 3 placed)");
        let (parts, tunnels) = parts(&t, spread);
        assert_eq!(tunnels.len(), 1);
        assert_eq!(tunnels[0].mtu, 1400, "the file's MTU is kept");
        let sw_host = parts
            .iter()
            .find(|p| p.topology.nodes.contains_key("sw"))
            .expect("sw");
        let port = &sw_host.topology.devices[0];
        assert_eq!(
            (port.end.node.as_str(), port.end.iface.as_str()),
            ("sw", "p3")
        );
        let c = parts.iter().find(|p| p.host == "c").expect("c");
        // h3's expectation names h1 by its address on the other host.
        assert_eq!(c.topology.expect.len(), 1);
        assert_eq!(
            c.topology.expect[0].to,
            ExpectTarget::Address("10.0.0.1".parse().expect("ip"))
        );
        assert_eq!(
            sw_host.topology.expect[0].to,
            ExpectTarget::Node("h2".into())
        );
        // Every node is on exactly one host.
        let total: usize = parts.iter().map(|p| p.topology.nodes.len()).sum();
        assert_eq!(total, 5);
    }

    #[test]
    fn a_running_link_keeps_its_vni_and_a_new_one_takes_a_free_one() {
        let base = format!(
            "name: keep\n{HOSTS}topology:\n  nodes:\n    r1: {{host: a}}\n    r2: {{host: b}}\n    r3: {{host: c}}\n  links:\n"
        );
        let later = "    - endpoints: [r2:eth1, r3:eth0]\n";
        let t = topology(&(base.clone() + later));
        let (_, running) = parts(&t, t.spread.as_ref().expect("hosts"));
        assert_eq!(running[0].vni, 100);
        // A link written before it: file order would give it 100.
        let t = topology(&(base + "    - endpoints: [r1:eth0, r2:eth0]\n" + later));
        let (_, tunnels) = parts_keeping(&t, t.spread.as_ref().expect("hosts"), &running);
        let vnis: Vec<(String, u32)> = tunnels
            .iter()
            .map(|t| (t.ends[0].0.clone(), t.vni))
            .collect();
        assert_eq!(vnis, [("r1".to_owned(), 101), ("r2".to_owned(), 100)]);
    }
}
