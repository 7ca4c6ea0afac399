//! `check`: probes a running lab from all its nodes at once and reads the
//! outcomes against the matrix and the expectations (the [`CheckPlan`]).
//!
//! Each node's probes run in its own net namespace on a thread of their
//! own (`RunningNode::in_netns`), a bounded number of nodes at a time, so
//! the whole lab takes about as long as its slowest node: one round trip
//! when everything answers, the timeout when something does not.
//!
//! First, the ICMP error rate limits of the nodes UDP probes go to are read
//! live from their net namespaces ([`RATELIMIT_SYSCTLS`]), since UDP probes
//! are paced by them (`probe/udp.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, getrlimit};

use crate::check::probe::{self, Outcome, Pacing, Probe, TCP_ATTEMPTS};
use crate::check::{CheckPlan, CheckReport, RATELIMIT_SYSCTLS, ratelimit_interval};
use crate::kernel::namespace::NsKind;
use crate::kernel::sysctl;
use crate::lab::{LabError, RunningNode, running_nodes};
use crate::spec::LabName;
use crate::state;

/// Most nodes probing at once.
pub(crate) const MAX_PARALLEL: usize = 128;

/// Probes the lab `lab` as its saved plan describes it; `timeout` bounds
/// each node's probes.
pub(crate) fn check(lab: &LabName, timeout: Duration) -> Result<CheckReport, LabError> {
    let lab = lab.as_str();
    let recorded = state::read(lab)?.ok_or_else(|| LabError::NoLab {
        lab: lab.to_string(),
    })?;
    if !recorded.is_ready() {
        return Err(LabError::NotReady {
            lab: lab.to_string(),
        });
    }
    let plan = recorded.plan.ok_or_else(|| LabError::NoPlan {
        lab: lab.to_string(),
    })?;
    let running: HashMap<String, RunningNode> = running_nodes(lab)?
        .into_iter()
        .map(|n| (n.node.clone(), n))
        .collect();
    let check = CheckPlan::new(&plan);
    let started = Instant::now();
    let paced: Vec<&RunningNode> = check
        .paced_nodes()
        .into_iter()
        .filter_map(|node| running.get(node))
        .collect();
    let pacing = check.pacing(&icmp_ratelimits(paced));
    let results = probe_all(&check, &pacing, &running, timeout);
    Ok(check.evaluate(&results, timeout, started.elapsed()))
}

/// The live ICMP error intervals of these nodes (`RATELIMIT_SYSCTLS`:
/// IPv4, IPv6), read from their net namespaces one after the other on one
/// thread; `None` for a value that could not be read (the node stopped, a
/// kernel without IPv6), which `check` paces as `UNREAD_RATELIMIT`.
/// Reached by the tests (`test_support`), to see what `check` paces by.
pub fn icmp_ratelimits<'a>(
    nodes: impl IntoIterator<Item = &'a RunningNode>,
) -> HashMap<String, [Option<Duration>; 2]> {
    let nodes: Vec<&RunningNode> = nodes.into_iter().collect();
    if nodes.is_empty() {
        return HashMap::new();
    }
    let read = sysctl::read_net_all(
        nodes.iter().map(|n| n.open_namespaces(&[NsKind::Net])),
        &RATELIMIT_SYSCTLS,
    );
    nodes
        .iter()
        .zip(read)
        .map(|(node, values)| {
            let interval = |i: usize| {
                values
                    .get(i)
                    .and_then(|v| v.as_ref().ok())
                    .and_then(|v| ratelimit_interval(v))
            };
            (node.node.clone(), [interval(0), interval(1)])
        })
        .collect()
}

/// Every source's probes, a bounded number of sources at a time.
fn probe_all(
    check: &CheckPlan,
    pacing: &Pacing,
    running: &HashMap<String, RunningNode>,
    timeout: Duration,
) -> Vec<Result<Vec<Outcome>, String>> {
    let n = check.sources.len();
    let workers = workers(n, &check.probes, open_file_limit());
    let next = AtomicUsize::new(0);
    let mut results: Vec<Result<Vec<Outcome>, String>> = vec![Ok(Vec::new()); n];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return mine;
                        }
                        let node = running.get(&check.sources[i]);
                        mine.push((
                            i,
                            probe_from(
                                &check.lab,
                                &check.sources[i],
                                node,
                                &check.probes[i],
                                pacing,
                                timeout,
                            ),
                        ));
                    }
                })
            })
            .collect();
        for handle in handles {
            let done = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for (i, result) in done {
                results[i] = result;
            }
        }
    });
    results
}

/// One node's probes, from its net namespace.
fn probe_from(
    lab: &str,
    name: &str,
    node: Option<&RunningNode>,
    probes: &[Probe],
    pacing: &Pacing,
    timeout: Duration,
) -> Result<Vec<Outcome>, String> {
    let Some(node) = node else {
        return Err(format!("node {lab}/{name} is not running"));
    };
    if probes.is_empty() {
        return Ok(Vec::new());
    }
    node.in_netns(|| probe::run(probes, timeout, pacing))
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{}: {e}", node.label()))
}

/// The soft limit on open files (1024 when unknown).
fn open_file_limit() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

/// How many sources probe at once: at most [`MAX_PARALLEL`], and few
/// enough that their sockets stay within the open-file limit. A worker
/// holds about four files (a pidfd, the netns, a raw socket per family)
/// plus a socket per UDP probe and up to [`TCP_ATTEMPTS`] per TCP probe.
fn workers(sources: usize, probes: &[Vec<Probe>], open_files: u64) -> usize {
    let sockets = probes
        .iter()
        .map(|list| {
            list.iter()
                .map(|p| match p {
                    Probe::Echo(_) => 0,
                    Probe::Tcp(_) => TCP_ATTEMPTS,
                    Probe::Udp(_) => 1,
                })
                .sum::<usize>()
        })
        .max()
        .unwrap_or(0);
    let per_worker = 4 + sockets as u64;
    // Leave room for what the process holds already.
    let fit = open_files.saturating_sub(64) / per_worker;
    (fit as usize).clamp(1, MAX_PARALLEL).min(sources.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_bounded_by_nodes_limit_and_files() {
        let echo = || vec![Probe::Echo("10.0.0.1".parse().expect("ip")); 3];
        assert_eq!(workers(10, &vec![echo(); 10], 1024), 10);
        assert_eq!(workers(1000, &vec![echo(); 1000], 1 << 20), MAX_PARALLEL);
        // 1024 files, 4 each: 240 would fit; the cap is lower.
        assert_eq!(workers(1000, &vec![echo(); 1000], 1024), MAX_PARALLEL);
        // 100 TCP probes on one node: 4 + 4 * 100 files a worker; 100 UDP
        // probes: 4 + 100.
        let mut many = vec![echo(); 1000];
        many[3] = vec![Probe::Tcp("10.0.0.1:80".parse().expect("addr")); 100];
        assert_eq!(workers(1000, &many, 4096), (4096 - 64) / 404);
        many[3] = vec![Probe::Udp("10.0.0.1:53".parse().expect("addr")); 100];
        assert_eq!(workers(1000, &many, 1024), (1024 - 64) / 104);
        // Never zero, even at an absurd limit.
        assert_eq!(workers(5, &many, 10), 1);
        assert_eq!(workers(0, &[], 1024), 1);
    }
}
