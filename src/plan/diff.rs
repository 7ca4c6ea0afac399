//! What `apply` changes: the difference between the plan a lab runs and
//! the plan of its edited file. Pure data, computed before the kernel is
//! touched, so `--dry-run` prints exactly what `apply` would do.
//!
//! Nodes are known by name and links by their two ends (`node:iface`, in
//! either order). A node whose kernel-level make-up changed (its hostname,
//! mounts, user namespace, `exec` steps, limits, kind) cannot change live:
//! that is a [`Refusal`] unless the node is rebuilt (`--recreate`).
//!
//! After an `apply` that did not finish, the kernel is somewhere between
//! the plan before it and the plan it was applying: both are given as
//! `before`. What they agree on is known to be there; a node or link they
//! disagree on may be half made, so it is removed (what is left of it) and,
//! if the new plan has it, built again. Every removal tolerates an object
//! already gone, every addition of a settled node's address or route one
//! already there.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ipnet::IpNet;

use super::{EndpointPlan, LinkPlan, NodeId, Place, Plan};
use crate::spec::{HOST, Impair, LinkState, Node, Route, Sysctl};

/// One end of a link by name: (`node` or `host`, interface).
pub type EndKey = (String, String);

/// A link by its two ends, the lesser first.
pub type LinkKey = (EndKey, EndKey);

/// Everything `apply` does, in the order it does it: removals first (so a
/// name is free before it is used again), then additions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanDiff {
    /// Links of nodes that stay, to delete (by one of their ends).
    pub remove_links: Vec<LinkKey>,
    /// Nodes to end (removed, rebuilt, or half made by an earlier apply).
    pub remove_nodes: Vec<String>,
    /// Per node that stays: what changes in it.
    pub nodes: BTreeMap<String, NodeChanges>,
    /// Per link end that stays: what changes on it.
    pub ends: BTreeMap<EndKey, EndChanges>,
    /// Links that stay whose MTU changes: (link in the new plan, MTU).
    pub mtus: Vec<(usize, u32)>,
    /// Nodes to build, by id in the new plan.
    pub add_nodes: Vec<NodeId>,
    /// Links to create, by index in the new plan.
    pub add_links: Vec<usize>,
    /// Devices of nodes that stay, to delete (removed or changed), by
    /// their end; deleted with the links.
    pub remove_devices: Vec<EndKey>,
    /// Devices to create, by index in the new plan; made after the links.
    pub add_devices: Vec<usize>,
    /// Changes that cannot be made live.
    pub refused: Vec<Refusal>,
    /// The plan's expectations or scenario changed (saved, nothing built).
    pub checks_changed: bool,
    /// One line per change, for `--dry-run` and the journal.
    pub lines: Vec<String>,
}

/// What changes inside a node that stays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeChanges {
    pub remove_routes: Vec<Route>,
    pub add_routes: Vec<Route>,
    /// Written as they are in the new plan.
    pub set_sysctls: Vec<Sysctl>,
    /// Gone from the file: set back to what a new namespace has.
    pub reset_sysctls: Vec<Sysctl>,
    /// The environment of `nslab exec` (saved with the plan, nothing to do
    /// in the kernel).
    pub env: bool,
}

/// What changes on one end of a link that stays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndChanges {
    pub remove_addresses: Vec<IpNet>,
    pub add_addresses: Vec<IpNet>,
    /// `Some(new)` when the impairment changed (`Some(None)`: cleared).
    pub impair: Option<Option<Impair>>,
    pub state: Option<LinkState>,
}

/// A change `apply` cannot make live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub node: String,
    /// The topology key, as a user writes it (`hostname`, `binds`, ...).
    pub key: &'static str,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "node {}: `{}` changed, and nslab cannot change it in a running node; rebuild the node with `--recreate {}`",
            self.node, self.key, self.node
        )
    }
}

