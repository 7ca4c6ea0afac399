//! The validated description of a lab: the bottom layer every other one
//! reads. `topology` turns YAML (or the builder) into a [`Topology`] of
//! these types, `plan` derives what `up` builds from it, and the lab,
//! check, explain and graph layers read the same types. Nothing here
//! parses YAML or touches the kernel, and nothing here imports another
//! module of the crate.
//!
//! The name rules (labs, nodes, interfaces, hostnames) live here too, with
//! the typed references that name a lab, a node or an interface.

mod device;
mod expect;
mod impair;
mod mgmt;
mod names;
mod node;
mod route;
mod scenario;
mod spread;
mod target;

use std::path::PathBuf;

use indexmap::IndexMap;
use ipnet::IpNet;

pub use device::{Device, DeviceKind, MAX_VNI, MacvlanMode, VXLAN_PORT};
pub(crate) use expect::parse_port;
pub use expect::{Expect, ExpectTarget, Port, Protocol};
pub use impair::Impair;
pub(crate) use impair::{format_duration_us, format_rate_bits};
pub use mgmt::{MGMT_BRIDGE, MGMT_IFACE, Mgmt, PortForward, parse_port_forward};
pub use names::{
    MAX_HOSTNAME_BYTES, MAX_IFNAME_BYTES, MAX_NAME_BYTES, is_valid_name, is_valid_node_name,
};
pub(crate) use names::{
    ifname_problem, is_valid_env_key, is_valid_hostname, name_problem, node_name_problem,
};
pub use node::{Bind, CFS_PERIOD_US, Limits, Node, NodeKind, Sysctl};
pub use route::Route;
pub use scenario::{NodeAction, Scenario, Step, StepAction};
pub use spread::{Machine, SPREAD_VXLAN_PORT, Spread, VXLAN_OVERHEAD_V4, VXLAN_OVERHEAD_V6};
pub use target::{InterfaceRef, LabName, NodeRef, TargetError};

/// The reserved endpoint node name for the host's own network namespace.
pub const HOST: &str = "host";

/// A validated topology with defaults merged in.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// The lab name.
    pub name: String,
    /// The file it came from (or the `origin` given to `topology::parse_str`).
    pub source: PathBuf,
    /// Nodes in file order, by name.
    pub nodes: IndexMap<String, Node>,
    /// Links in file order.
    pub links: Vec<Link>,
    /// Devices (macvlan, vxlan, dummy: single-ended links) in file order.
    pub devices: Vec<Device>,
    /// `expect:` entries in file order.
    pub expect: Vec<Expect>,
    /// `scenario:`, the timed steps of `nslab run-scenario` (empty: none).
    pub scenario: Scenario,
    /// A containerlab file's lab directory (`clab-<name>` next to it, its
    /// `__clabDir__`): `up` makes it and a folder per node in it.
    pub lab_dir: Option<PathBuf>,
    /// Files `up` writes in the lab directory before the nodes start
    /// (a containerlab node's `resolv.conf`), with their contents.
    pub lab_files: Vec<(PathBuf, String)>,
    /// What is worth telling about the file that is not a problem (the
    /// images of a containerlab file, which nslab does not use).
    pub notes: Vec<String>,
    /// The management network (`mgmt:`; always for a containerlab file):
    /// its bridge node [`MGMT_BRIDGE`] and links are among `nodes` and
    /// `links`.
    pub mgmt: Option<Mgmt>,
    /// containerlab's names of a containerlab file's nodes are this
    /// followed by the node name (`clab-LAB-`): listed beside the node
    /// names in each node's `/etc/hosts`.
    pub container_prefix: Option<String>,
    /// The hosts the lab is spread over (`hosts:`); `None`: one host, the
    /// one `up` runs on.
    pub spread: Option<Spread>,
}

/// One link (a veth pair).
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub endpoints: [Endpoint; 2],
    pub mtu: Option<u32>,
}

/// One end of a link.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// A node name of the topology, or [`HOST`].
    pub node: String,
    pub iface: String,
    pub ipv4: Option<IpNet>,
    pub ipv6: Option<IpNet>,
    pub mac: Option<[u8; 6]>,
    /// Impairments on this end's egress.
    pub impair: Option<Impair>,
    /// Administratively up (the default) or down once the lab is up.
    pub state: LinkState,
    /// For a host end: the host's own bridge it is made a port of (a
    /// `kind: bridge` node with `host-bridge: true`).
    pub master: Option<String>,
}

/// The administrative state of a link end: `state:` in a topology, `nslab
/// link up|down` on a running lab. A down end's peer sees no carrier.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    #[default]
    Up,
    Down,
}

impl LinkState {
    /// Whether this is [`LinkState::Up`] (serde's `skip_serializing_if`).
    pub fn is_up(&self) -> bool {
        *self == LinkState::Up
    }
}

impl std::str::FromStr for LinkState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "up" => Ok(LinkState::Up),
            "down" => Ok(LinkState::Down),
            other => Err(format!("state {other:?} is not up or down")),
        }
    }
}

impl std::fmt::Display for LinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkState::Up => "up",
            LinkState::Down => "down",
        })
    }
}
