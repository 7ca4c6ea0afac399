//! Validation rules: raw model → [`Topology`], collecting every problem.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use indexmap::IndexMap;
use ipnet::IpNet;

use super::impair::parse_impair;
use super::model::{
    EndpointModel, FileModel, ImpairFields, ImpairModel, LinkModel, Measure, NodeModel, Scalar,
    Seq, Text, UMap,
};
use super::start_order::{self, StartOrder};
use super::{Problem, Topology};
use crate::spec::{Bind, Impair, Limits, NodeKind, Route, Sysctl};
use crate::spec::{Endpoint, HOST, Link, LinkState, MGMT_BRIDGE, MGMT_IFACE, Node};
use crate::spec::{
    ifname_problem, is_valid_env_key, is_valid_hostname, name_problem, node_name_problem,
};

/// Most ports a Linux bridge takes (BR_MAX_PORTS - 1).
pub(super) const MAX_BRIDGE_PORTS: usize = 1023;
/// Most data `defaults` may add to a lab by being copied into every node,
/// in the units of [`Fields::weight`] (about bytes).
pub(super) const MAX_MERGED_DEFAULTS: u64 = 64 * 1024 * 1024;
/// What one entry of a list or map costs in [`Fields::weight`] on top of
/// its text (roughly the memory of an empty `String` and its list slot).
const ENTRY_WEIGHT: u64 = 32;
/// The tmpfs mounted in a node when neither it nor `defaults` says otherwise.
pub(super) const DEFAULT_TMPFS: [&str; 2] = ["/tmp", "/run"];

const TOP: &str = "topology";
const DEFAULTS: &str = "topology.defaults";

/// A node's own keys (or those of `defaults`), each checked and typed;
/// `None` when the key is absent.
#[derive(Debug, Default, Clone)]
struct Fields {
    kind: Option<NodeKind>,
    hostname: Option<String>,
    sysctls: Option<Vec<Sysctl>>,
    /// Each route with its index in the file's list (a problem found
    /// later names `routes[i]`).
    routes: Option<Vec<(usize, Route)>>,
    binds: Option<Vec<Bind>>,
    tmpfs: Option<Vec<PathBuf>>,
    env: Option<Vec<(String, String)>>,
    exec: Option<Vec<String>>,
    /// Each limit as given (validated); `None` inside when absent.
    limits: Limits,
    userns: Option<bool>,
    start: StartOrder,
}

impl Fields {
    /// About how many bytes one copy of these fields takes.
    fn weight(&self) -> u64 {
        fn text(s: &str) -> u64 {
            s.len() as u64 + ENTRY_WEIGHT
        }
        fn path(p: &Path) -> u64 {
            p.as_os_str().len() as u64 + ENTRY_WEIGHT
        }
        let mut w = self.hostname.as_deref().map_or(0, text);
        for s in self.sysctls.iter().flatten() {
            w += text(&s.key) + path(&s.path) + text(&s.value);
        }
        for (_, r) in self.routes.iter().flatten() {
            w += text(&r.text) + r.device.as_deref().map_or(0, text) + ENTRY_WEIGHT;
        }
        for b in self.binds.iter().flatten() {
            w += path(&b.source) + path(&b.target);
        }
        w += self.tmpfs.iter().flatten().map(|p| path(p)).sum::<u64>();
        for (k, v) in self.env.iter().flatten() {
            w += text(k) + text(v);
        }
        w += self.exec.iter().flatten().map(|e| text(e)).sum::<u64>();
        w + self.start.weight()
    }
}

struct Checker {
    problems: Vec<Problem>,
    base_dir: PathBuf,
    /// A folder `up` makes (a containerlab file's lab directory): bind
    /// sources in it need not exist yet.
    made_by_up: Option<PathBuf>,
}

