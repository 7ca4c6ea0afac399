//! What a lab made, on disk under /run/nslab/LAB/ (tmpfs: it goes at reboot
//! together with the namespaces it describes).
//!
//! `plan.json` is written once, atomically, before the first kernel object;
//! `journal` gets one line per object, appended as the object is created, so
//! `down` knows everything a lab made even when `up` was killed halfway.

mod ids;
mod lock;

pub(crate) use ids::{claim_in, claims_in, release_in, release_nodes_in};
pub(crate) use lock::LabLock;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::Plan;

/// Root of all state.
pub(crate) const STATE_ROOT: &str = "/run/nslab";

/// The lab's `/etc/hosts`, in its state folder.
const HOSTS: &str = "hosts";

/// Replaces the text of an open file without replacing the file (mounts
/// on it, such as a node's `/etc/hosts`, stay). A reader, or a process
/// killed midway, never sees a torn line: shorter text is first written
/// padded to the old length with a trailing comment line, then cut.
pub(crate) fn rewrite_in_place(file: &mut File, text: &str) -> io::Result<()> {
    use std::io::Seek;
    let old = file.metadata()?.len();
    let mut bytes = text.as_bytes().to_vec();
    let short = usize::try_from(old)
        .unwrap_or(usize::MAX)
        .saturating_sub(bytes.len());
    match short {
        0 => {}
        1 => bytes.push(b'\n'),
        n => {
            bytes.push(b'#');
            bytes.resize(bytes.len() + n - 2, b' ');
            bytes.push(b'\n');
        }
    }
    file.seek(io::SeekFrom::Start(0))?;
    file.write_all(&bytes)?;
    file.set_len(text.len() as u64)?;
    file.sync_data()
}

/// Where the nodes of `lab` find their `/etc/hosts` (under the real state
/// root; `lab` is a validated name).
pub(crate) fn hosts_path(lab: &str) -> PathBuf {
    Path::new(STATE_ROOT).join(lab).join(HOSTS)
}

/// The plan a lab runs, in its folder.
const PLAN: &str = "plan.json";
/// The plan an `apply` is making, there until it has finished.
const PENDING_PLAN: &str = "plan.next.json";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("lab {0} already exists (use `nslab down --lab {0}` or `up --reconfigure`)")]
    Exists(String),
    #[error("{0:?} is not a valid lab name")]
    BadName(String),
    #[error("{path}: unreadable state: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "user namespaces: the id range {range} has blocks free for {free} of {wanted} user-namespaced node(s) (running nodes hold the others); give a larger one with --userns-range START:COUNT"
    )]
    NoIds {
        range: String,
        wanted: usize,
        free: usize,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One object a lab made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Entry {
    /// A node init was started.
    Init { node: String, pid: i32 },
    /// /run/netns/NAME is about to be bound (recorded before, so a crash in
    /// between still leaves a trace).
    NetnsName { name: String },
    /// A veth end in the host namespace is about to be created.
    HostLink { name: String },
    /// An earlier entry turned out not to be ours (its creation failed, say
    /// because the name was taken): teardown must leave that object alone.
    Retracted(Box<Entry>),
    /// `up` finished.
    Ready,
    /// A node was stopped on purpose (`node stop`): its init ended, its net
    /// namespace kept. An `Init` of the node recorded later starts it again.
    Stopped { node: String },
    /// `apply` removed a node (an `Init` of it recorded later is a new
    /// one).
    Removed { node: String },
    /// One change `apply` finished, as `apply --dry-run` words it (`+ node
    /// r4`), with when (milliseconds since the epoch); `events` shows them.
    Step { text: String, at_ms: u64 },
}

/// Everything recorded about a lab.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorded {
    pub plan: Option<Plan>,
    /// The plan of an `apply` that did not finish: the kernel is somewhere
    /// between `plan` and this one.
    pub pending: Option<Plan>,
    pub entries: Vec<Entry>,
}

impl Entry {
    /// A [`Entry::Step`] done now.
    pub(crate) fn step(text: impl Into<String>) -> Entry {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Entry::Step {
            text: text.into(),
            at_ms,
        }
    }
}

impl Recorded {
    pub(crate) fn is_ready(&self) -> bool {
        self.entries.contains(&Entry::Ready)
    }

