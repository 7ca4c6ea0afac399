//! The lab's `/etc/hosts`: every node sees it in place of the host's, in
//! its own mount namespace, so that nodes reach each other by name.

use std::fmt::Write;

use ipnet::IpNet;

use super::{NodeId, Place, Plan};
use crate::spec::{MGMT_BRIDGE, MGMT_IFACE, NodeKind};

impl Plan {
    /// The file: localhost, then each node (not a bridge) by name at its
    /// management addresses, or where the lab has none (or the node is
    /// off that network) its first IPv4 and first IPv6 address, beside
    /// the name its hostname when that differs, and its containerlab name
    /// for a containerlab file.
    pub fn hosts_file(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "# The hosts of lab {}, written by nslab (`nslab apply` rewrites it).",
            self.lab
        );
        text.push_str("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for (id, addresses) in self.name_addresses() {
            let node = &self.nodes[id];
            let mut names = node.name.clone();
            if node.hostname != node.name {
                let _ = write!(names, " {}", node.hostname);
            }
            if let Some(prefix) = &self.container_prefix {
                let _ = write!(names, " {prefix}{}", node.name);
            }
            for address in addresses {
                let _ = writeln!(text, "{}\t{names}", address.addr());
            }
        }
        for (name, addresses) in &self.remote_names {
            for address in addresses {
                let _ = writeln!(text, "{}\t{name}", address.addr());
            }
        }
        text
    }

    /// The lab's lines for the host's `/etc/hosts` (`up --hosts`): each
    /// node under a name that cannot be taken for one of the host's own:
    /// its containerlab name (`clab-LAB-NODE`) for a containerlab file,
    /// else `LAB-NODE` (its net namespace's name too).
    pub fn host_entries(&self) -> String {
        let mut text = String::new();
        for (id, addresses) in self.name_addresses() {
            let node = &self.nodes[id].name;
            let name = match &self.container_prefix {
                Some(prefix) => format!("{prefix}{node}"),
                None => super::netns_name(&self.lab, node),
            };
            for address in addresses {
                let _ = writeln!(text, "{}\t{name}", address.addr());
            }
        }
        text
    }

    /// Each node (not a bridge) with the addresses its name stands for:
    /// its management addresses, or where the lab has no management
    /// network (or the node is off it) its first IPv4 and first IPv6
    /// address. A node without any address is left out.
    pub(crate) fn name_addresses(&self) -> Vec<(NodeId, Vec<IpNet>)> {
        let bridge = self.node_id(MGMT_BRIDGE).filter(|_| self.mgmt.is_some());
        let mut first: Vec<[Option<IpNet>; 2]> = vec![[None, None]; self.nodes.len()];
        let mut management: Vec<[Option<IpNet>; 2]> = vec![[None, None]; self.nodes.len()];
        for link in &self.links {
            for (end, peer) in [(0, 1), (1, 0)] {
                let (end, peer) = (&link.endpoints[end], &link.endpoints[peer]);
                let Place::Node(id) = end.place else { continue };
                let on_bridge = bridge.is_some_and(|b| peer.place == Place::Node(b));
                let slots = match on_bridge && end.ifname == MGMT_IFACE {
                    true => &mut management[id],
                    false => &mut first[id],
                };
                for address in &end.addresses {
                    let slot = &mut slots[usize::from(address.addr().is_ipv6())];
                    slot.get_or_insert(*address);
                }
            }
        }
        // A device's addresses are its node's, after those of its links.
        for end in self.devices.iter().map(|d| &d.end) {
            let Place::Node(id) = end.place else { continue };
            for address in &end.addresses {
                let slot = &mut first[id][usize::from(address.addr().is_ipv6())];
                slot.get_or_insert(*address);
            }
        }
        (self.nodes.iter().enumerate())
            .filter(|(_, node)| node.kind == NodeKind::Node)
            .filter_map(|(id, _)| {
                let addresses: Vec<IpNet> = match management[id] {
                    [None, None] => first[id],
                    on_network => on_network,
                }
                .into_iter()
                .flatten()
                .collect();
                (!addresses.is_empty()).then_some((id, addresses))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::Plan;
    use crate::topology::parse_str;
    use std::path::Path;

    fn plan(yaml: &str, file: &str) -> Plan {
        Plan::from_topology(&parse_str(yaml, Path::new(file), Path::new("/tmp")).unwrap())
    }

    #[test]
    fn nodes_are_listed_at_their_first_addresses() {
        let plan = plan(
            "name: h\ntopology:\n  nodes:\n    a: {hostname: alpha}\n    b: {}\n    c: {}\n    sw: {kind: bridge}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n      ipv4: [10.0.0.1/24, 10.0.0.2/24]\n      ipv6: [\"fd00::1/64\", null]\n    - endpoints: [a:eth2, sw:p1]\n      ipv4: [10.0.1.1/24, null]\n",
            "h.yml",
        );
        let text = plan.hosts_file();
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "127.0.0.1\tlocalhost",
                "::1\tlocalhost ip6-localhost ip6-loopback",
                "10.0.0.1\ta alpha",
                "fd00::1\ta alpha",
                "10.0.0.2\tb",
            ]
        );
    }

    #[test]
    fn a_management_network_gives_the_addresses_and_containerlab_names() {
        let plan = plan(
            "name: h\nmgmt: {ipv4-subnet: 10.9.0.0/24}\ntopology:\n  nodes:\n    a: {}\n    b: {network-mode: none}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n      ipv4: [10.0.0.1/24, 10.0.0.2/24]\n",
            "h.clab.yml",
        );
        let text = plan.hosts_file();
        let lines: Vec<&str> = text.lines().skip(3).collect();
        assert_eq!(lines, ["10.9.0.2\ta clab-h-a", "10.0.0.2\tb clab-h-b"]);
        assert_eq!(
            plan.host_entries(),
            "10.9.0.2\tclab-h-a\n10.0.0.2\tclab-h-b\n"
        );
    }
}
