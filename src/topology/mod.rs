//! The topology file (and [`TopologyBuilder`]): parse and validate into
//! the lab's description, a [`Topology`] of [`crate::spec`] types.
//!
//! [`load`] reads a file (at most [`MAX_FILE_BYTES`]), parses it with
//! serde_yaml into the raw shapes of `model`, then `validate` checks every
//! rule, collecting all problems, and produces a [`Topology`] whose values
//! are already merged with `defaults`, typed and normalised. This layer
//! imports only `spec`.

mod builder;
mod clab;
mod devices;
mod error;
mod expect;
mod impair;
mod load;
mod mgmt;
mod model;
mod scenario;
mod spread;
mod start_order;
mod validate;

#[cfg(test)]
pub(crate) mod tests;

pub use builder::TopologyBuilder;
pub use error::{Problem, TopologyError};
#[cfg(test)]
pub(crate) use impair::MAX_RATE_BITS;
pub(crate) use impair::{IMPAIR_KEYS, ImpairText, parse_duration_us, parse_impair};
pub use load::{MAX_FILE_BYTES, MAX_FLOW_DEPTH, lab_name_of, load, parse_str, peek_lab_name};

pub(crate) use model::ImpairFields;

pub use crate::spec::Topology;
