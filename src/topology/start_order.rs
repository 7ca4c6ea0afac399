//! The start order of the nodes' `exec` steps: `startup-delay`, `wait-for`
//! (containerlab's older form: a list of node names) and containerlab's
//! `stages` with their `wait-for`, in nslab's files and containerlab's.
//!
//! nslab builds every node's namespaces and links at once, before any
//! `exec` step, so containerlab's `create`, `create-links` and `configure`
//! stages of every node are over when the first step runs. What is left
//! to order is the steps (a containerlab node's `cmd` is its first one): a
//! node that waits for another, at any of those three stages, runs its
//! steps after all of the other's. That is never earlier than containerlab
//! would start the waiting stage. `healthy` and `exit` have no moment in
//! nslab, and a stage's own `exec` hooks none between the stages: both
//! are refused by name.

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use serde::de;

use super::Problem;
use super::model::{NodeModel, Scalar, Seq, Text};
use crate::spec::{Node, NodeKind};

/// The longest `startup-delay`, in seconds (an hour).
pub(super) const MAX_STARTUP_DELAY: u32 = 3600;

/// containerlab's `stages:` of a node.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StagesModel {
    #[serde(default)]
    pub create: Option<StageModel>,
    #[serde(default, rename = "create-links")]
    pub create_links: Option<StageModel>,
    #[serde(default)]
    pub configure: Option<StageModel>,
    #[serde(default)]
    pub healthy: Option<StageModel>,
    #[serde(default)]
    pub exit: Option<StageModel>,
}

/// One stage: the nodes it waits for, and its own commands.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StageModel {
    #[serde(default, rename = "wait-for")]
    pub wait_for: Option<Seq<WaitForModel>>,
    /// Commands run as the node enters or leaves the stage, in either of
    /// containerlab's forms: refused by name, so taken whatever its shape.
    #[serde(default)]
    pub exec: Option<de::IgnoredAny>,
}

/// `{node, stage}`: the stage of another node to wait for. Both optional
/// here, so that a missing one is a problem with its key path.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitForModel {
    #[serde(default)]
    pub node: Option<Text>,
    #[serde(default)]
    pub stage: Option<Text>,
}

impl StagesModel {
    /// Each stage by its name, in containerlab's order.
    fn each(&self) -> [(&'static str, Option<&StageModel>); 5] {
        [
            ("create", self.create.as_ref()),
            ("create-links", self.create_links.as_ref()),
            ("configure", self.configure.as_ref()),
            ("healthy", self.healthy.as_ref()),
            ("exit", self.exit.as_ref()),
        ]
    }

    /// `high` over `low`, as containerlab merges the stages of a node's
    /// levels: each stage's `wait-for` joined (`low`'s first, each entry
    /// once), so that a level adds waits rather than replacing them; a
    /// stage's `exec` is the first given (any is refused).
    pub(super) fn merge(
        high: &Option<StagesModel>,
        low: &Option<StagesModel>,
    ) -> Option<StagesModel> {
        let (Some(h), Some(l)) = (high, low) else {
            return high.clone().or_else(|| low.clone());
        };
        let stage = |h: &Option<StageModel>, l: &Option<StageModel>| {
            let (Some(h), Some(l)) = (h, l) else {
                return h.clone().or_else(|| l.clone());
            };
            let mut waits: Vec<WaitForModel> = Vec::new();
            for w in (l.wait_for.iter().chain(&h.wait_for)).flat_map(|s| &s.0) {
                if !waits.contains(w) {
                    waits.push(w.clone());
                }
            }
            Some(StageModel {
                wait_for: (h.wait_for.is_some() || l.wait_for.is_some()).then_some(Seq(waits)),
                exec: h.exec.or(l.exec),
            })
        };
        Some(StagesModel {
            create: stage(&h.create, &l.create),
            create_links: stage(&h.create_links, &l.create_links),
            configure: stage(&h.configure, &l.configure),
            healthy: stage(&h.healthy, &l.healthy),
            exit: stage(&h.exit, &l.exit),
        })
    }

    /// About how many bytes a copy takes (see the bound on `defaults`).
    pub(super) fn weight(&self) -> u64 {
        let waits = self.each().into_iter().flat_map(|(_, s)| s);
        waits
            .flat_map(|s| s.wait_for.iter().flat_map(|w| &w.0))
            .map(|w| {
                let len = |t: &Option<Text>| t.as_ref().map_or(0, |t| t.0.len() as u64);
                len(&w.node) + len(&w.stage) + 64
            })
            .sum()
    }
}

/// One node waited for, with the key path that names it.
#[derive(Debug, Clone)]
pub(super) struct Wait {
    pub node: String,
    pub path: String,
}

/// The start order a node (or `defaults`) gives, checked.
#[derive(Debug, Default, Clone)]
pub(super) struct StartOrder {
    /// `startup-delay`, in seconds.
    pub delay: Option<u32>,
    /// Every node waited for, through `wait-for` or `stages`.
    pub waits: Vec<Wait>,
    /// The keys given (even with problems), for a bridge to refuse.
    given: Vec<&'static str>,
}

impl StartOrder {
    /// About how many bytes a copy takes (see the bound on `defaults`).
    pub(super) fn weight(&self) -> u64 {
        let waits = self.waits.iter();
        waits
            .map(|w| w.node.len() as u64 + w.path.len() as u64 + 64)
            .sum()
    }

