//! The plan: everything `up` will create, computed from a validated topology
//! before the first kernel object is made. Pure data, no syscalls, so that
//! every later stage (kernel, state, explain, inspect) reads one description.

mod build;
mod devices;
mod diff;
mod hosts;
mod order;
pub(crate) mod qdisc;
pub mod spread;

pub use devices::DevicePlan;
pub use diff::{EndChanges, EndKey, LinkKey, NodeChanges, PlanDiff, Refusal};
pub use order::exec_order;

use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::spec::{Expect, Impair, LinkState, Mgmt, Node, NodeKind, Scenario, Spread, Sysctl};

/// Index of a node in [`Plan::nodes`].
pub type NodeId = usize;

/// Where one end of a link lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    /// The host's own network namespace (the reserved node name `host`).
    Host,
    /// A node of the lab.
    Node(NodeId),
}

/// A whole lab, ready to build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The lab name (`name` in the topology).
    pub lab: String,
    /// The topology file, when the plan came from one.
    pub source: Option<PathBuf>,
    /// Nodes, in the order of the topology file.
    pub nodes: Vec<Node>,
    /// Links, in the order of the topology file.
    pub links: Vec<LinkPlan>,
    /// Devices (macvlan, vxlan, dummy), in the order of the topology file
    /// (absent when there are none, and in plans saved before they
    /// existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DevicePlan>,
    /// Reachability expectations for `nslab check` (absent in plans saved
    /// before they existed).
    #[serde(default)]
    pub expect: Vec<Expect>,
    /// The timed steps of `nslab run-scenario` (absent when there are
    /// none, and in plans saved before they existed).
    #[serde(default, skip_serializing_if = "Scenario::is_empty")]
    pub scenario: Scenario,
    /// A containerlab file's lab directory, made by `up` (see
    /// [`Topology::lab_dir`](crate::spec::Topology::lab_dir)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lab_dir: Option<PathBuf>,
    /// See [`Topology::lab_files`](crate::spec::Topology::lab_files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lab_files: Vec<(PathBuf, String)>,
    /// See [`Topology::notes`](crate::spec::Topology::notes); not saved.
    #[serde(skip)]
    pub notes: Vec<String>,
    /// The management network (see [`Topology::mgmt`](crate::spec::Topology::mgmt)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mgmt: Option<Mgmt>,
    /// See [`Topology::container_prefix`](crate::spec::Topology::container_prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_prefix: Option<String>,
    /// A spread lab's nodes on the other hosts, by name with the addresses
    /// their name stands for: listed in this part's `/etc/hosts` too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_names: Vec<(String, Vec<IpNet>)>,
    /// The hosts of a lab spread over several (see
    /// [`Topology::spread`](crate::spec::Topology::spread)): such a plan is
    /// the whole lab, for `explain` and `graph`; each host builds its part
    /// ([`spread::parts`]). Not saved: a saved plan is one host's.
    #[serde(skip)]
    pub spread: Option<Spread>,
}

/// A veth pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkPlan {
    pub endpoints: [EndpointPlan; 2],
    pub mtu: Option<u32>,
}

/// One end of a veth pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointPlan {
    pub place: Place,
    /// Final interface name (1 to 15 bytes).
    pub ifname: String,
    /// IPv4 then IPv6 addresses with their prefix length.
    pub addresses: Vec<IpNet>,
    pub mac: Option<[u8; 6]>,
    /// Impairments on this end's egress (absent from older plan.json files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impair: Option<Impair>,
    /// Set down at the end of `up` when `Down` (absent when up).
    #[serde(default, skip_serializing_if = "LinkState::is_up")]
    pub state: LinkState,
    /// A host end's bridge of the host's (see [`Endpoint::master`](crate::spec::Endpoint::master)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
}

/// A veth's MTU when the topology gives none (the kernel's default).
pub const DEFAULT_MTU: u32 = 1500;

impl LinkPlan {
    /// The MTU both ends get.
    pub fn mtu_or_default(&self) -> u32 {
        self.mtu.unwrap_or(DEFAULT_MTU)
    }
}

impl Plan {
    /// The name under /run/netns of a node's net namespace.
    pub(crate) fn netns_name(&self, node: NodeId) -> String {
        netns_name(&self.lab, &self.nodes[node].name)
    }

    /// `node:iface` (or `host:iface`) for messages.
    pub fn endpoint_label(&self, endpoint: &EndpointPlan) -> String {
        match endpoint.place {
            Place::Host => format!("host:{}", endpoint.ifname),
            Place::Node(id) => format!("{}:{}", self.nodes[id].name, endpoint.ifname),
        }
    }