impl PlanDiff {
    /// Whether applying changes nothing in the kernel or the saved plan.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The difference between `before` (the running plan, and the plan of
    /// an unfinished apply if there is one) and `after`, with the nodes of
    /// `recreate` rebuilt whatever changed.
    pub fn between<'p>(before: &[&'p Plan], after: &'p Plan, recreate: &[String]) -> PlanDiff {
        let mut diff = PlanDiff::default();
        let Some(first) = before.first() else {
            return diff;
        };
        let mut lines: Vec<String> = Vec::new();

        // Nodes: settled when every plan before has them alike.
        let by_name: Vec<HashMap<&str, &Node>> = (before.iter())
            .map(|p| p.nodes.iter().map(|n| (n.name.as_str(), n)).collect())
            .collect();
        let settled_node = |name: &str| -> Option<&Node> {
            let node = *by_name[0].get(name)?;
            (by_name[1..].iter())
                .all(|p| p.get(name) == Some(&node))
                .then_some(node)
        };
        let wanted: HashSet<&str> = after.nodes.iter().map(|n| n.name.as_str()).collect();
        let known: BTreeSet<&str> = before
            .iter()
            .flat_map(|p| p.nodes.iter().map(|n| n.name.as_str()))
            .collect();
        let mut rebuilt: BTreeSet<&str> = BTreeSet::new();
        for (id, node) in after.nodes.iter().enumerate() {
            match settled_node(&node.name) {
                None => {
                    diff.add_nodes.push(id);
                    rebuilt.insert(&node.name);
                    if known.contains(node.name.as_str()) {
                        diff.remove_nodes.push(node.name.clone());
                        lines.push(format!(
                            "~ node {} (rebuilt: an earlier apply did not finish)",
                            node.name
                        ));
                    } else {
                        lines.push(format!("+ node {}", node.name));
                    }
                }
                Some(_) if recreate.contains(&node.name) => {
                    diff.add_nodes.push(id);
                    diff.remove_nodes.push(node.name.clone());
                    rebuilt.insert(&node.name);
                    lines.push(format!("~ node {} (recreated)", node.name));
                }
                Some(old) => {
                    for key in frozen_changes(old, node) {
                        diff.refused.push(Refusal {
                            node: node.name.clone(),
                            key,
                        });
                    }
                    let changes = node_changes(old, node, &mut lines);
                    if changes != NodeChanges::default() {
                        diff.nodes.insert(node.name.clone(), changes);
                    }
                }
            }
        }
        for name in &known {
            if !wanted.contains(name) {
                diff.remove_nodes.push(name.to_string());
                rebuilt.insert(name);
                lines.push(format!("- node {name}"));
            }
        }

        // Links: a link stays when every plan before has it alike and the
        // new plan has it with the same MACs, and neither end's node is
        // rebuilt; any other link there before is deleted (from an end
        // whose node stays: a rebuilt node's namespace takes the rest).
        let rebuilt_end =
            |key: &NameKey<'p>| rebuilt.contains(key.0.0) || rebuilt.contains(key.1.0);
        let old_links: Vec<BTreeMap<NameKey<'p>, LinkView<'p>>> =
            before.iter().map(|p| link_views(p)).collect();
        let new_links = link_views(after);
        let settled_link = |key: &NameKey<'p>| {
            let link = old_links[0].get(key)?;
            old_links[1..]
                .iter()
                .all(|l| l.get(key).is_some_and(|other| other.same_as(link)))
                .then_some(link)
        };
        let staying = |key: &NameKey<'p>| {
            let old = settled_link(key)?;
            let new = new_links.get(key)?;
            (!rebuilt_end(key) && !old.must_replace(new)).then_some(old)
        };
        let old_keys: BTreeSet<&NameKey<'p>> = old_links.iter().flat_map(|l| l.keys()).collect();
        for key in old_keys {
            if staying(key).is_some() {
                continue;
            }
            let surviving_end = [key.0, key.1]
                .iter()
                .any(|(node, _)| *node == HOST || !rebuilt.contains(node));
            if surviving_end {
                diff.remove_links.push(owned(key));
            }
            if !new_links.contains_key(key) {
                lines.push(format!("- link {}", label(key)));
            }
        }
        for (key, new) in &new_links {
            match staying(key) {
                Some(old) => link_changes(key, old, new, &mut diff, &mut lines),
                None => {
                    diff.add_links.push(new.index);
                    let known = old_links.iter().any(|l| l.contains_key(key));
                    match (known, rebuilt_end(key)) {
                        (false, _) => lines.push(format!("+ link {}", label(key))),
                        (true, false) => lines.push(format!("~ link {} (re-created)", label(key))),
                        // Comes back with its node.
                        (true, true) => {}
                    }
                }
            }
        }
        diff.add_links.sort_unstable();
        super::devices::diff(before, after, &rebuilt, &mut diff, &mut lines);

        if after.expect != first.expect || after.scenario != first.scenario {
            diff.checks_changed = true;
            lines.push("~ expect/scenario (saved; nothing to build)".into());
        }
        diff.lines = lines;
        diff
    }
}

