//! Devices in the picture: each a small vertex of its own (what it is:
//! `macvlan on eth0 (bridge)`, `vxlan to 192.0.2.1 vni 100 port 14789`,
//! `dummy`), joined to its node by an edge labelled with the node's end,
//! as a link's is. The parent or remote end is named, not drawn: it is
//! the host's, or beyond it.

use std::fmt::Write;

use super::{end_line, vertex_index};
use crate::plan::{DevicePlan, Plan};

/// The lines of the edge from a device's node: its end, then its MTU.
fn edge_lines(plan: &Plan, device: &DevicePlan) -> Vec<String> {
    let mut lines = vec![end_line(plan, &device.end)];
    if let Some(mtu) = device.mtu {
        lines.push(format!("mtu {mtu}"));
    }
    lines
}

/// DOT: the devices after the links; `ids` are the vertices' quoted ids.
/// A device's id is its end, `node:iface`: no node's name holds a `:`.
pub(super) fn dot(out: &mut String, plan: &Plan, ids: &[String]) {
    for device in &plan.devices {
        let id = super::dot::quote(&plan.endpoint_label(&device.end));
        let label = super::dot::quote(&device.kind.to_string());
        let _ = writeln!(out, "  {id} [shape=note, fontsize=10, label={label}];");
        let _ = writeln!(
            out,
            "  {} -- {id} [label={}];",
            ids[vertex_index(plan, device.end.place)],
            super::dot::quote(&edge_lines(plan, device).join("\n")),
        );
    }
}

/// Mermaid: the devices after the links, as flag-shaped vertices `d0`,
/// `d1`, ... (ids by position, as the nodes' are).
pub(super) fn mermaid(out: &mut String, plan: &Plan) {
    for (i, device) in plan.devices.iter().enumerate() {
        let label = super::mermaid::quote(&device.kind.to_string());
        let _ = writeln!(out, "  d{i}>{label}]");
        let _ = writeln!(
            out,
            "  n{} ---|{}| d{i}",
            vertex_index(plan, device.end.place),
            super::mermaid::quote_lines(&edge_lines(plan, device)),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::tests::plan;

    const LAB: &str = r#"
name: dev
topology:
  nodes: {a: {}}
  links:
    - endpoints: ["a:mv0"]
      macvlan: {parent: eth0}
      ipv4: [10.0.0.2/24]
    - endpoints: ["a:vx0"]
      vxlan: {remote: 192.0.2.1, vni: 100}
      mtu: 1400
"#;

    #[test]
    fn a_device_is_a_vertex_of_its_own_joined_to_its_node() {
        let dot = crate::graph::dot::to_dot(&plan(LAB));
        for line in [
            r#"  "a:mv0" [shape=note, fontsize=10, label="macvlan on eth0 (bridge)"];"#,
            r#"  "a" -- "a:mv0" [label="a:mv0 10.0.0.2/24"];"#,
            r#"  "a:vx0" [shape=note, fontsize=10, label="vxlan to 192.0.2.1 vni 100 port 14789"];"#,
            r#"  "a" -- "a:vx0" [label="a:vx0\nmtu 1400"];"#,
        ] {
            assert!(dot.contains(&format!("\n{line}\n")), "{line}\n{dot}");
        }
        let mermaid = crate::graph::mermaid::to_mermaid(&plan(LAB));
        for line in [
            r#"  d0>"macvlan on eth0 (bridge)"]"#,
            r#"  n0 ---|"a:mv0 10.0.0.2/24"| d0"#,
            r#"  d1>"vxlan to 192.0.2.1 vni 100 port 14789"]"#,
            r#"  n0 ---|"a:vx0<br/>mtu 1400"| d1"#,
        ] {
            assert!(
                mermaid.contains(&format!("\n{line}\n")),
                "{line}\n{mermaid}"
            );
        }
    }
}
