//! `down`: remove everything a lab made, from its state and from the marks
//! the kernel still shows, collecting every error and going on.
//!
//! Inits are ended first: with its last holder gone the kernel destroys a
//! namespace with all its interfaces in one batch, so no link is deleted one
//! by one (except host-side ends still there).

use crate::spec::LabName;
use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;

use super::marks::{HostLinks, marked_netns_names};
use super::seam::{Kernel, RealKernel};
use super::{LabError, Progress};
use crate::kernel::cgroup::Cgroups;
use crate::kernel::process;
use crate::plan::netns_name;
use crate::state::{self, Entry, LabLock};

/// How long an init gets to exit on SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
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
    /// Node cgroups removed (one per node and cgroup hierarchy).
    pub cgroups: usize,
    /// Host id blocks of user-namespaced nodes given back.
    pub id_blocks: usize,
    /// The lab's block of the host's `/etc/hosts` (`up --hosts`) taken out.
    pub host_names: bool,
    pub state: bool,
    pub errors: Vec<String>,
}

impl DownReport {
    pub fn summary(&self) -> String {
        format!(
            "removed {} node(s), {} netns name(s), {} host link(s), {} cgroup(s){}{}{}",
            self.nodes,
            self.netns_names,
            self.host_links,
            self.cgroups,
            match self.id_blocks {
                0 => String::new(),
                n => format!(", {n} id block(s)"),
            },
            match self.host_names {
                true => ", its names in /etc/hosts",
                false => "",
            },
            if self.state { " and its state" } else { "" }
        )
    }