    /// The nodes waited for, each once, in the order given.
    pub(super) fn names(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        (self.waits.iter())
            .filter(|w| seen.insert(w.node.as_str()))
            .map(|w| w.node.clone())
            .collect()
    }
}

/// Checks the start-order keys of a node, or of `defaults`, at `path`.
pub(super) fn parse(m: &NodeModel, path: &str, problems: &mut Vec<Problem>) -> StartOrder {
    let mut out = StartOrder::default();
    if let Some(delay) = &m.startup_delay {
        out.given.push("startup-delay");
        match startup_delay(delay) {
            Ok(secs) => out.delay = Some(secs),
            Err(why) => problems.push(Problem::new(format!("{path}.startup-delay"), why)),
        }
    }
    if let Some(Seq(names)) = &m.wait_for {
        out.given.push("wait-for");
        for (i, Text(name)) in names.iter().enumerate() {
            let at = format!("{path}.wait-for[{i}]");
            match name.is_empty() {
                true => problems.push(Problem::new(
                    at,
                    "the name of the node to wait for is empty",
                )),
                false => out.waits.push(Wait {
                    node: name.clone(),
                    path: at,
                }),
            }
        }
    }
    if let Some(stages) = &m.stages {
        out.given.push("stages");
        for (stage, model) in stages.each() {
            let Some(model) = model else { continue };
            let at = format!("{path}.stages.{stage}");
            stage_waits(stage, model, &at, &mut out.waits, problems);
        }
    }
    out
}

/// `startup-delay`: whole seconds, 0 to [`MAX_STARTUP_DELAY`].
fn startup_delay(value: &Scalar) -> Result<u32, String> {
    match value {
        Scalar::Int(n) => u32::try_from(*n)
            .ok()
            .filter(|n| *n <= MAX_STARTUP_DELAY)
            .ok_or_else(|| {
                format!("startup-delay {n} is out of range: give 0 to {MAX_STARTUP_DELAY} seconds")
            }),
        Scalar::Str(s) => Err(format!(
            "startup-delay {s:?} is not a whole number of seconds (write 5, not \"5s\")"
        )),
        Scalar::Bool(b) => Err(format!(
            "startup-delay {b} is not a whole number of seconds"
        )),
    }
}

/// The waits of one of containerlab's stages, or the problems of each.
fn stage_waits(
    stage: &str,
    model: &StageModel,
    at: &str,
    waits: &mut Vec<Wait>,
    problems: &mut Vec<Problem>,
) {
    if model.exec.is_some() {
        problems.push(Problem::new(
            format!("{at}.exec"),
            "containerlab's per-stage `exec` is not supported: nslab builds every node's namespaces and links at once, so a node has no moment between its stages to run them; write them as the node's `exec` steps, which run after all of the wiring, in start order",
        ));
    }
    let Some(Seq(list)) = &model.wait_for else {
        return;
    };
    if let Some(why) = stage_problem(stage) {
        problems.push(Problem::new(
            format!("{at}.wait-for"),
            format!("a node's `{stage}` stage cannot wait in nslab: {why}"),
        ));
        return;
    }
    for (i, w) in list.iter().enumerate() {
        let at = format!("{at}.wait-for[{i}]");
        let Some(Text(node)) = w.node.as_ref().filter(|n| !n.0.is_empty()) else {
            problems.push(Problem::new(
                format!("{at}.node"),
                "give the node to wait for",
            ));
            continue;
        };
        let waited = match &w.stage {
            None => Err(format!(
                "give the stage of {node:?} to wait for: create, create-links or configure"
            )),
            Some(Text(stage)) => match stage_problem(stage) {
                Some(why) => Err(format!("cannot wait for {node:?} to be {stage}: {why}")),
                None => Ok(()),
            },
        };
        match waited {
            Ok(()) => waits.push(Wait {
                node: node.clone(),
                path: at,
            }),
            Err(why) => problems.push(Problem::new(format!("{at}.stage"), why)),
        }
    }
}

/// Why nslab cannot order by one of containerlab's stages; `None` for
/// those it can (all three are over, for every node, before any step).
fn stage_problem(stage: &str) -> Option<String> {
    match stage {
        "create" | "create-links" | "configure" => None,
        "healthy" => Some("nslab has no health checks, so a node is never known to be healthy".into()),
        "exit" => Some("a node of nslab does not exit while its lab runs (its init stays); a one-off job can be an `exec` step of the node waited for, whose steps all end before the waiting node's start".into()),
        other => Some(format!(
            "{other:?} is not one of containerlab's stages: create, create-links, configure, healthy, exit"
        )),
    }
}

/// A node's start order: its own, with `defaults`' delay when it gives
/// none and `defaults`' waits before its own (levels add waits, as
/// containerlab's do). A bridge runs no steps: it takes none of
/// `defaults`', and its own are refused.
pub(super) fn of_node(
    own: &StartOrder,
    defaults: &StartOrder,
    kind: NodeKind,
    name: &str,
    path: &str,
    problems: &mut Vec<Problem>,
) -> StartOrder {
    match kind {
        NodeKind::Bridge => {
            for key in &own.given {
                problems.push(Problem::new(
                    format!("{path}.{key}"),
                    format!("node {name:?} is a bridge; a bridge node runs no `exec` steps, so it takes no `{key}`"),
                ));
            }
            StartOrder::default()
        }
        NodeKind::Node => StartOrder {
            delay: own.delay.or(defaults.delay),
            waits: (defaults.waits.iter().chain(&own.waits)).cloned().collect(),
            given: own.given.clone(),
        },
    }
}

/// Checks every node's waits against the lab: each names another node
/// that is not a bridge, and no nodes wait for each other in a cycle.
/// `waits` is by node, in the order of `nodes`.
pub(super) fn check(
    nodes: &IndexMap<String, Node>,
    waits: &[(String, Vec<Wait>)],
    problems: &mut Vec<Problem>,
) {
    // The graph of the waits that name a node, by index in `nodes`.
    let mut edges: Vec<Vec<(usize, &Wait)>> = vec![Vec::new(); nodes.len()];
    // A wait `defaults` gives is checked once per node: said once.
    let mut said = HashSet::new();
    for (name, list) in waits {
        let Some(from) = nodes.get_index_of(name) else {
            continue;
        };
        for w in list {
            let why = match nodes.get_full(&w.node) {
                None => format!("{:?} is not a node of the lab", w.node),
                Some((to, ..)) if to == from => format!("node {name:?} waits for itself"),
                Some((_, _, n)) if n.kind == NodeKind::Bridge => format!(
                    "{:?} is a bridge: it runs no `exec` steps to wait for",
                    w.node
                ),
                Some((to, ..)) => {
                    edges[from].push((to, w));
                    continue;
                }
            };
            if said.insert((w.path.as_str(), why.clone())) {
                problems.push(Problem::new(&w.path, why));
            }
        }
    }
    for cycle in cycles(&edges) {
        let names: Vec<&str> = (cycle.iter())
            .map(|(i, _)| nodes.get_index(*i).map_or("?", |(n, _)| n.as_str()))
            .collect();
        let mut text = format!("{} waits for {}", names[0], names[1 % names.len()]);
        for name in names.iter().skip(2).chain(names.first()) {
            text.push_str(&format!(", which waits for {name}"));
        }
        problems.push(Problem::new(
            &cycle[0].1.path,
            format!("the nodes wait for each other in a cycle: {text}; none of them could start its `exec` steps"),
        ));
    }
}

/// One cycle through each group of nodes that wait for each other
/// (strongly connected, of two nodes or more): its nodes in order, each
/// with the wait that leads to the next. Linear in the graph's size.
fn cycles<'a>(edges: &[Vec<(usize, &'a Wait)>]) -> Vec<Vec<(usize, &'a Wait)>> {
    let mut out = Vec::new();
    for group in strongly_connected(edges) {
        if group.len() < 2 {
            continue;
        }
        let start = group.iter().copied().min().unwrap_or_default();
        let inside: HashSet<usize> = group.iter().copied().collect();
        if let Some(cycle) = cycle_from(edges, start, &inside) {
            out.push(cycle);
        }
    }
    out.sort_by_key(|c| c.first().map(|(i, _)| *i));
    out
}

