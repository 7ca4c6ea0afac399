//! `down`: remove everything a lab made, from its state and from the marks
//! the kernel still shows, collecting every error and going on.
//!
//! Inits are ended first: with its last holder gone the kernel destroys a
//! namespace with all its interfaces in one batch, so no link is deleted one
//! by one (except host-side ends still there).

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;

use super::LabError;
use super::marks::{HostLinks, marked_netns_names};
use crate::kernel::namespace;
use crate::kernel::process::{self, PinnedProcess};
use crate::state::{self, Entry, LabLock};

/// How long an init gets to exit on SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
/// How many times `down` looks for inits.
const ROUNDS: usize = 3;
/// How long to wait for the kernel to remove a host end whose peer's
/// namespace is gone.
const HOST_LINK_WAIT: Duration = Duration::from_secs(5);

/// What `down` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownReport {
    pub lab: String,
    pub nodes: usize,
    pub netns_names: usize,
    pub host_links: usize,
    pub state: bool,
    pub errors: Vec<String>,
}

impl DownReport {
    pub fn summary(&self) -> String {
        format!(
            "removed {} node(s), {} netns name(s), {} host link(s){}",
            self.nodes,
            self.netns_names,
            self.host_links,
            if self.state { " and its state" } else { "" }
        )
    }

    pub fn is_empty(&self) -> bool {
        self.nodes == 0 && self.netns_names == 0 && self.host_links == 0 && !self.state
    }

    pub(super) fn into_result(self) -> Result<Self, LabError> {
        if self.errors.is_empty() {
            Ok(self)
        } else {
            Err(LabError::Teardown {
                lab: self.lab,
                errors: self.errors,
            })
        }
    }
}

/// Tears a lab down. Succeeds on a lab that is half built or already gone.
pub fn down(lab: &str) -> Result<DownReport, LabError> {
    let lock = LabLock::acquire(lab, || {
        eprintln!("nslab: waiting for another nslab working on lab {lab}")
    })?;
    let report = teardown_locked(lab)?.into_result()?;
    lock.release_and_remove();
    state::remove_root_if_empty();
    Ok(report)
}

/// Tears down every lab: those with state and those whose marks the kernel
/// still shows (running inits, marked /run/netns names, marked host links).
pub fn down_all() -> Result<Vec<DownReport>, LabError> {
    let mut labs: BTreeSet<String> = state::list_labs()?.into_iter().collect();
    let inits = process::find_inits(None).map_err(|source| LabError::Io {
        what: "scan /proc".into(),
        source,
    })?;
    labs.extend(inits.into_iter().map(|i| i.lab));
    labs.extend(marked_netns_names(|_| true)?.into_iter().map(|m| m.lab));
    labs.extend(HostLinks::open()?.marked_labs()?);
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for lab in labs {
        match down(&lab) {
            Ok(report) => reports.push(report),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(reports)
    } else {
        Err(LabError::Teardown {
            lab: "(all)".into(),
            errors,
        })
    }
}

/// The teardown itself; the caller holds the lab's lock. Errors are
/// collected in the report, not returned early.
pub(super) fn teardown_locked(lab: &str) -> Result<DownReport, LabError> {
    let mut report = DownReport {
        lab: lab.to_string(),
        ..Default::default()
    };
    let mut note = |e: &dyn std::fmt::Display| report.errors.push(e.to_string());
    let recorded = state::read(lab).unwrap_or_else(|e| {
        note(&e);
        None
    });
    let recorded = recorded.unwrap_or_default();
    let standing = recorded.standing();

    // Inits: from the journal, and from /proc those it missed (a crash
    // between clone and record, or lost state).
    let mut candidates: Vec<(String, i32)> = recorded.init_pids();
    match process::find_inits(Some(lab)) {
        Ok(found) => candidates.extend(found.into_iter().map(|f| (f.node, f.pid))),
        Err(e) => note(&format!("scan /proc: {e}")),
    }
    candidates.sort_by_key(|(_, pid)| *pid);
    candidates.dedup_by_key(|(_, pid)| *pid);
    let mut pinned = Vec::new();
    for (node, pid) in candidates {
        match PinnedProcess::pin_init(pid, lab, &node) {
            Ok(Some(p)) => pinned.push(p),
            Ok(None) => {}
            Err(e) => note(&format!("node {node} (pid {pid}): {e}")),
        }
    }

    // Names: those the journal says we reserved, and any other `LAB-*`
    // name whose namespace carries one of this lab's node marks.
    let mut names: BTreeSet<String> = standing
        .iter()
        .filter_map(|e| match e {
            Entry::NetnsName { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    let prefix = format!("{lab}-");
    match marked_netns_names(|n| n.starts_with(&prefix) && !names.contains(n)) {
        Ok(marked) => names.extend(marked.into_iter().filter(|m| m.lab == lab).map(|m| m.name)),
        Err(e) => note(&e),
    }

    // Host-side ends, listed before the inits end.
    let host = HostLinks::open();
    let marked_links = match &host {
        Ok(host) => host.marked(lab).unwrap_or_else(|e| {
            note(&e);
            Vec::new()
        }),
        Err(e) => {
            note(e);
            Vec::new()
        }
    };
    let journaled_links: Vec<String> = standing
        .iter()
        .filter_map(|e| match e {
            Entry::HostLink { name } => Some(name.clone()),
            _ => None,
        })
        .filter(|name| !marked_links.iter().any(|l| &l.name == name))
        .collect();

    // With its last holder gone the kernel destroys each namespace, and all
    // its interfaces, at once. An init that `up` cloned just before it died
    // may not have exec'd yet when we first looked (its command line is
    // still `nslab up`): look again until a scan finds none.
    for round in 0..ROUNDS {
        match process::terminate(std::mem::take(&mut pinned), GRACE) {
            Ok(count) => report.nodes += count,
            Err(e) => note(&format!("end node inits: {e}")),
        }
        if round + 1 < ROUNDS {
            std::thread::sleep(Duration::from_millis(5));
        }
        match process::find_inits(Some(lab)) {
            Ok(found) => pinned.extend(
                found
                    .into_iter()
                    .filter_map(|f| PinnedProcess::pin_init(f.pid, lab, &f.node).ok().flatten()),
            ),
            Err(e) => note(&format!("scan /proc: {e}")),
        }
        if pinned.is_empty() {
            break;
        }
    }
    for name in &names {
        match namespace::remove_netns_name(name) {
            Ok(true) => report.netns_names += 1,
            Ok(false) => {}
            Err(e) => note(&e),
        }
    }
    if let Ok(host) = &host {
        for link in &marked_links {
            match host.delete(link) {
                Ok(()) => report.host_links += 1,
                Err(e) => note(&e),
            }
        }
        // Ends created but not yet marked when `up` died: the kernel removes
        // them with their peer's namespace. Not ours to delete by name.
        match host.wait_gone(journaled_links, HOST_LINK_WAIT) {
            Ok(left) => {
                for name in left {
                    note(&format!(
                        "host link {name} is still there and does not carry the lab's mark; left alone"
                    ));
                }
            }
            Err(e) => note(&e),
        }
    }

    match state::remove(lab) {
        Ok(removed) => report.state = removed,
        Err(e) => note(&e),
    }
    Ok(report)
}
