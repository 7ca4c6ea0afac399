//! Pictures of a lab: its nodes, bridges and (when links reach it) the host,
//! with every link labelled by the interface names and addresses at its
//! ends, and each device (macvlan, vxlan, dummy) a small vertex of its own. Drawn from the validated [`Plan`], as Graphviz DOT ([`dot`]) or
//! Mermaid ([`mermaid`]) text; both are pure text generation. SVG is DOT
//! rendered by Graphviz's own `dot` program ([`svg`]).

mod devices;
pub(crate) mod dot;
pub(crate) mod mermaid;
pub(crate) mod svg;

use crate::plan::{EndpointPlan, LinkPlan, Place, Plan};
use crate::spec::NodeKind;

pub(crate) use svg::GraphError;

/// What `nslab graph` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Graphviz DOT text.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
    /// An SVG picture (DOT laid out by Graphviz's `dot`).
    Svg,
}

/// The lab drawn in `format`.
pub(crate) fn render(plan: &Plan, format: Format) -> Result<Vec<u8>, GraphError> {
    match format {
        Format::Dot => Ok(dot::to_dot(plan).into_bytes()),
        Format::Mermaid => Ok(mermaid::to_mermaid(plan).into_bytes()),
        Format::Svg => svg::dot_to_svg(&dot::to_dot(plan)),
    }
}

/// What a vertex of the picture stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vertex<'a> {
    Node { name: &'a str, kind: NodeKind },
    Host,
}

impl Vertex<'_> {
    /// The name it is known by: the node's, or `host`.
    fn name(&self) -> &str {
        match self {
            Vertex::Node { name, .. } => name,
            Vertex::Host => crate::spec::HOST,
        }
    }
}

/// The vertices in drawing order: nodes as in the file, then the host when
/// some link has an end there. A [`Place`] maps to its vertex by
/// [`vertex_index`].
fn vertices(plan: &Plan) -> Vec<Vertex<'_>> {
    let mut vertices: Vec<Vertex<'_>> = plan
        .nodes
        .iter()
        .map(|n| Vertex::Node {
            name: &n.name,
            kind: n.kind,
        })
        .collect();
    if has_host(plan) {
        vertices.push(Vertex::Host);
    }
    vertices
}

fn has_host(plan: &Plan) -> bool {
    plan.links
        .iter()
        .flat_map(|l| &l.endpoints)
        .any(|e| e.place == Place::Host)
}

/// Index into [`vertices`] of a link end's place.
fn vertex_index(plan: &Plan, place: Place) -> usize {
    match place {
        Place::Node(id) => id,
        Place::Host => plan.nodes.len(),
    }
}

/// A lab spread over hosts: each host with nodes, its label (`host NAME
/// (UNDERLAY)`) and the indexes of its vertices, and for each link whether
/// it crosses between hosts (a VXLAN pair). Empty for a lab of one host.
struct Hosts {
    clusters: Vec<(String, Vec<usize>)>,
    crossing: Vec<bool>,
}

fn hosts(plan: &Plan) -> Hosts {
    let Some((placement, spread)) = plan.placement().zip(plan.spread.as_ref()) else {
        return Hosts {
            clusters: Vec::new(),
            crossing: vec![false; plan.links.len()],
        };
    };
    let vertices = vertices(plan);
    let clusters = (spread.hosts.iter())
        .map(|(host, machine)| {
            let members = (vertices.iter().enumerate())
                .filter(|(_, v)| placement.get(v.name()) == Some(host))
                .map(|(i, _)| i)
                .collect::<Vec<_>>();
            (format!("host {host} ({})", machine.underlay), members)
        })
        .filter(|(_, members)| !members.is_empty())
        .collect();
    let host_of = |place| match place {
        Place::Node(id) => placement.get(&plan.nodes[id].name),
        Place::Host => None,
    };
    let crossing = (plan.links.iter())
        .map(|l| host_of(l.endpoints[0].place) != host_of(l.endpoints[1].place))
        .collect();
    Hosts { clusters, crossing }
}

