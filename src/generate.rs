//! Topologies of any size, ready for `up`: `linear`, `star`, `tree`, `grid`.
//! Pure text generation, so the shapes are unit-tested without a kernel.
//!
//! Addressing: every address lives in 10.0.0.0/8.
//! - `linear N`: routers `r0..r{N-1}` in a chain; link i is the /30 at
//!   offset 4i. Each router sends the right side by default and the left
//!   side's block as a few CIDR routes, so every address reaches every other.
//! - `star N`: hosts `h0..` on a bridge; past 1023 ports the hosts are
//!   sharded over bridges `sw1..` (1022 hosts and one uplink each) joined by
//!   a core bridge `sw0`. One subnet, 10.0.0.0/8.
//! - `tree DEPTH FANOUT`: bridges `s<level>-<n>` in DEPTH levels with
//!   FANOUT children each, FANOUT^DEPTH hosts at the leaves, one subnet.
//! - `grid ROWS COLS`: routers `g<row>-<col>`, each linked to its right and
//!   lower neighbour. Router (r, c) owns 10.c.r.0/24 (its right link is
//!   .0/30, its lower link .4/30); routing is XY: a packet first crosses to
//!   the right column (one /16 route per other column), then the right row
//!   (one /24 route per other row of its column).

use std::fmt::Write;
use std::net::Ipv4Addr;

/// Most ports of a Linux bridge.
const MAX_BRIDGE_PORTS: usize = 1023;

/// A shape to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Linear(usize),
    Star(usize),
    Tree { depth: usize, fanout: usize },
    Grid { rows: usize, cols: usize },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenerateError {
    #[error("{0}")]
    OutOfRange(String),
}

impl Shape {
    /// A lab name for the shape, e.g. `linear-200`.
    pub fn default_name(&self) -> String {
        match *self {
            Shape::Linear(n) => format!("linear-{n}"),
            Shape::Star(n) => format!("star-{n}"),
            Shape::Tree { depth, fanout } => format!("tree-{depth}-{fanout}"),
            Shape::Grid { rows, cols } => format!("grid-{rows}x{cols}"),
        }
    }

    /// Two far-apart places, `(node, address)`: the node can ping the
    /// address once the lab is up (with `ping -t 255`). They are the two
    /// ends of the shape, unless a routed path between them would be longer
    /// than IP allows ([`MAX_HOPS`]): then the address is the farthest one
    /// within reach.
    pub fn far_ends(&self) -> Option<(String, Ipv4Addr)> {
        match *self {
            Shape::Linear(n) if n >= 2 => {
                // Router k's left address; r1..r(k-1) forward to it.
                let k = (n - 1).min(MAX_HOPS + 1);
                Some(("r0".into(), offset(4 * (k as u32 - 1) + 2)))
            }
            Shape::Star(n) if n >= 2 => Some(("h0".into(), offset(n as u32))),
            Shape::Tree { depth, fanout } if depth >= 1 && fanout >= 1 => {
                Some(("h0".into(), offset(fanout.pow(depth as u32) as u32)))
            }
            Shape::Grid { rows, cols } if rows * cols >= 2 => {
                // The XY path to (r, c) crosses r + c - 1 routers.
                let c = (cols - 1).min(MAX_HOPS);
                let r = (rows - 1).min(MAX_HOPS + 1 - c.max(1));
                // The last router's address on the link from its left (or
                // upper) neighbour.
                let address = if c > 0 {
                    Ipv4Addr::new(10, (c - 1) as u8, r as u8, 2)
                } else {
                    Ipv4Addr::new(10, c as u8, (r - 1) as u8, 6)
                };
                Some(("g0-0".into(), address))
            }
            _ => None,
        }
    }
}

/// The topology YAML of `shape`, named `name`.
pub fn generate(shape: Shape, name: &str) -> Result<String, GenerateError> {
    let mut yaml = format!("# nslab generate: {shape:?}\nname: {name}\ntopology:\n");
    match shape {
        Shape::Linear(n) => linear(&mut yaml, n)?,
        Shape::Star(n) => star(&mut yaml, n)?,
        Shape::Tree { depth, fanout } => tree(&mut yaml, depth, fanout)?,
        Shape::Grid { rows, cols } => grid(&mut yaml, rows, cols)?,
    }
    if yaml.len() as u64 > crate::topology::MAX_FILE_BYTES {
        return Err(out_of_range(format!(
            "{shape:?} would take {} MiB of YAML; a topology file may be at most {} MiB",
            yaml.len() >> 20,
            crate::topology::MAX_FILE_BYTES >> 20
        )));
    }
    Ok(yaml)
}

fn out_of_range(what: String) -> GenerateError {
    GenerateError::OutOfRange(what)
}

/// 10.0.0.0 plus `n`.
fn offset(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + n)
}

