//! Devices: links of one endpoint, a node's macvlan, vxlan or dummy
//! interface. In nslab's form a device is a link with one endpoint and
//! one of `macvlan: {parent, mode}`, `vxlan: {remote, vni, port,
//! src-port, parent}` or `dummy: true`; `clab` turns containerlab's
//! `type: macvlan|vxlan|dummy` (and `macvlan:PARENT` ends) into it, naming
//! the keys the file used ([`DeviceKeys`]). The node's end takes what a
//! veth end takes (`ipv4`, `ipv6`, `mac`, `state`, `impair`, one entry
//! each) and the link's `mtu`; its interface name shares the nodes'
//! names with the links' ends.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use indexmap::IndexMap;
use ipnet::IpNet;

use super::Problem;
use super::impair::parse_impair;
use super::model::VxlanModel;
use super::model::{EndpointModel, ImpairModel, LinkModel, MacvlanModel, Scalar, Seq, Text};
use super::validate::{parse_address, parse_mac};
use crate::spec::{Device, DeviceKind, Endpoint, HOST, Impair, LinkState, MAX_VNI};
use crate::spec::{MacvlanMode, Node, NodeKind, VXLAN_PORT, ifname_problem};

/// Each interface, with the link and end that used it first (validate's
/// `used`; the management network's are at link `usize::MAX`).
pub(super) type Used = HashMap<(String, String), (usize, usize)>;

/// The keys a device's values were written under, relative to its link:
/// nslab's own (the default), or containerlab's, so that a problem names
/// what the file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceKeys {
    pub endpoint: String,
    /// A macvlan's parent and mode.
    pub parent: String,
    pub mode: String,
    /// A vxlan's keys.
    pub remote: String,
    pub vni: String,
    pub port: String,
    pub src_port: String,
    pub vxlan_parent: String,
}

impl Default for DeviceKeys {
    fn default() -> Self {
        DeviceKeys {
            endpoint: "endpoints[0]".into(),
            parent: "macvlan.parent".into(),
            mode: "macvlan.mode".into(),
            remote: "vxlan.remote".into(),
            vni: "vxlan.vni".into(),
            port: "vxlan.port".into(),
            src_port: "vxlan.src-port".into(),
            vxlan_parent: "vxlan.parent".into(),
        }
    }
}

/// Whether a link is a device (valid or not): it gives `macvlan`,
/// `vxlan` or `dummy`.
pub(super) fn is_device(m: &LinkModel) -> bool {
    m.macvlan.is_some() || m.vxlan.is_some() || m.dummy.is_some()
}

/// The devices found so far, each with its link's index and keys.
#[derive(Debug, Default)]
pub(super) struct Devices {
    found: Vec<(usize, Device, DeviceKeys)>,
}

/// What a device is checked against.
pub(super) struct Lab<'a> {
    pub nodes: &'a IndexMap<String, Node>,
    pub used: &'a mut Used,
    /// Each node's interfaces (for the `dev` of routes).
    pub ifaces: &'a mut HashMap<String, HashSet<String>>,
}

impl Devices {
    /// Checks link `i` when it is a device and keeps it when valid; false
    /// when it is no device (a link for validate's own checks).
    pub(super) fn take(
        &mut self,
        i: usize,
        m: &LinkModel,
        lab: Lab<'_>,
        problems: &mut Vec<Problem>,
    ) -> bool {
        if !is_device(m) {
            return false;
        }
        let keys = m.device_keys.clone().unwrap_or_default();
        let mut check = Check {
            path: format!("topology.links[{i}]"),
            keys,
            problems,
        };
        if let Some(device) = check.device(i, m, lab.nodes, lab.used) {
            (lab.ifaces.entry(device.end.node.clone()).or_default())
                .insert(device.end.iface.clone());
            self.found.push((i, device, check.keys));
        }
        true
    }

