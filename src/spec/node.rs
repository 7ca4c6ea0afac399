//! A node: what its namespaces hold, with `defaults` already merged in.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

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

/// One node with its defaults already merged in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub kind: NodeKind,
    pub hostname: String,
    /// Absolute paths that get a private tmpfs, in order.
    pub tmpfs: Vec<PathBuf>,
    pub binds: Vec<Bind>,
    pub sysctls: Vec<Sysctl>,
    pub routes: Vec<Route>,
    /// Environment for exec commands, in file order.
    pub env: Vec<(String, String)>,
    /// Shell commands run with `/bin/sh -c`, in order, after all wiring.
    pub exec: Vec<String>,
}

/// A bind mount inside one node's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    /// Absolute host path (relative paths resolved against the topology file's folder).
    pub source: PathBuf,
    /// Absolute path inside the node.
    pub target: PathBuf,
    pub read_only: bool,
}

/// One sysctl, already checked to be namespaced (it can never change the host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctl {
    /// The key as written in the topology, e.g. `net.ipv4.ip_forward`.
    pub key: String,
    /// The path below `/proc/sys`, e.g. `net/ipv4/ip_forward`.
    pub path: PathBuf,
    pub value: String,
}

/// A static route in a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The route as written, for messages.
    pub text: String,
    /// `default` is `0.0.0.0/0` or `::/0`, by the family of the gateway.
    pub destination: IpNet,
    pub gateway: Option<IpAddr>,
    /// Output interface name on the same node.
    pub device: Option<String>,
    pub metric: Option<u32>,
}
