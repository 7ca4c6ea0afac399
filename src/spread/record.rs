//! The controller's record of a spread lab, `/run/nslab/.spread/LAB.json`:
//! its hosts and where each node is. Written before any host is asked to
//! build anything, removed once every host's part is down, so that `down`
//! finds every host even after a controller that was killed midway.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::SpreadError;
use crate::spec::Machine;

/// The folder of the records, under nslab's state root.
const FOLDER: &str = ".spread";

/// A spread lab, as the controller knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub lab: String,
    /// The topology file, as given to `up`.
    pub source: Option<PathBuf>,
    /// Every host of the file, in file order (those without nodes too:
    /// `down` asks them all).
    pub hosts: IndexMap<String, Machine>,
    /// Each node's host.
    pub nodes: IndexMap<String, String>,
    /// The links between hosts, with their VNIs (kept by `apply`).
    pub tunnels: Vec<crate::plan::spread::Tunnel>,
    /// The file's `scenario:`, which the controller plays
    /// (`run-scenario`): its steps name nodes of every host.
    #[serde(default, skip_serializing_if = "crate::spec::Scenario::is_empty")]
    pub scenario: crate::spec::Scenario,
    /// The hosts that may hold a part: those with nodes, and those an
    /// unfinished `up` or `apply` asked to build one. `down` asks these,
    /// and no other host (one without a part may run a lab of its own of
    /// that name).
    #[serde(default)]
    pub parts: Vec<String>,
}

impl Record {
    /// The record of lab `t` built as `parts` (each host's nodes, every
    /// such host holding its part), with its `hosts` and `tunnels`.
    pub(super) fn of(
        t: &crate::spec::Topology,
        hosts: &IndexMap<String, Machine>,
        parts: &[crate::plan::spread::Part],
        tunnels: Vec<crate::plan::spread::Tunnel>,
    ) -> Record {
        let placed: IndexMap<&str, &str> = (parts.iter())
            .flat_map(|p| {
                p.topology
                    .nodes
                    .keys()
                    .map(|n| (n.as_str(), p.host.as_str()))
            })
            .collect();
        Record {
            lab: t.name.clone(),
            source: std::path::absolute(&t.source).ok(),
            hosts: hosts.clone(),
            nodes: (t.nodes.keys())
                .map(|n| {
                    (
                        n.clone(),
                        placed
                            .get(n.as_str())
                            .copied()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect(),
            tunnels,
            scenario: t.scenario.clone(),
            parts: parts.iter().map(|p| p.host.clone()).collect(),
        }
    }

    /// The machine `node` is on.
    pub fn host_of(&self, node: &str) -> Option<(&str, &Machine)> {
        let host = self.nodes.get(node)?;
        Some((host.as_str(), self.hosts.get(host)?))
    }
}

fn folder() -> PathBuf {
    Path::new(crate::state::STATE_ROOT).join(FOLDER)
}

/// The records' folder, root's alone, made if missing.
fn make_folder() -> Result<(), SpreadError> {
    let folder = folder();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&folder)
        .map_err(io_error(&folder))
}

fn path(lab: &str) -> PathBuf {
    folder().join(format!("{lab}.json"))
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> SpreadError + '_ {
    move |source| SpreadError::Record {
        path: path.to_path_buf(),
        source,
    }
}

/// The record of `lab`, if the controller has one (`lab` is a checked
/// name).
pub fn read(lab: &str) -> Result<Option<Record>, SpreadError> {
    let path = path(lab);
    match fs::read(&path) {
        Ok(bytes) => {
            let mut record: Record =
                serde_json::from_slice(&bytes).map_err(|e| SpreadError::Record {
                    path,
                    source: io::Error::new(io::ErrorKind::InvalidData, e),
                })?;
            // A record without `parts`: the hosts with nodes hold them.
            if record.parts.is_empty() {
                let mut hosts: Vec<String> = record.nodes.values().cloned().collect();
                hosts.sort();
                hosts.dedup();
                record.parts = hosts;
            }
            Ok(Some(record))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(&path)(e)),
    }
}

/// Writes the record (replacing it whole).
pub(super) fn write(record: &Record) -> Result<(), SpreadError> {
    make_folder()?;
    let path = path(&record.lab);
    let bytes = serde_json::to_vec_pretty(record).map_err(|e| SpreadError::Record {
        path: path.clone(),
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    })?;
    crate::state::write_atomic(&path, &bytes).map_err(|e| SpreadError::Record {
        path: path.clone(),
        source: io::Error::other(e.to_string()),
    })
}

/// Removes the record, and the folder when it was the last.
pub(super) fn remove(lab: &str) -> Result<(), SpreadError> {
    let path = path(lab);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&path)(e)),
    }
    let _ = fs::remove_file(lock_path(lab));
    let _ = fs::remove_dir(folder());
    crate::state::remove_root_if_empty();
    Ok(())
}

/// The labs the controller has records of, sorted.
pub fn list() -> Result<Vec<String>, SpreadError> {
    let folder = folder();
    let entries = match fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(&folder)(e)),
    };
    let mut labs: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".json").map(str::to_owned))
        .filter(|name| crate::spec::is_valid_name(name))
        .collect();
    labs.sort();
    Ok(labs)
}

fn lock_path(lab: &str) -> PathBuf {
    folder().join(format!("{lab}.lock"))
}

/// The controller's lock of `lab`: one `up` or `down` of a spread lab at a
/// time (each host's nslab locks its own part as well).
pub(super) fn lock(lab: &str) -> Result<Flock<File>, SpreadError> {
    make_folder()?;
    let path = lock_path(lab);
    loop {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_error(&path))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| io_error(&path)(e.into()))?;
        // `remove` takes the file away under its holder's lock: a lock on
        // a file no longer at the path is no lock; take the new one.
        use std::os::unix::fs::MetadataExt;
        let held = lock.metadata().map_err(io_error(&path))?;
        match fs::metadata(&path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => return Ok(lock),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&path)(e)),
        }
    }
}