    /// What can only be checked once every link is known, and the devices.
    /// A parent must exist before `up`, so it is none of the lab's own host
    /// ends (the links' nor the management network's); two vxlans of the
    /// host's underlay cannot share a VNI and port (the kernel refuses the
    /// second).
    pub(super) fn finish(self, used: &Used, problems: &mut Vec<Problem>) -> Vec<Device> {
        let mut tunnels: HashMap<(u32, u16, bool), usize> = HashMap::new();
        for (i, device, keys) in &self.found {
            let path = |key: &str| format!("topology.links[{i}].{key}");
            if let Some(parent) = device.kind.parent()
                && used.contains_key(&(HOST.to_owned(), parent.to_owned()))
            {
                let key = match device.kind {
                    DeviceKind::Macvlan { .. } => &keys.parent,
                    _ => &keys.vxlan_parent,
                };
                problems.push(Problem::new(
                    path(key),
                    format!(
                        "parent {parent:?} is a host end of this lab's own links: a {}'s parent is a host interface that is there before `up`",
                        device.kind.name()
                    ),
                ));
            }
            if let DeviceKind::Vxlan {
                remote, vni, port, ..
            } = device.kind
            {
                match tunnels.get(&(vni, port, remote.is_ipv6())) {
                    Some(first) => problems.push(Problem::new(
                        path(&keys.vni),
                        format!(
                            "vni {vni} on port {port} is topology.links[{first}]'s already: the host holds every vxlan's tunnel, and takes each VNI once per port; give this one another vni or port"
                        ),
                    )),
                    None => drop(tunnels.insert((vni, port, remote.is_ipv6()), *i)),
                }
            }
        }
        self.found.into_iter().map(|(_, d, _)| d).collect()
    }
}

/// One device's checks, every problem collected with its key path.
struct Check<'a> {
    /// The link's path, `topology.links[i]`.
    path: String,
    keys: DeviceKeys,
    problems: &'a mut Vec<Problem>,
}