/// The fewest CIDR prefixes covering offsets `[start, end)` of 10.0.0.0/8.
fn cover(mut start: u32, end: u32) -> Vec<(Ipv4Addr, u8)> {
    let mut prefixes = Vec::new();
    while start < end {
        let mut size = if start == 0 {
            1 << 24
        } else {
            1u32 << start.trailing_zeros()
        };
        while start + size > end {
            size >>= 1;
        }
        prefixes.push((offset(start), 32 - size.trailing_zeros() as u8));
        start += size;
    }
    prefixes
}

/// Routers forward; and replies start with the largest TTL, so they go as
/// far as requests sent with `ping -t 255` (IP allows no more than 255
/// hops, whatever the shape).
fn routing_defaults(yaml: &mut String) {
    yaml.push_str(
        "  defaults:\n    sysctls: {net.ipv4.ip_forward: 1, net.ipv4.ip_default_ttl: 255}\n",
    );
}

/// The most routers a packet can cross: a TTL of 255 reaches 254 routers
/// away and no further.
pub(crate) const MAX_HOPS: usize = 254;

fn linear(yaml: &mut String, n: usize) -> Result<(), GenerateError> {
    if !(1..=1 << 20).contains(&n) {
        return Err(out_of_range(format!(
            "linear takes 1 to {} routers, not {n}",
            1 << 20
        )));
    }
    routing_defaults(yaml);
    yaml.push_str("  nodes:\n");
    for i in 0..n {
        let mut routes = Vec::new();
        if i + 1 < n {
            routes.push(format!("default via {}", offset(4 * i as u32 + 2)));
        }
        if i >= 1 {
            let left = offset(4 * (i as u32 - 1) + 1);
            if i + 1 == n {
                routes.push(format!("default via {left}"));
            } else {
                for (net, len) in cover(0, 4 * (i as u32 - 1)) {
                    routes.push(format!("{net}/{len} via {left}"));
                }
            }
        }
        node_with_routes(yaml, &format!("r{i}"), &routes);
    }
    yaml.push_str("  links:\n");
    for i in 0..n.saturating_sub(1) {
        let base = 4 * i as u32;
        routed_link(
            yaml,
            (&format!("r{i}:e1"), offset(base + 1)),
            (&format!("r{}:e0", i + 1), offset(base + 2)),
        );
    }
    Ok(())
}

/// A point-to-point link on a /30 between two router ends.
fn routed_link(
    yaml: &mut String,
    (a, a_address): (&str, Ipv4Addr),
    (b, b_address): (&str, Ipv4Addr),
) {
    let _ = writeln!(
        yaml,
        "    - endpoints: [\"{a}\", \"{b}\"]\n      ipv4: [{a_address}/30, {b_address}/30]"
    );
}

fn node_with_routes(yaml: &mut String, name: &str, routes: &[String]) {
    if routes.is_empty() {
        let _ = writeln!(yaml, "    {name}: {{}}");
    } else {
        let quoted: Vec<String> = routes.iter().map(|r| format!("\"{r}\"")).collect();
        let _ = writeln!(yaml, "    {name}:\n      routes: [{}]", quoted.join(", "));
    }
}

fn host_link(yaml: &mut String, host: usize, bridge: &str, port: usize) {
    let _ = writeln!(
        yaml,
        "    - endpoints: [\"h{host}:eth0\", \"{bridge}:p{port}\"]\n      ipv4: [{}/8, null]",
        offset(host as u32 + 1)
    );
}

fn star(yaml: &mut String, n: usize) -> Result<(), GenerateError> {
    let per_shard = MAX_BRIDGE_PORTS - 1;
    let max = per_shard * MAX_BRIDGE_PORTS;
    if !(1..=max).contains(&n) {
        return Err(out_of_range(format!(
            "star takes 1 to {max} hosts, not {n}"
        )));
    }
    let sharded = n > MAX_BRIDGE_PORTS;
    let shards = if sharded { n.div_ceil(per_shard) } else { 1 };
    yaml.push_str("  nodes:\n");
    if sharded {
        yaml.push_str("    sw0: {kind: bridge}\n");
    }
    for s in 1..=shards {
        let bridge = if sharded {
            format!("sw{s}")
        } else {
            "sw".into()
        };
        let _ = writeln!(yaml, "    {bridge}: {{kind: bridge}}");
    }
    for h in 0..n {
        let _ = writeln!(yaml, "    h{h}: {{}}");
    }
    yaml.push_str("  links:\n");
    if sharded {
        for s in 1..=shards {
            let _ = writeln!(yaml, "    - endpoints: [\"sw0:s{s}\", \"sw{s}:up\"]");
        }
        for h in 0..n {
            host_link(yaml, h, &format!("sw{}", h / per_shard + 1), h % per_shard);
        }
    } else {
        for h in 0..n {
            host_link(yaml, h, "sw", h);
        }
    }
    Ok(())
}

