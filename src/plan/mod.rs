//! The plan: everything `up` will create, computed from a validated topology
//! before the first kernel object is made. Pure data, no syscalls, so that
//! every later stage (kernel, state, explain, inspect) reads one description.

mod build;

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Index of a node in [`Plan::nodes`].
pub type NodeId = usize;

/// What a node is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// A full set of namespaces held by an init, running host binaries.
    Node,
    /// A node whose net namespace holds one Linux bridge named after the node;
    /// its link ends are the bridge's ports.
    Bridge,
}

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
    pub nodes: Vec<NodePlan>,
    /// Links, in the order of the topology file.
    pub links: Vec<LinkPlan>,
}

/// One node with its defaults already merged in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodePlan {
    pub name: String,
    pub kind: NodeKind,
    pub hostname: String,
    /// Absolute paths that get a private tmpfs, in order.
    pub tmpfs: Vec<PathBuf>,
    pub binds: Vec<BindPlan>,
    pub sysctls: Vec<SysctlPlan>,
    pub routes: Vec<RoutePlan>,
    /// Environment for exec commands, in file order.
    pub env: Vec<(String, String)>,
    /// Shell commands run with `/bin/sh -c`, in order, after all wiring.
    pub exec: Vec<String>,
}

/// A bind mount inside one node's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindPlan {
    /// Absolute host path (relative paths resolved against the topology file's folder).
    pub source: PathBuf,
    /// Absolute path inside the node.
    pub target: PathBuf,
    pub read_only: bool,
}

/// One sysctl, already checked to be namespaced (it can never change the host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlPlan {
    /// The key as written in the topology, e.g. `net.ipv4.ip_forward`.
    pub key: String,
    /// The path below `/proc/sys`, e.g. `net/ipv4/ip_forward`.
    pub path: PathBuf,
    pub value: String,
}

/// A static route in a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutePlan {
    /// The route as written, for messages.
    pub text: String,
    /// `default` is `0.0.0.0/0` or `::/0`, by the family of the gateway.
    pub destination: IpNet,
    pub gateway: Option<IpAddr>,
    /// Output interface name on the same node.
    pub device: Option<String>,
    pub metric: Option<u32>,
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
}

impl Plan {
    /// The name under /run/netns of a node's net namespace.
    pub fn netns_name(&self, node: NodeId) -> String {
        netns_name(&self.lab, &self.nodes[node].name)
    }

    /// `node:iface` (or `host:iface`) for messages.
    pub fn endpoint_label(&self, endpoint: &EndpointPlan) -> String {
        match endpoint.place {
            Place::Host => format!("host:{}", endpoint.ifname),
            Place::Node(id) => format!("{}:{}", self.nodes[id].name, endpoint.ifname),
        }
    }

    /// `a:x <-> b:y` for messages.
    pub fn link_label(&self, link: &LinkPlan) -> String {
        format!(
            "{} <-> {}",
            self.endpoint_label(&link.endpoints[0]),
            self.endpoint_label(&link.endpoints[1])
        )
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
