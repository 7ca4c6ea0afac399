//! `stats`: what each node of a lab uses now (CPU, memory, processes) and
//! the counters of its interfaces, like `docker stats`.
//!
//! The JSON form is stable for scripts: the field names below are the
//! documented interface (see docs/cli.md, "stats --json"). The per-node
//! figures come from one [`usage::UsageSource`]; the interface counters from
//! an RTM_GETLINK dump (`IFLA_STATS64`) over a socket in each node's netns.

mod usage;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::Serialize;

use super::running::is_init_of;
use super::{LabError, RunningNode, runtime};
use crate::kernel::netlink::link::{LinkCounters, dump_links};
use crate::kernel::netlink::{Netns, open_each_socket};
use crate::plan::Plan;
use crate::spec::LabName;
use crate::state;
use usage::{Usage, UsageSource};

/// How long the first sample measures CPU time over.
pub(crate) const FIRST_INTERVAL: Duration = Duration::from_millis(500);

/// The figures of one lab at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StatsReport {
    /// The lab's name.
    pub lab: String,
    /// The time the CPU % figures were measured over, in seconds.
    pub interval_seconds: f64,
    /// Every node of the lab (bridges too), in topology order.
    pub nodes: Vec<NodeStats>,
}

/// What one node uses. The figures are `None` (null in JSON) when the node
/// is not running.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct NodeStats {
    pub name: String,
    /// `node` or `bridge`.
    pub kind: String,
    pub running: bool,
    /// Its init's pid on the host.
    pub pid: Option<i32>,
    /// CPU time used over the interval, as a percentage of one CPU (a node
    /// busy on two CPUs shows 200).
    pub cpu_percent: Option<f64>,
    /// Memory in use, in bytes: what the node's memory cgroup accounts
    /// (`memory.usage_in_bytes` on v1, `memory.current` on v2: its
    /// processes' memory with the page cache and tmpfs pages they use), or
    /// the sum of its processes' resident sets where no hierarchy counts
    /// memory.
    pub memory_bytes: Option<u64>,
    /// The node's memory limit in bytes, from its cgroup; `None` (null)
    /// for none.
    pub memory_limit_bytes: Option<u64>,
    /// Its processes, the init included.
    pub processes: Option<u32>,
    /// Every interface in its net namespace, in kernel order.
    pub interfaces: Vec<InterfaceStats>,
}

/// The counters of one interface since it was made (`ip -s link`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct InterfaceStats {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_dropped: u64,
}

impl From<(String, LinkCounters)> for InterfaceStats {
    fn from((name, c): (String, LinkCounters)) -> Self {
        InterfaceStats {
            name,
            rx_bytes: c.rx_bytes,
            rx_packets: c.rx_packets,
            rx_dropped: c.rx_dropped,
            tx_bytes: c.tx_bytes,
            tx_packets: c.tx_packets,
            tx_dropped: c.tx_dropped,
        }
    }
}

/// CPU use between two readings of a node's CPU-time counter, as a
/// percentage of one CPU; `None` when no time passed. A counter that went
/// back (another process behind the same pid) reads as 0.
pub(crate) fn cpu_percent(before: Duration, after: Duration, elapsed: Duration) -> Option<f64> {
    if elapsed.is_zero() {
        return None;
    }
    let used = after.saturating_sub(before);
    Some(used.as_secs_f64() / elapsed.as_secs_f64() * 100.0)
}

/// Samples labs again and again: each report's CPU % is measured since the
/// previous one. Holds the usage source, which may keep state between
/// samples.
pub(crate) struct StatsSampler {
    /// One lab, or every lab with state.
    lab: Option<LabName>,
    source: Box<dyn UsageSource>,
    /// The latest reading of each node, by (lab, node, init pid).
    latest: HashMap<(String, String, i32), Usage>,
    /// When the latest reading was taken.
    taken: Option<Instant>,
}

impl std::fmt::Debug for StatsSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsSampler")
            .field("lab", &self.lab)
            .field("taken", &self.taken)
            .finish_non_exhaustive()
    }
}

/// A running node to read: its lab, name and init pid.
type Target = (String, String, i32);

/// A lab to read: its plan and the pids of its running inits by node.
type LabToRead = (Plan, HashMap<String, i32>);

impl StatsSampler {
    pub(crate) fn new(lab: Option<&LabName>) -> Self {
        StatsSampler {
            lab: lab.cloned(),
            source: usage::source(),
            latest: HashMap::new(),
            taken: None,
        }
    }

