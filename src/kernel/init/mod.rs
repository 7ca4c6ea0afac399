//! The node init: a tiny PID 1 that holds a node's six namespaces.
//!
//! `spawn` clones a child into new namespaces and immediately executes our
//! own binary as `nslab-init __init LAB/NODE`: a fresh single-threaded
//! process, so the init never runs in a copy of the caller's threads and
//! heap. The init sets the node up (see [`mounts`]), reports on fd 3, then
//! only reaps zombies until SIGTERM.

mod mounts;
mod run;
mod spawn;

pub use run::run;
pub use spawn::{StartingInit, spawn};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::plan::{BindPlan, SysctlPlan};

/// Environment variable that carries the [`InitConfig`] to the init.
pub const CONFIG_ENV: &str = "NSLAB_INIT_CONFIG";
/// Environment variable naming the nslab binary to run as init, for
/// programs that use the library but are not nslab themselves.
pub const EXE_ENV: &str = "NSLAB_EXE";
/// The fd on which the init reports `OK` or `ERR message`.
const STATUS_FD: i32 = 3;

/// What the init needs to set its node up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitConfig {
    pub lab: String,
    pub node: String,
    pub hostname: String,
    pub tmpfs: Vec<PathBuf>,
    pub binds: Vec<BindPlan>,
    /// Sysctls that need no interface of the node, written by the init.
    pub sysctls: Vec<SysctlPlan>,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("start the init of node {node}: {source}")]
    Spawn {
        node: String,
        source: std::io::Error,
    },
    #[error("node {node}: {message}")]
    Setup { node: String, message: String },
    #[error("node {node}: its init exited before it was ready")]
    DiedEarly { node: String },
    #[error("node {node}: its init was not ready after {seconds} s")]
    Timeout { node: String, seconds: u64 },
}
