//! The nodes' `exec` steps, run in start order (`wait-for`,
//! `startup-delay`; see [`exec_order`]): by `up` for every node, by `apply`
//! for the nodes it adds.

use std::time::Instant;

use super::{LabError, fault};
use crate::plan::{NodeId, Plan, exec_order};

/// Runs the steps of the nodes `run`, one node after the other in start
/// order, each node's once its delay has passed since this call.
/// `step(id, command)` runs one step to its end; the first error stops all.
pub(super) fn run_in_start_order(
    plan: &Plan,
    run: &[NodeId],
    mut step: impl FnMut(NodeId, &str) -> Result<(), LabError>,
) -> Result<(), LabError> {
    let start = Instant::now();
    for (id, not_before) in exec_order(plan, run) {
        // A delay counts from the start of the phase: the steps run
        // before it took their part of it already.
        if let Some(left) = (start + not_before).checked_duration_since(Instant::now()) {
            std::thread::sleep(left);
        }
        for command in &plan.nodes[id].exec {
            step(id, command)?;
            fault::step();
        }
    }
    Ok(())
}
