//! Graphviz DOT: an undirected `graph`; nodes are rounded boxes, bridges
//! filled hexagons, the host a 3-D box. Each link is one edge labelled with
//! a line per end, `node:iface` and its addresses, then the MTU when set.
//! One `label` rather than `taillabel`/`headlabel`: `dot` makes room for an
//! edge's label in the layout, while end labels are placed after it and pile
//! up on a node with several links.

use std::fmt::Write;

use super::{Vertex, link_lines, vertex_index, vertices};
use crate::plan::Plan;
use crate::spec::NodeKind;

/// The lab as DOT text.
pub(crate) fn to_dot(plan: &Plan) -> String {
    let mut out = String::with_capacity(256 + 160 * plan.links.len() + 64 * plan.nodes.len());
    let _ = writeln!(out, "// lab {}, drawn by nslab graph", plan.lab);
    let _ = writeln!(out, "graph {} {{", quote(&plan.lab));
    let _ = writeln!(
        out,
        "  graph [label={}, labelloc=t];",
        quote(&format!("lab {}", plan.lab))
    );
    out.push_str("  node [shape=box, style=rounded];\n");
    out.push_str("  edge [fontsize=10];\n");
    let vertices = vertices(plan);
    let ids: Vec<String> = vertices.iter().map(|v| quote(v.name())).collect();
    for (vertex, id) in vertices.iter().zip(&ids) {
        let style = match vertex {
            Vertex::Node {
                kind: NodeKind::Node,
                ..
            } => "",
            Vertex::Node {
                kind: NodeKind::Bridge,
                ..
            } => " [shape=hexagon, style=filled, fillcolor=\"#dde7f0\"]",
            Vertex::Host => " [shape=box3d, style=solid]",
        };
        let _ = writeln!(out, "  {id}{style};");
    }
    // A lab spread over hosts: a cluster per host, and the links between
    // hosts (VXLAN pairs) dashed.
    let hosts = super::hosts(plan);
    for (i, (label, members)) in hosts.clusters.iter().enumerate() {
        let members: Vec<&str> = members.iter().map(|&m| ids[m].as_str()).collect();
        let _ = writeln!(
            out,
            "  subgraph cluster_{i} {{ label={}; style=dashed; {}; }}",
            quote(label),
            members.join("; ")
        );
    }
    for (link, crosses) in plan.links.iter().zip(hosts.crossing) {
        let [a, b] = &link.endpoints;
        let _ = writeln!(
            out,
            "  {} -- {} [label={}{}];",
            ids[vertex_index(plan, a.place)],
            ids[vertex_index(plan, b.place)],
            quote(&link_lines(plan, link).join("\n")),
            if crosses { ", style=dashed" } else { "" },
        );
    }
    super::devices::dot(&mut out, plan, &ids);
    out.push_str("}\n");
    out
}

/// A DOT quoted string. The DOT lexer keeps `\\` as a pair and turns `\"`
/// into `"`; label attributes then read `\\` as one backslash and `\n` as a
/// line break, and decode HTML entities (`&amp;`, `&#65;`). So a backslash
/// is doubled (a label never shows a stray `\N` or `\G` substitution, and a
/// trailing `\` cannot swallow the closing quote), quotes are escaped, `&`
/// is `&amp;`, and line breaks become `\n`.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '&' => out.push_str("&amp;"),
            '\n' => out.push_str("\\n"),
            // A carriage return would be a line break of its own to the
            // lexer; interface names cannot hold one, other text drops it.
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::{LAB, plan};

    #[test]
    fn quoting_escapes_quotes_backslashes_and_line_breaks() {
        assert_eq!(quote("r-1_a"), r#""r-1_a""#);
        assert_eq!(quote(r#"a"b"#), r#""a\"b""#);
        assert_eq!(quote(r"a\N"), r#""a\\N""#);
        assert_eq!(quote("x\\"), r#""x\\""#);
        assert_eq!(quote("eth0\n10.0.0.1/30"), r#""eth0\n10.0.0.1/30""#);
        assert_eq!(quote("{a|<b>}"), r#""{a|<b>}""#);
        assert_eq!(quote("a&amp;"), r#""a&amp;amp;""#);
    }

    #[test]
    fn nodes_bridges_and_the_host_are_drawn_apart() {
        let dot = to_dot(&plan(LAB));
        assert!(dot.starts_with("// lab pic, drawn by nslab graph\ngraph \"pic\" {\n"));
        assert!(dot.contains("\n  \"h1\";\n"), "{dot}");
        assert!(dot.contains("\n  \"r-1_a\";\n"), "{dot}");
        assert!(
            dot.contains("\n  \"lan\" [shape=hexagon, style=filled, fillcolor=\"#dde7f0\"];\n"),
            "{dot}"
        );
        assert!(
            dot.contains("\n  \"host\" [shape=box3d, style=solid];\n"),
            "{dot}"
        );
        assert!(dot.ends_with("}\n"));
    }

    #[test]
    fn each_link_is_labelled_with_both_ends_and_its_mtu() {
        let dot = to_dot(&plan(LAB));
        assert!(
            dot.contains(
                r#"  "h1" -- "r-1_a" [label="h1:eth0 10.0.0.1/30 2001:db8::1/64\nr-1_a:eth0 10.0.0.2/30 2001:db8::2/64"];"#
            ),
            "{dot}"
        );
        assert!(
            dot.contains(
                r#"  "r-1_a" -- "lan" [label="r-1_a:eth1 10.0.1.1/24\nlan:p1\nmtu 9000"];"#
            ),
            "{dot}"
        );
        assert!(
            dot.contains(
                r#"  "host" -- "r-1_a" [label="host:veth-lab 192.0.2.1/30\nr-1_a:up0 192.0.2.2/30"];"#
            ),
            "{dot}"
        );
    }

    #[test]
    fn no_host_vertex_without_host_links() {
        let dot = to_dot(&plan(
            "name: x\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [\"a:e0\", \"b:e0\"]\n",
        ));
        assert!(!dot.contains("host"), "{dot}");
        assert!(
            dot.contains(r#"  "a" -- "b" [label="a:e0\nb:e0"];"#),
            "{dot}"
        );
    }

    #[test]
    fn odd_interface_names_stay_inside_their_quotes() {
        let dot = to_dot(&plan(
            "name: x\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: ['a:q\"\\', 'b:{|<>}#;']\n",
        ));
        assert!(
            dot.contains(r#"  "a" -- "b" [label="a:q\"\\\nb:{|<>}#;"];"#),
            "{dot}"
        );
    }
}