    /// Entries that still stand: neither retractions nor retracted.
    pub(crate) fn standing(&self) -> Vec<&Entry> {
        let retracted: Vec<&Entry> = self
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Retracted(inner) => Some(inner.as_ref()),
                _ => None,
            })
            .collect();
        self.entries
            .iter()
            .filter(|e| !matches!(e, Entry::Retracted(_)) && !retracted.contains(e))
            .collect()
    }

    /// Nodes stopped on purpose and not started since.
    pub(crate) fn stopped_nodes(&self) -> Vec<String> {
        let mut stopped: Vec<String> = Vec::new();
        for entry in &self.entries {
            match entry {
                Entry::Stopped { node } if !stopped.contains(node) => stopped.push(node.clone()),
                Entry::Init { node, .. } | Entry::Removed { node } => stopped.retain(|n| n != node),
                _ => {}
            }
        }
        stopped
    }

    /// The last recorded init pid of each node (a node recorded again moves
    /// to the end, as its latest record).
    pub(crate) fn init_pids(&self) -> Vec<(String, i32)> {
        let mut pids: indexmap::IndexMap<&str, i32> = indexmap::IndexMap::new();
        for entry in &self.entries {
            match entry {
                Entry::Init { node, pid } => {
                    pids.shift_remove(node.as_str());
                    pids.insert(node, *pid);
                }
                Entry::Removed { node } => {
                    pids.shift_remove(node.as_str());
                }
                _ => {}
            }
        }
        pids.into_iter()
            .map(|(node, pid)| (node.to_string(), pid))
            .collect()
    }
}

/// The state folder of one lab.
#[derive(Debug)]
pub(crate) struct StateDir {
    dir: PathBuf,
    journal: File,
}

/// ROOT/LAB (ROOT is /run/nslab, or a test's own folder), for a valid lab
/// name only: names come from command lines and aliases too, and `..`
/// must never become a path.
pub(crate) fn lab_dir_in(root: &Path, lab: &str) -> Result<PathBuf, StateError> {
    if crate::spec::is_valid_name(lab) {
        Ok(root.join(lab))
    } else {
        Err(StateError::BadName(lab.to_string()))
    }
}

/// Creates the state root (root only) if needed.
fn ensure_root_in(root: &Path) -> Result<(), StateError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(io_error(root))
}

impl StateDir {
    /// Creates the folder of a new lab under `root` and writes its plan.
    /// Fails if the lab exists.
    pub(crate) fn create_in(root: &Path, plan: &Plan) -> Result<Self, StateError> {
        ensure_root_in(root)?;
        let dir = lab_dir_in(root, &plan.lab)?;
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(plan.lab.clone()));
            }
            other => other.map_err(io_error(&dir))?,
        }
        write_plan(&dir.join(PLAN), plan)?;
        let path = dir.join("journal");
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error(&path))?;
        Ok(Self { dir, journal })
    }

    /// The folder of a lab that exists, to record more in its journal.
    pub(crate) fn open_in(root: &Path, lab: &str) -> Result<Self, StateError> {
        let dir = lab_dir_in(root, lab)?;
        let path = dir.join("journal");
        let journal = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        Ok(Self { dir, journal })
    }

    /// Saves the plan an `apply` is about to make, before its first change.
    pub(crate) fn save_pending(&self, plan: &PlanBytes) -> Result<(), StateError> {
        write_atomic(&self.dir.join(PENDING_PLAN), &plan.0)
    }

    /// Makes the pending plan the lab's plan, in one rename: `apply` is
    /// done.
    pub(crate) fn commit_pending(&self) -> Result<(), StateError> {
        let (from, to) = (self.dir.join(PENDING_PLAN), self.dir.join(PLAN));
        fs::rename(&from, &to).map_err(io_error(&to))
    }

    /// Writes the lab's `/etc/hosts` (see [`Plan::hosts_file`]) in place:
    /// running nodes have this very file bound, so it stays one inode
    /// (written over, then cut to its length: never seen empty).
    pub(crate) fn write_hosts(&self, text: &str) -> Result<(), StateError> {
        let path = self.dir.join(HOSTS);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .map_err(io_error(&path))?;
        rewrite_in_place(&mut file, text).map_err(io_error(&path))
    }

    /// An empty file in the lab's state folder, for /run/netns names to be
    /// hard links to (see `reserve_netns_name`).
    pub(crate) fn netns_placeholder(&self) -> Result<PathBuf, StateError> {
        let path = self.dir.join("netns-placeholder");
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o444)
            .open(&path)
            .map_err(io_error(&path))?;
        Ok(path)
    }

    /// A second handle on the same journal, for a thread of its own (each
    /// record is one O_APPEND write, so records never interleave).
    pub(crate) fn try_clone(&self) -> Result<Self, StateError> {
        Ok(Self {
            dir: self.dir.clone(),
            journal: self
                .journal
                .try_clone()
                .map_err(io_error(&self.dir.join("journal")))?,
        })
    }

    /// Appends entries to the journal in one write.
    pub(crate) fn record(&mut self, entries: &[Entry]) -> Result<(), StateError> {
        let mut buf = Vec::new();
        for entry in entries {
            serde_json::to_writer(&mut buf, entry).map_err(|e| StateError::Corrupt {
                path: self.dir.clone(),
                reason: e.to_string(),
            })?;
            buf.push(b'\n');
        }
        self.journal
            .write_all(&buf)
            .map_err(io_error(&self.dir.join("journal")))
    }
}

/// Whether a lab has a state folder (it is running, or was left half
/// made), without reading it.
pub(crate) fn exists(lab: &str) -> Result<bool, StateError> {
    Ok(lab_dir_in(Path::new(STATE_ROOT), lab)?.is_dir())
}