pub(crate) fn validate(
    model: FileModel,
    origin: &Path,
    base_dir: &Path,
) -> Result<Topology, Vec<Problem>> {
    let base_dir = if base_dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base_dir
    };
    let base_dir = normalize(&std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.into()));
    let mut problems = Vec::new();
    let (model, clab) = match super::clab::is_containerlab(&model, origin) {
        true => super::clab::resolve(model, &base_dir, &mut problems),
        false => (model, super::clab::Derived::default()),
    };
    let mut c = Checker {
        problems,
        base_dir,
        made_by_up: clab.lab_dir.clone(),
    };

    let name = model.name.0;
    if let Some(why) = name_problem(&name) {
        c.push("name", format!("lab name {name:?} {why}"));
    }

    let topo = model.topology.unwrap_or_default();
    let default_host = topo.defaults.as_ref().is_some_and(|d| d.host.is_some());
    if let Some(d) = &topo.defaults {
        for (key, given) in [
            ("mgmt-ipv4", d.mgmt_ipv4.is_some()),
            ("mgmt-ipv6", d.mgmt_ipv6.is_some()),
            ("ports", d.ports.is_some()),
            ("network-mode", d.network_mode.is_some()),
        ] {
            if given {
                c.push(
                    format!("{DEFAULTS}.{key}"),
                    format!("`{key}` is a node's own"),
                );
            }
        }
    }
    let mut defaults = topo
        .defaults
        .map(|d| c.fields(&d, DEFAULTS))
        .unwrap_or_default();

    let node_models = topo.nodes.unwrap_or_default();
    // Every node gets its own copy of `defaults`: without a bound, a file of
    // a few MiB (big defaults, many nodes) would expand quadratically.
    let copies = node_models.entries.len() as u64;
    let weight = defaults.weight();
    if weight.saturating_mul(copies) > MAX_MERGED_DEFAULTS {
        c.push(
            DEFAULTS,
            format!(
                "defaults (about {weight} bytes) copied into each of {copies} nodes would add about {} MiB to the lab, more than the {} MiB allowed; put large entries only in the nodes that need them",
                weight.saturating_mul(copies) >> 20,
                MAX_MERGED_DEFAULTS >> 20
            ),
        );
        // Still check the nodes, without the copies.
        defaults = Fields {
            kind: defaults.kind,
            ..Fields::default()
        };
    }
    for dup in &node_models.duplicates {
        c.push(
            format!("{TOP}.nodes"),
            format!("node {dup:?} is defined more than once"),
        );
    }
    if node_models.entries.is_empty() {
        c.push(
            format!("{TOP}.nodes"),
            "no nodes: a lab needs at least one node",
        );
    }

    // Nodes, merged with defaults; routes are checked after the links are known.
    let mut nodes: IndexMap<String, Node> = IndexMap::new();
    // Per node, in the order of `nodes`: its routes, and the path of the
    // node or `defaults` that gave them.
    let mut node_routes: Vec<(String, Vec<(usize, Route)>)> = Vec::new();
    // Per node, in the order of `nodes`: the nodes it waits for.
    let mut node_waits = Vec::new();
    // `kind: bridge` nodes that are the host's own bridges.
    let mut host_bridges: HashSet<String> = HashSet::new();
    for (node_name, model) in &node_models.entries {
        let path = node_path(node_name);
        if node_name == HOST {
            c.push(
                &path,
                format!("node name {HOST:?} is reserved for the host's own network namespace"),
            );
        } else if let Some(why) = node_name_problem(node_name) {
            c.push(&path, format!("node name {node_name:?} {why}"));
        }
        let own = model
            .as_ref()
            .map(|m| c.fields(m, &path))
            .unwrap_or_default();
        let kind = own.kind.or(defaults.kind).unwrap_or(NodeKind::Node);
        if kind == NodeKind::Bridge && node_name.len() > crate::spec::MAX_IFNAME_BYTES {
            c.push(
                &path,
                format!(
                    "bridge node name {node_name:?} is longer than 15 bytes; the bridge device is named after the node"
                ),
            );
        }
        if kind == NodeKind::Bridge {
            let m = model.as_ref();
            for (key, given) in [
                ("cpus", m.is_some_and(|m| m.cpus.is_some())),
                ("cpuset", m.is_some_and(|m| m.cpuset.is_some())),
                ("memory", m.is_some_and(|m| m.memory.is_some())),
                ("pids", m.is_some_and(|m| m.pids.is_some())),
                ("userns", own.userns == Some(true)),
            ] {
                if given {
                    let what = match key {
                        "userns" => "no user namespace".to_string(),
                        _ => format!("no cgroup and takes no {key} limit"),
                    };
                    c.push(
                        format!("{path}.{key}"),
                        format!("node {node_name:?} is a bridge; a bridge node has {what}"),
                    );
                }
            }
        }
        if kind == NodeKind::Bridge && own.routes.as_ref().is_some_and(|r| !r.is_empty()) {
            c.push(
                format!("{path}.routes"),
                format!("node {node_name:?} is a bridge; a bridge node cannot have routes"),
            );
        }
        let start = start_order::of_node(
            &own.start,
            &defaults.start,
            kind,
            node_name,
            &path,
            &mut c.problems,
        );
        let routes = match (&own.routes, kind) {
            (Some(r), _) => r.clone(),
            (None, NodeKind::Node) => defaults.routes.clone().unwrap_or_default(),
            (None, NodeKind::Bridge) => Vec::new(),
        };
        let given_at = match own.routes {
            Some(_) => path,
            None => DEFAULTS.to_string(),
        };
        node_routes.push((given_at, routes));
        let node = Node {
            name: node_name.clone(),
            kind,
            hostname: own
                .hostname
                .clone()
                .or_else(|| defaults.hostname.clone())
                .unwrap_or_else(|| node_name.clone()),
            tmpfs: own
                .tmpfs
                .clone()
                .or_else(|| defaults.tmpfs.clone())
                .unwrap_or_else(|| DEFAULT_TMPFS.iter().map(PathBuf::from).collect()),
            binds: own
                .binds
                .clone()
                .or_else(|| defaults.binds.clone())
                .unwrap_or_default(),
            sysctls: merge(defaults.sysctls.as_deref(), own.sysctls.as_deref(), |s| {
                &s.path
            }),
            routes: Vec::new(),
            env: merge(defaults.env.as_deref(), own.env.as_deref(), |e| &e.0),
            exec: own
                .exec
                .clone()
                .or_else(|| defaults.exec.clone())
                .unwrap_or_default(),
            limits: match kind {
                NodeKind::Node => Limits {
                    cpus: own.limits.cpus.or(defaults.limits.cpus),
                    cpuset: own
                        .limits
                        .cpuset
                        .clone()
                        .or_else(|| defaults.limits.cpuset.clone()),
                    memory: own.limits.memory.or(defaults.limits.memory),
                    pids: own.limits.pids.or(defaults.limits.pids),
                },
                NodeKind::Bridge => Limits::default(),
            },
            userns: kind == NodeKind::Node && own.userns.or(defaults.userns).unwrap_or(false),
            startup_delay: start.delay,
            wait_for: start.names(),
        };
        nodes.insert(node_name.clone(), node);
        node_waits.push((node_name.clone(), start.waits));
        if model.as_ref().and_then(|m| m.host_bridge) == Some(true) {
            match kind {
                NodeKind::Bridge => {
                    host_bridges.insert(node_name.clone());
                }
                NodeKind::Node => c.push(
                    format!("{}.host-bridge", node_path(node_name)),
                    format!("node {node_name:?} is not a bridge; only a `kind: bridge` node can be the host's bridge"),
                ),
            }
        }
    }
    // The host's bridges are not nodes of the lab: their ends are the
    // host's, made ports of them.
    if !host_bridges.is_empty() {
        let keep: Vec<bool> = nodes.keys().map(|n| !host_bridges.contains(n)).collect();
        nodes.retain(|n, _| !host_bridges.contains(n));
        let mut kept = keep.iter();
        node_routes.retain(|_| kept.next().copied().unwrap_or(true));
        node_waits.retain(|(n, _)| !host_bridges.contains(n));
    }

    start_order::check(&nodes, &node_waits, &mut c.problems);

    // The management network: its bridge is a node that links may name.
    let has_mgmt = model.mgmt.is_some();
    let network = model
        .mgmt
        .and_then(|m| super::mgmt::plan(&m, &name, &nodes, &node_models.entries, &mut c.problems));
    if let Some(network) = &network {
        if nodes.contains_key(MGMT_BRIDGE) {
            c.push(
                node_path(MGMT_BRIDGE),
                format!("node name {MGMT_BRIDGE:?} is the management network's (mgmt:)"),
            );
        }
        nodes.insert(MGMT_BRIDGE.to_owned(), network.bridge());
    }
    for (node_name, m) in &node_models.entries {
        let m = m.as_ref();
        if !has_mgmt
            && m.is_some_and(|m| {
                m.mgmt_ipv4.is_some() || m.mgmt_ipv6.is_some() || m.ports.is_some()
            })
        {
            c.push(
                node_path(node_name),
                "`mgmt-ipv4`, `mgmt-ipv6` and `ports` need the management network: add `mgmt: {}` at the top",
            );
        }
        match m.and_then(|m| m.network_mode.as_ref()) {
            Some(Text(mode)) if mode != "none" => c.push(
                format!("{}.network-mode", node_path(node_name)),
                format!(
                    "network-mode {mode:?}: a node of nslab has a network namespace of its own, always; only \"none\" (no management interface) is taken"
                ),
            ),
            _ => {}
        }
    }

    // Links.
    let mut links = Vec::new();
    // Each interface, with the link and end that used it first.
    let mut used: HashMap<(String, String), (usize, usize)> = HashMap::new();
    let mut bridge_ports: IndexMap<String, usize> = IndexMap::new();
    let mut ifaces: HashMap<String, HashSet<String>> = HashMap::new();
    let mut link_models = topo.links.unwrap_or_default().0;
    let masters = host_bridge_ends(&mut link_models, &host_bridges);
    let mut devices = super::devices::Devices::default();
    for (i, link) in link_models.iter().enumerate() {
        let lab = super::devices::Lab {
            nodes: &nodes,
            used: &mut used,
            ifaces: &mut ifaces,
        };
        if devices.take(i, link, lab, &mut c.problems) {
            continue;
        }
        if let Some(mut l) = c.link(i, link, &nodes, &mut used) {
            for (j, end) in l.endpoints.iter_mut().enumerate() {
                let Some(bridge) = masters.get(&(i, j)) else {
                    continue;
                };
                if end.ipv4.is_some() || end.ipv6.is_some() {
                    c.push(
                        endpoint_path(i, j),
                        format!("{}:{} is a port of the host's bridge {bridge:?}, which takes no address", bridge, end.iface),
                    );
                }
                end.master = Some(bridge.clone());
            }
            for e in &l.endpoints {
                ifaces
                    .entry(e.node.clone())
                    .or_default()
                    .insert(e.iface.clone());
                if nodes
                    .get(&e.node)
                    .is_some_and(|n| n.kind == NodeKind::Bridge)
                {
                    *bridge_ports.entry(e.node.clone()).or_default() += 1;
                }
            }
            links.push(l);
        }
    }
    if let Some(network) = &network {
        let taken: HashSet<&str> = (used.keys())
            .filter(|(node, _)| node == MGMT_BRIDGE)
            .map(|(_, iface)| iface.as_str())
            .collect();
        for l in network.links(&taken) {
            let mut clash = false;
            for e in &l.endpoints {
                let key = (e.node.clone(), e.iface.clone());
                if let Some((link, end)) = used.get(&key) {
                    clash = true;
                    let why = match e.node.as_str() {
                        HOST => format!(
                            "host:{} is the management network's interface of the host (mgmt:); give it another name, or name the host's with mgmt.bridge",
                            e.iface
                        ),
                        _ => format!(
                            "{}:{MGMT_IFACE} is node {:?}'s management interface; name this end otherwise, or leave the node off the management network (network-mode: none)",
                            e.node, e.node
                        ),
                    };
                    c.push(endpoint_path(*link, *end), why);
                }
            }
            if clash {
                continue;
            }
            for e in &l.endpoints {
                ifaces
                    .entry(e.node.clone())
                    .or_default()
                    .insert(e.iface.clone());
                used.insert((e.node.clone(), e.iface.clone()), (usize::MAX, 0));
            }
            *bridge_ports.entry(MGMT_BRIDGE.to_owned()).or_default() += 1;
            links.push(l);
        }
    }
    let devices = devices.finish(&used, &mut c.problems);
    for (bridge, count) in &bridge_ports {
        if *count > MAX_BRIDGE_PORTS {
            c.push(
                node_path(bridge),
                format!(
                    "bridge {bridge:?} has {count} ports; a Linux bridge takes at most {MAX_BRIDGE_PORTS}"
                ),
            );
        }
    }

    // Routes: `dev` must be an interface of the node.
    let empty = HashSet::new();
    for ((node_name, node), (given_at, routes)) in nodes.iter_mut().zip(node_routes) {
        let mine = ifaces.get(node_name).unwrap_or(&empty);
        for (i, route) in routes {
            if let Some(dev) = &route.device
                && !mine.contains(dev)
            {
                c.push(
                    format!("{given_at}.routes[{i}]"),
                    format!(
                        "route {:?}: dev {dev:?} is not an interface of node {node_name:?}",
                        route.text
                    ),
                );
            }
            node.routes.push(route);
        }
    }

    let interfaces: HashSet<(String, String)> = used.into_keys().collect();
    let (expect, problems) = super::expect::expectations(
        &model.expect.unwrap_or_default().0,
        &super::expect::Lab {
            nodes: &nodes,
            links: &links,
            devices: &devices,
            interfaces: &interfaces,
            links_complete: links.len() + devices.len() == link_models.len(),
        },
    );
    c.problems.extend(problems);
    let (scenario, problems) =
        super::scenario::scenario(&model.scenario.unwrap_or_default().0, &nodes, &interfaces);
    c.problems.extend(problems);

    let spread = super::spread::spread(
        super::spread::Given {
            lab: &name,
            hosts: model.hosts,
            vxlan: model.vxlan,
            node_models: &node_models.entries,
            default_host,
            links: &links,
            has_mgmt: network.is_some(),
        },
        &mut c.problems,
    );

    if c.problems.is_empty() {
        Ok(Topology {
            name,
            source: origin.to_path_buf(),
            nodes,
            links,
            devices,
            expect,
            scenario,
            lab_dir: clab.lab_dir,
            lab_files: clab.lab_files,
            notes: clab.notes,
            mgmt: network.map(|n| n.mgmt),
            container_prefix: clab.container_prefix,
            spread,
        })
    } else {
        Err(c.problems)
    }
}

