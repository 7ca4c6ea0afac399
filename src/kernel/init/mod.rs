//! The node init: a tiny PID 1 that holds a node's six namespaces (seven
//! with a user namespace of its own).
//!
//! A [`zygote`] (our own binary, exec'd once per core) clones each init
//! into new namespaces; the init renames itself `nslab-init __init
//! LAB/NODE`, sets the node up (see the `mounts` module), reports, then
//! only reaps zombies until SIGTERM.

mod mark;
mod mounts;
mod run;
pub(crate) mod zygote;

pub use zygote::EXE_ENV;
pub(crate) use zygote::{ZYGOTE_MARKER, Zygote, executable, zygote_main};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::kernel::userns::IdMap;
use crate::spec::{Bind, Sysctl};

/// Handover messages from the zygote to a user-namespaced init: a tree
/// (with its fd), and go (the ids are mapped).
const HANDOVER_TREE: u8 = b't';
const HANDOVER_GO: u8 = b'g';

/// What the init needs to set its node up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InitConfig {
    pub lab: String,
    pub node: String,
    pub hostname: String,
    pub tmpfs: Vec<PathBuf>,
    pub binds: Vec<Bind>,
    /// Sysctls that need no interface of the node, written by the init.
    pub sysctls: Vec<Sysctl>,
    /// The files that put the init in the node's cgroups (none for a
    /// bridge), written before it makes its cgroup namespace: `tasks` of
    /// v1 hierarchies, and `cgroup.procs` of v2 when it was not cloned
    /// into its cgroup there.
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
    /// The node's v2 cgroup directory, which the init is cloned into
    /// (CLONE_INTO_CGROUP) when the kernel can.
    #[serde(default)]
    pub into_cgroup: Option<PathBuf>,
    /// The node's id map when it has a user namespace of its own.
    #[serde(default)]
    pub userns: Option<IdMap>,
    /// For a node started again (`node start`): a path to its kept net
    /// namespace (one the zygote can open: its own mount namespace has no
    /// /run/netns binds), joined with the user namespace that owns it
    /// instead of making new ones. A zygote starts no other node after it.
    #[serde(default)]
    pub rejoin: Option<PathBuf>,
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
}