/// A link's label, a line each: its first end, its second end (each
/// `node:iface` and the addresses as written in the topology), and the
/// MTU when the link sets one.
fn link_lines(plan: &Plan, link: &LinkPlan) -> Vec<String> {
    let mut lines: Vec<String> = link
        .endpoints
        .iter()
        .map(|end| end_line(plan, end))
        .collect();
    if let Some(mtu) = link.mtu {
        lines.push(format!("mtu {mtu}"));
    }
    lines
}

/// `node:iface 10.0.0.1/30 2001:db8::1/64`.
fn end_line(plan: &Plan, end: &EndpointPlan) -> String {
    let mut line = plan.endpoint_label(end);
    for address in &end.addresses {
        line.push(' ');
        line.push_str(&address.to_string());
    }
    line
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use crate::plan::Plan;

    /// A plan from topology text, through the real parser and validator.
    pub(crate) fn plan(yaml: &str) -> Plan {
        let topology = crate::topology::parse_str(yaml, Path::new("lab.yml"), Path::new("/"))
            .expect("valid topology");
        Plan::from_topology(&topology)
    }

    /// Nodes, a bridge, a host link, IPv4 and IPv6, an MTU.
    pub(crate) const LAB: &str = r#"
name: pic
topology:
  nodes:
    h1: {}
    r-1_a: {}
    lan: {kind: bridge}
  links:
    - endpoints: ["h1:eth0", "r-1_a:eth0"]
      ipv4: [10.0.0.1/30, 10.0.0.2/30]
      ipv6: ["2001:db8::1/64", "2001:db8::2/64"]
    - endpoints: ["r-1_a:eth1", "lan:p1"]
      ipv4: [10.0.1.1/24, null]
      mtu: 9000
    - endpoints: ["host:veth-lab", "r-1_a:up0"]
      ipv4: [192.0.2.1/30, 192.0.2.2/30]
"#;

    #[test]
    fn a_link_label_has_a_line_per_end_then_the_mtu() {
        let plan = plan(LAB);
        assert_eq!(
            super::link_lines(&plan, &plan.links[0]),
            [
                "h1:eth0 10.0.0.1/30 2001:db8::1/64",
                "r-1_a:eth0 10.0.0.2/30 2001:db8::2/64"
            ]
        );
        assert_eq!(
            super::link_lines(&plan, &plan.links[1]),
            ["r-1_a:eth1 10.0.1.1/24", "lan:p1", "mtu 9000"]
        );
        assert_eq!(
            super::link_lines(&plan, &plan.links[2]),
            ["host:veth-lab 192.0.2.1/30", "r-1_a:up0 192.0.2.2/30"]
        );
    }

    #[test]
    fn the_host_is_a_vertex_only_when_a_link_reaches_it() {
        let with = plan(LAB);
        assert_eq!(super::vertices(&with).len(), 4);
        assert_eq!(super::vertices(&with)[3], super::Vertex::Host);
        let without = plan(
            "name: x\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [\"a:e\", \"b:e\"]\n",
        );
        assert_eq!(super::vertices(&without).len(), 2);
    }

    #[test]
    fn a_spread_lab_has_a_cluster_per_host_and_its_tunnels_drawn_apart() {
        let plan = plan(
            "name: sp\nhosts:\n  a: {ssh: a, underlay: 192.0.2.1}\n  b: {ssh: b, underlay: 192.0.2.2}\ntopology:\n  nodes:\n    r1: {}\n    r2: {}\n  links:\n    - endpoints: [r1:eth0, r2:eth0]\n",
        );
        let dot = super::dot::to_dot(&plan);
        assert!(
            dot.contains(
                r#"subgraph cluster_0 { label="host a (192.0.2.1)"; style=dashed; "r1"; }"#
            ),
            "{dot}"
        );
        assert!(
            dot.contains(r#""r1" -- "r2" [label="r1:eth0\nr2:eth0", style=dashed];"#),
            "{dot}"
        );
        let mermaid = super::mermaid::to_mermaid(&plan);
        assert!(
            mermaid.contains("  subgraph h1[\"host b (192.0.2.2)\"]\n    n1\n  end"),
            "{mermaid}"
        );
        assert!(mermaid.contains("n0 -.-|"), "{mermaid}");
    }
}
