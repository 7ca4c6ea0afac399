//! The start order of the nodes' `exec` steps (`wait_for`,
//! `startup_delay`), worked out before any of them runs. `up` and `apply`
//! run the steps one node after the other in this order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use super::{NodeId, Plan};

/// The nodes of `run` that have `exec` steps, in the order to run them,
/// each with how long after the start of the exec phase its steps may
/// start at the earliest.
///
/// A node comes after every node of `run` it waits for, so running the
/// list in order honours every wait; a wait on a node outside `run` (one
/// already running, for `apply`) is met already. Its time is its
/// `startup_delay` counted, as containerlab counts it, from when its waits
/// are met (the latest time of the nodes it waits for), else from the
/// start of the phase.
/// Among the nodes free to go, the one whose time comes first goes first
/// (then file order), so a node without a delay is not held up behind one
/// with a delay unless it waits for it. A node without steps is left out,
/// but its delay still holds back the nodes that wait for it. Validation
/// refuses a cycle; should a plan hold one all the same (a plan.json
/// edited by hand), its nodes come last, in file order, rather than never.
pub fn exec_order(plan: &Plan, run: &[NodeId]) -> Vec<(NodeId, Duration)> {
    let count = plan.nodes.len();
    let mut in_run = vec![false; count];
    for &id in run.iter().filter(|&&id| id < count) {
        in_run[id] = true;
    }
    let ids: HashMap<&str, NodeId> = (plan.nodes.iter().enumerate())
        .map(|(id, n)| (n.name.as_str(), id))
        .collect();
    // Per node: the nodes of `run` waiting for it, and how many of the
    // nodes it waits for are not placed yet.
    let mut waiters: Vec<Vec<NodeId>> = vec![Vec::new(); count];
    let mut blockers = vec![0usize; count];
    for id in (0..count).filter(|&id| in_run[id]) {
        let mut waited: Vec<NodeId> = (plan.nodes[id].wait_for.iter())
            .filter_map(|name| ids.get(name.as_str()).copied())
            .filter(|&other| other != id && in_run[other])
            .collect();
        waited.sort_unstable();
        waited.dedup();
        blockers[id] = waited.len();
        for other in waited {
            waiters[other].push(id);
        }
    }
    let delay: Vec<Duration> = (plan.nodes.iter())
        .map(|n| Duration::from_secs(n.startup_delay.unwrap_or(0).into()))
        .collect();
    let mut at = delay.clone();
    let mut free: BinaryHeap<Reverse<(Duration, NodeId)>> = (0..count)
        .filter(|&id| in_run[id] && blockers[id] == 0)
        .map(|id| Reverse((at[id], id)))
        .collect();
    let mut placed = vec![false; count];
    let mut order = Vec::with_capacity(count);
    while let Some(Reverse((time, id))) = free.pop() {
        placed[id] = true;
        order.push((id, time));
        for &waiter in &waiters[id] {
            at[waiter] = at[waiter].max(time + delay[waiter]);
            blockers[waiter] -= 1;
            if blockers[waiter] == 0 {
                free.push(Reverse((at[waiter], waiter)));
            }
        }
    }
    let stuck = (0..count).filter(|&id| in_run[id] && !placed[id]);
    order.extend(stuck.map(|id| (id, at[id])).collect::<Vec<_>>());
    order.retain(|&(id, _)| !plan.nodes[id].exec.is_empty());
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Node, NodeKind};

    /// A node with one step, its delay and its waits.
    fn node(name: &str, delay: Option<u32>, waits: &[&str]) -> Node {
        Node {
            name: name.into(),
            kind: NodeKind::Node,
            hostname: name.into(),
            tmpfs: vec![],
            binds: vec![],
            sysctls: vec![],
            routes: vec![],
            env: vec![],
            exec: vec![format!("echo {name}")],
            limits: Default::default(),
            userns: false,
            startup_delay: delay,
            wait_for: waits.iter().map(|w| w.to_string()).collect(),
        }
    }

    fn plan(nodes: Vec<Node>) -> Plan {
        Plan {
            lab: "l".into(),
            source: None,
            nodes,
            links: vec![],
            expect: vec![],
            devices: vec![],
            scenario: Default::default(),
            lab_dir: None,
            lab_files: vec![],
            notes: vec![],
            mgmt: None,
            container_prefix: None,
            remote_names: Vec::new(),
            spread: None,
        }
    }

    /// The order of every node, as `name@seconds`.
    fn order_of(plan: &Plan) -> Vec<String> {
        let all: Vec<NodeId> = (0..plan.nodes.len()).collect();
        shown(plan, &exec_order(plan, &all))
    }

    fn shown(plan: &Plan, order: &[(NodeId, Duration)]) -> Vec<String> {
        (order.iter())
            .map(|(id, at)| format!("{}@{}", plan.nodes[*id].name, at.as_secs()))
            .collect()
    }

    #[test]
    fn without_waits_or_delays_the_file_order_stays() {
        let p = plan(vec![
            node("c", None, &[]),
            node("a", None, &[]),
            node("b", None, &[]),
        ]);
        assert_eq!(order_of(&p), ["c@0", "a@0", "b@0"]);
    }

    #[test]
    fn a_node_runs_after_the_nodes_it_waits_for() {
        let p = plan(vec![
            node("a", None, &["b", "c"]),
            node("b", None, &["c"]),
            node("c", None, &[]),
            node("d", None, &[]),
        ]);
        assert_eq!(order_of(&p), ["c@0", "b@0", "a@0", "d@0"]);
    }

    #[test]
    fn a_delay_holds_back_only_its_node_and_those_waiting_for_it() {
        let p = plan(vec![
            node("slow", Some(5), &[]),
            node("after", None, &["slow"]),
            node("free", None, &[]),
            node("later", Some(7), &[]),
            node("soon", Some(2), &[]),
        ]);
        assert_eq!(
            order_of(&p),
            ["free@0", "soon@2", "slow@5", "after@5", "later@7"]
        );
    }

    #[test]
    fn delays_count_from_when_the_waits_are_met() {
        let p = plan(vec![
            node("a", Some(3), &[]),
            node("b", Some(2), &["a"]),
            node("c", Some(4), &["b"]),
        ]);
        assert_eq!(order_of(&p), ["a@3", "b@5", "c@9"]);
    }

    #[test]
    fn a_node_without_steps_is_left_out_but_its_delay_holds() {
        let mut quiet = node("quiet", Some(4), &[]);
        quiet.exec.clear();
        let p = plan(vec![
            node("b", None, &["quiet"]),
            quiet,
            node("c", None, &[]),
        ]);
        assert_eq!(order_of(&p), ["c@0", "b@4"]);
    }

    #[test]
    fn waits_on_nodes_outside_the_run_are_met() {
        // `apply` adding b and c to a lab where a runs already.
        let p = plan(vec![
            node("a", Some(9), &[]),
            node("b", None, &["a", "c"]),
            node("c", Some(1), &[]),
        ]);
        assert_eq!(shown(&p, &exec_order(&p, &[1, 2])), ["c@1", "b@1"]);
    }

    #[test]
    fn a_cycle_or_an_unknown_name_cannot_hang_it() {
        let p = plan(vec![
            node("a", None, &["b"]),
            node("b", None, &["a"]),
            node("c", None, &["nobody", "c"]),
        ]);
        assert_eq!(order_of(&p), ["c@0", "a@0", "b@0"]);
    }

    #[test]
    fn a_chain_of_many_nodes_is_ordered_in_one_pass() {
        let names: Vec<String> = (0..5000).map(|i| format!("n{i}")).collect();
        let nodes = (0..names.len())
            .map(|i| match i {
                0 => node(&names[0], None, &[]),
                _ => node(&names[i], None, &[&names[i - 1]]),
            })
            .rev()
            .collect();
        let p = plan(nodes);
        let order = order_of(&p);
        assert_eq!(order.len(), 5000);
        assert_eq!(order[0], "n0@0");
        assert_eq!(order[4999], "n4999@0");
    }
}