impl Check<'_> {
    fn push(&mut self, key: &str, message: impl Into<String>) {
        let at = match key {
            "" => self.path.clone(),
            key => format!("{}.{key}", self.path),
        };
        self.problems.push(Problem::new(at, message));
    }

    /// The device of link `i`, or `None` with its problems pushed.
    fn device(
        &mut self,
        i: usize,
        m: &LinkModel,
        nodes: &IndexMap<String, Node>,
        used: &mut Used,
    ) -> Option<Device> {
        let before = self.problems.len();
        let kind = self.kind(m);
        let name = kind.as_ref().map_or("device", |k| k.name());
        let end = self.end(i, m, name, nodes, used);
        let ipv4 = self.address(&m.ipv4, "ipv4", true);
        let ipv6 = self.address(&m.ipv6, "ipv6", false);
        let mac = self.one(&m.mac, "mac").and_then(|s| match parse_mac(&s) {
            Ok(mac) => Some(mac),
            Err(why) => {
                self.push("mac[0]", why);
                None
            }
        });
        let state = self.one(&m.state, "state").map_or(LinkState::Up, |s| {
            s.parse().unwrap_or_else(|why: String| {
                self.push("state[0]", why);
                LinkState::Up
            })
        });
        let impair = self.impair(&m.impair);
        let mtu = m.mtu.and_then(|v| match u32::try_from(v) {
            Ok(v) if (68..=65535).contains(&v) => Some(v),
            _ => {
                self.push("mtu", format!("mtu {v} is out of range: use 68 to 65535"));
                None
            }
        });
        if self.problems.len() != before {
            return None;
        }
        let (node, iface) = end?;
        Some(Device {
            end: Endpoint {
                node,
                iface,
                ipv4,
                ipv6,
                mac,
                impair,
                state,
                master: None,
            },
            mtu,
            kind: kind?,
        })
    }

    /// The one kind the link gives, checked.
    fn kind(&mut self, m: &LinkModel) -> Option<DeviceKind> {
        let given: Vec<&str> = [
            ("macvlan", m.macvlan.is_some()),
            ("vxlan", m.vxlan.is_some()),
            ("dummy", m.dummy.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, given)| given.then_some(key))
        .collect();
        if given.len() > 1 {
            self.push(
                "",
                format!(
                    "a link is one device at most: this one is {}",
                    given.join(" and ")
                ),
            );
            return None;
        }
        if let Some(macvlan) = &m.macvlan {
            return self.macvlan(macvlan);
        }
        if let Some(vxlan) = &m.vxlan {
            return self.vxlan(vxlan);
        }
        match &m.dummy {
            Some(Scalar::Bool(true)) => Some(DeviceKind::Dummy),
            Some(Scalar::Bool(false)) => {
                self.push(
                    "dummy",
                    "`dummy: false` makes no link: write `dummy: true`, or leave the link out",
                );
                None
            }
            _ => {
                self.push("dummy", "dummy is `true` (a link of one dummy interface)");
                None
            }
        }
    }

    fn macvlan(&mut self, m: &MacvlanModel) -> Option<DeviceKind> {
        let key = self.keys.parent.clone();
        let parent = self.parent(m.parent.as_ref(), "macvlan", &key);
        let mode = match &m.mode {
            None => Some(MacvlanMode::default()),
            Some(Text(mode)) => match mode.parse() {
                Ok(mode) => Some(mode),
                Err(why) => {
                    let key = self.keys.mode.clone();
                    self.push(&key, why);
                    None
                }
            },
        };
        Some(DeviceKind::Macvlan {
            // Never absent: a macvlan without one is a problem above.
            parent: parent.flatten()?,
            mode: mode?,
        })
    }

    /// A host interface's name under `key`: `None` when it has a problem,
    /// `Some(None)` when it is absent and `what` may go without.
    fn parent(&mut self, given: Option<&Text>, what: &str, key: &str) -> Option<Option<String>> {
        match given {
            None if what == "macvlan" => {
                // The file's own name of the key: `parent`, `host-interface`.
                let name = key.rsplit('.').next().unwrap_or(key);
                self.push(
                    key,
                    format!("a macvlan needs `{name}`: the host's interface it sits on"),
                );
                None
            }
            None => Some(None),
            Some(Text(parent)) => match ifname_problem(parent) {
                Some(why) => {
                    self.push(key, format!("parent {parent:?}: interface name {why}"));
                    None
                }
                None => Some(Some(parent.clone())),
            },
        }
    }

    fn vxlan(&mut self, m: &VxlanModel) -> Option<DeviceKind> {
        let keys = self.keys.clone();
        let remote = match &m.remote {
            None => {
                self.push(
                    &keys.remote,
                    "a vxlan needs `remote`: the address of the far end of its tunnel",
                );
                None
            }
            Some(Text(text)) => match text.parse::<IpAddr>() {
                Ok(ip) if ip.is_unspecified() || ip.is_multicast() => {
                    self.push(
                        &keys.remote,
                        format!("remote {text:?} is no one host's address: a vxlan of nslab is a tunnel to one remote end"),
                    );
                    None
                }
                Ok(ip) => Some(ip),
                Err(_) => {
                    self.push(
                        &keys.remote,
                        format!("remote {text:?} is not an IP address (nslab looks no names up)"),
                    );
                    None
                }
            },
        };
        let vni = match &m.vni {
            None => {
                self.push(&keys.vni, "a vxlan needs `vni`: its network identifier");
                None
            }
            Some(v) => self.number(v, &keys.vni, "vni", 1, MAX_VNI.into()),
        };
        let port = match &m.port {
            None => Some(u32::from(VXLAN_PORT)),
            Some(v) => self.number(v, &keys.port, "port", 1, 65535),
        };
        // The kernel picks a source port in [low, high): one port is
        // [p, p + 1), so 65535 has none above it.
        let source_port = match &m.src_port {
            None => Some(None),
            Some(v) => self
                .number(v, &keys.src_port, "src-port", 1, 65534)
                .map(Some),
        };
        let parent = self.parent(m.parent.as_ref(), "vxlan", &keys.vxlan_parent);
        Some(DeviceKind::Vxlan {
            remote: remote?,
            vni: vni?,
            port: u16::try_from(port?).ok()?,
            source_port: source_port?.and_then(|p| u16::try_from(p).ok()),
            parent: parent?,
            local: None,
        })
    }

    /// A whole number from `low` to `high`.
    fn number(&mut self, v: &Scalar, key: &str, what: &str, low: i128, high: i128) -> Option<u32> {
        match v {
            Scalar::Int(n) if (low..=high).contains(n) => u32::try_from(*n).ok(),
            Scalar::Int(n) => {
                self.push(
                    key,
                    format!("{what} {n} is out of range: use {low} to {high}"),
                );
                None
            }
            Scalar::Str(s) => {
                self.push(key, format!("{what} {s:?} is not a whole number"));
                None
            }
            Scalar::Bool(b) => {
                self.push(key, format!("{what} {b} is not a whole number"));
                None
            }
        }
    }

    /// The node's end, `(node, iface)`, claimed in `used`.
    fn end(
        &mut self,
        i: usize,
        m: &LinkModel,
        what: &str,
        nodes: &IndexMap<String, Node>,
        used: &mut Used,
    ) -> Option<(String, String)> {
        let key = self.keys.endpoint.clone();
        let e = match m.endpoints.0.as_slice() {
            [EndpointModel::Text(Text(e))] => e,
            [EndpointModel::Fields(f)] => {
                let why = format!(
                    "endpoint of node {:?}: write it as \"NODE:IFACE\"",
                    f.node.0
                );
                self.push(&key, why);
                return None;
            }
            ends => {
                self.push(
                    "endpoints",
                    format!(
                        "a {what} link has one endpoint, the node's interface; found {}",
                        ends.len()
                    ),
                );
                return None;
            }
        };
        let Some((node, iface)) = e.split_once(':').filter(|(_, i)| !i.contains(':')) else {
            self.push(&key, format!("endpoint {e:?} must be NODE:IFACE"));
            return None;
        };
        let mut ok = true;
        match nodes.get(node) {
            None if node == HOST => {
                self.push(
                    &key,
                    format!("endpoint {e:?}: a {what} is a node's interface; nslab makes none in the host"),
                );
                ok = false;
            }
            None => {
                self.push(&key, format!("endpoint {e:?}: no node named {node:?}"));
                ok = false;
            }
            Some(n) if n.kind == NodeKind::Bridge => {
                self.push(
                    &key,
                    format!(
                        "endpoint {e:?}: node {node:?} is a bridge, whose interfaces are its ports; a {what} belongs to a node"
                    ),
                );
                ok = false;
            }
            Some(_) => {}
        }
        if let Some(why) = ifname_problem(iface) {
            self.push(
                &key,
                format!("endpoint {e:?}: interface name {iface:?} {why}"),
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        let k = (node.to_owned(), iface.to_owned());
        if let Some(&(link, end)) = used.get(&k) {
            let first = format!("topology.links[{link}].endpoints[{end}]");
            self.push(&key, format!("interface {e:?} is already used at {first}"));
            return None;
        }
        used.insert(k, (i, 0));
        Some((node.to_owned(), iface.to_owned()))
    }

    /// The one entry of a per-end list (`ipv4: [x]`), `None` when absent
    /// or null.
    fn one(&mut self, list: &Option<Seq<Option<Text>>>, key: &str) -> Option<String> {
        let Seq(list) = list.as_ref()?;
        if list.len() != 1 {
            self.push(
                key,
                format!(
                    "{key} needs one entry per endpoint (1, null for none), found {}",
                    list.len()
                ),
            );
            return None;
        }
        list[0].as_ref().map(|t| t.0.clone())
    }

    fn address(&mut self, list: &Option<Seq<Option<Text>>>, key: &str, v4: bool) -> Option<IpNet> {
        let text = self.one(list, key)?;
        parse_address(&text, v4)
            .map_err(|why| self.push(&format!("{key}[0]"), why))
            .ok()
    }

    fn impair(&mut self, m: &Option<ImpairModel>) -> Option<Impair> {
        let (fields, key) = match m.as_ref()? {
            ImpairModel::Both(fields) => (fields, "impair".to_string()),
            ImpairModel::Each(Seq(list)) if list.len() == 1 => {
                (list[0].as_ref()?, "impair[0]".to_string())
            }
            ImpairModel::Each(Seq(list)) => {
                self.push(
                    "impair",
                    format!(
                        "impair as a list needs one entry per endpoint (1, null for none), found {}",
                        list.len()
                    ),
                );
                return None;
            }
        };
        match parse_impair(&fields.as_text()) {
            // All zero: no impairment, as if the end had none.
            Ok(plan) => (!plan.is_empty()).then_some(plan),
            Err(problems) => {
                for (sub, message) in problems {
                    let at = match sub {
                        "" => key.clone(),
                        sub => format!("{key}.{sub}"),
                    };
                    self.push(&at, message);
                }
                None
            }
        }
    }
}

#[cfg(test)]
#[path = "devices_tests.rs"]
mod tests;
