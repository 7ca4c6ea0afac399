//! A cgroup per node: `nslab/LAB/NODE` under the root of every hierarchy
//! nslab uses, with the node's limits written into it.
//!
//! Two backends behind one small trait, [`Hierarchy`]: cgroup v1 (one
//! hierarchy per mounted controller set, `v1.rs`) and cgroup v2 (the one
//! unified hierarchy, `v2.rs`). [`Cgroups::detect`] reads
//! /proc/self/mountinfo and takes every v1 hierarchy holding a controller
//! nslab limits (cpu, cpuacct, cpuset, memory, pids) and the v2 hierarchy
//! if mounted. On a v2-only host that is one hierarchy; on a hybrid host
//! the v1 ones take the limits and v2 only places (a node is in a cgroup of
//! every hierarchy, so its processes are in nslab's tree everywhere).
//!
//! nslab creates `nslab/`, `nslab/LAB/` and one directory per node, and
//! removes only those: the lab's directory and what is below it, then
//! `nslab/` when it is empty. The host's own cgroups are only read (the
//! CPU and memory-node lists a v1 cpuset copies, the controllers a v2 root
//! hands down).

mod v1;
mod v2;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::spec::Limits;

/// The directory under each hierarchy's root that holds nslab's cgroups.
pub(crate) const NSLAB_DIR: &str = "nslab";
/// The file a process is written into to join a cgroup (both versions).
pub(crate) const PROCS: &str = "cgroup.procs";
/// A v1 cgroup's file of threads (a process of one thread moves whole).
const TASKS: &str = "tasks";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "no cgroup hierarchy of this host offers the {controller} controller, which a node's {key} limit needs"
    )]
    NoController {
        controller: &'static str,
        key: &'static str,
    },
    #[error(
        "the cgroup v2 root {} does not hand the {controller} controller down to its children (its cgroup.subtree_control); nslab does not change the host's own cgroups: enable it there (`echo +{controller} > {}/cgroup.subtree_control`)",
        root.display(), root.display()
    )]
    NotDelegated {
        root: PathBuf,
        controller: &'static str,
    },
    #[error("cgroup {}: still holds processes after {} s; left in place", path.display(), waited.as_secs())]
    Busy { path: PathBuf, waited: Duration },
}

pub(crate) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A controller that nslab writes limits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controller {
    Cpu,
    Cpuset,
    Memory,
    Pids,
}

impl Controller {
    pub(crate) const ALL: [Controller; 4] = [
        Controller::Cpu,
        Controller::Cpuset,
        Controller::Memory,
        Controller::Pids,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
        }
    }

    /// The topology key that needs this controller.
    fn key(self) -> &'static str {
        match self {
            Controller::Cpu => "cpus",
            other => other.name(),
        }
    }

    fn wanted_by(self, limits: &Limits) -> bool {
        match self {
            Controller::Cpu => limits.cpus.is_some(),
            Controller::Cpuset => limits.cpuset.is_some(),
            Controller::Memory => limits.memory.is_some(),
            Controller::Pids => limits.pids.is_some(),
        }
    }
}

/// One mounted cgroup hierarchy: how to prepare nslab's directories in it
/// and write limits there. The directories themselves are made and removed
/// by [`Cgroups`], the same for both versions.
pub(crate) trait Hierarchy: std::fmt::Debug + Send + Sync {
    /// 1 or 2.
    fn version(&self) -> u8;
    /// Where the hierarchy's root is mounted.
    fn root(&self) -> &Path;
    /// The limit controllers this hierarchy can enforce.
    fn controllers(&self) -> Vec<Controller>;
    /// Whether a line `ID:CONTROLLERS:PATH` of /proc/PID/cgroup is about
    /// this hierarchy (`controllers` is its middle field).
    fn is_line_of(&self, controllers: &str) -> bool;
    /// Readies a directory nslab just made, so that a child can be made
    /// below it (`leaf` false) or processes placed in it (`leaf` true), with
    /// `enable` (of [`Self::controllers`]) limiting there.
    fn prepare(&self, dir: &Path, leaf: bool, enable: &[Controller]) -> Result<(), CgroupError>;
    /// How to mount this hierarchy again: file system type and options.
    fn mount_as(&self) -> (&'static str, Option<String>);
    /// The memory limit set in a node's directory, if this hierarchy
    /// holds one.
    fn memory_limit(&self, dir: &Path) -> Option<u64>;
    /// The memory a node's directory accounts now (its processes' with the
    /// page cache and tmpfs pages they use), if this hierarchy counts it.
    fn memory_usage(&self, dir: &Path) -> Option<u64>;
    /// Writes the node's limits of `enable` into its directory.
    fn apply(&self, dir: &Path, limits: &Limits, enable: &[Controller]) -> Result<(), CgroupError>;
}

/// The hierarchies nslab uses on this host.
#[derive(Debug, Default)]
pub(crate) struct Cgroups {
    hierarchies: Vec<Box<dyn Hierarchy>>,
}

impl Cgroups {
    /// The hierarchies mounted in this process's mount namespace.
    pub(crate) fn detect() -> Result<Self, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(io_at(path))?;
        Ok(Self::from_mountinfo(&text))
    }

