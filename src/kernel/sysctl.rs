//! Sysctls of nodes. /proc/sys/net resolves against the net namespace of
//! the thread that opens the file (ipc and uts keys likewise), not against
//! the namespace of the /proc mount: the kernel looks the table up in the
//! caller's `current->nsproxy`. Checked on Linux 6.18: a thread that
//! setns'd into a namespace whose `net.ipv4.icmp_ratelimit` was set to 250
//! reads 252 (the value is kept in jiffies) through the host's /proc,
//! while the process's other threads read the host's 1000. So writes and
//! reads happen on a short-lived thread that entered the node's
//! namespaces, without its mount namespace; the topology layer already
//! refused keys that are not namespaced.

use std::fmt::Display;
use std::path::Path;

use super::namespace::{NamespaceFds, NsKind};
use crate::spec::Sysctl;

/// Sysctls every node's init writes before anything else (paths under
/// /proc/sys): IPv6 duplicate address detection off (see
/// `init::run::skip_ipv6_dad`). A key set back to a new node's value takes
/// these, not the kernel's.
pub(crate) const NODE_DEFAULTS: [(&str, &str); 2] = [
    ("net/ipv6/conf/all/accept_dad", "0"),
    ("net/ipv6/conf/default/accept_dad", "0"),
];

/// The namespaces a sysctl writer enters.
pub(crate) const SYSCTL_NAMESPACES: [NsKind; 3] = [NsKind::Ipc, NsKind::Uts, NsKind::Net];

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
pub(crate) struct NodeSysctls<'a> {
    pub node: &'a str,
    pub namespaces: NamespaceFds,
    pub sysctls: &'a [Sysctl],
}

