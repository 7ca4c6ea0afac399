//! Devices in the plan (macvlan, vxlan and dummy interfaces of nodes, see
//! [`DeviceKind`]): placed by node id like the ends of links, and what
//! `apply` changes of them. A device is known by its end (`node:iface`);
//! one that changed in any way is removed and made again (what it is, its
//! parent, its MAC are all given at creation).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::{DEFAULT_MTU, EndKey, EndpointPlan, Place, Plan, PlanDiff};
use crate::spec::{Device, DeviceKind, Topology};

/// A device of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DevicePlan {
    /// The node's interface: its place is always a node.
    pub end: EndpointPlan,
    pub mtu: Option<u32>,
    pub kind: DeviceKind,
}

impl Plan {
    /// Every interface the lab makes in its nodes and the host: both ends
    /// of each link, then each device's.
    pub fn ends(&self) -> impl Iterator<Item = &EndpointPlan> {
        let links = self.links.iter().flat_map(|l| &l.endpoints);
        links.chain(self.devices.iter().map(|d| &d.end))
    }

    /// [`ends`](Self::ends), each with the MTU it is sized for
    /// ([`DEFAULT_MTU`] where the plan leaves it to the kernel).
    pub fn ends_with_mtu(&self) -> impl Iterator<Item = (&EndpointPlan, u32)> {
        let links =
            (self.links.iter()).flat_map(|l| l.endpoints.iter().map(|e| (e, l.mtu_or_default())));
        let devices = (self.devices.iter()).map(|d| (&d.end, d.mtu.unwrap_or(DEFAULT_MTU)));
        links.chain(devices)
    }

    /// `macvlan a:mv0 on eth0 (bridge)`, for messages.
    pub fn device_label(&self, device: &DevicePlan) -> String {
        let end = self.endpoint_label(&device.end);
        match device.kind.to_string().split_once(' ') {
            Some((kind, rest)) => format!("{kind} {end} {rest}"),
            None => format!("{} {end}", device.kind),
        }
    }
}

/// The devices of a validated topology, their ends placed by node id.
pub(super) fn devices_of(t: &Topology) -> Vec<DevicePlan> {
    t.devices.iter().map(|d| device_of(t, d)).collect()
}

fn device_of(t: &Topology, d: &Device) -> DevicePlan {
    let e = &d.end;
    DevicePlan {
        end: EndpointPlan {
            // Validation guarantees a node of the lab.
            place: Place::Node(t.nodes.get_index_of(&e.node).unwrap_or(usize::MAX)),
            ifname: e.iface.clone(),
            addresses: e.ipv4.iter().chain(e.ipv6.iter()).copied().collect(),
            mac: e.mac,
            impair: e.impair,
            state: e.state,
        },
        mtu: d.mtu,
        kind: d.kind.clone(),
    }
}

/// A device by its end's names, borrowed from its plan.
type DeviceKey<'a> = (&'a str, &'a str);

/// The devices of a plan by name, with their index in it.
fn by_name(plan: &Plan) -> BTreeMap<DeviceKey<'_>, (usize, &DevicePlan)> {
    (plan.devices.iter().enumerate())
        .filter_map(|(i, d)| match d.end.place {
            Place::Node(id) => Some((
                (plan.nodes[id].name.as_str(), d.end.ifname.as_str()),
                (i, d),
            )),
            Place::Host => None,
        })
        .collect()
}

/// Alike in everything but the node's id.
fn same(a: &DevicePlan, b: &DevicePlan) -> bool {
    // Every field named, so that a new one is not forgotten here.
    let DevicePlan { end, mtu, kind } = a;
    let EndpointPlan {
        place: _,
        ifname,
        addresses,
        mac,
        impair,
        state,
    } = end;
    *mtu == b.mtu
        && *kind == b.kind
        && *ifname == b.end.ifname
        && *addresses == b.end.addresses
        && *mac == b.end.mac
        && *impair == b.end.impair
        && *state == b.end.state
}

/// The devices `apply` removes and adds, with a line for each. A device
/// stays when every plan before has it alike, the new plan too, and its
/// node is not rebuilt (`rebuilt`: removed, rebuilt or half made nodes,
/// whose namespace takes their devices with it).
pub(super) fn diff(
    before: &[&Plan],
    after: &Plan,
    rebuilt: &BTreeSet<&str>,
    out: &mut PlanDiff,
    lines: &mut Vec<String>,
) {
    let old: Vec<_> = before.iter().map(|p| by_name(p)).collect();
    let new = by_name(after);
    let staying = |key: &DeviceKey<'_>| -> bool {
        let Some((_, now)) = new.get(key) else {
            return false;
        };
        !rebuilt.contains(key.0)
            && old
                .iter()
                .all(|o| o.get(key).is_some_and(|(_, d)| same(d, now)))
    };
    let known: BTreeSet<&DeviceKey<'_>> = old.iter().flat_map(|o| o.keys()).collect();
    // A plan's label of one of its devices, for the lines.
    let labels: HashMap<&DeviceKey<'_>, String> = (known.iter())
        .filter_map(|key| {
            let (plan, (_, device)) = before
                .iter()
                .zip(&old)
                .find_map(|(p, o)| Some((p, o.get(*key)?)))?;
            Some((*key, plan.device_label(device)))
        })
        .collect();
    for key in &known {
        if staying(key) {
            continue;
        }
        if !rebuilt.contains(key.0) {
            out.remove_devices
                .push((key.0.to_owned(), key.1.to_owned()) as EndKey);
        }
        if !new.contains_key(*key) {
            let label = labels.get(key).cloned().unwrap_or_default();
            lines.push(format!("- device {label}"));
        }
    }
    for (key, (index, device)) in &new {
        if staying(key) {
            continue;
        }
        out.add_devices.push(*index);
        let label = after.device_label(device);
        match (known.contains(key), rebuilt.contains(key.0)) {
            (false, _) => lines.push(format!("+ device {label}")),
            (true, false) => lines.push(format!("~ device {label} (re-created)")),
            // Comes back with its node.
            (true, true) => {}
        }
    }
    out.add_devices.sort_unstable();
}