    /// A warning for each link end (or device) whose impairment is set but
    /// will not behave as written (see [`Impair::warning`]), `node:iface:
    /// why`.
    pub fn impairment_warnings(&self) -> Vec<String> {
        self.ends()
            .filter_map(|end| {
                let warning = end.impair?.warning()?;
                Some(format!("{}: {warning}", self.endpoint_label(end)))
            })
            .collect()
    }

    /// `a:x <-> b:y` for messages.
    pub fn link_label(&self, link: &LinkPlan) -> String {
        format!(
            "{} <-> {}",
            self.endpoint_label(&link.endpoints[0]),
            self.endpoint_label(&link.endpoints[1])
        )
    }

    /// Names of every node's interfaces, by node: its link ends and
    /// devices, and for a bridge the bridge device itself. One pass over
    /// the links.
    pub fn interfaces_by_node(&self) -> Vec<Vec<&str>> {
        let mut names: Vec<Vec<&str>> = self
            .nodes
            .iter()
            .map(|n| match n.kind {
                NodeKind::Bridge => vec![n.name.as_str()],
                NodeKind::Node => Vec::new(),
            })
            .collect();
        for end in self.ends() {
            if let Place::Node(id) = end.place {
                names[id].push(&end.ifname);
            }
        }
        names
    }

    /// A node's sysctls in two stages, given its interface names (see
    /// [`interfaces_by_node`](Self::interfaces_by_node)): those that name
    /// one of its interfaces (`net/ipv4/conf/eth0/...`) can only be written
    /// once the interface exists; every other one means the same written
    /// before the interfaces exist (`all` and `default` keys reach
    /// interfaces made later), so the node's init writes those as it starts.
    pub fn sysctl_stages(&self, node: NodeId, interfaces: &[&str]) -> (Vec<Sysctl>, Vec<Sysctl>) {
        self.nodes[node].sysctls.iter().cloned().partition(|s| {
            !s.path
                .components()
                .any(|c| interfaces.iter().any(|i| c.as_os_str() == *i))
        })
    }

    /// Looks a node up by name.
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.name == name)
    }
}

/// The name under /run/netns of a node's net namespace: `<lab>-<node>`.
pub fn netns_name(lab: &str, node: &str) -> String {
    format!("{lab}-{node}")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn sysctls_naming_an_interface_wait_for_it() {
        let sysctl = |path: &str| Sysctl {
            key: path.replace('/', "."),
            path: path.into(),
            value: "1".into(),
        };
        let end = |node: NodeId, ifname: &str| EndpointPlan {
            place: Place::Node(node),
            ifname: ifname.into(),
            addresses: vec![],
            mac: None,
            impair: None,
            state: LinkState::Up,
            master: None,
        };
        let plan = Plan {
            lab: "l".into(),
            source: None,
            lab_dir: None,
            lab_files: Vec::new(),
            notes: Vec::new(),
            mgmt: None,
            container_prefix: None,
            remote_names: Vec::new(),
            spread: None,
            nodes: vec![Node {
                name: "r1".into(),
                kind: NodeKind::Node,
                hostname: "r1".into(),
                tmpfs: vec![],
                binds: vec![],
                sysctls: vec![
                    sysctl("net/ipv4/ip_forward"),
                    sysctl("net/ipv4/conf/eth0/rp_filter"),
                    sysctl("net/ipv4/conf/default/rp_filter"),
                    sysctl("net/ipv6/neigh/eth0/base_reachable_time_ms"),
                ],
                routes: vec![],
                env: vec![],
                exec: vec![],
                limits: Default::default(),
                userns: false,
                startup_delay: None,
                wait_for: vec![],
            }],
            links: vec![LinkPlan {
                endpoints: [end(0, "eth0"), end(0, "eth1")],
                mtu: None,
            }],
            devices: vec![],
            expect: vec![],
            scenario: Default::default(),
        };
        let interfaces = plan.interfaces_by_node();
        let (early, late) = plan.sysctl_stages(0, &interfaces[0]);
        let keys = |v: &[Sysctl]| {
            v.iter()
                .map(|s| s.path.display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(&early),
            ["net/ipv4/ip_forward", "net/ipv4/conf/default/rp_filter"]
        );
        assert_eq!(
            keys(&late),
            [
                "net/ipv4/conf/eth0/rp_filter",
                "net/ipv6/neigh/eth0/base_reachable_time_ms"
            ]
        );
    }
}