fn tree(yaml: &mut String, depth: usize, fanout: usize) -> Result<(), GenerateError> {
    let hosts = u32::try_from(depth)
        .ok()
        .and_then(|d| fanout.checked_pow(d))
        .filter(|&h| depth >= 1 && (1..MAX_BRIDGE_PORTS).contains(&fanout) && h <= 1 << 20)
        .ok_or_else(|| {
            out_of_range(format!(
                "tree takes a depth of at least 1 and a fanout of 1 to {} with at most {} hosts",
                MAX_BRIDGE_PORTS - 1,
                1 << 20
            ))
        })?;
    yaml.push_str("  nodes:\n");
    for level in 0..depth {
        for n in 0..fanout.pow(level as u32) {
            let _ = writeln!(yaml, "    s{level}-{n}: {{kind: bridge}}");
        }
    }
    for h in 0..hosts {
        let _ = writeln!(yaml, "    h{h}: {{}}");
    }
    yaml.push_str("  links:\n");
    for level in 1..depth {
        for n in 0..fanout.pow(level as u32) {
            let _ = writeln!(
                yaml,
                "    - endpoints: [\"s{}-{}:c{}\", \"s{level}-{n}:up\"]",
                level - 1,
                n / fanout,
                n % fanout
            );
        }
    }
    for h in 0..hosts {
        host_link(
            yaml,
            h,
            &format!("s{}-{}", depth - 1, h / fanout),
            h % fanout,
        );
    }
    Ok(())
}