/// Ends written `BRIDGE:PORT` on a host bridge become `host:PORT`; returns
/// the bridge of each such end, by (link, end).
fn host_bridge_ends(
    links: &mut [LinkModel],
    host_bridges: &HashSet<String>,
) -> HashMap<(usize, usize), String> {
    let mut masters = HashMap::new();
    if host_bridges.is_empty() {
        return masters;
    }
    for (i, link) in links.iter_mut().enumerate() {
        for (j, end) in link.endpoints.0.iter_mut().enumerate() {
            if let EndpointModel::Text(Text(text)) = end
                && let Some((node, port)) = text.split_once(':')
                && host_bridges.contains(node)
            {
                masters.insert((i, j), node.to_owned());
                *text = format!("{HOST}:{port}");
            }
        }
    }
    masters
}

/// The key path of a link's end.
fn endpoint_path(link: usize, end: usize) -> String {
    format!("{TOP}.links[{link}].endpoints[{end}]")
}

/// A map key as a key path component: as is when it holds only
/// `[A-Za-z0-9_./-]`, else quoted and escaped (so a path stays on one line).
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
    {
        k.to_owned()
    } else {
        format!("{k:?}")
    }
}

/// The key path of a node.
fn node_path(name: &str) -> String {
    if crate::spec::is_valid_node_name(name) {
        format!("{TOP}.nodes.{name}")
    } else {
        format!("{TOP}.nodes.{name:?}")
    }
}

