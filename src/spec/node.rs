//! A node: what its namespaces hold, with `defaults` already merged in.

use std::path::PathBuf;

use super::Route;
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
    /// What the node's cgroup allows (all `None` for a bridge).
    #[serde(default)]
    pub limits: Limits,
    /// A user namespace of its own, owning its other namespaces: the
    /// node's root is an unprivileged host id (never for a bridge).
    #[serde(default)]
    pub userns: bool,
    /// Seconds after the start of the `exec` phase before the node's steps
    /// may run (containerlab's `startup-delay`); counted from the phase's
    /// start, not from the end of the steps it waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_delay: Option<u32>,
    /// The nodes whose `exec` steps have all run before this node's first
    /// one (containerlab's `wait-for`, of any stage nslab has), each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wait_for: Vec<String>,
}

/// The cgroup limits of one node; `None` leaves that resource unlimited.
/// Every node gets its own cgroup whether it has limits or not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// A share of the CPUs (`0.5` is half of one CPU), enforced as a CFS
    /// quota over a 100 ms period.
    pub cpus: Option<f64>,
    /// The CPUs the node may run on, in the kernel's list format (`0-1`,
    /// `0,2`).
    pub cpuset: Option<String>,
    /// A hard memory limit in bytes: past it the OOM killer acts inside the
    /// node only.
    pub memory: Option<u64>,
    /// The most processes (and threads) the node holds at once.
    pub pids: Option<u64>,
}

impl Limits {
    /// True when no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// The CFS quota of `cpus` in microseconds per [`CFS_PERIOD_US`].
    pub fn cpu_quota_us(&self) -> Option<u64> {
        self.cpus
            .map(|c| ((c * CFS_PERIOD_US as f64).round() as u64).max(1000))
    }
}

/// The CFS period nslab sets with a `cpus` limit, in microseconds.
pub const CFS_PERIOD_US: u64 = 100_000;

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
