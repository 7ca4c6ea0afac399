//! Where a node's CPU time, memory and process count come from: one
//! [`UsageSource`], chosen by [`source`]. Today that is a scan of /proc by
//! pid namespace ([`PidNamespaceScan`]) for CPU time and processes, with
//! the memory in use and its limit read from the node's cgroup (the sum
//! of its processes' resident sets where no hierarchy counts memory). The
//! cgroups could give the other figures too (cpuacct.usage or cpu.stat,
//! pids.current) behind the same trait, and [`source`] is the one place
//! that picks.

use std::collections::HashMap;
use std::time::Duration;

use crate::kernel::cgroup::Cgroups;
use crate::lab::RunningNode;

/// What a node uses, read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// CPU time (user + system) its processes have used, a counter that
    /// only grows while the node runs: the CPU % is its growth over time.
    pub cpu: Duration,
    /// Memory in use, in bytes.
    pub memory: u64,
    /// The node's memory limit in bytes; `None` for no limit.
    pub memory_limit: Option<u64>,
    /// How many processes it has, its init included.
    pub processes: u32,
}

/// A source of per-node usage. It may keep state between samples (the scan
/// does, to keep its CPU counter growing), so one source serves one series
/// of samples.
pub(crate) trait UsageSource: Send {
    /// The usage of each node, in that order: `None` for one that cannot
    /// be read (its init is gone). A node is named by its lab and name
    /// (for a source by cgroup path) and its init's host pid.
    fn sample(&mut self, nodes: &[RunningNode]) -> Vec<Option<Usage>>;
}

/// The usage source nslab uses.
pub(crate) fn source() -> Box<dyn UsageSource> {
    Box::new(PidNamespaceScan::default())
}

/// A node's processes are those in its init's pid namespace (the inode of
/// `/proc/PID/ns/pid` is the init's); their count, the sum of their
/// resident sets, and their CPU time. Processes in pid namespaces nested
/// inside the node are not counted, and shared pages count once per
/// process that maps them.
///
/// CPU time is per process in /proc, and a process that exits takes its
/// count with it, so the scan keeps a counter per node that only grows: at
/// each sample it adds what each process used since the previous one (all
/// of it for a process it has not seen before). What a process used between
/// the previous sample and its exit is not seen.
#[derive(Debug, Default)]
pub(crate) struct PidNamespaceScan {
    /// By init pid.
    nodes: HashMap<i32, NodeCounter>,
}

#[derive(Debug, Default)]
struct NodeCounter {
    /// The CPU time counted so far.
    total: Duration,
    /// The CPU time of each process at the previous sample, by
    /// (pid, start time): a reused pid is another process.
    seen: HashMap<(i32, u64), Duration>,
}

/// One process's figures from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ProcStat {
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Start time after boot, in clock ticks.
    pub start: u64,
    /// Resident set, in pages.
    pub rss_pages: u64,
}

/// Parses the fields nslab uses of a `/proc/PID/stat` line. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted
/// from after its last `)`.
pub(super) fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(ProcStat {
        cpu_ticks: field(14)? + field(15)?,
        start: field(22)?,
        rss_pages: field(24)?,
    })
}