/// Merges two maps kept as ordered lists: entries of `own` replace those of
/// `defaults` with the same key (in place, the first one with that key),
/// others are appended. Linear: keys are looked up in an index, not searched.
fn merge<'a, T: Clone, K: Hash + Eq + ?Sized + 'a>(
    defaults: Option<&'a [T]>,
    own: Option<&'a [T]>,
    key: impl Fn(&'a T) -> &'a K,
) -> Vec<T> {
    let defaults = defaults.unwrap_or_default();
    let own = own.unwrap_or_default();
    let mut out: Vec<T> = Vec::with_capacity(defaults.len() + own.len());
    let mut index: HashMap<&'a K, usize> = HashMap::with_capacity(out.capacity());
    for item in defaults.iter().chain(own) {
        match index.get(key(item)) {
            Some(&i) => out[i] = item.clone(),
            None => {
                index.insert(key(item), out.len());
                out.push(item.clone());
            }
        }
    }
    out
}

/// Lexical normalisation: drops `.` and resolves `..` against the previous
/// component (never above the root). Does not touch the file system.
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for comp in p.components() {
        match comp {
            Component::Prefix(_) | Component::RootDir => out.push(comp.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() || out.as_os_str().is_empty() {
                    if p.is_absolute() {
                        out.push("/");
                    } else {
                        out.push("..");
                    }
                }
            }
            Component::Normal(s) => out.push(s),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn has_parent_component(p: &str) -> bool {
    Path::new(p).components().any(|c| c == Component::ParentDir)
}

/// A sysctl key → its path below /proc/sys, refusing anything that is not
/// namespaced (and so could change the host).
pub(crate) fn sysctl_path(key: &str) -> Result<PathBuf, String> {
    if key.is_empty() {
        return Err("sysctl key is empty".to_owned());
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
    {
        return Err(format!(
            "sysctl {key:?} holds {bad:?}; only letters, digits, '_', '.', '-' and '/' are allowed"
        ));
    }
    let path = if key.contains('/') {
        key.to_owned()
    } else {
        key.replace('.', "/")
    };
    let comps: Vec<&str> = path.split('/').collect();
    if comps
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == "..")
    {
        return Err(format!(
            "sysctl {key:?} has an empty, \".\" or \"..\" component"
        ));
    }
    let namespaced = match comps.as_slice() {
        ["net", _, ..] => true,
        ["kernel", k] => {
            k.starts_with("shm")
                || k.starts_with("msg")
                || k.starts_with("sem")
                || *k == "domainname"
        }
        ["fs", "mqueue", _] => true,
        _ => false,
    };
    if !namespaced {
        return Err(format!(
            "sysctl {key:?} is not namespaced: setting it would change the host"
        ));
    }
    Ok(PathBuf::from(path))
}

/// Parses `SRC:DST[:ro|:rw]`; relative sources are resolved against `base`.
/// Does not look at the file system.
pub(crate) fn parse_bind(spec: &str, base: &Path) -> Result<Bind, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, read_only) = match parts.as_slice() {
        [s, d] => (*s, *d, false),
        [s, d, "ro"] => (*s, *d, true),
        [s, d, "rw"] => (*s, *d, false),
        [_, _, mode] => {
            return Err(format!("bind {spec:?}: mode {mode:?} is not ro or rw"));
        }
        _ => {
            return Err(format!(
                "bind {spec:?} must be SRC:DST, SRC:DST:ro or SRC:DST:rw"
            ));
        }
    };
    if src.is_empty() {
        return Err(format!("bind {spec:?}: source is empty"));
    }
    if spec.contains('\0') {
        return Err(format!("bind {spec:?} holds a NUL byte"));
    }
    if !dst.starts_with('/') {
        return Err(format!(
            "bind {spec:?}: target {dst:?} must be an absolute path"
        ));
    }
    if has_parent_component(dst) {
        return Err(format!(
            "bind {spec:?}: target {dst:?} may not contain \"..\""
        ));
    }
    Ok(Bind {
        source: normalize(&base.join(src)),
        target: normalize(Path::new(dst)),
        read_only,
    })
}

/// The smallest `memory` limit: below it not even a shell starts.
pub(super) const MIN_MEMORY: u64 = 4 << 20;
/// The largest `pids` limit (the kernel's PID_MAX_LIMIT).
const MAX_PIDS: u64 = 4 << 20;

/// How many CPUs the host has online.
pub(crate) fn host_cpus() -> u32 {
    // SAFETY: sysconf reads a system value and touches no memory of ours.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u32::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1)
}

/// `cpus`: a share of the host's CPUs, above 0 and at most `host`.
pub(crate) fn parse_cpus(text: &str, host: u32) -> Result<f64, String> {
    let cpus: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("cpus {text:?} is not a number of CPUs (such as 0.5 or 2)"))?;
    if !cpus.is_finite() || cpus <= 0.0 {
        return Err(format!("cpus {text:?} must be above 0"));
    }
    if cpus > f64::from(host) {
        return Err(format!(
            "cpus {text:?} is more than the {host} CPU(s) this host has"
        ));
    }
    if cpus < 0.01 {
        return Err(format!("cpus {text:?} is below 0.01, the smallest share"));
    }
    Ok(cpus)
}