/// Reads what is recorded of a lab; `None` if it has no state folder.
pub(crate) fn read(lab: &str) -> Result<Option<Recorded>, StateError> {
    read_in(Path::new(STATE_ROOT), lab)
}

/// [`read`] under another root.
pub(crate) fn read_in(root: &Path, lab: &str) -> Result<Option<Recorded>, StateError> {
    let dir = lab_dir_in(root, lab)?;
    if !dir.is_dir() {
        return Ok(None);
    }
    let plan = read_plan(&dir.join(PLAN))?;
    let pending = read_plan(&dir.join(PENDING_PLAN))?;
    let journal_path = dir.join("journal");
    let entries = match fs::read_to_string(&journal_path) {
        // A line cut short by a crash is skipped, not fatal.
        Ok(text) => text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_error(&journal_path)(e)),
    };
    Ok(Some(Recorded {
        plan,
        pending,
        entries,
    }))
}

/// A saved plan; `None` when there is none.
fn read_plan(path: &Path) -> Result<Option<Plan>, StateError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Corrupt {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path)(e)),
    }
}

/// Removes a lab's state folder under `root`; a missing one is fine.
pub(crate) fn remove_in(root: &Path, lab: &str) -> Result<bool, StateError> {
    let dir = lab_dir_in(root, lab)?;
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(&dir)(e)),
    }
}

/// Names of labs with a state folder.
pub(crate) fn list_labs() -> Result<Vec<String>, StateError> {
    let root = Path::new(STATE_ROOT);
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(root)(e)),
    };
    let mut labs: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| crate::spec::is_valid_name(name))
        .collect();
    labs.sort();
    Ok(labs)
}

/// Removes /run/nslab when no lab is left (best effort: another nslab may
/// be creating a lab right now, and then the folder stays).
pub(crate) fn remove_root_if_empty() {
    remove_root_if_empty_in(Path::new(STATE_ROOT));
}

/// [`remove_root_if_empty`] for another root.
pub(crate) fn remove_root_if_empty_in(root: &Path) {
    let _ = fs::remove_dir(root);
}

/// Writes a plan as JSON, atomically.
fn write_plan(path: &Path, plan: &Plan) -> Result<(), StateError> {
    write_atomic(path, &PlanBytes::of(plan)?.0)
}

/// A plan as its state file holds it: encoded apart from being written,
/// so that `apply` encodes it while it computes the difference.
#[derive(Debug)]
pub(crate) struct PlanBytes(Vec<u8>);

impl PlanBytes {
    pub(crate) fn of(plan: &Plan) -> Result<Self, StateError> {
        // Compact: a 1000-node plan is read and written again by every
        // `apply`, and half its size in white space.
        serde_json::to_vec(plan)
            .map(PlanBytes)
            .map_err(|e| StateError::Corrupt {
                path: PathBuf::from(PLAN),
                reason: e.to_string(),
            })
    }
}

/// Writes a file readable by root only, atomically: temp file, then rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let tmp = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_error(&tmp))?;
    file.write_all(bytes).map_err(io_error(&tmp))?;
    fs::rename(&tmp, path).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_init_of_a_node_wins() {
        let recorded = Recorded {
            plan: None,
            pending: None,
            entries: vec![
                Entry::Init {
                    node: "a".into(),
                    pid: 1,
                },
                Entry::Init {
                    node: "b".into(),
                    pid: 2,
                },
                Entry::Init {
                    node: "a".into(),
                    pid: 3,
                },
            ],
        };
        assert_eq!(recorded.init_pids(), vec![("b".into(), 2), ("a".into(), 3)]);
        assert!(!recorded.is_ready());
    }

    #[test]
    fn a_node_is_stopped_until_an_init_of_it_is_recorded() {
        let init = |node: &str, pid| Entry::Init {
            node: node.into(),
            pid,
        };
        let stopped = |node: &str| Entry::Stopped { node: node.into() };
        let recorded = Recorded {
            plan: None,
            pending: None,
            entries: vec![
                init("a", 10),
                init("b", 11),
                stopped("a"),
                stopped("b"),
                init("b", 12),
            ],
        };
        assert_eq!(recorded.stopped_nodes(), ["a"]);
    }

    #[test]
    fn retracted_entries_do_not_stand() {
        let taken = Entry::NetnsName { name: "x".into() };
        let ours = Entry::NetnsName { name: "y".into() };
        let recorded = Recorded {
            plan: None,
            pending: None,
            entries: vec![
                taken.clone(),
                ours.clone(),
                Entry::Retracted(Box::new(taken)),
            ],
        };
        assert_eq!(recorded.standing(), vec![&ours]);
    }

    #[test]
    fn entries_are_one_json_object_per_line() {
        let line =
            serde_json::to_string(&Entry::HostLink { name: "v0".into() }).unwrap_or_default();
        assert_eq!(line, r#"{"host_link":{"name":"v0"}}"#);
        assert_eq!(
            serde_json::to_string(&Entry::Ready).unwrap_or_default(),
            r#""ready""#
        );
    }
}
