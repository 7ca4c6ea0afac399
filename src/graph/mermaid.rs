//! Mermaid: a left-to-right `flowchart`; nodes are rectangles, bridges
//! hexagons (with the `bridge` class), the host a cylinder. Each link is one
//! open edge (`---`) labelled with a line per end, `node:iface` and its
//! addresses (the first line is the edge's start), and the MTU when set.
//!
//! Vertex ids are `n0`, `n1`, ... by position, never names: a node named
//! `end`, `graph` or `style` is a Mermaid keyword, and a name starting with
//! `o` or `x` right after `---` turns the edge into a circle or cross edge.
//! Every name is in a quoted label instead.

use std::fmt::Write;

use super::{Vertex, link_lines, vertex_index, vertices};
use crate::plan::Plan;
use crate::spec::NodeKind;

/// Mermaid's `maxEdges` by default: a flowchart with more edges is refused
/// (even by its parser) unless whoever draws it raises the limit; a diagram
/// cannot raise it itself.
pub(crate) const DEFAULT_MAX_EDGES: usize = 500;

/// What to tell whoever draws the lab's flowchart when it has more edges
/// than Mermaid draws by default.
pub(crate) fn edge_limit_note(plan: &Plan) -> Option<String> {
    let edges = plan.links.len() + plan.devices.len();
    (edges > DEFAULT_MAX_EDGES).then(|| {
        format!(
            "{edges} links; Mermaid draws at most {DEFAULT_MAX_EDGES} edges unless its maxEdges setting is raised"
        )
    })
}

/// The lab as Mermaid flowchart text.
pub(crate) fn to_mermaid(plan: &Plan) -> String {
    let mut out = String::with_capacity(128 + 96 * plan.links.len() + 32 * plan.nodes.len());
    // Front matter: a YAML title; lab names are plain, but quoted it can
    // never be read as a number or null.
    let _ = writeln!(
        out,
        "---\ntitle: {}\n---",
        yaml_quote(&format!("lab {}", plan.lab))
    );
    out.push_str("flowchart LR\n");
    let vertices = vertices(plan);
    let mut bridges = Vec::new();
    for (i, vertex) in vertices.iter().enumerate() {
        let label = quote(vertex.name());
        let _ = match vertex {
            Vertex::Node {
                kind: NodeKind::Node,
                ..
            } => writeln!(out, "  n{i}[{label}]"),
            Vertex::Node {
                kind: NodeKind::Bridge,
                ..
            } => {
                bridges.push(format!("n{i}"));
                writeln!(out, "  n{i}{{{{{label}}}}}")
            }
            Vertex::Host => writeln!(out, "  n{i}[({label})]"),
        };
    }
    // A lab spread over hosts: a subgraph per host, the links between
    // hosts (VXLAN pairs) dotted.
    let hosts = super::hosts(plan);
    for (h, (label, members)) in hosts.clusters.iter().enumerate() {
        let members: Vec<String> = members.iter().map(|m| format!("n{m}")).collect();
        let _ = writeln!(
            out,
            "  subgraph h{h}[{}]\n    {}\n  end",
            quote(label),
            members.join("\n    ")
        );
    }
    for (link, crosses) in plan.links.iter().zip(hosts.crossing) {
        let [a, b] = &link.endpoints;
        let _ = writeln!(
            out,
            "  n{} {}|{}| n{}",
            vertex_index(plan, a.place),
            if crosses { "-.-" } else { "---" },
            quote_lines(&link_lines(plan, link)),
            vertex_index(plan, b.place)
        );
    }
    super::devices::mermaid(&mut out, plan);
    if !bridges.is_empty() {
        out.push_str("  classDef bridge fill:#dde7f0,stroke:#4a6f8f\n");
        let _ = writeln!(out, "  class {} bridge", bridges.join(","));
    }
    out
}

/// A quoted Mermaid label of several lines (`<br/>` between them).
pub(super) fn quote_lines(lines: &[String]) -> String {
    let escaped: Vec<String> = lines.iter().map(|l| escape(l)).collect();
    format!("\"{}\"", escaped.join("<br/>"))
}

