//! Finding running labs and their nodes.

pub(super) use crate::kernel::process::is_init_of;
use std::os::fd::AsFd;

use crate::kernel::namespace::{NamespaceFds, NsKind};
use crate::kernel::process::PinnedProcess;
use crate::plan::Plan;
use crate::spec::NodeRef;
use crate::state;

use super::LabError;

/// A node whose init is alive.
#[derive(Debug, Clone)]
pub struct RunningNode {
    pub lab: String,
    pub node: String,
    pub pid: i32,
}

impl RunningNode {
    /// `LAB/NODE`, for messages.
    pub fn label(&self) -> String {
        format!("{}/{}", self.lab, self.node)
    }

    /// The node's init, pinned by a pidfd (readable once it exits).
    pub fn pin(&self) -> Result<PinnedProcess, LabError> {
        PinnedProcess::pin_init(self.pid, &self.lab, &self.node)
            .map_err(|source| LabError::Io {
                what: format!("find the init of {}", self.label()),
                source,
            })?
            .ok_or_else(|| self.not_running())
    }

    fn not_running(&self) -> LabError {
        LabError::NotRunning { node: self.label() }
    }

    /// Opens the given namespaces of the node's init, pinned by a pidfd, so
    /// that a pid reused by another process after the init died is never
    /// entered.
    pub fn open_namespaces(&self, kinds: &[NsKind]) -> Result<NamespaceFds, LabError> {
        Ok(self.pin_with_namespaces(kinds)?.1)
    }

    /// [`open_namespaces`](Self::open_namespaces), also returning the pin
    /// of the init, for a caller that goes on watching it.
    fn pin_with_namespaces(
        &self,
        kinds: &[NsKind],
    ) -> Result<(PinnedProcess, NamespaceFds), LabError> {
        let pinned = self.pin()?;
        let namespaces = NamespaceFds::open(self.pid, kinds).map_err(|source| LabError::Io {
            what: format!("open the namespaces of {}", self.label()),
            source,
        })?;
        if !pinned.is_alive() {
            return Err(self.not_running());
        }
        Ok((pinned, namespaces))
    }

    /// Runs `work` on a short-lived thread inside the node's net namespace
    /// (only that one: sockets opened there belong to the node, while files
    /// and processes stay the caller's).
    pub fn in_netns<T: Send>(&self, work: impl FnOnce() -> T + Send) -> Result<T, LabError> {
        Ok(self.pinned_in_netns(work)?.1)
    }

    /// [`in_netns`](Self::in_netns), also returning the pin of the init
    /// whose namespace `work` ran in, for a caller that goes on watching it.
    pub fn pinned_in_netns<T: Send>(
        &self,
        work: impl FnOnce() -> T + Send,
    ) -> Result<(PinnedProcess, T), LabError> {
        let (pinned, namespaces) = self.pin_with_namespaces(&[NsKind::Net])?;
        let io = |source| LabError::Io {
            what: format!("enter the net namespace of {}", self.label()),
            source,
        };
        let netns = namespaces
            .get(NsKind::Net)
            .ok_or_else(|| io(std::io::ErrorKind::NotFound.into()))?;
        let result = crate::kernel::namespace::in_netns(netns.as_fd(), work).map_err(io)?;
        Ok((pinned, result))
    }
}

/// Running nodes of one lab, from its journal, checked against /proc.
pub fn running_nodes(lab: &str) -> Result<Vec<RunningNode>, LabError> {
    let Some(recorded) = state::read(lab)? else {
        return Ok(Vec::new());
    };
    Ok(recorded
        .init_pids()
        .into_iter()
        .filter(|(node, pid)| is_init_of(*pid, lab, node))
        .map(|(node, pid)| RunningNode {
            lab: lab.to_string(),
            node,
            pid,
        })
        .collect())
}

/// The one lab whose record passes `has` (which looks for `node` in it).
pub(super) fn the_lab_with(
    node: &str,
    has: impl Fn(&state::Recorded) -> bool,
) -> Result<String, LabError> {
    let mut labs: Vec<String> = state::list_labs()?
        .into_iter()
        .filter(|lab| state::read(lab).ok().flatten().is_some_and(|r| has(&r)))
        .collect();
    match labs.len() {
        1 => Ok(labs.remove(0)),
        0 => Err(LabError::NoLabHasNode {
            node: node.to_string(),
        }),
        _ => Err(LabError::NodeInSeveralLabs {
            node: node.to_string(),
            labs,
        }),
    }
}

/// Resolves a node (`LAB/NODE`, or `NODE` when exactly one running lab
/// has it) to a running node with its lab's plan.
pub fn resolve_node(target: &NodeRef) -> Result<(RunningNode, Option<Plan>), LabError> {
    let node = target.node();
    let lab = match target.lab() {
        Some(lab) => lab.to_string(),
        None => the_lab_with(node, |r| r.init_pids().iter().any(|(n, _)| n == node))?,
    };
    let recorded = state::read(&lab)?.ok_or_else(|| LabError::NoLab { lab: lab.clone() })?;
    let pid = recorded
        .init_pids()
        .into_iter()
        .find(|(n, _)| n == node)
        .map(|(_, pid)| pid);
    match pid {
        Some(pid) if is_init_of(pid, &lab, node) => Ok((
            RunningNode {
                lab,
                node: node.to_string(),
                pid,
            },
            recorded.plan,
        )),
        Some(_) => Err(LabError::InitExited {
            node: format!("{lab}/{node}"),
        }),
        None => Err(LabError::NoNode {
            lab,
            node: node.to_string(),
        }),
    }
}