/// A way from `start` back to it within `inside` (breadth first, so a
/// shortest one), each node with the wait it takes.
fn cycle_from<'a>(
    edges: &[Vec<(usize, &'a Wait)>],
    start: usize,
    inside: &HashSet<usize>,
) -> Option<Vec<(usize, &'a Wait)>> {
    // Each node reached: the node it was reached from and by which wait.
    let mut from: HashMap<usize, (usize, &'a Wait)> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        for &(to, wait) in &edges[at] {
            if !inside.contains(&to) {
                continue;
            }
            if to == start {
                let mut path = vec![(at, wait)];
                let mut node = at;
                while node != start {
                    let (prev, by) = from[&node];
                    path.push((prev, by));
                    node = prev;
                }
                path.reverse();
                return Some(path);
            }
            if to != start && !from.contains_key(&to) {
                from.insert(to, (at, wait));
                queue.push_back(to);
            }
        }
    }
    None
}

/// The strongly connected groups of a graph (Tarjan's algorithm, without
/// recursion: a deep chain of waits must not overflow the stack).
fn strongly_connected(edges: &[Vec<(usize, &Wait)>]) -> Vec<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let n = edges.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut groups = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        // (node, how many of its edges are done)
        let mut walk = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(top) = walk.last_mut() {
            let v = top.0;
            if let Some(&(w, _)) = edges[v].get(top.1) {
                top.1 += 1;
                if index[w] == UNSEEN {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    walk.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            walk.pop();
            if let Some(&(parent, _)) = walk.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut group = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    group.push(w);
                    if w == v {
                        break;
                    }
                }
                groups.push(group);
            }
        }
    }
    groups
}

#[cfg(test)]
#[path = "start_order_tests.rs"]
mod tests;