    /// The hierarchies of a mountinfo text: each v1 hierarchy that holds a
    /// controller nslab limits, and the v2 one, each once, mounted at its
    /// root.
    pub(crate) fn from_mountinfo(text: &str) -> Self {
        let mut hierarchies: Vec<Box<dyn Hierarchy>> = Vec::new();
        let mut seen = Vec::new();
        for line in text.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let (Some(device), Some(root), Some(mount)) = (left.get(2), left.get(3), left.get(4))
            else {
                continue;
            };
            // A mount of a subtree (a container's view) is not a root. From
            // inside a cgroup namespace (a node's init) a hierarchy's root
            // shows as `/../..`, above the namespace's own root.
            let is_root = root.split('/').all(|part| part.is_empty() || part == "..");
            if !is_root || seen.contains(device) {
                continue;
            }
            let mount = PathBuf::from(unescape(mount));
            match (right.first(), right.get(2)) {
                (Some(&"cgroup2"), _) => {
                    seen.push(device);
                    hierarchies.push(Box::new(v2::V2::new(mount)));
                }
                (Some(&"cgroup"), Some(options)) => {
                    // Controllers: the options but rw/ro and key=value ones.
                    let all: Vec<String> = options
                        .split(',')
                        .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                        .map(str::to_string)
                        .collect();
                    if all.iter().any(|c| v1::KNOWN.contains(&c.as_str())) {
                        seen.push(device);
                        hierarchies.push(Box::new(v1::V1::new(mount, all)));
                    }
                }
                _ => {}
            }
        }
        Self { hierarchies }
    }

    /// A v2-only layout rooted at `root` (a fake one in tests).
    #[cfg(test)]
    pub(crate) fn v2_at(root: &Path) -> Self {
        Self {
            hierarchies: vec![Box::new(v2::V2::new(root.to_path_buf()))],
        }
    }

    /// A v1 layout: one hierarchy per `(root, controllers)` (fake in tests).
    #[cfg(test)]
    pub(crate) fn v1_at(hierarchies: &[(&Path, &[&str])]) -> Self {
        Self {
            hierarchies: hierarchies
                .iter()
                .map(|(root, controllers)| {
                    Box::new(v1::V1::new(
                        root.to_path_buf(),
                        controllers.iter().map(|c| c.to_string()).collect(),
                    )) as Box<dyn Hierarchy>
                })
                .collect(),
        }
    }

    #[cfg(test)]
    pub(crate) fn hierarchies(&self) -> &[Box<dyn Hierarchy>] {
        &self.hierarchies
    }

    /// Where each hierarchy is mounted, and how to mount it again.
    pub(crate) fn mounts(&self) -> Vec<(PathBuf, &'static str, Option<String>)> {
        self.hierarchies
            .iter()
            .map(|h| {
                let (fstype, data) = h.mount_as();
                (h.root().to_path_buf(), fstype, data)
            })
            .collect()
    }

    /// The version of each hierarchy, in order.
    pub(crate) fn versions(&self) -> Vec<u8> {
        self.hierarchies.iter().map(|h| h.version()).collect()
    }

    /// The root of each hierarchy, in order.
    pub(crate) fn roots(&self) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .map(|h| h.root().to_path_buf())
            .collect()
    }

    /// Which controllers each hierarchy limits for a lab that needs
    /// `wanted`: a controller is taken by the v1 hierarchy that holds it,
    /// else by v2 if its root offers it (a controller is in one version at
    /// a time).
    fn assign(&self, wanted: &[Controller]) -> Result<Vec<Vec<Controller>>, CgroupError> {
        let mut assigned = vec![Vec::new(); self.hierarchies.len()];
        for &c in wanted {
            let by_version = |version: u8| {
                self.hierarchies
                    .iter()
                    .position(|h| h.version() == version && h.controllers().contains(&c))
            };
            let at = by_version(1)
                .or_else(|| by_version(2))
                .ok_or(CgroupError::NoController {
                    controller: c.name(),
                    key: c.key(),
                })?;
            assigned[at].push(c);
        }
        Ok(assigned)
    }

    /// `ROOT/nslab/LAB` of each hierarchy.
    fn lab_dirs(&self, lab: &str) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .map(|h| h.root().join(NSLAB_DIR).join(lab))
            .collect()
    }

    /// Makes `nslab/LAB/NODE` for each node in every hierarchy, with its
    /// limits. An error leaves what was made for [`Cgroups::remove_lab`].
    pub(crate) fn create_lab(
        &self,
        lab: &str,
        nodes: &[(&str, &Limits)],
    ) -> Result<(), CgroupError> {
        let wanted: Vec<Controller> = Controller::ALL
            .into_iter()
            .filter(|c| nodes.iter().any(|(_, l)| c.wanted_by(l)))
            .collect();
        let assigned = self.assign(&wanted)?;
        for (h, enable) in self.hierarchies.iter().zip(&assigned) {
            let top = h.root().join(NSLAB_DIR);
            let lab_dir = top.join(lab);
            // The `down` of another lab removes `nslab/` when it finds it
            // empty, maybe while we prepare it or before our mkdir of
            // `nslab/LAB` in it: then start again.
            let mut tries = 0;
            loop {
                let made = make_dir(&top)
                    .and_then(|()| h.prepare(&top, false, enable))
                    .and_then(|()| match std::fs::create_dir(&lab_dir) {
                        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                            Err(io_at(&lab_dir)(e))
                        }
                        _ => Ok(()),
                    });
                match made {
                    Ok(()) => break,
                    Err(CgroupError::Io { source, .. })
                        if source.kind() == io::ErrorKind::NotFound && tries < 10 =>
                    {
                        tries += 1
                    }
                    Err(e) => return Err(e),
                }
            }
            h.prepare(&lab_dir, false, enable)?;
            for (node, limits) in nodes {
                let dir = lab_dir.join(node);
                make_dir(&dir)?;
                h.prepare(&dir, true, enable)?;
                h.apply(&dir, limits, enable)?;
            }
        }
        Ok(())
    }

    /// The files a node's init writes itself into: `tasks` of each v1
    /// hierarchy. The init is one thread, so moving that thread moves it
    /// whole, and a `tasks` write does not take the kernel's lock over
    /// every thread group (`cgroup_threadgroup_rwsem`), whose writer waits
    /// for an RCU grace period: 13 ms for one init alone on this hybrid
    /// host (`perf trace` of `nslab apply` adding one node). Its v2 cgroup
    /// is [`node_v2_dir`](Self::node_v2_dir), which it is cloned into.
    pub(crate) fn node_procs(&self, lab: &str, node: &str) -> Vec<PathBuf> {
        (self.hierarchies.iter())
            .zip(self.lab_dirs(lab))
            .filter(|(h, _)| h.version() == 1)
            .map(|(_, d)| d.join(node).join(TASKS))
            .collect()
    }

    /// A node's cgroup in the v2 hierarchy, when nslab uses one.
    pub(crate) fn node_v2_dir(&self, lab: &str, node: &str) -> Option<PathBuf> {
        (self.hierarchies.iter())
            .zip(self.lab_dirs(lab))
            .find(|(h, _)| h.version() == 2)
            .map(|(_, d)| d.join(node))
    }

    /// The directory of a node in each hierarchy.
    pub(crate) fn node_dirs(&self, lab: &str, node: &str) -> Vec<PathBuf> {
        self.lab_dirs(lab)
            .into_iter()
            .map(|d| d.join(node))
            .collect()
    }

    /// A node's memory limit in bytes; `None` for no limit (or no cgroup).
    pub(crate) fn memory_limit(&self, lab: &str, node: &str) -> Option<u64> {
        self.hierarchies
            .iter()
            .zip(self.node_dirs(lab, node))
            .find_map(|(h, dir)| h.memory_limit(&dir))
    }

    /// The memory a node's cgroup accounts, in bytes; `None` where no
    /// hierarchy nslab uses counts memory.
    pub(crate) fn memory_usage(&self, lab: &str, node: &str) -> Option<u64> {
        self.hierarchies
            .iter()
            .zip(self.node_dirs(lab, node))
            .find_map(|(h, dir)| h.memory_usage(&dir))
    }

    /// Labs that have a directory under `nslab/` in some hierarchy.
    pub(crate) fn labs(&self) -> Vec<String> {
        let mut labs = Vec::new();
        for h in &self.hierarchies {
            let Ok(entries) = std::fs::read_dir(h.root().join(NSLAB_DIR)) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir())
                    && let Ok(name) = e.file_name().into_string()
                {
                    labs.push(name);
                }
            }
        }
        labs.sort();
        labs.dedup();
        labs
    }

    /// Removes one node's cgroups, waiting up to `wait` for its processes
    /// to leave them; how many went.
    pub(crate) fn remove_node(
        &self,
        lab: &str,
        node: &str,
        wait: Duration,
    ) -> Result<usize, CgroupError> {
        let deadline = Instant::now() + wait;
        let mut removed = 0;
        for dir in self.node_dirs(lab, node) {
            if dir.exists() {
                remove_tree(&dir, deadline, wait)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes `nslab/LAB` and everything below it in every hierarchy,
    /// waiting up to `wait` for processes still leaving, then `nslab/` when
    /// nothing else is in it. Returns how many node cgroups went, and what
    /// could not be removed.
    pub(crate) fn remove_lab(&self, lab: &str, wait: Duration) -> (usize, Vec<CgroupError>) {
        let deadline = Instant::now() + wait;
        let mut removed = 0;
        let mut errors = Vec::new();
        for dir in self.lab_dirs(lab) {
            if !dir.exists() {
                continue;
            }
            let nodes = subdirs(&dir);
            match remove_tree(&dir, deadline, wait) {
                Ok(()) => removed += nodes,
                Err(e) => errors.push(e),
            }
            if let Some(top) = dir.parent() {
                // Another lab's cgroups keep it: not an error.
                let _ = std::fs::remove_dir(top);
            }
        }
        (removed, errors)
    }
}

/// mkdir, accepting a directory already there (another share of the same
/// `up`, or `nslab/` of another lab).
fn make_dir(dir: &Path) -> Result<(), CgroupError> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_at(dir)(e)),
    }
}