/// A quoted Mermaid label showing `text` as it is.
pub(crate) fn quote(text: &str) -> String {
    format!("\"{}\"", escape(text))
}

/// Escapes `text` for the inside of a quoted Mermaid label. A quote would
/// end it; `#name;` and `#123;` are Mermaid's entity codes, so `#` itself
/// is one; labels are HTML, so `<`, `>` and `&` are entities; a leading
/// backtick would make a Markdown string. Entities are numeric where
/// Mermaid has no name for them.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '&' => out.push_str("#amp;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '`' => out.push_str("#96;"),
            // Line breaks are the caller's `<br/>`; raw ones end the statement.
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A double-quoted YAML scalar.
fn yaml_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
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
    fn escaping_leaves_no_quote_hash_or_markup() {
        assert_eq!(escape("r-1_a"), "r-1_a");
        assert_eq!(escape(r#"a"b"#), "a#quot;b");
        assert_eq!(escape("#1;"), "#35;1;");
        assert_eq!(escape("<b>&"), "#lt;b#gt;#amp;");
        assert_eq!(escape("`md`"), "#96;md#96;");
        assert_eq!(escape(r"a\b|c"), r"a\b|c");
        assert_eq!(escape("two\nlines"), "two lines");
        assert_eq!(quote("x"), "\"x\"");
    }

    #[test]
    fn a_note_past_the_edge_limit_only() {
        let mut lab = plan(LAB);
        assert_eq!(edge_limit_note(&lab), None);
        let link = lab.links[0].clone();
        lab.links = vec![link; DEFAULT_MAX_EDGES];
        assert_eq!(edge_limit_note(&lab), None);
        lab.links.push(lab.links[0].clone());
        assert_eq!(
            edge_limit_note(&lab).as_deref(),
            Some(
                "501 links; Mermaid draws at most 500 edges unless its maxEdges setting is raised"
            )
        );
    }

    #[test]
    fn the_title_is_quoted_yaml() {
        assert_eq!(yaml_quote("lab 0"), "\"lab 0\"");
        assert_eq!(yaml_quote("a\"\\\t"), "\"a\\\"\\\\\\u0009\"");
    }

    #[test]
    fn vertices_have_positional_ids_and_shapes_by_kind() {
        let text = to_mermaid(&plan(LAB));
        assert!(
            text.starts_with("---\ntitle: \"lab pic\"\n---\nflowchart LR\n"),
            "{text}"
        );
        assert!(text.contains("\n  n0[\"h1\"]\n"), "{text}");
        assert!(text.contains("\n  n1[\"r-1_a\"]\n"), "{text}");
        assert!(text.contains("\n  n2{{\"lan\"}}\n"), "{text}");
        assert!(text.contains("\n  n3[(\"host\")]\n"), "{text}");
        assert!(
            text.ends_with("  classDef bridge fill:#dde7f0,stroke:#4a6f8f\n  class n2 bridge\n"),
            "{text}"
        );
    }

    #[test]
    fn edges_carry_both_ends_and_the_mtu() {
        let text = to_mermaid(&plan(LAB));
        assert!(
            text.contains(
                "\n  n0 ---|\"h1:eth0 10.0.0.1/30 2001:db8::1/64<br/>r-1_a:eth0 10.0.0.2/30 2001:db8::2/64\"| n1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\n  n1 ---|\"r-1_a:eth1 10.0.1.1/24<br/>lan:p1<br/>mtu 9000\"| n2\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\n  n3 ---|\"host:veth-lab 192.0.2.1/30<br/>r-1_a:up0 192.0.2.2/30\"| n1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn no_host_and_no_bridge_class_when_there_are_none() {
        let text = to_mermaid(&plan(
            "name: x\ntopology:\n  nodes: {end: {}, ox: {}}\n  links:\n    - endpoints: ['end:q\"#<', 'ox:e0']\n",
        ));
        assert!(text.contains("\n  n0[\"end\"]\n  n1[\"ox\"]\n"), "{text}");
        assert!(
            text.contains("\n  n0 ---|\"end:q#quot;#35;#lt;<br/>ox:e0\"| n1\n"),
            "{text}"
        );
        assert!(
            !text.contains("host") && !text.contains("classDef"),
            "{text}"
        );
    }
}
