//! `down`: remove everything a lab made, from its state and from the marks
//! the kernel still shows, collecting every error and going on.
//!
//! Inits are ended first: with its last holder gone the kernel destroys a
//! namespace with all its interfaces in one batch, so no link is deleted one
//! by one (except host-side ends still there).

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;

use super::{LabError, host_link_alias, runtime};
use crate::kernel::namespace::{self, NsKind};
use crate::kernel::netlink::link::{DeleteLink, LinkInfo, dump_links};
use crate::kernel::netlink::open_sockets;
use crate::kernel::process::{self, PinnedProcess};
use crate::plan::netns_name;
use crate::state::{self, Entry, LabLock};

/// How long an init gets to exit on SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

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

/// Tears down every lab: those with state and those only their inits show.
pub fn down_all() -> Result<Vec<DownReport>, LabError> {
    let mut labs: BTreeSet<String> = state::list_labs()?.into_iter().collect();
    let inits = process::find_inits(None).map_err(|source| LabError::Io {
        what: "scan /proc".into(),
        source,
    })?;
    labs.extend(inits.into_iter().map(|i| i.lab));
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
    let recorded = match state::read(lab) {
        Ok(recorded) => recorded.unwrap_or_default(),
        Err(e) => {
            report.errors.push(e.to_string());
            Default::default()
        }
    };

    // Inits: from the journal, and any the journal missed (a crash between
    // clone and record) from /proc.
    let mut candidates: Vec<(String, i32)> = recorded.init_pids();
    match process::find_inits(Some(lab)) {
        Ok(found) => candidates.extend(found.into_iter().map(|f| (f.node, f.pid))),
        Err(e) => report.errors.push(format!("scan /proc: {e}")),
    }
    candidates.sort_by_key(|(_, pid)| *pid);
    candidates.dedup_by_key(|(_, pid)| *pid);

    // Names: those the journal says we reserved, plus a node's expected name
    // when it is provably bound to that node's namespace.
    let mut names: BTreeSet<String> = recorded
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::NetnsName { name } => Some(name.clone()),
            _ => None,
        })
        .collect();

    // Host-side ends, listed before the inits end: the kernel removes most
    // of them itself once their peer's namespace is gone.
    let host = HostLinks::open(lab);
    let marked = match &host {
        Ok(host) => host.marked().unwrap_or_else(|e| {
            report.errors.push(e.to_string());
            Vec::new()
        }),
        Err(e) => {
            report.errors.push(e.to_string());
            Vec::new()
        }
    };

    let mut pinned = Vec::new();
    for (node, pid) in candidates {
        match PinnedProcess::pin_init(pid, lab, &node) {
            Ok(Some(p)) => {
                let name = netns_name(lab, &node);
                let own = namespace::ns_inode(pid, NsKind::Net).ok();
                if own.is_some() && namespace::netns_name_inode(&name) == own {
                    names.insert(name);
                }
                pinned.push(p);
            }
            Ok(None) => {}
            Err(e) => report.errors.push(format!("node {node} (pid {pid}): {e}")),
        }
    }
    match process::terminate(pinned, GRACE) {
        Ok(count) => report.nodes = count,
        Err(e) => report.errors.push(format!("end node inits: {e}")),
    }

    for name in &names {
        match namespace::remove_netns_name(name) {
            Ok(true) => report.netns_names += 1,
            Ok(false) => {}
            Err(e) => report.errors.push(e.to_string()),
        }
    }

    if let Ok(host) = &host {
        for link in &marked {
            match host.delete(link) {
                Ok(()) => report.host_links += 1,
                Err(e) => report.errors.push(e.to_string()),
            }
        }
    }

    match state::remove(lab) {
        Ok(removed) => report.state = removed,
        Err(e) => report.errors.push(e.to_string()),
    }
    Ok(report)
}

/// The host namespace's links that carry a lab's mark.
struct HostLinks {
    alias: String,
    runtime: tokio::runtime::Runtime,
    socket: rtnetlink::Handle,
}

impl HostLinks {
    fn open(lab: &str) -> Result<Self, LabError> {
        let runtime = runtime()?;
        let socket = runtime
            .block_on(async { open_sockets(&[("the host namespace".to_string(), None)]) })?
            .remove(0);
        Ok(Self {
            alias: host_link_alias(lab),
            runtime,
            socket,
        })
    }

    fn marked(&self) -> Result<Vec<LinkInfo>, LabError> {
        let links = self
            .runtime
            .block_on(dump_links(&self.socket, "the host namespace"))?;
        Ok(links
            .into_iter()
            .filter(|l| l.alias.as_deref() == Some(self.alias.as_str()))
            .collect())
    }

    /// Deletes a marked link if it is still there.
    fn delete(&self, link: &LinkInfo) -> Result<(), LabError> {
        let request = DeleteLink {
            index: link.index,
            label: format!("host:{}", link.name),
        };
        self.runtime.block_on(request.execute(&self.socket))?;
        Ok(())
    }
}