fn subdirs(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .count()
        })
        .unwrap_or(0)
}

/// rmdir of a cgroup and, first, of the cgroups below it. A cgroup is busy
/// while a process (even one exiting) is in it: retried until `deadline`.
fn remove_tree(dir: &Path, deadline: Instant, wait: Duration) -> Result<(), CgroupError> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path(), deadline, wait)?;
            }
        }
    }
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                if Instant::now() >= deadline {
                    return Err(CgroupError::Busy {
                        path: dir.to_path_buf(),
                        waited: wait,
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(io_at(dir)(e)),
        }
    }
}

/// Octal escapes of mountinfo (`\040` for a space).
pub(crate) fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4);
        if bytes[i] == b'\\'
            && let Some(digits) = octal
            && digits.iter().all(|d| (b'0'..=b'7').contains(d))
        {
            out.push(
                digits
                    .iter()
                    .fold(0u8, |v, d| v.wrapping_mul(8).wrapping_add(d - b'0')),
            );
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `cgroup.procs` files of the nslab cgroups that `pid` is in (from
/// /proc/PID/cgroup, read in our cgroup namespace), open for writing: a
/// process that writes `0` into each joins the node of `pid`. Empty for a
/// process outside nslab's cgroups (a bridge's init).
pub(crate) fn join_files_of(pid: i32) -> io::Result<Vec<File>> {
    let cgroups = Cgroups::detect().map_err(|e| match e {
        CgroupError::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    })?;
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let prefix = format!("/{NSLAB_DIR}/");
    let mut files = Vec::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !path.starts_with(&prefix) {
            continue;
        }
        let Some(h) = cgroups
            .hierarchies
            .iter()
            .find(|h| h.is_line_of(controllers))
        else {
            continue;
        };
        let procs = h.root().join(&path[1..]).join(PROCS);
        files.push(File::options().write(true).open(procs)?);
    }
    Ok(files)
}

/// Writes the calling process into each `cgroup.procs` (`0` is the
/// writer: it works in any pid namespace).
pub(crate) fn join_self(procs: &[PathBuf]) -> Result<(), CgroupError> {
    for path in procs {
        std::fs::write(path, "0").map_err(io_at(path))?;
    }
    Ok(())
}

/// Reads a cgroup file as trimmed text.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(io_at(path))
}

/// Writes a cgroup file.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(io_at(path))
}

#[cfg(test)]
mod tests;
