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
            // A device is born in its node, never a host bridge's port.
            master: None,
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
        master,
    } = end;
    *mtu == b.mtu
        && *master == b.end.master
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::parse_str;

    fn plan(yaml: &str) -> Plan {
        let topology = parse_str(yaml, "lab.yml".as_ref(), ".".as_ref()).expect("valid");
        Plan::from_topology(&topology)
    }

    const BASE: &str = r#"
name: d
topology:
  nodes:
    r1: {}
    r2: {}
  links:
    - endpoints: ["r1:eth0", "r2:eth0"]
    - endpoints: ["r2:mv0"]
      macvlan: {parent: enp1s0}
      ipv4: [10.0.9.2/24]
    - endpoints: ["r1:d0"]
      dummy: true
"#;

    fn diff(before: &str, after: &str) -> PlanDiff {
        PlanDiff::between(&[&plan(before)], &plan(after), &[])
    }

    #[test]
    fn devices_are_placed_by_node_and_are_ends_of_the_lab() {
        let plan = plan(BASE);
        assert_eq!(plan.devices.len(), 2);
        assert_eq!(plan.devices[0].end.place, Place::Node(1));
        assert_eq!(
            plan.devices[0].end.addresses,
            ["10.0.9.2/24".parse().expect("net")]
        );
        assert_eq!(
            plan.device_label(&plan.devices[0]),
            "macvlan r2:mv0 on enp1s0 (bridge)"
        );
        assert_eq!(plan.device_label(&plan.devices[1]), "dummy r1:d0");
        let ends: Vec<String> = plan.ends().map(|e| plan.endpoint_label(e)).collect();
        assert_eq!(ends, ["r1:eth0", "r2:eth0", "r2:mv0", "r1:d0"]);
        assert_eq!(
            plan.interfaces_by_node(),
            [vec!["eth0", "d0"], vec!["eth0", "mv0"]]
        );
        let mtus: Vec<u32> = plan.ends_with_mtu().map(|(_, mtu)| mtu).collect();
        assert_eq!(mtus, [DEFAULT_MTU; 4]);
        // A device's address is its node's name's.
        assert!(
            plan.hosts_file().contains("10.0.9.2\tr2\n"),
            "{}",
            plan.hosts_file()
        );
    }

    #[test]
    fn plan_json_holds_devices_only_when_there_are_some() {
        let plan = plan(BASE);
        let json = serde_json::to_string(&plan).expect("json");
        assert!(
            json.contains(r#""kind":{"type":"macvlan","parent":"enp1s0","mode":"bridge"}"#),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<Plan>(&json).expect("read back"),
            plan
        );
        // A plan saved before devices existed has none.
        let mut old: serde_json::Value = serde_json::to_value(&plan).expect("value");
        old.as_object_mut().expect("object").remove("devices");
        let old: Plan = serde_json::from_value(old).expect("an old plan reads");
        assert!(old.devices.is_empty());
        let without = serde_json::to_string(&old).expect("json");
        assert!(!without.contains("devices"), "{without}");
    }

    #[test]
    fn an_unchanged_device_stays_and_a_new_one_is_made() {
        assert!(diff(BASE, BASE).is_empty());
        let after = BASE.to_owned()
            + "    - endpoints: [\"r2:vx0\"]\n      vxlan: {remote: 192.0.2.1, vni: 5}\n";
        let d = diff(BASE, &after);
        assert_eq!(
            d.lines,
            ["+ device vxlan r2:vx0 to 192.0.2.1 vni 5 port 14789"]
        );
        assert_eq!(d.add_devices, [2]);
        assert!(d.remove_devices.is_empty() && d.add_links.is_empty());
    }

    #[test]
    fn a_changed_device_is_removed_and_made_again() {
        for after in [
            BASE.replace("parent: enp1s0", "parent: enp2s0"),
            BASE.replace(
                "macvlan: {parent: enp1s0}",
                "macvlan: {parent: enp1s0, mode: vepa}",
            ),
            BASE.replace("10.0.9.2/24", "10.0.9.3/24"),
            BASE.replace(
                "      dummy: true\n",
                "      dummy: true\n      mtu: 1400\n",
            ),
        ] {
            let d = diff(BASE, &after);
            assert_eq!(d.add_devices.len(), 1, "{after}");
            assert_eq!(d.remove_devices.len(), 1, "{after}");
            assert!(
                d.lines[0].starts_with("~ device ") && d.lines[0].ends_with(" (re-created)"),
                "{:?}",
                d.lines
            );
        }
        let d = diff(BASE, &BASE.replace("parent: enp1s0", "parent: enp2s0"));
        assert_eq!(d.remove_devices, [("r2".to_owned(), "mv0".to_owned())]);
        assert_eq!(
            d.lines,
            ["~ device macvlan r2:mv0 on enp2s0 (bridge) (re-created)"]
        );
    }

    #[test]
    fn a_removed_device_is_deleted_unless_its_node_goes() {
        let without = BASE.replace("    - endpoints: [\"r1:d0\"]\n      dummy: true\n", "");
        let d = diff(BASE, &without);
        assert_eq!(d.lines, ["- device dummy r1:d0"]);
        assert_eq!(d.remove_devices, [("r1".to_owned(), "d0".to_owned())]);
        assert!(d.add_devices.is_empty());
        // Node r2 and its macvlan go: the namespace takes the device.
        let gone = "name: d\ntopology:\n  nodes:\n    r1: {}\n  links:\n    - endpoints: [\"r1:d0\"]\n      dummy: true\n";
        let d = diff(BASE, gone);
        assert!(d.remove_devices.is_empty(), "{d:?}");
        assert!(
            d.lines
                .contains(&"- device macvlan r2:mv0 on enp1s0 (bridge)".to_owned()),
            "{:?}",
            d.lines
        );
        // A rebuilt node's device comes back with it, unannounced.
        let d = PlanDiff::between(&[&plan(BASE)], &plan(BASE), &["r2".to_owned()]);
        assert_eq!(d.add_devices, [0]);
        assert!(d.remove_devices.is_empty());
        assert!(
            !d.lines.iter().any(|l| l.contains("device")),
            "{:?}",
            d.lines
        );
    }

    #[test]
    fn a_device_half_made_by_an_unfinished_apply_is_made_again() {
        let pending = BASE.replace("10.0.9.2/24", "10.0.9.3/24");
        let d = PlanDiff::between(&[&plan(BASE), &plan(&pending)], &plan(&pending), &[]);
        assert_eq!(d.remove_devices, [("r2".to_owned(), "mv0".to_owned())]);
        assert_eq!(d.add_devices, [0]);
    }
}