/// The keys of a node that only a rebuild can change.
fn frozen_changes(old: &Node, new: &Node) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut check = |changed: bool, key| {
        if changed {
            keys.push(key)
        }
    };
    check(old.kind != new.kind, "kind");
    check(old.hostname != new.hostname, "hostname");
    check(old.userns != new.userns, "userns");
    check(old.tmpfs != new.tmpfs, "tmpfs");
    check(old.binds != new.binds, "binds");
    check(old.exec != new.exec, "exec");
    check(old.limits.cpus != new.limits.cpus, "cpus");
    check(old.limits.cpuset != new.limits.cpuset, "cpuset");
    check(old.limits.memory != new.limits.memory, "memory");
    check(old.limits.pids != new.limits.pids, "pids");
    keys
}

/// Routes, sysctls and the environment of a node that stays.
fn node_changes(old: &Node, new: &Node, lines: &mut Vec<String>) -> NodeChanges {
    let mut changes = NodeChanges::default();
    let name = &new.name;
    for route in &old.routes {
        if !new.routes.contains(route) {
            // The same destination with another gateway reads as one change.
            match new
                .routes
                .iter()
                .find(|r| r.destination == route.destination && r.metric == route.metric)
            {
                Some(next) if !old.routes.contains(next) => {
                    lines.push(format!("~ {name}: route {} -> {}", route.text, next.text))
                }
                _ => lines.push(format!("- {name}: route {}", route.text)),
            }
            changes.remove_routes.push(route.clone());
        }
    }
    for route in &new.routes {
        if !old.routes.contains(route) {
            let replaces = old.routes.iter().any(|r| {
                r.destination == route.destination
                    && r.metric == route.metric
                    && !new.routes.contains(r)
            });
            if !replaces {
                lines.push(format!("+ {name}: route {}", route.text));
            }
            changes.add_routes.push(route.clone());
        }
    }
    for sysctl in &new.sysctls {
        match old.sysctls.iter().find(|s| s.path == sysctl.path) {
            Some(was) if was.value == sysctl.value => {}
            Some(was) => {
                lines.push(format!(
                    "~ {name}: sysctl {} {} -> {}",
                    sysctl.key, was.value, sysctl.value
                ));
                changes.set_sysctls.push(sysctl.clone());
            }
            None => {
                lines.push(format!("+ {name}: sysctl {}={}", sysctl.key, sysctl.value));
                changes.set_sysctls.push(sysctl.clone());
            }
        }
    }
    for sysctl in &old.sysctls {
        if !new.sysctls.iter().any(|s| s.path == sysctl.path) {
            lines.push(format!(
                "- {name}: sysctl {} (back to a new namespace's value)",
                sysctl.key
            ));
            changes.reset_sysctls.push(sysctl.clone());
        }
    }
    if old.env != new.env {
        lines.push(format!("~ {name}: env (for later `nslab exec`)"));
        changes.env = true;
    }
    // Its steps ran already: the new order counts once the node is rebuilt.
    if old.wait_for != new.wait_for || old.startup_delay != new.startup_delay {
        lines.push(format!(
            "~ {name}: start order (saved; its exec steps ran already)"
        ));
    }
    changes
}

/// A link by its two ends' names, the lesser first; borrowed from its plan.
type NameKey<'a> = ((&'a str, &'a str), (&'a str, &'a str));

fn owned(key: &NameKey<'_>) -> LinkKey {
    let ((a, x), (b, y)) = *key;
    ((a.into(), x.into()), (b.into(), y.into()))
}

/// A link as names, independent of node ids and of the order of its ends.
#[derive(Debug, Clone)]
struct LinkView<'a> {
    /// Its index in its plan.
    index: usize,
    /// The ends in key order.
    ends: [&'a EndpointPlan; 2],
    mtu: Option<u32>,
}

