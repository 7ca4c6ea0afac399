//! cgroup v2: the one unified hierarchy.
//!
//! Limits: `cpu.max` (`QUOTA PERIOD`), `cpuset.cpus`, `memory.max` (and
//! `memory.swap.max` 0 where swap is accounted), `pids.max`. A controller
//! limits a cgroup only when its parent lists it in `cgroup.subtree_control`:
//! nslab writes that file in its own directories (`nslab/`, `nslab/LAB/`),
//! and needs the host's root to hand the controller down already; it never
//! writes the root's. Processes live only in the node directories (the
//! leaves), as v2 requires of a cgroup that hands controllers down.
//! Placement needs no controller at all.

use std::path::{Path, PathBuf};

use super::{CgroupError, Controller, Hierarchy, read, write};
use crate::spec::{CFS_PERIOD_US, Limits};

#[derive(Debug)]
pub(super) struct V2 {
    root: PathBuf,
}

impl V2 {
    pub(super) fn new(root: PathBuf) -> Self {
        Self { root }
    }
}

fn listed(file: &str, c: Controller) -> bool {
    file.split_whitespace().any(|w| w == c.name())
}

impl Hierarchy for V2 {
    fn version(&self) -> u8 {
        2
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn controllers(&self) -> Vec<Controller> {
        let offered = read(&self.root.join("cgroup.controllers")).unwrap_or_default();
        Controller::ALL
            .into_iter()
            .filter(|&c| listed(&offered, c))
            .collect()
    }

    fn mount_as(&self) -> (&'static str, Option<String>) {
        ("cgroup2", None)
    }

    fn memory_limit(&self, dir: &Path) -> Option<u64> {
        // "max" for no limit; absent without the memory controller.
        read(&dir.join("memory.max")).ok()?.parse().ok()
    }

    fn memory_usage(&self, dir: &Path) -> Option<u64> {
        // Absent without the memory controller.
        read(&dir.join("memory.current")).ok()?.parse().ok()
    }

    fn is_line_of(&self, controllers: &str) -> bool {
        controllers.is_empty()
    }

    fn prepare(&self, dir: &Path, leaf: bool, enable: &[Controller]) -> Result<(), CgroupError> {
        let parent = dir.parent().unwrap_or(&self.root);
        if parent == self.root {
            let handed = read(&parent.join("cgroup.subtree_control"))?;
            if let Some(c) = enable.iter().find(|&&c| !listed(&handed, c)) {
                return Err(CgroupError::NotDelegated {
                    root: self.root.clone(),
                    controller: c.name(),
                });
            }
        }
        if !leaf && !enable.is_empty() {
            let line: Vec<String> = enable.iter().map(|c| format!("+{}", c.name())).collect();
            write(&dir.join("cgroup.subtree_control"), &line.join(" "))?;
        }
        Ok(())
    }

    fn apply(&self, dir: &Path, limits: &Limits, enable: &[Controller]) -> Result<(), CgroupError> {
        for c in enable {
            match c {
                Controller::Cpu => {
                    if let Some(quota) = limits.cpu_quota_us() {
                        write(&dir.join("cpu.max"), &format!("{quota} {CFS_PERIOD_US}"))?;
                    }
                }
                Controller::Cpuset => {
                    if let Some(cpus) = &limits.cpuset {
                        write(&dir.join("cpuset.cpus"), cpus)?;
                    }
                }
                Controller::Memory => {
                    if let Some(bytes) = limits.memory {
                        write(&dir.join("memory.max"), &bytes.to_string())?;
                        let swap = dir.join("memory.swap.max");
                        if swap.exists() {
                            write(&swap, "0")?;
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
