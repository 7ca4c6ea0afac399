//! Devices with `ip`: a macvlan or vxlan is asked for from the host (its
//! parent, its tunnel are there) and born in its node's namespace
//! (`netns`), a dummy is made in its node; then each gets its addresses
//! and comes up, as nslab does after making them all.

use super::quote::quote;
use super::{Script, netns};
use crate::plan::{DevicePlan, Place, Plan};
use crate::spec::DeviceKind;

pub(super) fn devices(s: &mut Script, plan: &Plan) {
    if plan.devices.is_empty() {
        return;
    }
    s.section("Devices: macvlan, vxlan and dummy interfaces, each born in its node's namespace");
    s.raw("# A macvlan's parent and a vxlan's tunnel are the host's: ip asks from the host and names the node's namespace (netns).");
    for device in &plan.devices {
        let Place::Node(id) = device.end.place else {
            continue;
        };
        let node = netns(&plan.nodes[id].name);
        let mut commands = vec![create(device, &node)];
        let dev = quote(&device.end.ifname);
        for address in &device.end.addresses {
            // nodad: the address is usable at once, as nslab adds it.
            let nodad = if address.addr().is_ipv6() {
                " nodad"
            } else {
                ""
            };
            commands.push(format!(
                "ip -n {node} address add {address} dev {dev}{nodad}"
            ));
        }
        commands.push(format!("ip -n {node} link set dev {dev} up"));
        let mut what = plan.device_label(device);
        if let Some(mtu) = device.mtu {
            what.push_str(&format!(", MTU {mtu}"));
        }
        for address in &device.end.addresses {
            what.push_str(&format!(", {address}"));
        }
        s.step(&format!("{what}, up"), &commands);
    }
}

/// `ip link add ...` of one device, `node` its netns in the script.
fn create(device: &DevicePlan, node: &str) -> String {
    let mut common = format!("name {}", quote(&device.end.ifname));
    if let Some(mtu) = device.mtu {
        common.push_str(&format!(" mtu {mtu}"));
    }
    if let Some(mac) = device.end.mac {
        common.push_str(&format!(" address {}", mac_text(&mac)));
    }
    match &device.kind {
        DeviceKind::Macvlan { parent, mode } => format!(
            "ip link add link {} {common} netns {node} type macvlan mode {mode}",
            quote(parent)
        ),
        DeviceKind::Vxlan {
            remote,
            vni,
            port,
            source_port,
            parent,
        } => {
            let mut words = format!(
                "ip link add {common} netns {node} type vxlan id {vni} remote {remote} dstport {port}"
            );
            if let Some(source) = source_port {
                // ip's range is inclusive, the kernel's [low, high).
                words.push_str(&format!(" srcport {source} {}", source.saturating_add(1)));
            }
            if let Some(parent) = parent {
                words.push_str(&format!(" dev {}", quote(parent)));
            }
            words
        }
        DeviceKind::Dummy => format!("ip -n {node} link add {common} type dummy"),
    }
}

fn mac_text(mac: &[u8; 6]) -> String {
    let bytes: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    bytes.join(":")
}
