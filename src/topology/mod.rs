//! The topology file: parse and validate.
//!
//! [`load`] reads a file (at most [`MAX_FILE_BYTES`]), parses it with
//! serde_yaml into the raw shapes of `model`, then `validate` checks every
//! rule, collecting all problems, and produces a [`Topology`] whose values
//! are already merged with `defaults`, typed and normalised, ready for
//! [`crate::plan::Plan::from_topology`].

mod builder;
mod error;
mod expect;
mod impair;
mod load;
mod model;
mod names;
mod route;
mod validate;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use indexmap::IndexMap;
use ipnet::IpNet;

use crate::plan::{ExpectPlan, ImpairPlan, NodePlan};

pub use builder::TopologyBuilder;
pub use error::{Problem, TopologyError};
pub use impair::{
    IMPAIR_KEYS, ImpairText, MAX_DELAY_US, MAX_JITTER_US, MAX_RATE_BITS, MIN_RATE_BITS,
    parse_duration_us, parse_impair, parse_jitter_us, parse_percent, parse_rate_bits,
};
pub use load::{MAX_FILE_BYTES, MAX_FLOW_DEPTH, lab_name_of, load, parse_str};
pub use names::{MAX_NAME_BYTES, is_valid_name};
pub use route::parse_route;

pub(crate) use model::ImpairFields;

/// The reserved endpoint node name for the host's own network namespace.
pub const HOST: &str = "host";

/// A validated topology with defaults merged in.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// The lab name.
    pub name: String,
    /// The file it came from (or the `origin` given to [`parse_str`]).
    pub source: PathBuf,
    /// Nodes in file order, by name.
    pub nodes: IndexMap<String, Node>,
    /// Links in file order.
    pub links: Vec<Link>,
    /// `expect:` entries in file order.
    pub expect: Vec<ExpectPlan>,
}

/// One node, with `defaults` merged in: already the plan's own type.
pub type Node = NodePlan;

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
    pub impair: Option<ImpairPlan>,
}
