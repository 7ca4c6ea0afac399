//! Sysctls of nodes. /proc/sys/net resolves against the writer's net
//! namespace (ipc and uts keys likewise), so the writes happen on a
//! short-lived thread that entered the node's namespaces; the topology layer
//! already refused keys that are not namespaced.

use std::path::Path;

use super::namespace::{NamespaceFds, NsKind};
use crate::plan::SysctlPlan;

/// The namespaces a sysctl writer enters.
pub const SYSCTL_NAMESPACES: [NsKind; 3] = [NsKind::Ipc, NsKind::Uts, NsKind::Net];

#[derive(Debug, thiserror::Error)]
#[error("node {node}: sysctl {key}={value}: {reason}")]
pub struct SysctlError {
    pub node: String,
    pub key: String,
    pub value: String,
    pub reason: String,
}

/// One node's sysctls.
#[derive(Debug)]
pub struct NodeSysctls<'a> {
    pub node: &'a str,
    pub namespaces: NamespaceFds,
    pub sysctls: &'a [SysctlPlan],
}

/// Writes every node's sysctls, one node after the other, on one thread that
/// is thrown away afterwards (it ends up in a node's namespaces).
pub fn write_all(nodes: Vec<NodeSysctls<'_>>) -> Result<(), SysctlError> {
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                for node in &nodes {
                    write_node(node)?;
                }
                Ok(())
            })
            .join()
            .unwrap_or_else(|_| {
                Err(SysctlError {
                    node: "?".into(),
                    key: "?".into(),
                    value: "?".into(),
                    reason: "sysctl writer thread panicked".into(),
                })
            })
    })
}

fn write_node(node: &NodeSysctls<'_>) -> Result<(), SysctlError> {
    let fail = |s: &SysctlPlan, reason: String| SysctlError {
        node: node.node.to_string(),
        key: s.key.clone(),
        value: s.value.clone(),
        reason,
    };
    if let Some(first) = node.sysctls.first() {
        // Never write anything unless we are inside the node.
        node.namespaces
            .enter()
            .map_err(|e| fail(first, format!("enter the node's namespaces: {e}")))?;
    }
    for sysctl in node.sysctls {
        std::fs::write(Path::new("/proc/sys").join(&sysctl.path), &sysctl.value)
            .map_err(|e| fail(sysctl, e.to_string()))?;
    }
    Ok(())
}