/// `cpuset`: the kernel's list format (`0-1`, `0,2-3`), every CPU below
/// `host`.
pub(crate) fn parse_cpuset(text: &str, host: u32) -> Result<(), String> {
    let bad = || format!("cpuset {text:?} is not a CPU list such as \"0-1\" or \"0,2\"");
    if text.trim().is_empty() {
        return Err(bad());
    }
    for part in text.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let first: u32 = first.trim().parse().map_err(|_| bad())?;
        let last: u32 = last.trim().parse().map_err(|_| bad())?;
        if first > last {
            return Err(bad());
        }
        if last >= host {
            return Err(format!(
                "cpuset {text:?} names CPU {last}; this host has CPUs 0 to {}",
                host - 1
            ));
        }
    }
    Ok(())
}

/// `memory`: bytes with an optional binary unit (`K`, `M`, `G`, `T`, also
/// written `Ki`, `KiB`, `KB`); at least [`MIN_MEMORY`].
pub(crate) fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("memory {text:?} is not a size such as 256M or 1G"))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "ki" | "kib" => 10,
        "m" | "mb" | "mi" | "mib" => 20,
        "g" | "gb" | "gi" | "gib" => 30,
        "t" | "tb" | "ti" | "tib" => 40,
        _ => {
            return Err(format!(
                "memory {text:?}: unit {unit:?} is not known: use K, M, G or T (powers of 1024)"
            ));
        }
    };
    let bytes = number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("memory {text:?} is too large"))?;
    if bytes < MIN_MEMORY {
        return Err(format!(
            "memory {text:?} is below 4M, the smallest limit a node can start in"
        ));
    }
    Ok(bytes)
}

/// Checks one tmpfs path.
pub(crate) fn tmpfs_path(p: &str) -> Result<PathBuf, String> {
    if !p.starts_with('/') {
        return Err(format!("tmpfs {p:?} must be an absolute path"));
    }
    if has_parent_component(p) {
        return Err(format!("tmpfs {p:?} may not contain \"..\""));
    }
    if p.contains('\0') {
        return Err(format!("tmpfs {p:?} holds a NUL byte"));
    }
    let n = normalize(Path::new(p));
    if ["/", "/proc", "/sys", "/dev"]
        .iter()
        .any(|f| n == Path::new(f))
    {
        return Err(format!(
            "tmpfs {p:?} is not allowed: it would hide {}",
            n.display()
        ));
    }
    Ok(n)
}

/// Parses `aa:bb:cc:dd:ee:ff`, requiring a unicast, non-zero address.
pub(crate) fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || format!("MAC address {s:?} is not of the form aa:bb:cc:dd:ee:ff");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (slot, part) in mac.iter_mut().zip(&parts) {
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        *slot = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if mac == [0; 6] {
        return Err(format!("MAC address {s:?} is all zeros"));
    }
    if mac[0] & 1 == 1 {
        return Err(format!(
            "MAC address {s:?} is multicast (lowest bit of the first byte set); use a unicast address"
        ));
    }
    Ok(mac)
}

/// Parses `ADDR/LEN` of the given family (`v4`).
pub(super) fn parse_address(s: &str, v4: bool) -> Result<IpNet, String> {
    let net = match s.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => {
            return Err(match s.parse::<IpAddr>() {
                Ok(_) => format!(
                    "address {s:?} has no prefix length (write it as {s}/{}, for example)",
                    if v4 { 24 } else { 64 }
                ),
                Err(_) => format!("{s:?} is not an address with a prefix length (ADDR/LEN)"),
            });
        }
    };
    match (net, v4) {
        (IpNet::V4(_), true) | (IpNet::V6(_), false) => Ok(net),
        (IpNet::V6(_), true) => Err(format!("address {s:?} is IPv6; put it in ipv6, not ipv4")),
        (IpNet::V4(_), false) => Err(format!("address {s:?} is IPv4; put it in ipv4, not ipv6")),
    }
}

