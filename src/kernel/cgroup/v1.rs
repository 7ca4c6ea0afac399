//! cgroup v1: one hierarchy per mounted controller set (`cpu`, `cpuacct`,
//! `cpuset`, `memory`, `pids`, or several together such as `cpu,cpuacct`).
//!
//! Limits: `cpu.cfs_period_us` and `cpu.cfs_quota_us`; `cpuset.cpus`;
//! `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes` to the same
//! value where swap is accounted, so the limit cannot be dodged by
//! swapping); `pids.max`. A new cpuset cgroup starts with no CPUs and no
//! memory nodes and takes no process until both are set: each of nslab's
//! directories copies its parent's.

use std::path::{Path, PathBuf};

use super::{CgroupError, Controller, Hierarchy, read, write};
use crate::spec::{CFS_PERIOD_US, Limits};

/// The controllers whose hierarchies nslab uses.
pub(super) const KNOWN: [&str; 5] = ["cpu", "cpuacct", "cpuset", "memory", "pids"];

#[derive(Debug)]
pub(super) struct V1 {
    root: PathBuf,
    /// The controllers of the mount's options that nslab knows.
    controllers: Vec<String>,
    /// Every controller of the hierarchy (`net_cls` with `cpu`, say).
    all: Vec<String>,
}

impl V1 {
    pub(super) fn new(root: PathBuf, all: Vec<String>) -> Self {
        let controllers = all
            .iter()
            .filter(|c| KNOWN.contains(&c.as_str()))
            .cloned()
            .collect();
        Self {
            root,
            controllers,
            all,
        }
    }

    fn has(&self, name: &str) -> bool {
        self.controllers.iter().any(|c| c == name)
    }
}

impl Hierarchy for V1 {
    fn version(&self) -> u8 {
        1
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn controllers(&self) -> Vec<Controller> {
        Controller::ALL
            .into_iter()
            .filter(|c| self.has(c.name()))
            .collect()
    }

    fn mount_as(&self) -> (&'static str, Option<String>) {
        // The hierarchy is found again by its exact set of controllers.
        ("cgroup", Some(self.all.join(",")))
    }

    fn memory_limit(&self, dir: &Path) -> Option<u64> {
        if !self.has("memory") {
            return None;
        }
        let bytes: u64 = read(&dir.join("memory.limit_in_bytes"))
            .ok()?
            .parse()
            .ok()?;
        // No limit reads as the largest page-aligned i64.
        (bytes < 1 << 62).then_some(bytes)
    }

    fn memory_usage(&self, dir: &Path) -> Option<u64> {
        if !self.has("memory") {
            return None;
        }
        read(&dir.join("memory.usage_in_bytes")).ok()?.parse().ok()
    }

    fn is_line_of(&self, controllers: &str) -> bool {
        // /proc/PID/cgroup names every controller of the hierarchy (named
        // ones, such as name=systemd, are never ours).
        let mut line: Vec<&str> = controllers.split(',').collect();
        let mut ours: Vec<&str> = self.controllers.iter().map(String::as_str).collect();
        line.retain(|c| KNOWN.contains(c));
        line.sort_unstable();
        ours.sort_unstable();
        !line.is_empty() && line == ours
    }

    fn prepare(&self, dir: &Path, _leaf: bool, _enable: &[Controller]) -> Result<(), CgroupError> {
        if self.has("cpuset") {
            let parent = dir.parent().unwrap_or(&self.root);
            for file in ["cpuset.cpus", "cpuset.mems"] {
                // (A fake root in tests has no file until written.)
                if read(&dir.join(file)).unwrap_or_default().is_empty() {
                    write(&dir.join(file), &read(&parent.join(file))?)?;
                }
            }
        }
        Ok(())
    }

    fn apply(&self, dir: &Path, limits: &Limits, enable: &[Controller]) -> Result<(), CgroupError> {
        for c in enable {
            match c {
                Controller::Cpu => {
                    if let Some(quota) = limits.cpu_quota_us() {
                        write(&dir.join("cpu.cfs_period_us"), &CFS_PERIOD_US.to_string())?;
                        write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
                    }
                }
                Controller::Cpuset => {
                    if let Some(cpus) = &limits.cpuset {
                        write(&dir.join("cpuset.cpus"), cpus)?;
                    }
                }
                Controller::Memory => {
                    if let Some(bytes) = limits.memory {
                        write(&dir.join("memory.limit_in_bytes"), &bytes.to_string())?;
                        let memsw = dir.join("memory.memsw.limit_in_bytes");
                        if memsw.exists() {
                            write(&memsw, &bytes.to_string())?;
                        }
                    }
                }
                Controller::Pids => {
                    if let Some(n) = limits.pids {
                        write(&dir.join("pids.max"), &n.to_string())?;
                    }
                }
            }
        }
        Ok(())
    }
}