/// The pid namespace inode of a `/proc/PID/ns/pid` link's target,
/// `pid:[4026531836]`.
pub(super) fn parse_ns_link(target: &str) -> Option<u64> {
    target
        .strip_prefix("pid:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn pid_namespace(pid: i32) -> Option<u64> {
    let target = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    parse_ns_link(target.to_str()?)
}

impl UsageSource for PidNamespaceScan {
    fn sample(&mut self, nodes: &[RunningNode]) -> Vec<Option<Usage>> {
        let inits: Vec<i32> = nodes.iter().map(|n| n.pid).collect();
        let inits = inits.as_slice();
        let ticks = clock_ticks();
        let page = page_size();
        // The pid namespace of each node, and the processes found in it.
        let namespaces: Vec<Option<u64>> = inits.iter().map(|&pid| pid_namespace(pid)).collect();
        let by_namespace: HashMap<u64, usize> = namespaces
            .iter()
            .enumerate()
            .filter_map(|(i, ns)| Some(((*ns)?, i)))
            .collect();
        let mut found: Vec<Vec<(i32, ProcStat)>> = vec![Vec::new(); inits.len()];
        if !by_namespace.is_empty()
            && let Ok(entries) = std::fs::read_dir("/proc")
        {
            for entry in entries.flatten() {
                let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                let Some(node) = pid_namespace(pid).and_then(|ns| by_namespace.get(&ns)) else {
                    continue;
                };
                // A process may exit between the two reads: skip it.
                let Some(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|line| parse_stat(&line))
                else {
                    continue;
                };
                found[*node].push((pid, stat));
            }
        }
        // Nodes no longer asked for are forgotten.
        self.nodes.retain(|pid, _| inits.contains(pid));
        // The limit is the node's cgroup's (none without a cgroup).
        let cgroups = Cgroups::detect().unwrap_or_default();
        inits
            .iter()
            .zip(nodes)
            .zip(namespaces)
            .zip(found)
            .map(|(((init, node), ns), processes)| {
                ns?;
                // The init itself may have exited after its namespace was read.
                if !processes.iter().any(|(pid, _)| pid == init) {
                    return None;
                }
                let counter = self.nodes.entry(*init).or_default();
                let now: HashMap<(i32, u64), Duration> = processes
                    .iter()
                    .map(|(pid, s)| ((*pid, s.start), ticks_to_duration(s.cpu_ticks, ticks)))
                    .collect();
                counter.total += grown(&counter.seen, &now);
                counter.seen = now;
                Some(Usage {
                    cpu: counter.total,
                    memory: cgroups
                        .memory_usage(&node.lab, &node.node)
                        .unwrap_or_else(|| processes.iter().map(|(_, s)| s.rss_pages * page).sum()),
                    memory_limit: cgroups.memory_limit(&node.lab, &node.node),
                    processes: processes.len() as u32,
                })
            })
            .collect()
    }
}

/// The CPU time used between two samples of the same node's processes:
/// what each grew by, and all of the time of those new in `now`.
pub(super) fn grown(
    before: &HashMap<(i32, u64), Duration>,
    now: &HashMap<(i32, u64), Duration>,
) -> Duration {
    now.iter()
        .map(|(process, cpu)| cpu.saturating_sub(before.get(process).copied().unwrap_or_default()))
        .sum()
}

pub(super) fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    let per_second = per_second.max(1);
    Duration::from_secs(ticks / per_second)
        + Duration::from_nanos((ticks % per_second) * 1_000_000_000 / per_second)
}

/// Clock ticks per second, the unit of /proc's CPU times.
fn clock_ticks() -> u64 {
    use nix::unistd::{SysconfVar, sysconf};
    sysconf(SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(100)
}

fn page_size() -> u64 {
    use nix::unistd::{SysconfVar, sysconf};
    sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_a_hard_command_name() {
        // Fields 14, 15 (utime, stime) = 7, 3; 22 (start) = 4242; 24 (rss) = 321.
        let line = "77 (a (b) c) R 1 77 77 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 4242 8888 321 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                cpu_ticks: 10,
                start: 4242,
                rss_pages: 321
            })
        );
        assert_eq!(parse_stat("77 (x) R 1"), None);
        assert_eq!(parse_stat("no name"), None);
    }

    #[test]
    fn parses_the_namespace_link() {
        assert_eq!(parse_ns_link("pid:[4026531836]"), Some(4026531836));
        assert_eq!(parse_ns_link("net:[4026531836]"), None);
    }

    #[test]
    fn ticks_become_time() {
        assert_eq!(ticks_to_duration(250, 100), Duration::from_millis(2500));
        assert_eq!(ticks_to_duration(1, 3), Duration::from_nanos(333_333_333));
    }

    #[test]
    fn growth_counts_new_processes_whole_and_never_goes_back() {
        let s = Duration::from_secs;
        let before = HashMap::from([((1, 0), s(5)), ((20, 7), s(3)), ((30, 9), s(50))]);
        // 20 grew by 2, 30 exited, 40 is new with 1, and pid 1 is unchanged.
        let now = HashMap::from([((1, 0), s(5)), ((20, 7), s(5)), ((40, 11), s(1))]);
        assert_eq!(grown(&before, &now), s(3));
        // A reused pid (same number, later start) is a new process.
        let reused = HashMap::from([((20, 99), s(1))]);
        assert_eq!(grown(&before, &reused), s(1));
    }

    #[test]
    fn the_scan_sees_this_process_in_its_own_namespace() {
        let me = std::process::id() as i32;
        let mut scan = PidNamespaceScan::default();
        let node = |pid| RunningNode {
            lab: "lab".into(),
            node: "node".into(),
            pid,
        };
        // This process is no init (its namespace has other processes, and
        // it is not their PID 1), but the scan counts by namespace alone.
        let first = scan.sample(&[node(me)])[0].expect("this process is readable");
        assert!(first.processes >= 1 && first.memory > 0);
        assert_eq!(first.memory_limit, None);
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {}
        let second = scan.sample(&[node(me)])[0].expect("readable");
        assert!(second.cpu >= first.cpu, "{second:?} after {first:?}");
        assert_eq!(scan.sample(&[node(i32::MAX)]), vec![None]);
    }
}
