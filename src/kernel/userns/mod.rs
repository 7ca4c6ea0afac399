//! A node's user namespace: the map of its ids onto host ids, the range of
//! host ids nslab lends from, and idmapped bind mounts.
//!
//! A user-namespaced node's root is host id `uid` of its [`IdMap`] (not
//! host root), so it holds capabilities over the node's own namespaces
//! only. The namespaces are made in one clone3 with CLONE_NEWUSER, so the
//! user namespace owns all the others. The zygote (host root) writes the
//! maps and makes the node's binds idmapped (a file host root owns appears
//! owned by the node's root) before the init takes a step of its own.

mod idmapped;
mod map;
mod subid;

pub(crate) use idmapped::{IdmapProbe, idmapped_tree};
pub(crate) use map::{BLOCK, IdMap, IdRange, become_root, write_id_maps};
pub(crate) use subid::{SubidFiles, nslab_range};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: line {line}: {reason}", path.display())]
    BadEntry {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("the id range {range} {reason}")]
    BadRange { range: String, reason: String },
    #[error(
        "bind source {}: cannot be an idmapped mount, which a node with `userns: true` needs: {reason}",
        path.display()
    )]
    NoIdmap { path: PathBuf, reason: String },
    #[error("user namespaces: {0}")]
    Unavailable(String),
}