impl LinkView<'_> {
    /// Alike in everything but its index in its plan.
    fn same_as(&self, other: &LinkView<'_>) -> bool {
        self.mtu == other.mtu && (self.ends.iter().zip(&other.ends)).all(|(a, b)| same_end(a, b))
    }

    /// Whether the change from `self` to `new` needs the pair made again:
    /// a MAC is given at creation, and a host end joins a host bridge once.
    fn must_replace(&self, new: &LinkView<'_>) -> bool {
        (self.ends.iter().zip(&new.ends))
            .any(|(old, new)| old.mac != new.mac || old.master != new.master)
    }
}

/// Two ends alike in everything but their place: places are node ids of
/// one plan, and links of two plans compare by name.
fn same_end(a: &EndpointPlan, b: &EndpointPlan) -> bool {
    // Every field named, so that a new one is not forgotten here.
    let EndpointPlan {
        place: _,
        ifname,
        addresses,
        mac,
        impair,
        state,
        master,
    } = a;
    *ifname == b.ifname
        && *addresses == b.addresses
        && *mac == b.mac
        && *master == b.master
        && *impair == b.impair
        && *state == b.state
}

fn link_views(plan: &Plan) -> BTreeMap<NameKey<'_>, LinkView<'_>> {
    plan.links
        .iter()
        .enumerate()
        .map(|(index, link)| link_view(plan, index, link))
        .collect()
}

fn link_view<'a>(plan: &'a Plan, index: usize, link: &'a LinkPlan) -> (NameKey<'a>, LinkView<'a>) {
    let name = |e: &'a EndpointPlan| -> (&'a str, &'a str) {
        let node = match e.place {
            Place::Host => HOST,
            Place::Node(id) => plan.nodes[id].name.as_str(),
        };
        (node, e.ifname.as_str())
    };
    let [a, b] = &link.endpoints;
    let (mut ends, mut names) = ([a, b], [name(a), name(b)]);
    if names[0] > names[1] {
        ends.swap(0, 1);
        names.swap(0, 1);
    }
    let view = LinkView {
        index,
        ends,
        mtu: link.mtu,
    };
    ((names[0], names[1]), view)
}

/// Addresses, impairment, state and MTU of a link that stays.
fn link_changes(
    key: &NameKey<'_>,
    old: &LinkView<'_>,
    new: &LinkView<'_>,
    diff: &mut PlanDiff,
    lines: &mut Vec<String>,
) {
    if old.mtu != new.mtu {
        let mtu = new.mtu.unwrap_or(super::DEFAULT_MTU);
        lines.push(format!(
            "~ link {}: mtu {} -> {mtu}",
            label(key),
            old.mtu.unwrap_or(super::DEFAULT_MTU)
        ));
        diff.mtus.push((new.index, mtu));
    }
    for ((was, now), (node, iface)) in old.ends.iter().zip(&new.ends).zip([key.0, key.1]) {
        if same_end(was, now) {
            continue;
        }
        let end = format!("{node}:{iface}");
        let mut changes = EndChanges::default();
        for address in &was.addresses {
            if !now.addresses.contains(address) {
                lines.push(format!("- {end}: address {address}"));
                changes.remove_addresses.push(*address);
            }
        }
        for address in &now.addresses {
            if !was.addresses.contains(address) {
                lines.push(format!("+ {end}: address {address}"));
                changes.add_addresses.push(*address);
            }
        }
        if was.impair != now.impair {
            let show = |i: &Option<Impair>| i.map_or("none".to_string(), |i| i.to_string());
            lines.push(format!(
                "~ {end}: impair {} -> {}",
                show(&was.impair),
                show(&now.impair)
            ));
            changes.impair = Some(now.impair);
        }
        if was.state != now.state {
            lines.push(format!("~ {end}: state {} -> {}", was.state, now.state));
            changes.state = Some(now.state);
        }
        if changes != EndChanges::default() {
            diff.ends.insert((node.into(), iface.into()), changes);
        }
    }
}

/// `a:x <-> b:y`.
fn label(key: &NameKey<'_>) -> String {
    let ((a, x), (b, y)) = key;
    format!("{a}:{x} <-> {b}:{y}")
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