/// Writes every node's sysctls, one node after the other, on one thread that
/// is thrown away afterwards (it ends up in a node's namespaces).
pub(crate) fn write_all(nodes: Vec<NodeSysctls<'_>>) -> Result<(), SysctlError> {
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
    let fail = |s: &Sysctl, reason: String| SysctlError {
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

/// Why one sysctl of one node could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sysctl {key}: {reason}")]
pub(crate) struct SysctlReadError {
    pub key: String,
    pub reason: String,
}

/// Reads the net sysctls `keys` (paths under /proc/sys, such as
/// `net/ipv4/icmp_ratelimit`) of each net namespace that `namespaces`
/// gives, trimmed, one namespace after the other on one thread that is
/// thrown away afterwards (it ends up in the last one it entered). `namespaces` is
/// consumed on that thread, so a lazy iterator that opens each namespace
/// in its turn keeps only one open at a time. One list of results per
/// namespace, in the order of `keys`; a namespace that could not be opened
/// or entered fails all its keys.
pub(crate) fn read_net_all<E: Display>(
    namespaces: impl IntoIterator<Item = Result<NamespaceFds, E>> + Send,
    keys: &[&str],
) -> Vec<Vec<Result<String, SysctlReadError>>> {
    let fail_all = |reason: &str| -> Vec<Result<String, SysctlReadError>> {
        keys.iter()
            .map(|key| {
                Err(SysctlReadError {
                    key: key.to_string(),
                    reason: reason.to_string(),
                })
            })
            .collect()
    };
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                namespaces
                    .into_iter()
                    .map(|namespaces| {
                        let entered = namespaces.map_err(|e| e.to_string()).and_then(|ns| {
                            let netns = ns.get(NsKind::Net).ok_or("no net namespace given")?;
                            nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
                                .map_err(|e| format!("enter the net namespace: {e}"))
                        });
                        match entered {
                            // Never read anything unless we are inside.
                            Err(reason) => fail_all(&reason),
                            Ok(()) => keys.iter().map(|key| read_net(key)).collect(),
                        }
                    })
                    .collect()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// One net sysctl, from the calling thread's net namespace.
fn read_net(key: &str) -> Result<String, SysctlReadError> {
    let fail = |reason: String| SysctlReadError {
        key: key.to_string(),
        reason,
    };
    // Only the net namespace is entered: any other key would be the host's.
    if !key.starts_with("net/") || key.split('/').any(|part| part == "..") {
        return Err(fail("not a net sysctl".into()));
    }
    std::fs::read_to_string(Path::new("/proc/sys").join(key))
        .map(|value| value.trim().to_string())
        .map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads through the test's own net namespace, entered again (needs
    /// CAP_SYS_ADMIN), next to a namespace that could not be opened.
    #[test]
    fn reads_net_sysctls_of_each_namespace_in_turn() {
        let key = "net/ipv4/icmp_ratelimit";
        let own = || NamespaceFds::open(std::process::id() as i32, &[NsKind::Net]);
        let namespaces = vec![own(), Err(std::io::Error::other("gone")), own()];
        let keys = [key, "kernel/hostname", "net/../kernel/hostname"];
        let read = read_net_all(namespaces, &keys);
        assert_eq!(read.len(), 3);
        match &read[0][0] {
            Err(e) if e.reason.contains("EPERM") => {
                eprintln!("SKIPPED reads_net_sysctls_of_each_namespace_in_turn: {e}");
                return;
            }
            value => {
                let want = std::fs::read_to_string(Path::new("/proc/sys").join(key))
                    .expect("read it here");
                assert_eq!(value.as_deref(), Ok(want.trim()));
            }
        }
        for list in [&read[0], &read[2]] {
            assert_eq!(list[0], read[0][0]);
            for refused in &list[1..] {
                assert_eq!(
                    refused.as_ref().map_err(|e| e.reason.as_str()),
                    Err("not a net sysctl")
                );
            }
        }
        assert!(
            read[1]
                .iter()
                .all(|r| r.as_ref().is_err_and(|e| e.reason == "gone"))
        );
    }
}

/// The values `sysctls` have in a new node's namespaces (net, ipc, uts): what a key
/// goes back to when a topology no longer sets it. A key of an interface
/// (`net/ipv4/conf/eth0/...`) takes the new namespace's `default` one,
/// which is what an interface made there gets. Read on a thread of its
/// own that unshares the namespaces and is thrown away afterwards.
pub(crate) fn fresh_values(node: &str, sysctls: &[Sysctl]) -> Result<Vec<Sysctl>, SysctlError> {
    use nix::sched::{CloneFlags, unshare};
    let fail = |s: &Sysctl, reason: String| SysctlError {
        node: node.to_string(),
        key: s.key.clone(),
        value: "(a new namespace's)".into(),
        reason,
    };
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let flags =
                    CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
                let mut fresh = Vec::with_capacity(sysctls.len());
                for sysctl in sysctls {
                    // Never read the host's: unshared before the first read.
                    if fresh.is_empty() {
                        unshare(flags).map_err(|e| {
                            fail(sysctl, format!("make new namespaces to read it in: {e}"))
                        })?;
                    }
                    let key = as_default(&sysctl.path);
                    let value = match NODE_DEFAULTS.iter().find(|(k, _)| key == Path::new(k)) {
                        Some((_, value)) => value.to_string(),
                        None => {
                            let path = Path::new("/proc/sys").join(&key);
                            let read = std::fs::read_to_string(&path)
                                .map_err(|e| fail(sysctl, e.to_string()))?;
                            read.trim().to_string()
                        }
                    };
                    fresh.push(Sysctl {
                        value,
                        ..sysctl.clone()
                    });
                }
                Ok(fresh)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// `net/ipv4/conf/eth0/rp_filter` → `net/ipv4/conf/default/rp_filter`
/// (and `neigh` alike); any other path as it is.
fn as_default(path: &Path) -> std::path::PathBuf {
    let parts: Vec<&std::ffi::OsStr> = path.iter().collect();
    match parts[..] {
        [net, family, table, iface, ref rest @ ..]
            if net == "net"
                && (table == "conf" || table == "neigh")
                && iface != "all"
                && iface != "default"
                && !rest.is_empty() =>
        {
            let mut out = std::path::PathBuf::from(net);
            out.push(family);
            out.push(table);
            out.push("default");
            rest.iter().for_each(|p| out.push(p));
            out
        }
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod fresh_tests {
    use super::as_default;
    use std::path::Path;

    #[test]
    fn an_interface_key_reads_the_default_one() {
        let read = |p: &str| as_default(Path::new(p)).display().to_string();
        assert_eq!(
            read("net/ipv4/conf/eth0/rp_filter"),
            "net/ipv4/conf/default/rp_filter"
        );
        assert_eq!(
            read("net/ipv6/neigh/e1/base_reachable_time_ms"),
            "net/ipv6/neigh/default/base_reachable_time_ms"
        );
        assert_eq!(
            read("net/ipv4/conf/all/forwarding"),
            "net/ipv4/conf/all/forwarding"
        );
        assert_eq!(read("net/ipv4/ip_forward"), "net/ipv4/ip_forward");
    }
}