fn grid(yaml: &mut String, rows: usize, cols: usize) -> Result<(), GenerateError> {
    if !(1..=256).contains(&rows) || !(1..=256).contains(&cols) {
        return Err(out_of_range(format!(
            "grid takes 1 to 256 rows and columns, not {rows}x{cols}"
        )));
    }
    let a = |c: usize, r: usize, host: u8| Ipv4Addr::new(10, c as u8, r as u8, host);
    routing_defaults(yaml);
    yaml.push_str("  nodes:\n");
    for r in 0..rows {
        for c in 0..cols {
            let mut routes = Vec::new();
            for other in (0..cols).filter(|&o| o != c) {
                let via = if other > c {
                    a(c, r, 2)
                } else {
                    a(c - 1, r, 1)
                };
                routes.push(format!("10.{other}.0.0/16 via {via}"));
            }
            for other in (0..rows).filter(|&o| o != r) {
                let via = if other > r {
                    a(c, r, 6)
                } else {
                    a(c, r - 1, 5)
                };
                routes.push(format!("10.{c}.{other}.0/24 via {via}"));
            }
            node_with_routes(yaml, &format!("g{r}-{c}"), &routes);
        }
    }
    yaml.push_str("  links:\n");
    for r in 0..rows {
        for c in 0..cols {
            if c + 1 < cols {
                routed_link(
                    yaml,
                    (&format!("g{r}-{c}:e"), a(c, r, 1)),
                    (&format!("g{r}-{}:w", c + 1), a(c, r, 2)),
                );
            }
            if r + 1 < rows {
                routed_link(
                    yaml,
                    (&format!("g{r}-{c}:s"), a(c, r, 5)),
                    (&format!("g{}-{c}:n", r + 1), a(c, r, 6)),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;
    use crate::spec::NodeKind;
    use std::path::Path;

    fn plan(shape: Shape) -> Plan {
        let yaml = generate(shape, "gen").expect("generate");
        let topology = crate::topology::parse_str(&yaml, Path::new("gen.yml"), Path::new("/"))
            .unwrap_or_else(|e| panic!("{shape:?} does not validate: {e}"));
        Plan::from_topology(&topology)
    }

    #[test]
    fn cover_is_minimal_and_exact() {
        assert_eq!(cover(0, 0), vec![]);
        assert_eq!(cover(0, 4), vec![(Ipv4Addr::new(10, 0, 0, 0), 30)]);
        assert_eq!(
            cover(0, 12),
            vec![
                (Ipv4Addr::new(10, 0, 0, 0), 29),
                (Ipv4Addr::new(10, 0, 0, 8), 30)
            ]
        );
        assert_eq!(cover(0, 1 << 24), vec![(Ipv4Addr::new(10, 0, 0, 0), 8)]);
    }

    #[test]
    fn every_shape_validates_with_the_expected_counts() {
        let cases = [
            (Shape::Linear(5), 5, 4),
            (Shape::Star(3), 4, 3),
            (Shape::Star(2000), 2000 + 3, 2000 + 2),
            (
                Shape::Tree {
                    depth: 2,
                    fanout: 3,
                },
                1 + 3 + 9,
                3 + 9,
            ),
            (Shape::Grid { rows: 3, cols: 4 }, 12, 3 * 3 + 2 * 4),
        ];
        for (shape, nodes, links) in cases {
            let plan = plan(shape);
            assert_eq!(
                (plan.nodes.len(), plan.links.len()),
                (nodes, links),
                "{shape:?}"
            );
        }
    }

    #[test]
    fn big_stars_are_sharded_under_the_port_limit() {
        let plan = plan(Shape::Star(2500));
        for (id, node) in plan.nodes.iter().enumerate() {
            if node.kind == NodeKind::Bridge {
                let ports = plan
                    .links
                    .iter()
                    .flat_map(|l| &l.endpoints)
                    .filter(|e| e.place == crate::plan::Place::Node(id))
                    .count();
                assert!(ports <= MAX_BRIDGE_PORTS, "{} has {ports} ports", node.name);
            }
        }
    }

    /// Follows the static routes hop by hop, as the kernel would.
    fn walk(plan: &Plan, from: &str, to: Ipv4Addr) -> Result<usize, String> {
        let owner = |addr: Ipv4Addr| {
            plan.links
                .iter()
                .flat_map(|l| &l.endpoints)
                .find_map(|e| match e.place {
                    crate::plan::Place::Node(id)
                        if e.addresses.iter().any(|a| a.addr() == addr) =>
                    {
                        Some(id)
                    }
                    _ => None,
                })
        };
        let mut at = plan.node_id(from).ok_or("no such node")?;
        for hops in 0..plan.nodes.len() + 1 {
            // Connected subnets first (the longest match wins anyway).
            let connected = plan.links.iter().flat_map(|l| &l.endpoints).any(|e| {
                e.place == crate::plan::Place::Node(at)
                    && e.addresses
                        .iter()
                        .any(|a| a.contains(&std::net::IpAddr::V4(to)))
            });
            if connected {
                return Ok(hops);
            }
            let route = plan.nodes[at]
                .routes
                .iter()
                .filter(|r| r.destination.contains(&std::net::IpAddr::V4(to)))
                .max_by_key(|r| r.destination.prefix_len())
                .ok_or(format!("{} has no route to {to}", plan.nodes[at].name))?;
            let std::net::IpAddr::V4(gateway) = route.gateway.ok_or("route without gateway")?
            else {
                return Err("v6 gateway".into());
            };
            at = owner(gateway).ok_or(format!("gateway {gateway} belongs to no node"))?;
        }
        Err(format!("routing loop towards {to}"))
    }

    #[test]
    fn linear_ends_reach_each_other_both_ways() {
        let plan = plan(Shape::Linear(37));
        let (from, to) = Shape::Linear(37).far_ends().expect("ends");
        assert_eq!(walk(&plan, &from, to), Ok(35));
        assert_eq!(walk(&plan, "r36", Ipv4Addr::new(10, 0, 0, 1)), Ok(35));
        // And every router reaches every address.
        for node in &plan.nodes {
            for link in &plan.links {
                for end in &link.endpoints {
                    for address in &end.addresses {
                        let std::net::IpAddr::V4(a) = address.addr() else {
                            continue;
                        };
                        walk(&plan, &node.name, a)
                            .unwrap_or_else(|e| panic!("{} -> {a}: {e}", node.name));
                    }
                }
            }
        }
    }

    #[test]
    fn grid_routes_reach_every_router() {
        let shape = Shape::Grid { rows: 4, cols: 5 };
        let plan = plan(shape);
        let (from, to) = shape.far_ends().expect("ends");
        assert!(walk(&plan, &from, to).is_ok());
        for node in &plan.nodes {
            for link in &plan.links {
                for end in &link.endpoints {
                    let std::net::IpAddr::V4(a) = end.addresses[0].addr() else {
                        continue;
                    };
                    walk(&plan, &node.name, a)
                        .unwrap_or_else(|e| panic!("{} -> {a}: {e}", node.name));
                }
            }
        }
    }

    #[test]
    fn far_ends_stay_within_the_ttl() {
        let long = plan(Shape::Linear(400));
        let (from, to) = Shape::Linear(400).far_ends().expect("ends");
        assert_eq!(walk(&long, &from, to), Ok(MAX_HOPS));
        let (from, to) = Shape::Linear(40).far_ends().expect("ends");
        assert_eq!(walk(&plan(Shape::Linear(40)), &from, to), Ok(38));
    }

    #[test]
    fn out_of_range_sizes_are_refused() {
        assert!(generate(Shape::Linear(0), "x").is_err());
        assert!(generate(Shape::Grid { rows: 300, cols: 2 }, "x").is_err());
        assert!(
            generate(
                Shape::Tree {
                    depth: 2,
                    fanout: 1023
                },
                "x"
            )
            .is_err()
        );
        assert!(
            generate(
                Shape::Tree {
                    depth: 40,
                    fanout: 2
                },
                "x"
            )
            .is_err()
        );
    }
}
