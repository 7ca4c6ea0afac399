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
        // A bridge's device (a cross-host link's end) is one of its ports.
        if plan.nodes[id].kind == crate::spec::NodeKind::Bridge {
            let bridge = quote(&plan.nodes[id].name);
            commands.push(format!("ip -n {node} link set dev {dev} master {bridge}"));
        }
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
            local,
        } => {
            let mut words = format!(
                "ip link add {common} netns {node} type vxlan id {vni} remote {remote} dstport {port}"
            );
            if let Some(local) = local {
                words.push_str(&format!(" local {local}"));
            }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::plan::Plan;
    use crate::topology::parse_str;

    const LAB: &str = r#"
name: dev
topology:
  nodes: {a: {}, b: {}}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
    - endpoints: ["a:mv0"]
      macvlan: {parent: enp1s0, mode: private}
      ipv4: [10.0.9.2/24]
      mac: ["02:00:00:00:00:09"]
    - endpoints: ["b:vx0"]
      vxlan: {remote: 192.0.2.1, vni: 100, src-port: 5000, parent: enp2s0}
      ipv6: ["2001:db8::2/64"]
      mtu: 1400
    - endpoints: ["b:d0"]
      dummy: true
      impair: {delay: 5ms}
      state: [down]
"#;

    fn script() -> String {
        let topology = parse_str(LAB, Path::new("lab.yml"), Path::new("/")).expect("valid");
        crate::explain::script(&Plan::from_topology(&topology), None).expect("script")
    }

    #[test]
    fn each_device_is_one_ip_link_add_then_its_addresses_and_up() {
        let text = script();
        let block = [
            "# macvlan a:mv0 on enp1s0 (private), 10.0.9.2/24, up",
            "ip link add link enp1s0 name mv0 address 02:00:00:00:00:09 netns \"$LAB-a\" type macvlan mode private",
            "ip -n \"$LAB-a\" address add 10.0.9.2/24 dev mv0",
            "ip -n \"$LAB-a\" link set dev mv0 up",
            "# vxlan b:vx0 to 192.0.2.1 vni 100 port 14789 from port 5000 via enp2s0, MTU 1400, 2001:db8::2/64, up",
            "ip link add name vx0 mtu 1400 netns \"$LAB-b\" type vxlan id 100 remote 192.0.2.1 dstport 14789 srcport 5000 5001 dev enp2s0",
            "ip -n \"$LAB-b\" address add 2001:db8::2/64 dev vx0 nodad",
            "ip -n \"$LAB-b\" link set dev vx0 up",
            "# dummy b:d0, up",
            "ip -n \"$LAB-b\" link add name d0 type dummy",
            "ip -n \"$LAB-b\" link set dev d0 up",
        ]
        .join("\n");
        assert!(text.contains(&block), "{text}");
        // After the veths, before the routes; impaired and set down with
        // the links' ends.
        let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("no {s:?}:\n{text}"));
        assert!(at("type veth peer") < at("type macvlan"));
        assert!(at("type dummy") < at("tc -n \"$LAB-b\" qdisc replace dev d0 root"));
        assert!(at("ip -n \"$LAB-b\" link set dev d0 down") > at("type dummy"));
        let out = std::process::Command::new("/bin/sh")
            .args(["-n", "-c", &text])
            .output()
            .expect("run /bin/sh -n");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
