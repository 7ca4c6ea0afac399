//! Finding running labs and their nodes.

pub use crate::kernel::process::is_init_of;
use crate::plan::Plan;
use crate::state;

use super::LabError;

/// A node whose init is alive.
#[derive(Debug, Clone)]
pub struct RunningNode {
    pub lab: String,
    pub node: String,
    pub pid: i32,
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

/// Resolves `LAB/NODE`, or `NODE` when exactly one lab has it, to a running
/// node with its lab's plan.
pub fn resolve_node(spec: &str) -> Result<(RunningNode, Option<Plan>), LabError> {
    let (lab, node) = match spec.split_once('/') {
        Some((lab, node)) => (lab.to_string(), node.to_string()),
        None => {
            let labs: Vec<String> = state::list_labs()?
                .into_iter()
                .filter(|lab| {
                    state::read(lab)
                        .ok()
                        .flatten()
                        .is_some_and(|r| r.init_pids().iter().any(|(n, _)| n == spec))
                })
                .collect();
            match labs.as_slice() {
                [lab] => (lab.clone(), spec.to_string()),
                [] => {
                    return Err(LabError::NotFound(format!(
                        "no running lab has a node {spec}"
                    )));
                }
                many => {
                    return Err(LabError::NotFound(format!(
                        "node {spec} is in several labs ({}); say LAB/{spec}",
                        many.join(", ")
                    )));
                }
            }
        }
    };
    let recorded = state::read(&lab)?
        .ok_or_else(|| LabError::NotFound(format!("no lab {lab} (see `nslab inspect`)")))?;
    let pid = recorded
        .init_pids()
        .into_iter()
        .find(|(n, _)| *n == node)
        .map(|(_, pid)| pid);
    match pid {
        Some(pid) if is_init_of(pid, &lab, &node) => {
            Ok((RunningNode { lab, node, pid }, recorded.plan))
        }
        Some(_) => Err(LabError::NotFound(format!(
            "node {lab}/{node} is not running (its init has exited); `nslab up --reconfigure` rebuilds the lab"
        ))),
        None => Err(LabError::NotFound(format!("lab {lab} has no node {node}"))),
    }
}