    /// The figures now, one report per lab. The CPU % is measured since
    /// the previous call; the first call reads twice, [`FIRST_INTERVAL`]
    /// apart. A node first seen in this call has no CPU % (null).
    pub(crate) fn sample(&mut self) -> Result<Vec<StatsReport>, LabError> {
        if self.taken.is_none() {
            let labs = self.labs()?;
            self.read_usage(&targets(&labs));
            std::thread::sleep(FIRST_INTERVAL);
        }
        let labs = self.labs()?;
        let targets = targets(&labs);
        let (before, then) = (std::mem::take(&mut self.latest), self.taken);
        let now = self.read_usage(&targets);
        let elapsed = then.map(|t| now.duration_since(t)).unwrap_or_default();
        let counters = read_counters(&targets)?;
        let mut reports = Vec::new();
        for (plan, pids) in &labs {
            let nodes = plan
                .nodes
                .iter()
                .map(|node| {
                    let pid = pids.get(&node.name).copied();
                    let key = pid.map(|pid| (plan.lab.clone(), node.name.clone(), pid));
                    let usage = key.as_ref().and_then(|k| self.latest.get(k).copied());
                    let cpu_percent = key.as_ref().and_then(|k| {
                        let (old, new) = (before.get(k)?, self.latest.get(k)?);
                        cpu_percent(old.cpu, new.cpu, elapsed)
                    });
                    NodeStats {
                        name: node.name.clone(),
                        kind: format!("{:?}", node.kind).to_lowercase(),
                        running: usage.is_some(),
                        pid: usage.and(pid),
                        cpu_percent,
                        memory_bytes: usage.map(|u| u.memory),
                        memory_limit_bytes: usage.and_then(|u| u.memory_limit),
                        processes: usage.map(|u| u.processes),
                        interfaces: key
                            .and_then(|k| counters.get(&k).cloned())
                            .unwrap_or_default(),
                    }
                })
                .collect();
            reports.push(StatsReport {
                lab: plan.lab.clone(),
                interval_seconds: elapsed.as_secs_f64(),
                nodes,
            });
        }
        Ok(reports)
    }

    /// Reads the usage of `targets` now into `latest`; returns when.
    fn read_usage(&mut self, targets: &[Target]) -> Instant {
        let nodes: Vec<RunningNode> = targets
            .iter()
            .map(|(lab, node, pid)| RunningNode {
                lab: lab.clone(),
                node: node.clone(),
                pid: *pid,
            })
            .collect();
        let usages = self.source.sample(&nodes);
        let now = Instant::now();
        self.latest = targets
            .iter()
            .cloned()
            .zip(usages)
            .filter_map(|(target, usage)| Some((target, usage?)))
            .collect();
        self.taken = Some(now);
        now
    }

    /// The plans of the labs to read, with their running inits.
    fn labs(&self) -> Result<Vec<LabToRead>, LabError> {
        let all = self.lab.is_none();
        let names = match &self.lab {
            Some(lab) => vec![lab.to_string()],
            None => state::list_labs()?,
        };
        let mut labs = Vec::new();
        for lab in names {
            let Some(recorded) = state::read(&lab)? else {
                if all {
                    // Taken down between listing and reading.
                    continue;
                }
                return Err(LabError::NoLab { lab });
            };
            let Some(plan) = recorded.plan.clone() else {
                if all {
                    continue;
                }
                return Err(LabError::NoPlan { lab });
            };
            let pids = recorded
                .init_pids()
                .into_iter()
                .filter(|(node, pid)| is_init_of(*pid, &lab, node))
                .collect();
            labs.push((plan, pids));
        }
        Ok(labs)
    }
}

fn targets(labs: &[LabToRead]) -> Vec<Target> {
    labs.iter()
        .flat_map(|(plan, pids)| {
            plan.nodes.iter().filter_map(|node| {
                let pid = *pids.get(&node.name)?;
                Some((plan.lab.clone(), node.name.clone(), pid))
            })
        })
        .collect()
}

/// The interface counters of every target, over one socket per node, all
/// dumps in flight together. A node whose namespace cannot be entered or
/// read (its init just exited) has none.
fn read_counters(targets: &[Target]) -> Result<HashMap<Target, Vec<InterfaceStats>>, LabError> {
    let runtime = runtime()?;
    runtime.block_on(|| async {
        let namespaces: Vec<_> = targets
            .iter()
            .map(|(lab, node, pid)| (crate::plan::netns_name(lab, node), Netns::Pid(*pid)))
            .collect();
        let sockets = open_each_socket(runtime.handle(), &namespaces);
        let reads = targets.iter().zip(&namespaces).zip(sockets).map(
            |((target, (name, _)), socket)| async move {
                let links = match socket {
                    Ok(socket) => dump_links(&socket, name).await.ok()?,
                    Err(_) => return None,
                };
                let interfaces = links
                    .into_iter()
                    .map(|l| InterfaceStats::from((l.name, l.counters.unwrap_or_default())))
                    .collect();
                Some((target.clone(), interfaces))
            },
        );
        Ok(join_all(reads).await.into_iter().flatten().collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_is_time_used_over_time_passed() {
        let ms = Duration::from_millis;
        assert_eq!(cpu_percent(ms(1000), ms(1500), ms(500)), Some(100.0));
        assert_eq!(cpu_percent(ms(0), ms(250), ms(1000)), Some(25.0));
        // Two CPUs busy.
        assert_eq!(cpu_percent(ms(0), ms(2000), ms(1000)), Some(200.0));
        assert_eq!(cpu_percent(ms(10), ms(10), ms(1000)), Some(0.0));
        // A counter that went back, and no time at all.
        assert_eq!(cpu_percent(ms(900), ms(100), ms(1000)), Some(0.0));
        assert_eq!(cpu_percent(ms(0), ms(100), ms(0)), None);
    }
}