    pub fn is_empty(&self) -> bool {
        self.nodes == 0
            && self.netns_names == 0
            && self.host_links == 0
            && self.cgroups == 0
            && self.id_blocks == 0
            && !self.host_names
            && !self.state
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
pub fn down(lab: &LabName) -> Result<DownReport, LabError> {
    down_with(lab, &Progress::default())
}

/// [`down`], telling `progress` how it advances.
pub(crate) fn down_with(lab: &LabName, progress: &Progress) -> Result<DownReport, LabError> {
    let lab = lab.as_str();
    let lock = LabLock::acquire(lab, || {
        eprintln!("nslab: waiting for another nslab working on lab {lab}")
    })?;
    let report = teardown_locked(&RealKernel, lab, progress);
    // Released whatever happened: a lock file must not outlive the lab.
    lock.release_and_remove();
    state::remove_root_if_empty();
    report?.into_result()
}

/// Every lab on this host: those with state and those whose marks the
/// kernel still shows (running inits, marked /run/netns names, marked host
/// links).
pub fn find_labs() -> Result<Vec<String>, LabError> {
    let mut labs: BTreeSet<String> = state::list_labs()?.into_iter().collect();
    let inits = process::find_inits(None).map_err(|source| LabError::Io {
        what: "scan /proc".into(),
        source,
    })?;
    labs.extend(
        inits
            .into_iter()
            .filter(|i| process::is_init_of(i.pid, &i.lab, &i.node))
            .map(|i| i.lab),
    );
    labs.extend(marked_netns_names(|_| true)?.into_iter().map(|m| m.lab));
    labs.extend(HostLinks::open()?.marked_labs()?);
    // Id blocks lent to a lab's nodes carry its name.
    labs.extend(
        state::claims_in(std::path::Path::new(state::STATE_ROOT))?
            .into_iter()
            .map(|claim| claim.lab),
    );
    // A cgroup directory is named after its lab (`nslab/LAB`).
    labs.extend(
        Cgroups::detect()?
            .labs()
            .into_iter()
            .filter(|lab| crate::spec::is_valid_name(lab)),
    );
    Ok(labs.into_iter().collect())
}

/// Tears down every lab [`find_labs`] finds.
pub(crate) fn down_all(progress: &Progress) -> Result<Vec<DownReport>, LabError> {
    let labs = find_labs()?;
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for lab in labs {
        match LabName::new(lab)
            .map_err(LabError::from)
            .and_then(|lab| down_with(&lab, progress))
        {
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
pub(super) fn teardown_locked<K: Kernel>(
    kernel: &K,
    lab: &str,
    progress: &Progress,
) -> Result<DownReport, LabError> {
    let mut report = DownReport {
        lab: lab.to_string(),
        ..Default::default()
    };
    let mut note = |e: &dyn std::fmt::Display| report.errors.push(e.to_string());
    let recorded = state::read_in(kernel.state_root(), lab).unwrap_or_else(|e| {
        note(&e);
        None
    });
    let recorded = recorded.unwrap_or_default();
    let standing = recorded.standing();

    // Inits: from the journal, and from /proc those it missed (a crash
    // between clone and record, or lost state).
    let mut candidates: Vec<(String, i32)> = recorded.init_pids();
    match kernel.find_inits(lab) {
        Ok(found) => candidates.extend(found.into_iter().map(|f| (f.node, f.pid))),
        Err(e) => note(&format!("scan /proc: {e}")),
    }
    candidates.sort_by_key(|(_, pid)| *pid);
    candidates.dedup_by_key(|(_, pid)| *pid);
    // Names: ours when bound to the namespace of one of this lab's live
    // inits (one stat each), else when the namespace's `lo` carries the
    // mark of this lab and of the node the name stands for. A journaled
    // name that is not bound is our own reservation. Nothing else is ours,
    // whatever the journal says (it may predate a failed reservation).
    let mut names = BTreeSet::new();
    let mut pinned = Vec::new();
    for (node, pid) in candidates {
        let name = netns_name(lab, &node);
        match kernel.pin_init(pid, lab, &node, &name) {
            Ok(Some((p, bound))) => {
                if bound {
                    names.insert(name);
                }
                pinned.push(p);
            }
            Ok(None) => {}
            Err(e) => note(&format!("node {node} (pid {pid}): {e}")),
        }
    }
    let journaled: BTreeSet<&String> = standing
        .iter()
        .filter_map(|e| match e {
            Entry::NetnsName { name } => Some(name),
            _ => None,
        })
        .collect();
    for name in &journaled {
        if !kernel.netns_name_is_bound(name) && !names.contains(*name) {
            names.insert((*name).clone());
        }
    }
    let prefix = format!("{lab}-");
    match kernel.marked_netns_names(&|n| n.starts_with(&prefix) && !names.contains(n)) {
        Ok(marked) => names.extend(
            marked
                .into_iter()
                .filter(|m| m.lab == lab && m.name == netns_name(lab, &m.node))
                .map(|m| m.name),
        ),
        Err(e) => note(&e),
    }

    // Host-side ends, listed before the inits end.
    let host = kernel.open_host_links();
    let marked_links = match &host {
        Ok(host) => kernel.marked_host_links(host, lab).unwrap_or_else(|e| {
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
    // its interfaces, at once.
    let ending = progress.phase("ending nodes", pinned.len());
    let (ended, errors) = kernel.terminate(pinned, GRACE);
    (0..ended).for_each(|_| ending.tick());
    report.nodes = ended;
    for e in errors {
        note(&format!("end node inits: {e}"));
    }
    let unnaming = progress.phase("names", names.len());
    for name in &names {
        unnaming.tick();
        match kernel.remove_netns_name(name) {
            Ok(true) => report.netns_names += 1,
            Ok(false) => {}
            Err(e) => note(&e),
        }
    }
    if let Ok(host) = &host {
        for link in &marked_links {
            match kernel.delete_host_link(host, link) {
                Ok(true) => report.host_links += 1,
                Ok(false) => {}
                Err(e) => note(&e),
            }
        }
        // Ends created but not yet marked when `up` died: the kernel removes
        // them with their peer's namespace. Not ours to delete by name.
        match kernel.wait_host_links_gone(host, journaled_links, HOST_LINK_WAIT) {
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

    // The inits are gone, and with them their pid namespaces: the cgroups
    // empty as the kernel ends what was left in them.
    let (cgroups, errors) = kernel.remove_cgroups(lab);
    report.cgroups = cgroups;
    for e in errors {
        note(&e);
    }
    // Their processes are gone with them: the ids are free to lend again.
    let (id_blocks, errors) = kernel.release_ids(lab);
    report.id_blocks = id_blocks;
    for e in errors {
        note(&e);
    }

    match kernel.set_host_names(lab, None) {
        Ok(removed) => report.host_names = removed,
        Err(e) => note(&e),
    }
    match state::remove_in(kernel.state_root(), lab) {
        Ok(removed) => report.state = removed,
        Err(e) => note(&e),
    }
    Ok(report)
}
