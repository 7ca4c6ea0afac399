//! Not API: internals that nslab's own integration tests look at (the
//! inits in /proc, the namespaces entered, a lab built without the `Lab`
//! handle). Hidden from the docs; it changes whenever the code does.

pub use crate::check::run::icmp_ratelimits;
pub use crate::explain::RECORD_ROOT;
pub use crate::generate::{Shape, generate};
pub use crate::kernel::init::EXE_ENV;
pub use crate::kernel::namespace::{ENTER_ORDER, NsKind, ns_inode};
pub use crate::kernel::process::{FoundInit, find_inits};
pub use crate::lab::{RunningNode, UpOptions, down, find_labs, resolve_node, running_nodes, up};
pub use crate::privileges::check as check_privileges;

/// The directories of a node's cgroups (`ROOT/nslab/LAB/NODE`), one per
/// cgroup hierarchy nslab uses on this host, with the hierarchy's version.
pub fn node_cgroups(lab: &str, node: &str) -> Vec<(u8, std::path::PathBuf)> {
    let Ok(cgroups) = crate::kernel::cgroup::Cgroups::detect() else {
        return Vec::new();
    };
    cgroups
        .versions()
        .into_iter()
        .zip(cgroups.node_dirs(lab, node))
        .collect()
}

/// The roots of the cgroup hierarchies nslab uses on this host.
pub fn cgroup_roots() -> Vec<std::path::PathBuf> {
    crate::kernel::cgroup::Cgroups::detect()
        .map(|c| c.roots())
        .unwrap_or_default()
}