fn scalar_string(v: &Scalar, bool_text: (&str, &str)) -> String {
    match v {
        Scalar::Str(s) => s.clone(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Bool(true) => bool_text.0.to_owned(),
        Scalar::Bool(false) => bool_text.1.to_owned(),
    }
}

impl Checker {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn duplicates<V>(&mut self, map: &UMap<V>, path: &str) {
        for d in &map.duplicates {
            self.push(path, format!("key {d:?} is given more than once"));
        }
    }

    /// Checks a node's (or `defaults`') own keys.
    fn fields(&mut self, m: &NodeModel, path: &str) -> Fields {
        let mut f = Fields::default();
        if let Some(Text(kind)) = &m.kind {
            f.kind = match kind.as_str() {
                "node" => Some(NodeKind::Node),
                "bridge" => Some(NodeKind::Bridge),
                _ => {
                    self.push(
                        format!("{path}.kind"),
                        format!("kind {kind:?} is not known: use node or bridge"),
                    );
                    None
                }
            };
        }
        if let Some(Text(h)) = &m.hostname {
            if !is_valid_hostname(h) {
                self.push(
                    format!("{path}.hostname"),
                    format!(
                        "hostname {h:?} is invalid: use 1 to 64 bytes of letters, digits, '-' and '.'"
                    ),
                );
            }
            f.hostname = Some(h.clone());
        }
        if let Some(map) = &m.sysctls {
            let p = format!("{path}.sysctls");
            self.duplicates(map, &p);
            let mut out: Vec<Sysctl> = Vec::new();
            // Path → index in `out` of its first spelling.
            let mut first: HashMap<PathBuf, usize> = HashMap::new();
            for (k, value) in &map.entries {
                match sysctl_path(k) {
                    Ok(sp) => {
                        if let Some(&prev) = first.get(&sp) {
                            let msg = format!(
                                "sysctl {k:?} is the same as {:?}, given before",
                                out[prev].key
                            );
                            self.push(format!("{p}.{}", key(k)), msg);
                        } else {
                            first.insert(sp.clone(), out.len());
                        }
                        out.push(Sysctl {
                            key: k.clone(),
                            path: sp,
                            value: scalar_string(value, ("1", "0")),
                        });
                    }
                    Err(msg) => self.push(format!("{p}.{}", key(k)), msg),
                }
            }
            f.sysctls = Some(out);
        }
        if let Some(Seq(routes)) = &m.routes {
            let mut out = Vec::new();
            for (i, Text(r)) in routes.iter().enumerate() {
                match r.parse::<Route>() {
                    Ok(route) => out.push((i, route)),
                    Err(msg) => {
                        self.push(format!("{path}.routes[{i}]"), format!("route {r:?}: {msg}"))
                    }
                }
            }
            f.routes = Some(out);
        }
        if let Some(Seq(binds)) = &m.binds {
            let mut out = Vec::new();
            for (i, Text(b)) in binds.iter().enumerate() {
                let p = format!("{path}.binds[{i}]");
                match parse_bind(b, &self.base_dir) {
                    Ok(bind)
                        if self
                            .made_by_up
                            .as_ref()
                            .is_some_and(|d| bind.source.starts_with(d)) =>
                    {
                        out.push(bind)
                    }
                    Ok(bind) => match std::fs::metadata(&bind.source) {
                        Ok(_) => out.push(bind),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.push(
                            p,
                            format!(
                                "bind {b:?}: source {:?} does not exist",
                                bind.source.display().to_string()
                            ),
                        ),
                        Err(e) => self.push(
                            p,
                            format!(
                                "bind {b:?}: source {:?} cannot be used: {e}",
                                bind.source.display().to_string()
                            ),
                        ),
                    },
                    Err(msg) => self.push(p, msg),
                }
            }
            f.binds = Some(out);
        }
        if let Some(Seq(tmpfs)) = &m.tmpfs {
            let mut out = Vec::new();
            for (i, Text(t)) in tmpfs.iter().enumerate() {
                match tmpfs_path(t) {
                    Ok(p) => out.push(p),
                    Err(msg) => self.push(format!("{path}.tmpfs[{i}]"), msg),
                }
            }
            f.tmpfs = Some(out);
        }
        if let Some(map) = &m.env {
            let p = format!("{path}.env");
            self.duplicates(map, &p);
            let mut out = Vec::new();
            for (k, value) in &map.entries {
                if !is_valid_env_key(k) {
                    self.push(
                        format!("{p}.{}", key(k)),
                        format!(
                            "environment variable name {k:?} is invalid: use letters, digits and '_', not starting with a digit"
                        ),
                    );
                }
                let value = scalar_string(value, ("true", "false"));
                if value.contains('\0') {
                    self.push(
                        format!("{p}.{}", key(k)),
                        format!("value {value:?} holds a NUL byte"),
                    );
                }
                out.push((k.clone(), value));
            }
            f.env = Some(out);
        }
        if let Some(Seq(exec)) = &m.exec {
            let mut out = Vec::new();
            for (i, Text(e)) in exec.iter().enumerate() {
                if e.trim().is_empty() {
                    self.push(format!("{path}.exec[{i}]"), "exec command is empty");
                } else if e.contains('\0') {
                    self.push(
                        format!("{path}.exec[{i}]"),
                        format!("exec command {e:?} holds a NUL byte"),
                    );
                }
                out.push(e.clone());
            }
            f.exec = Some(out);
        }
        self.limits(m, path, &mut f.limits);
        match &m.userns {
            None => {}
            Some(Scalar::Bool(b)) => f.userns = Some(*b),
            Some(other) => self.push(
                format!("{path}.userns"),
                format!(
                    "userns {:?} is not true or false",
                    scalar_string(other, ("true", "false"))
                ),
            ),
        }
        f.start = start_order::parse(m, path, &mut self.problems);
        f
    }

    /// Checks the cgroup limits of a node (or `defaults`).
    fn limits(&mut self, m: &NodeModel, path: &str, out: &mut Limits) {
        if let Some(Measure(cpus)) = &m.cpus {
            match parse_cpus(cpus, host_cpus()) {
                Ok(c) => out.cpus = Some(c),
                Err(msg) => self.push(format!("{path}.cpus"), msg),
            }
        }
        if let Some(cpuset) = &m.cpuset {
            let text = scalar_string(cpuset, ("true", "false"));
            match parse_cpuset(&text, host_cpus()) {
                Ok(()) => out.cpuset = Some(text),
                Err(msg) => self.push(format!("{path}.cpuset"), msg),
            }
        }
        if let Some(Measure(memory)) = &m.memory {
            match parse_memory(memory) {
                Ok(bytes) => out.memory = Some(bytes),
                Err(msg) => self.push(format!("{path}.memory"), msg),
            }
        }
        if let Some(pids) = &m.pids {
            match pids {
                Scalar::Int(n) if *n >= 1 && *n <= i128::from(MAX_PIDS) => {
                    out.pids = Some(*n as u64)
                }
                Scalar::Int(n) => self.push(
                    format!("{path}.pids"),
                    format!("pids {n} is out of range: give 1 to {MAX_PIDS} processes"),
                ),
                other => self.push(
                    format!("{path}.pids"),
                    format!(
                        "pids {:?} is not a whole number of processes",
                        scalar_string(other, ("true", "false"))
                    ),
                ),
            }
        }
    }

    /// Checks the impairments of one end (or both) at `path`.
    fn impair(&mut self, path: &str, m: &ImpairFields) -> Option<Impair> {
        match parse_impair(&m.as_text()) {
            // All zero: no impairment, as if the end had none.
            Ok(plan) => (!plan.is_empty()).then_some(plan),
            Err(problems) => {
                for (key, message) in problems {
                    let at = if key.is_empty() {
                        path.to_string()
                    } else {
                        format!("{path}.{key}")
                    };
                    self.push(at, message);
                }
                None
            }
        }
    }

    /// Checks one link; `None` when it has problems.
    fn link(
        &mut self,
        i: usize,
        m: &LinkModel,
        nodes: &IndexMap<String, Node>,
        used: &mut HashMap<(String, String), (usize, usize)>,
    ) -> Option<Link> {
        let path = format!("{TOP}.links[{i}]");
        let before = self.problems.len();
        let n = m.endpoints.0.len();
        if n != 2 {
            self.push(
                format!("{path}.endpoints"),
                format!("a link has exactly two endpoints, found {n}"),
            );
        }
        // (node, iface, is a bridge port) of each well-formed endpoint.
        let mut ends: Vec<Option<(String, String, bool)>> = Vec::new();
        for (j, e) in m.endpoints.0.iter().enumerate() {
            let e = match e {
                EndpointModel::Text(Text(e)) => e,
                // Only a containerlab file has these, and `clab` made them text.
                EndpointModel::Fields(f) => {
                    self.push(
                        endpoint_path(i, j),
                        format!(
                            "endpoint of node {:?}: write it as \"NODE:IFACE\"",
                            f.node.0
                        ),
                    );
                    ends.push(None);
                    continue;
                }
            };
            // Formatted only for a problem: most links have none.
            let p = || endpoint_path(i, j);
            let Some((node, iface)) = e.split_once(':').filter(|(_, i)| !i.contains(':')) else {
                self.push(p(), format!("endpoint {e:?} must be NODE:IFACE"));
                ends.push(None);
                continue;
            };
            let mut ok = true;
            let mut bridge = false;
            if node != HOST {
                match nodes.get(node) {
                    None => {
                        self.push(p(), format!("endpoint {e:?}: no node named {node:?}"));
                        ok = false;
                    }
                    Some(n) => bridge = n.kind == NodeKind::Bridge,
                }
            }
            if let Some(why) = ifname_problem(iface) {
                self.push(
                    p(),
                    format!("endpoint {e:?}: interface name {iface:?} {why}"),
                );
                ok = false;
            } else if bridge && iface == node {
                self.push(
                    p(),
                    format!(
                        "endpoint {e:?}: a port of bridge {node:?} may not be named like the bridge"
                    ),
                );
                ok = false;
            }
            if ok {
                let k = (node.to_owned(), iface.to_owned());
                if let Some(&(link, end)) = used.get(&k) {
                    let first = endpoint_path(link, end);
                    self.push(p(), format!("interface {e:?} is already used at {first}"));
                    ok = false;
                } else {
                    used.insert(k, (i, j));
                }
            }
            ends.push(ok.then(|| (node.to_owned(), iface.to_owned(), bridge)));
        }
        if let [Some((a, ai, _)), Some((b, bi, _))] = ends.as_slice()
            && a == HOST
            && b == HOST
        {
            self.push(
                format!("{path}.endpoints"),
                format!(
                    "a link needs at least one end in a node: {a}:{ai} <-> {b}:{bi} would leave the host with a link no lab owns"
                ),
            );
        }

        let mut addrs: [[Option<IpNet>; 2]; 2] = [[None; 2]; 2];
        for (fam, (key, list)) in [("ipv4", &m.ipv4), ("ipv6", &m.ipv6)]
            .into_iter()
            .enumerate()
        {
            let Some(Seq(list)) = list else { continue };
            let p = format!("{path}.{key}");
            if list.len() != 2 {
                self.push(
                    &p,
                    format!(
                        "{key} needs one entry per endpoint (2, null for none), found {}",
                        list.len()
                    ),
                );
                continue;
            }
            for (j, entry) in list.iter().enumerate() {
                let Some(Text(s)) = entry else { continue };
                let pj = || format!("{p}[{j}]");
                match parse_address(s, fam == 0) {
                    Ok(net) => {
                        if let Some(Some((node, iface, true))) = ends.get(j) {
                            self.push(
                                pj(),
                                format!(
                                    "address {s:?} on \"{node}:{iface}\": a port of bridge {node:?} cannot have an address"
                                ),
                            );
                        } else {
                            addrs[fam][j] = Some(net);
                        }
                    }
                    Err(msg) => self.push(pj(), msg),
                }
            }
        }

        let mut mtu = None;
        if let Some(v) = m.mtu {
            match u32::try_from(v) {
                Ok(v) if (68..=65535).contains(&v) => mtu = Some(v),
                _ => self.push(
                    format!("{path}.mtu"),
                    format!("mtu {v} is out of range: use 68 to 65535"),
                ),
            }
        }

        let mut macs: [Option<[u8; 6]>; 2] = [None; 2];
        if let Some(Seq(list)) = &m.mac {
            let p = format!("{path}.mac");
            if list.len() != 2 {
                self.push(
                    &p,
                    format!(
                        "mac needs one entry per endpoint (2, null for none), found {}",
                        list.len()
                    ),
                );
            } else {
                for (j, entry) in list.iter().enumerate() {
                    let Some(Text(s)) = entry else { continue };
                    match parse_mac(s) {
                        Ok(mac) => macs[j] = Some(mac),
                        Err(msg) => self.push(format!("{p}[{j}]"), msg),
                    }
                }
            }
        }

        let mut states = [LinkState::Up; 2];
        if let Some(Seq(list)) = &m.state {
            let p = format!("{path}.state");
            if list.len() != 2 {
                self.push(
                    &p,
                    format!(
                        "state needs one entry per endpoint (2, null for up), found {}",
                        list.len()
                    ),
                );
            } else {
                for (j, entry) in list.iter().enumerate() {
                    let Some(Text(s)) = entry else { continue };
                    match s.parse() {
                        Ok(state) => states[j] = state,
                        Err(msg) => self.push(format!("{p}[{j}]"), msg),
                    }
                }
            }
        }

        let mut impairs: [Option<Impair>; 2] = [None; 2];
        match &m.impair {
            None => {}
            Some(ImpairModel::Both(fields)) => {
                let both = self.impair(&format!("{path}.impair"), fields);
                impairs = [both, both];
            }
            Some(ImpairModel::Each(Seq(list))) => {
                let p = format!("{path}.impair");
                if list.len() != 2 {
                    self.push(
                        &p,
                        format!(
                            "impair as a list needs one entry per endpoint (2, null for none), found {}",
                            list.len()
                        ),
                    );
                } else {
                    for (j, entry) in list.iter().enumerate() {
                        if let Some(fields) = entry {
                            impairs[j] = self.impair(&format!("{p}[{j}]"), fields);
                        }
                    }
                }
            }
        }

        if self.problems.len() != before {
            return None;
        }
        let mut it = ends
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(j, (node, iface, _))| Endpoint {
                node,
                iface,
                ipv4: addrs[0][j],
                ipv6: addrs[1][j],
                mac: macs[j],
                impair: impairs[j],
                state: states[j],
                master: None,
            });
        let a = it.next()?;
        let b = it.next()?;
        Some(Link {
            endpoints: [a, b],
            mtu,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical() {
        for (i, o) in [
            ("/a/./b//c/", "/a/b/c"),
            ("/a/../b", "/b"),
            ("/../x", "/x"),
            ("/", "/"),
            ("/a/b/../../..", "/"),
        ] {
            assert_eq!(normalize(Path::new(i)), PathBuf::from(o), "{i}");
        }
    }

    #[test]
    fn sysctl_paths() {
        let ok = [
            ("net.ipv4.ip_forward", "net/ipv4/ip_forward"),
            (
                "net/ipv4/conf/eth0.10/forwarding",
                "net/ipv4/conf/eth0.10/forwarding",
            ),
            ("kernel.shmmax", "kernel/shmmax"),
            ("kernel.msgmnb", "kernel/msgmnb"),
            ("kernel.sem", "kernel/sem"),
            ("kernel.domainname", "kernel/domainname"),
            ("fs.mqueue.msg_max", "fs/mqueue/msg_max"),
        ];
        for (k, p) in ok {
            assert_eq!(sysctl_path(k), Ok(PathBuf::from(p)), "{k}");
        }
        let bad = [
            ("vm.swappiness", "is not namespaced"),
            ("kernel.pid_max", "is not namespaced"),
            ("kernel.hostname", "is not namespaced"),
            ("fs.file-max", "is not namespaced"),
            ("net", "is not namespaced"),
            ("net..x", "empty"),
            ("net/../vm/swappiness", "\"..\" component"),
            ("/net/ipv4/ip_forward", "empty"),
            ("net.ipv4.ip forward", "holds ' '"),
            ("", "empty"),
        ];
        for (k, want) in bad {
            let e = sysctl_path(k).expect_err(k);
            assert!(e.contains(want), "{k}: {e}");
        }
    }

    #[test]
    fn binds_parse() {
        let b = parse_bind("./files/x:/etc/hosts:ro", Path::new("/lab")).expect("ok");
        assert_eq!(b.source, PathBuf::from("/lab/files/x"));
        assert_eq!(b.target, PathBuf::from("/etc/hosts"));
        assert!(b.read_only);
        let b = parse_bind("../x:/data/:rw", Path::new("/lab/sub")).expect("ok");
        assert_eq!(b.source, PathBuf::from("/lab/x"));
        assert_eq!(b.target, PathBuf::from("/data"));
        assert!(!b.read_only);
        let b = parse_bind("/abs:/t", Path::new("/lab")).expect("ok");
        assert_eq!(b.source, PathBuf::from("/abs"));
        for (spec, want) in [
            ("/a", "must be SRC:DST"),
            ("/a:/b:ro:x", "must be SRC:DST"),
            ("/a:/b:rx", "mode \"rx\" is not ro or rw"),
            (":/b", "source is empty"),
            ("/a:b", "target \"b\" must be an absolute path"),
            ("/a:", "target \"\" must be an absolute path"),
            ("/a:/b/../etc", "may not contain \"..\""),
        ] {
            let e = parse_bind(spec, Path::new("/lab")).expect_err(spec);
            assert!(e.contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:00:00:aa:BB:0f"),
            Ok([2, 0, 0, 0xaa, 0xbb, 0x0f])
        );
        for (m, want) in [
            ("01:00:5e:00:00:01", "multicast"),
            ("00:00:00:00:00:00", "all zeros"),
            ("02:00:00:00:00", "not of the form"),
            ("02:00:00:00:00:0g", "not of the form"),
            ("2:00:00:00:00:01", "not of the form"),
            ("02-00-00-00-00-01", "not of the form"),
        ] {
            let e = parse_mac(m).expect_err(m);
            assert!(e.contains(want), "{m}: {e}");
        }
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn cpus_are_a_positive_share_up_to_the_host() {
        assert_eq!(parse_cpus("0.5", 2), Ok(0.5));
        assert_eq!(parse_cpus("2", 2), Ok(2.0));
        for (bad, why) in [
            ("0", "above 0"),
            ("-1", "above 0"),
            ("3", "more than the 2 CPU(s)"),
            ("half", "not a number"),
            ("NaN", "above 0"),
            ("0.001", "below 0.01"),
        ] {
            let e = parse_cpus(bad, 2).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn cpusets_are_lists_of_host_cpus() {
        for good in ["0", "0-1", "1,0", "0-0,1"] {
            assert_eq!(parse_cpuset(good, 2), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("", "not a CPU list"),
            ("1-0", "not a CPU list"),
            ("a", "not a CPU list"),
            ("0-2", "names CPU 2"),
            ("0,,1", "not a CPU list"),
        ] {
            let e = parse_cpuset(bad, 2).expect_err(bad);
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn memory_takes_binary_units_and_at_least_4m() {
        assert_eq!(parse_memory("256M"), Ok(256 << 20));
        assert_eq!(parse_memory("1g"), Ok(1 << 30));
        assert_eq!(parse_memory("4096KiB"), Ok(4 << 20));
        assert_eq!(parse_memory("4194304"), Ok(4 << 20));
        for (bad, why) in [
            ("256X", "unit \"X\" is not known"),
            ("3M", "below 4M"),
            ("M", "not a size"),
            ("1.5G", "unit \".5G\" is not known"),
            ("99999999999T", "too large"),
        ] {
            let e = parse_memory(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn defaults_apply_to_nodes_not_bridges_and_nodes_override() {
        let text = r#"
name: lim
topology:
  defaults: {cpus: 0.5, memory: 64M, pids: 100}
  nodes:
    a: {}
    b: {memory: 1G, cpuset: "0"}
    sw: {kind: bridge}
"#;
        let t = crate::topology::parse_str(text, "lim.yml".as_ref(), ".".as_ref()).expect("valid");
        assert_eq!(
            t.nodes["a"].limits,
            Limits {
                cpus: Some(0.5),
                cpuset: None,
                memory: Some(64 << 20),
                pids: Some(100)
            }
        );
        assert_eq!(t.nodes["b"].limits.memory, Some(1 << 30));
        assert_eq!(t.nodes["b"].limits.cpuset.as_deref(), Some("0"));
        assert!(t.nodes["sw"].limits.is_empty());
    }

    #[test]
    fn bad_limits_are_problems_with_their_key_path() {
        let text = r#"
name: lim
topology:
  defaults: {memory: 1K}
  nodes:
    a: {cpus: 0, pids: 0}
    sw: {kind: bridge, memory: 64M}
"#;
        let problems = crate::topology::parse_str(text, "lim.yml".as_ref(), ".".as_ref())
            .expect_err("invalid");
        let text = problems.to_string();
        for want in [
            "topology.defaults.memory",
            "topology.nodes.a.cpus",
            "topology.nodes.a.pids",
            "topology.nodes.sw.memory",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
    }
}
