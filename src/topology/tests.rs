//! Validation rules, end to end through [`parse_str`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::*;
use crate::spec::{Bind, Impair, LinkState, Node, Route};

const ORIGIN: &str = "lab.yml";

pub(crate) fn parse(yaml: &str) -> Result<Topology, TopologyError> {
    parse_str(yaml, Path::new(ORIGIN), Path::new("/"))
}

fn problems(yaml: &str) -> Vec<Problem> {
    problems_of(parse(yaml), Path::new(ORIGIN))
}

/// The validation problems of a parse of `origin`, which must have some.
#[track_caller]
pub(crate) fn problems_of(parsed: Result<Topology, TopologyError>, origin: &Path) -> Vec<Problem> {
    match parsed {
        Err(TopologyError::Invalid { file, problems }) => {
            assert_eq!(file, origin);
            problems
        }
        other => panic!("expected validation problems, got {other:?}"),
    }
}

/// Asserts that one problem has exactly this key path and a message holding `msg`.
#[track_caller]
fn assert_problem(yaml: &str, path: &str, msg: &str) {
    assert_problem_in(&problems(yaml), path, msg);
}

/// Asserts that one of `ps` has exactly this key path and a message
/// holding `msg`.
#[track_caller]
pub(crate) fn assert_problem_in(ps: &[Problem], path: &str, msg: &str) {
    assert!(
        ps.iter().any(|p| p.path == path && p.message.contains(msg)),
        "no problem at {path:?} containing {msg:?}; got {ps:#?}"
    );
}

#[track_caller]
fn assert_parse_error(yaml: &str, want: &str) {
    match parse(yaml) {
        Err(e @ TopologyError::Parse { .. }) => {
            let s = e.to_string();
            assert!(s.contains(want), "got {s:?}, want {want:?}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

pub(crate) fn net(s: &str) -> IpNet {
    s.parse().expect("test net")
}

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().expect("test ip")
}

/// A two-node lab with `extra` appended to node `a` (indented 6 spaces).
fn with_node_a(extra: &str) -> String {
    format!(
        "name: t\ntopology:\n  nodes:\n    a:\n{extra}    b: {{}}\n  links:\n    - endpoints: [\"a:eth0\", \"b:eth0\"]\n"
    )
}

/// A lab with one link whose body (keys after `- `) is `link`.
pub(crate) fn with_link(link: &str) -> String {
    format!(
        "name: t\ntopology:\n  nodes:\n    a: {{}}\n    b: {{}}\n    br: {{kind: bridge}}\n  links:\n    - {link}\n"
    )
}

// ---------------------------------------------------------------- names

#[test]
fn lab_name_rule() {
    assert_problem(
        "name: Lab1\ntopology: {nodes: {a: {}}}\n",
        "name",
        "lab name \"Lab1\" may hold only lowercase letters",
    );
    assert_problem(
        &format!(
            "name: {}\ntopology: {{nodes: {{a: {{}}}}}}\n",
            "x".repeat(41)
        ),
        "name",
        "is longer than 40 bytes",
    );
    assert_problem(
        "name: \"../etc\"\ntopology: {nodes: {a: {}}}\n",
        "name",
        "lab name \"../etc\"",
    );
    assert_problem(
        "name: \"\"\ntopology: {nodes: {a: {}}}\n",
        "name",
        "lab name \"\" is empty",
    );
}

#[test]
fn name_is_required() {
    assert_parse_error("topology: {nodes: {a: {}}}\n", "missing field `name`");
}

#[test]
fn node_name_rules() {
    // containerlab's rule: capitals and dots too (its examples have `PC1`).
    let t = parse("name: t\ntopology: {nodes: {PC1: {}, a.b: {}}}\n").expect("valid");
    assert_eq!(t.nodes["PC1"].hostname, "PC1");
    assert_problem(
        "name: t\ntopology: {nodes: {\"r 1\": {}}}\n",
        "topology.nodes.\"r 1\"",
        "node name \"r 1\" may hold only letters, digits, '_', '-' and '.'",
    );
    assert_problem(
        &format!(
            "name: t\ntopology: {{nodes: {{{}: {{}}}}}}\n",
            "n".repeat(41)
        ),
        &format!("topology.nodes.\"{}\"", "n".repeat(41)),
        "is longer than 40 bytes",
    );
}

#[test]
fn host_is_reserved() {
    assert_problem(
        "name: t\ntopology: {nodes: {host: {}}}\n",
        "topology.nodes.host",
        "node name \"host\" is reserved",
    );
}

#[test]
fn bridge_name_must_fit_an_interface_name() {
    assert_problem(
        "name: t\ntopology: {nodes: {abcdefghijklmnop: {kind: bridge}}}\n",
        "topology.nodes.abcdefghijklmnop",
        "bridge node name \"abcdefghijklmnop\" is longer than 15 bytes",
    );
    // A plain node may be longer.
    parse("name: t\ntopology: {nodes: {abcdefghijklmnop: {}}}\n").expect("valid");
}

#[test]
fn duplicate_node_names() {
    assert_problem(
        "name: t\ntopology:\n  nodes:\n    r1: {}\n    r2: {}\n    r1: {kind: bridge}\n",
        "topology.nodes",
        "node \"r1\" is defined more than once",
    );
}

#[test]
fn duplicate_keys() {
    assert_parse_error(
        "name: t\nname: u\ntopology: {nodes: {a: {}}}\n",
        "duplicate field `name`",
    );
    assert_parse_error(
        "name: t\ntopology:\n  nodes:\n    a:\n      kind: node\n      kind: bridge\n",
        "lab.yml:5:7: topology.nodes.a: duplicate field `kind`",
    );
    assert_problem(
        &with_node_a("      sysctls: {net.ipv4.ip_forward: 1, net.ipv4.ip_forward: 0}\n"),
        "topology.nodes.a.sysctls",
        "key \"net.ipv4.ip_forward\" is given more than once",
    );
    assert_problem(
        &with_node_a("      sysctls: {net.ipv4.ip_forward: 1, net/ipv4/ip_forward: 0}\n"),
        "topology.nodes.a.sysctls.net/ipv4/ip_forward",
        "sysctl \"net/ipv4/ip_forward\" is the same as \"net.ipv4.ip_forward\"",
    );
    assert_problem(
        &with_node_a("      env: {A: 1, A: 2}\n"),
        "topology.nodes.a.env",
        "key \"A\" is given more than once",
    );
}

#[test]
fn no_nodes() {
    for yaml in [
        "name: t\n",
        "name: t\ntopology: {}\n",
        "name: t\ntopology:\n  nodes: {}\n",
        "name: t\ntopology:\n  nodes:\n",
    ] {
        assert_problem(yaml, "topology.nodes", "no nodes");
    }
}

// ---------------------------------------------------------------- unknown keys, types

#[test]
fn unknown_keys_are_errors() {
    assert_parse_error(
        "name: t\ntopolgy: {}\n",
        "lab.yml:2:1: unknown field `topolgy`, expected one of `name`, `prefix`, `mgmt`, `topology`, `expect`",
    );
    assert_parse_error(
        "name: t\ntopology:\n  nodes:\n    a:\n      colour: red\n",
        "lab.yml:5:7: topology.nodes.a: unknown field `colour`",
    );
    assert_parse_error(
        "name: t\ntopology:\n  defaults: {knd: bridge}\n  nodes: {a: {}}\n",
        "topology.defaults: unknown field `knd`",
    );
    assert_parse_error(
        "name: t\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [\"a:e\", \"b:e\"]\n      vlan: 3\n",
        "topology.links[0]: unknown field `vlan`",
    );
    assert_parse_error(
        "name: t\ntopology:\n  nodes: {a: {}}\n  routers: {}\n",
        "topology: unknown field `routers`",
    );
}

#[test]
fn wrong_types_are_parse_errors() {
    assert_parse_error(
        "name: t\ntopology:\n  nodes:\n    a:\n      routes: default via 10.0.0.1\n",
        "lab.yml:5:15: topology.nodes.a.routes: invalid type: string \"default via 10.0.0.1\", expected a list",
    );
    assert_parse_error(
        "name: t\ntopology:\n  nodes:\n    a:\n      sysctls: {net.ipv4.ip_forward: [1]}\n",
        "expected a string, an integer or a boolean",
    );
    assert_parse_error(
        "name: t\ntopology:\n  nodes:\n    a:\n      env: {A: 1.5}\n",
        "expected a string, an integer or a boolean",
    );
    assert_parse_error(
        "name: [t]\n",
        "lab.yml:1:7: name: invalid type: sequence, expected a string",
    );
    assert_parse_error("", "lab.yml:1:1: missing field `name`");
    assert_parse_error("name: t\n---\nname: u\n", "more than one document");
}

#[test]
fn yaml_syntax_error_has_location() {
    let err = parse("name: t\ntopology:\n  nodes: {a: {}}\n  links: [\n\n").expect_err("syntax");
    let s = err.to_string();
    assert_eq!(
        s,
        "lab.yml:6:1: did not find expected node content, while parsing a flow node"
    );
    match err {
        TopologyError::Parse { line, column, .. } => {
            assert_eq!((line, column), (Some(6), Some(1)));
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- node keys

#[test]
fn kind_rule() {
    assert_problem(
        "name: t\ntopology: {nodes: {a: {kind: router}}}\n",
        "topology.nodes.a.kind",
        "kind \"router\" is not known: use node or bridge",
    );
    assert_problem(
        "name: t\ntopology: {defaults: {kind: Bridge}, nodes: {a: {}}}\n",
        "topology.defaults.kind",
        "kind \"Bridge\" is not known",
    );
}

#[test]
fn hostname_rule() {
    assert_problem(
        &with_node_a("      hostname: r_1\n"),
        "topology.nodes.a.hostname",
        "hostname \"r_1\" is invalid",
    );
    assert_problem(
        &with_node_a(&format!("      hostname: {}\n", "h".repeat(65))),
        "topology.nodes.a.hostname",
        "is invalid: use 1 to 64 bytes",
    );
    let t = parse(&with_node_a("      hostname: R1.example-lab\n")).expect("valid");
    assert_eq!(t.nodes["a"].hostname, "R1.example-lab");
    assert_eq!(t.nodes["b"].hostname, "b");
}

#[test]
fn interface_name_rules() {
    let cases = [
        ("a:", "interface name \"\" is empty"),
        (
            "a:abcdefghijklmnop",
            "interface name \"abcdefghijklmnop\" is longer than 15 bytes",
        ),
        ("a:.", "interface name \".\" is not allowed"),
        ("a:..", "interface name \"..\" is not allowed"),
        (
            "a:lo",
            "interface name \"lo\" is reserved for the loopback interface",
        ),
        ("a:e/1", "interface name \"e/1\" may not hold '/'"),
        ("a:e 1", "interface name \"e 1\" may not hold"),
        ("a:e\\t1", "interface name \"e\\t1\" may not hold"),
    ];
    for (ep, msg) in cases {
        assert_problem(
            &with_link(&format!("endpoints: [\"{ep}\", \"b:eth0\"]")),
            "topology.links[0].endpoints[0]",
            msg,
        );
    }
}

#[test]
fn bridge_port_may_not_be_named_like_the_bridge() {
    assert_problem(
        &with_link("endpoints: [\"a:eth0\", \"br:br\"]"),
        "topology.links[0].endpoints[1]",
        "endpoint \"br:br\": a port of bridge \"br\" may not be named like the bridge",
    );
}

#[test]
fn endpoint_rules() {
    assert_problem(
        &with_link("endpoints: [\"a:eth0\"]"),
        "topology.links[0].endpoints",
        "a link has exactly two endpoints, found 1",
    );
    assert_problem(
        &with_link("endpoints: [\"a:eth0\", \"b:eth0\", \"br:p1\"]"),
        "topology.links[0].endpoints",
        "found 3",
    );
    assert_problem(
        &with_link("endpoints: [\"a\", \"b:eth0\"]"),
        "topology.links[0].endpoints[0]",
        "endpoint \"a\" must be NODE:IFACE",
    );
    assert_problem(
        &with_link("endpoints: [\"a:eth0\", \"b:eth0:1\"]"),
        "topology.links[0].endpoints[1]",
        "endpoint \"b:eth0:1\" must be NODE:IFACE",
    );
    assert_problem(
        &with_link("endpoints: [\"a:eth0\", \"zz:eth0\"]"),
        "topology.links[0].endpoints[1]",
        "endpoint \"zz:eth0\": no node named \"zz\"",
    );
    assert_problem(
        "name: t\ntopology:\n  nodes: {a: {}}\n  links:\n    - ipv4: [null, null]\n",
        "topology.links[0].endpoints",
        "a link has exactly two endpoints, found 0",
    );
}

#[test]
fn interface_used_twice() {
    let yaml = "name: t\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [\"a:eth0\", \"b:eth0\"]\n    - endpoints: [\"a:eth1\", \"b:eth0\"]\n";
    assert_problem(
        yaml,
        "topology.links[1].endpoints[1]",
        "interface \"b:eth0\" is already used at topology.links[0].endpoints[1]",
    );
    let host = "name: t\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [\"a:eth0\", \"host:v1\"]\n    - endpoints: [\"b:eth0\", \"host:v1\"]\n";
    assert_problem(
        host,
        "topology.links[1].endpoints[1]",
        "interface \"host:v1\" is already used at topology.links[0].endpoints[1]",
    );
    // Same interface name on different nodes is fine.
    parse("name: t\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [\"a:eth0\", \"b:eth0\"]\n")
        .expect("valid");
}

// ---------------------------------------------------------------- addresses

#[test]
fn address_rules() {
    let cases = [
        (
            "ipv4: [10.0.0.1, null]",
            "topology.links[0].ipv4[0]",
            "address \"10.0.0.1\" has no prefix length (write it as 10.0.0.1/24, for example)",
        ),
        (
            "ipv6: [null, \"2001:db8::1\"]",
            "topology.links[0].ipv6[1]",
            "address \"2001:db8::1\" has no prefix length",
        ),
        (
            "ipv4: [\"2001:db8::1/64\", null]",
            "topology.links[0].ipv4[0]",
            "address \"2001:db8::1/64\" is IPv6; put it in ipv6",
        ),
        (
            "ipv6: [10.0.0.1/24, null]",
            "topology.links[0].ipv6[0]",
            "address \"10.0.0.1/24\" is IPv4; put it in ipv4",
        ),
        (
            "ipv4: [10.0.0.1/33, null]",
            "topology.links[0].ipv4[0]",
            "\"10.0.0.1/33\" is not an address with a prefix length",
        ),
        (
            "ipv4: [banana, null]",
            "topology.links[0].ipv4[0]",
            "\"banana\" is not an address with a prefix length",
        ),
        (
            "ipv4: [10.0.0.1/24]",
            "topology.links[0].ipv4",
            "ipv4 needs one entry per endpoint (2, null for none), found 1",
        ),
        (
            "ipv6: []",
            "topology.links[0].ipv6",
            "ipv6 needs one entry per endpoint (2, null for none), found 0",
        ),
    ];
    for (extra, path, msg) in cases {
        assert_problem(
            &with_link(&format!(
                "endpoints: [\"a:eth0\", \"b:eth0\"]\n      {extra}"
            )),
            path,
            msg,
        );
    }
}

#[test]
fn no_address_on_bridge_port() {
    assert_problem(
        &with_link("endpoints: [\"a:eth0\", \"br:p1\"]\n      ipv4: [10.0.0.1/24, 10.0.0.2/24]"),
        "topology.links[0].ipv4[1]",
        "address \"10.0.0.2/24\" on \"br:p1\": a port of bridge \"br\" cannot have an address",
    );
}

#[test]
fn a_link_needs_one_end_in_a_node() {
    assert_problem(
        &with_link("endpoints: [\"host:a\", \"host:b\"]"),
        "topology.links[0].endpoints",
        "a link needs at least one end in a node: host:a <-> host:b would leave the host with a link no lab owns",
    );
    // One end on the host is fine, and so is a link between two ends of one node.
    parse(&with_link("endpoints: [\"host:a\", \"a:eth0\"]")).expect("host to node");
    parse(&with_link("endpoints: [\"a:eth0\", \"a:eth1\"]")).expect("node to itself");
}

#[test]
fn bridge_port_limit() {
    let mut yaml = String::from(
        "name: t\ntopology:\n  nodes:\n    lan: {kind: bridge}\n    a: {}\n  links:\n",
    );
    for i in 0..1024 {
        yaml.push_str(&format!("    - endpoints: [\"a:e{i}\", \"lan:p{i}\"]\n"));
    }
    assert_problem(
        &yaml,
        "topology.nodes.lan",
        "bridge \"lan\" has 1024 ports; a Linux bridge takes at most 1023",
    );
    // 1023 is fine.
    let cut = yaml.rfind("    - endpoints").expect("a link");
    parse(&yaml[..cut]).expect("1023 ports are fine");
}

#[test]
fn mtu_rule() {
    for (mtu, ok) in [
        ("67", false),
        ("68", true),
        ("65535", true),
        ("65536", false),
        ("-1", false),
        ("0", false),
    ] {
        let yaml = with_link(&format!(
            "endpoints: [\"a:eth0\", \"b:eth0\"]\n      mtu: {mtu}"
        ));
        if ok {
            let t = parse(&yaml).expect(mtu);
            assert_eq!(t.links[0].mtu, mtu.parse().ok());
        } else {
            assert_problem(
                &yaml,
                "topology.links[0].mtu",
                &format!("mtu {mtu} is out of range: use 68 to 65535"),
            );
        }
    }
}

#[test]
fn mac_rule() {
    let cases = [
        (
            "[\"01:00:5e:00:00:01\", null]",
            "topology.links[0].mac[0]",
            "MAC address \"01:00:5e:00:00:01\" is multicast",
        ),
        (
            "[null, \"00:00:00:00:00:00\"]",
            "topology.links[0].mac[1]",
            "MAC address \"00:00:00:00:00:00\" is all zeros",
        ),
        (
            "[\"02:00:00:00:01\", null]",
            "topology.links[0].mac[0]",
            "MAC address \"02:00:00:00:01\" is not of the form aa:bb:cc:dd:ee:ff",
        ),
        (
            "[\"02:00:00:00:00:01\"]",
            "topology.links[0].mac",
            "mac needs one entry per endpoint (2, null for none), found 1",
        ),
    ];
    for (mac, path, msg) in cases {
        assert_problem(
            &with_link(&format!(
                "endpoints: [\"a:eth0\", \"b:eth0\"]\n      mac: {mac}"
            )),
            path,
            msg,
        );
    }
    let t = parse(&with_link(
        "endpoints: [\"a:eth0\", \"b:eth0\"]\n      mac: [\"02:aa:bb:cc:dd:ee\", null]",
    ))
    .expect("valid");
    assert_eq!(
        t.links[0].endpoints[0].mac,
        Some([2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee])
    );
    assert_eq!(t.links[0].endpoints[1].mac, None);
}

#[test]
fn state_rule() {
    let cases = [
        (
            "[sideways, null]",
            "topology.links[0].state[0]",
            "state \"sideways\" is not up or down",
        ),
        (
            "[down]",
            "topology.links[0].state",
            "state needs one entry per endpoint (2, null for up), found 1",
        ),
    ];
    for (state, path, msg) in cases {
        assert_problem(
            &with_link(&format!(
                "endpoints: [\"a:eth0\", \"b:eth0\"]\n      state: {state}"
            )),
            path,
            msg,
        );
    }
    let t = parse(&with_link(
        "endpoints: [\"a:eth0\", \"b:eth0\"]\n      state: [null, down]",
    ))
    .expect("valid");
    assert_eq!(t.links[0].endpoints[0].state, LinkState::Up);
    assert_eq!(t.links[0].endpoints[1].state, LinkState::Down);
    let built = Topology::builder("s")
        .node("a")
        .node("b")
        .link(["a:eth0", "b:eth0"])
        .state([Some("down"), Some("up")])
        .build()
        .expect("valid");
    assert_eq!(built.links[0].endpoints[0].state, LinkState::Down);
    assert_eq!(built.links[0].endpoints[1].state, LinkState::Up);
}

// ---------------------------------------------------------------- impairments

pub(crate) fn impaired(impair: &str) -> String {
    with_link(&format!(
        "endpoints: [\"a:eth0\", \"b:eth0\"]\n      impair: {impair}"
    ))
}

#[test]
fn impair_list_matches_endpoints() {
    let t = parse(&impaired("[{delay: 10ms}, null]")).expect("valid");
    assert_eq!(
        t.links[0].endpoints[0].impair,
        Some(Impair {
            delay_us: Some(10_000),
            ..Impair::default()
        })
    );
    assert_eq!(t.links[0].endpoints[1].impair, None);
    let t = parse(&impaired("[null, {rate: 1gbit}]")).expect("valid");
    assert_eq!(t.links[0].endpoints[0].impair, None);
    assert_eq!(
        t.links[0].endpoints[1].impair.and_then(|i| i.rate_bits),
        Some(1_000_000_000)
    );
    // A bridge port's egress (toward its node) may be impaired too.
    let t = parse(&with_link(
        "endpoints: [\"a:eth0\", \"br:p1\"]\n      impair: [null, {loss: 5%}]",
    ))
    .expect("valid");
    assert_eq!(
        t.links[0].endpoints[1].impair.and_then(|i| i.loss),
        Some(5.0)
    );
    assert_problem(
        &impaired("[{delay: 10ms}]"),
        "topology.links[0].impair",
        "impair as a list needs one entry per endpoint (2, null for none), found 1",
    );
    assert_problem(
        &impaired("[null, null, null]"),
        "topology.links[0].impair",
        "found 3",
    );
}

#[test]
fn impair_values_are_checked_each_at_its_path() {
    for (impair, path, msg) in [
        (
            "{delay: 20}",
            "topology.links[0].impair.delay",
            "delay \"20\": needs a unit: us, ms or s",
        ),
        (
            "{delay: 1h}",
            "topology.links[0].impair.delay",
            "needs a unit",
        ),
        (
            "{delay: 3601s}",
            "topology.links[0].impair.delay",
            "at most 3600s",
        ),
        (
            "{delay: 1.5us}",
            "topology.links[0].impair.delay",
            "whole number of microseconds",
        ),
        (
            "{delay: 1ms, jitter: 2}",
            "topology.links[0].impair.jitter",
            "needs a unit",
        ),
        (
            "{jitter: 5ms}",
            "topology.links[0].impair.jitter",
            "jitter \"5ms\" needs a delay",
        ),
        (
            "{loss: 1}",
            "topology.links[0].impair.loss",
            "loss \"1\": needs a % sign",
        ),
        (
            "{loss: 0.5}",
            "topology.links[0].impair.loss",
            "loss \"0.5\": needs a % sign",
        ),
        (
            "{loss: 101%}",
            "topology.links[0].impair.loss",
            "out of range: use 0% to 100%",
        ),
        (
            "{corrupt: -1%}",
            "topology.links[0].impair.corrupt",
            "not a percentage",
        ),
        (
            "{duplicate: 100.5%}",
            "topology.links[0].impair.duplicate",
            "out of range",
        ),
        (
            "{rate: 10}",
            "topology.links[0].impair.rate",
            "needs a unit: bit, kbit, mbit, gbit",
        ),
        (
            "{rate: 10mb}",
            "topology.links[0].impair.rate",
            "needs a unit",
        ),
        (
            "{rate: 999bit}",
            "topology.links[0].impair.rate",
            "at least 1kbit",
        ),
        (
            "{rate: 101gbit}",
            "topology.links[0].impair.rate",
            "at most 100gbit",
        ),
        ("{}", "topology.links[0].impair", "impair sets nothing"),
        (
            "[null, {}]",
            "topology.links[0].impair[1]",
            "impair sets nothing",
        ),
        (
            "[{loss: 2}, null]",
            "topology.links[0].impair[0].loss",
            "needs a % sign",
        ),
    ] {
        assert_problem(&impaired(impair), path, msg);
    }
    // Every problem of a link is listed, not only the first.
    let ps = problems(&impaired("{delay: 5, loss: 5, rate: 5}"));
    assert_eq!(ps.len(), 3, "{ps:#?}");
    // A link with a bad impairment is not otherwise lost: its other
    // problems are reported with it.
    let ps = problems(&with_link(
        "endpoints: [\"a:eth0\", \"b:eth0\"]\n      mtu: 1\n      impair: {rate: 5}",
    ));
    assert_eq!(ps.len(), 2, "{ps:#?}");
}

#[test]
fn impair_keys_and_shapes_are_strict() {
    assert_parse_error(
        &impaired("{delay: 1ms, latency: 5ms}"),
        "unknown field `latency`",
    );
    assert_parse_error(&impaired("{delay: [1ms]}"), "expected a value with a unit");
    assert_parse_error(
        &impaired("5ms"),
        "expected a mapping (for both ends) or a list",
    );
    assert_parse_error(
        &impaired("{delay: 1ms, delay: 2ms}"),
        "duplicate field `delay`",
    );
    // Links only: not a node key, so not in defaults either.
    assert_parse_error(
        "name: t\ntopology:\n  defaults: {impair: {delay: 1ms}}\n  nodes: {a: {}}\n",
        "topology.defaults: unknown field `impair`",
    );
    assert_parse_error(
        &with_node_a("      impair: {delay: 1ms}\n"),
        "unknown field `impair`",
    );
    // null is no impairment.
    let t = parse(&impaired("null")).expect("valid");
    assert_eq!(t.links[0].endpoints[0].impair, None);
}

// ---------------------------------------------------------------- routes

#[test]
fn route_grammar_errors_are_reported() {
    assert_problem(
        &with_node_a("      routes: [\"default via 10.0.0.1 onlink\"]\n"),
        "topology.nodes.a.routes[0]",
        "route \"default via 10.0.0.1 onlink\": unexpected \"onlink\"",
    );
    assert_problem(
        &with_node_a("      routes: [\"default via 10.0.0.1\", \"10.0.0.0/8\"]\n"),
        "topology.nodes.a.routes[1]",
        "route \"10.0.0.0/8\": needs \"via ADDR\" or \"dev IFACE\"",
    );
    assert_problem(
        &with_node_a("      routes: [\"10.0.0.0/8 via 2001:db8::1\"]\n"),
        "topology.nodes.a.routes[0]",
        "destination 10.0.0.0/8 is IPv4 but gateway 2001:db8::1 is IPv6",
    );
}

#[test]
fn route_dev_must_be_an_interface_of_the_node() {
    assert_problem(
        &with_node_a("      routes: [\"10.9.0.0/16 dev eth9\"]\n"),
        "topology.nodes.a.routes[0]",
        "route \"10.9.0.0/16 dev eth9\": dev \"eth9\" is not an interface of node \"a\"",
    );
    let t = parse(&with_node_a(
        "      routes: [\"10.9.0.0/16 dev eth0 metric 5\"]\n",
    ))
    .expect("valid");
    assert_eq!(
        t.nodes["a"].routes,
        vec![Route {
            text: "10.9.0.0/16 dev eth0 metric 5".into(),
            destination: net("10.9.0.0/16"),
            gateway: None,
            device: Some("eth0".into()),
            metric: Some(5),
        }]
    );
    // From defaults: reported at the defaults' path, naming the node.
    let yaml = "name: t\ntopology:\n  defaults: {routes: [\"default dev eth0\"]}\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [\"a:eth0\", \"b:eth1\"]\n";
    assert_problem(
        yaml,
        "topology.defaults.routes[0]",
        "route \"default dev eth0\": dev \"eth0\" is not an interface of node \"b\"",
    );
}

#[test]
fn no_routes_on_bridges() {
    assert_problem(
        "name: t\ntopology:\n  nodes:\n    lan: {kind: bridge, routes: [\"default via 10.0.0.1\"]}\n",
        "topology.nodes.lan.routes",
        "node \"lan\" is a bridge; a bridge node cannot have routes",
    );
    // Routes from defaults skip bridges.
    let t = parse(
        "name: t\ntopology:\n  defaults: {routes: [\"default via 10.0.0.1\"]}\n  nodes:\n    lan: {kind: bridge}\n    a: {}\n",
    )
    .expect("valid");
    assert!(t.nodes["lan"].routes.is_empty());
    assert_eq!(t.nodes["a"].routes.len(), 1);
}

#[test]
fn route_destination_is_normalised() {
    let t = parse(&with_node_a("      routes: [\"10.0.1.5/24 via 10.0.0.1\", \"10.7.7.7 via 10.0.0.1\", \"2001:db8::1:2/64 via fe80::1\"]\n")).expect("valid");
    let dests: Vec<IpNet> = t.nodes["a"].routes.iter().map(|r| r.destination).collect();
    assert_eq!(
        dests,
        vec![net("10.0.1.0/24"), net("10.7.7.7/32"), net("2001:db8::/64")]
    );
}

// ---------------------------------------------------------------- sysctls

#[test]
fn sysctl_rules() {
    assert_problem(
        &with_node_a("      sysctls: {vm.swappiness: 10}\n"),
        "topology.nodes.a.sysctls.vm.swappiness",
        "sysctl \"vm.swappiness\" is not namespaced: setting it would change the host",
    );
    assert_problem(
        "name: t\ntopology: {defaults: {sysctls: {kernel.pid_max: 10}}, nodes: {a: {}}}\n",
        "topology.defaults.sysctls.kernel.pid_max",
        "sysctl \"kernel.pid_max\" is not namespaced",
    );
    assert_problem(
        &with_node_a("      sysctls: {\"net/ipv4/../../vm/swappiness\": 1}\n"),
        "topology.nodes.a.sysctls.net/ipv4/../../vm/swappiness",
        "has an empty, \".\" or \"..\" component",
    );
    assert_problem(
        &with_node_a("      sysctls: {\"net..ipv4\": 1}\n"),
        "topology.nodes.a.sysctls.net..ipv4",
        "has an empty",
    );
    assert_problem(
        &with_node_a("      sysctls: {\"net.ipv4.ip_forward\\n\": 1}\n"),
        "topology.nodes.a.sysctls.\"net.ipv4.ip_forward\\n\"",
        "sysctl \"net.ipv4.ip_forward\\n\" holds '\\n'",
    );
    let t = parse(&with_node_a(
        "      sysctls: {net.ipv4.ip_forward: true, net/ipv4/conf/eth0.10/forwarding: 0, kernel.shmmax: \"4096\", net.ipv6.conf.all.disable_ipv6: false}\n",
    ))
    .expect("valid");
    let got: Vec<(&str, &Path, &str)> = t.nodes["a"]
        .sysctls
        .iter()
        .map(|s| (s.key.as_str(), s.path.as_path(), s.value.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("net.ipv4.ip_forward", Path::new("net/ipv4/ip_forward"), "1"),
            (
                "net/ipv4/conf/eth0.10/forwarding",
                Path::new("net/ipv4/conf/eth0.10/forwarding"),
                "0"
            ),
            ("kernel.shmmax", Path::new("kernel/shmmax"), "4096"),
            (
                "net.ipv6.conf.all.disable_ipv6",
                Path::new("net/ipv6/conf/all/disable_ipv6"),
                "0"
            ),
        ]
    );
}

// ---------------------------------------------------------------- binds, tmpfs, env, exec

/// A unique temp folder, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "nslab-topo-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(p.join("files")).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn bind_rules() {
    let dir = TempDir::new("binds");
    std::fs::write(dir.0.join("files/hosts"), "").expect("write");
    let run = |binds: &str| {
        parse_str(
            &with_node_a(&format!("      binds: {binds}\n")),
            Path::new(ORIGIN),
            &dir.0,
        )
    };
    let probs = |binds: &str| match run(binds) {
        Err(TopologyError::Invalid { problems, .. }) => problems,
        other => panic!("{other:?}"),
    };
    let missing = dir.0.join("files/nope");
    let ps = probs("[\"./files/nope:/etc/x\"]");
    assert_eq!(ps[0].path, "topology.nodes.a.binds[0]");
    assert_eq!(
        ps[0].message,
        format!(
            "bind \"./files/nope:/etc/x\": source {:?} does not exist",
            missing.display().to_string()
        )
    );
    for (spec, msg) in [
        (
            "/etc",
            "bind \"/etc\" must be SRC:DST, SRC:DST:ro or SRC:DST:rw",
        ),
        ("./files/hosts:/etc/hosts:rx", "mode \"rx\" is not ro or rw"),
        (
            "./files/hosts:etc/hosts",
            "target \"etc/hosts\" must be an absolute path",
        ),
        (
            "./files/hosts:/etc/../root/x",
            "target \"/etc/../root/x\" may not contain \"..\"",
        ),
        ("./files/hosts:/etc/x\\0", "holds a NUL byte"),
    ] {
        let ps = probs(&format!("[\"{spec}\"]"));
        assert_eq!(ps[0].path, "topology.nodes.a.binds[0]");
        assert!(ps[0].message.contains(msg), "{spec}: {ps:?}");
    }
    let t = run("[\"./files/../files/hosts:/etc/hosts:ro\", \"files:/data/\"]").expect("valid");
    assert_eq!(
        t.nodes["a"].binds,
        vec![
            Bind {
                source: dir.0.join("files/hosts"),
                target: "/etc/hosts".into(),
                read_only: true
            },
            Bind {
                source: dir.0.join("files"),
                target: "/data".into(),
                read_only: false
            },
        ]
    );
}

#[test]
fn tmpfs_rules() {
    for (t, msg) in [
        ("tmp", "tmpfs \"tmp\" must be an absolute path"),
        (
            "/var/../tmp",
            "tmpfs \"/var/../tmp\" may not contain \"..\"",
        ),
        ("/", "tmpfs \"/\" is not allowed: it would hide /"),
        (
            "/proc",
            "tmpfs \"/proc\" is not allowed: it would hide /proc",
        ),
        (
            "/sys/",
            "tmpfs \"/sys/\" is not allowed: it would hide /sys",
        ),
        ("/dev", "is not allowed: it would hide /dev"),
        ("/a\\0b", "holds a NUL byte"),
    ] {
        assert_problem(
            &with_node_a(&format!("      tmpfs: [\"/x\", \"{t}\"]\n")),
            "topology.nodes.a.tmpfs[1]",
            msg,
        );
    }
    let t = parse(&with_node_a("      tmpfs: []\n")).expect("valid");
    assert!(t.nodes["a"].tmpfs.is_empty());
    assert_eq!(
        t.nodes["b"].tmpfs,
        vec![PathBuf::from("/tmp"), PathBuf::from("/run")]
    );
    let t = parse(&with_node_a(
        "      tmpfs: [\"/dev/shm\", \"/var/cache/\"]\n",
    ))
    .expect("valid");
    assert_eq!(
        t.nodes["a"].tmpfs,
        vec![PathBuf::from("/dev/shm"), PathBuf::from("/var/cache")]
    );
}

#[test]
fn env_rules() {
    assert_problem(
        &with_node_a("      env: {1ABC: x}\n"),
        "topology.nodes.a.env.1ABC",
        "environment variable name \"1ABC\" is invalid",
    );
    assert_problem(
        &with_node_a("      env: {A B: x}\n"),
        "topology.nodes.a.env.\"A B\"",
        "environment variable name \"A B\" is invalid",
    );
    assert_problem(
        &with_node_a("      env: {A: \"x\\0y\"}\n"),
        "topology.nodes.a.env.A",
        "holds a NUL byte",
    );
    let t = parse(&with_node_a("      env: {_B: 1, A: true, C: text}\n")).expect("valid");
    assert_eq!(
        t.nodes["a"].env,
        vec![
            ("_B".to_owned(), "1".to_owned()),
            ("A".to_owned(), "true".to_owned()),
            ("C".to_owned(), "text".to_owned()),
        ]
    );
}

#[test]
fn exec_rules() {
    assert_problem(
        &with_node_a("      exec: [\"true\", \"  \"]\n"),
        "topology.nodes.a.exec[1]",
        "exec command is empty",
    );
}

// ---------------------------------------------------------------- all problems at once

#[test]
fn every_problem_is_listed_with_the_file() {
    let yaml = "name: Bad\ntopology:\n  nodes:\n    a: {kind: router, sysctls: {vm.swappiness: 1}}\n    b: {}\n  links:\n    - endpoints: [\"a:eth0\", \"c:eth0\"]\n      mtu: 1\n";
    let err = parse(yaml).expect_err("invalid");
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            "lab.yml: name: lab name \"Bad\" may hold only lowercase letters, digits, '_' and '-', and must start with a letter or digit",
            "lab.yml: topology.nodes.a.kind: kind \"router\" is not known: use node or bridge",
            "lab.yml: topology.nodes.a.sysctls.vm.swappiness: sysctl \"vm.swappiness\" is not namespaced: setting it would change the host",
            "lab.yml: topology.links[0].endpoints[1]: endpoint \"c:eth0\": no node named \"c\"",
            "lab.yml: topology.links[0].mtu: mtu 1 is out of range: use 68 to 65535",
        ]
    );
}

// ---------------------------------------------------------------- defaults

#[test]
fn defaults_merge_node_wins_maps_merge() {
    let yaml = "name: t
topology:
  defaults:
    hostname: shared
    sysctls: {net.ipv4.ip_forward: 1, net.ipv6.conf.all.forwarding: 1}
    env: {A: a, B: b}
    exec: [\"echo d\"]
    tmpfs: [/tmp]
    routes: [\"default via 10.0.0.1\"]
  nodes:
    x:
      sysctls: {net/ipv4/ip_forward: 0, net.ipv4.conf.all.rp_filter: 2}
      env: {B: own, C: c}
      exec: [\"echo x\"]
      tmpfs: []
      routes: []
    y:
";
    let t = parse(yaml).expect("valid");
    let x = &t.nodes["x"];
    assert_eq!(x.hostname, "shared");
    let sys: Vec<(&str, &str)> = x
        .sysctls
        .iter()
        .map(|s| (s.key.as_str(), s.value.as_str()))
        .collect();
    assert_eq!(
        sys,
        vec![
            ("net/ipv4/ip_forward", "0"),
            ("net.ipv6.conf.all.forwarding", "1"),
            ("net.ipv4.conf.all.rp_filter", "2"),
        ]
    );
    let env: Vec<(&str, &str)> = x
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env, vec![("A", "a"), ("B", "own"), ("C", "c")]);
    assert_eq!(x.exec, vec!["echo x".to_owned()]);
    assert!(x.tmpfs.is_empty());
    assert!(x.routes.is_empty());

    let y = &t.nodes["y"];
    assert_eq!(y.hostname, "shared");
    assert_eq!(y.sysctls.len(), 2);
    assert_eq!(y.env.len(), 2);
    assert_eq!(y.exec, vec!["echo d".to_owned()]);
    assert_eq!(y.tmpfs, vec![PathBuf::from("/tmp")]);
    assert_eq!(y.routes.len(), 1);
    assert_eq!(y.routes[0].gateway, Some(ip("10.0.0.1")));
}

#[test]
fn null_node_is_a_default_node() {
    let t = parse("name: t\ntopology:\n  nodes:\n    r1:\n    r2: {}\n").expect("valid");
    let r2 = Node {
        name: "r1".into(),
        hostname: "r1".into(),
        ..t.nodes["r2"].clone()
    };
    assert_eq!(t.nodes["r1"], r2);
    assert_eq!(t.nodes.keys().collect::<Vec<_>>(), ["r1", "r2"]);
}

// ---------------------------------------------------------------- size and speed

/// Runs `f`, asserting it takes less than `secs` seconds.
#[track_caller]
fn within<T>(secs: u64, f: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(took < std::time::Duration::from_secs(secs), "took {took:?}");
    out
}

#[test]
fn defaults_copied_into_many_nodes_are_bounded() {
    // 40 KB of text: 2,500 exec entries copied into 1,000 nodes.
    let mut yaml = String::from("name: t\ntopology:\n  defaults:\n    exec: [");
    yaml.push_str(&"x, ".repeat(2_500));
    yaml.push_str("]\n  nodes:\n");
    for i in 0..1_000 {
        yaml.push_str(&format!("    n{i}: {{}}\n"));
    }
    let ps = within(2, || problems(&yaml));
    assert_eq!(ps.len(), 1, "{ps:#?}");
    assert_eq!(ps[0].path, "topology.defaults");
    assert!(
        ps[0]
            .message
            .contains("copied into each of 1000 nodes would add about 78 MiB to the lab, more than the 64 MiB allowed"),
        "{}",
        ps[0].message
    );
    // The nodes are still checked, without the copies.
    let bad = yaml.replace("    n7: {}\n", "    n@7: {}\n");
    let ps = problems(&bad);
    assert!(
        ps.iter().any(|p| p.message.contains("node name \"n@7\"")),
        "{ps:#?}"
    );
    // Big defaults for a few nodes, or small defaults for many, are fine.
    let few = yaml.split("    n3: {}\n").next().expect("head");
    let t = parse(few).expect("3 nodes");
    assert_eq!(t.nodes["n2"].exec.len(), 2_500);
    let mut many = String::from(
        "name: t\ntopology:\n  defaults:\n    sysctls: {net.ipv4.ip_forward: 1}\n    exec: [\"echo hi\"]\n  nodes:\n",
    );
    for i in 0..5_000 {
        many.push_str(&format!("    n{i}: {{}}\n"));
    }
    let t = within(5, || parse(&many).expect("5,000 small nodes"));
    assert_eq!(t.nodes["n4999"].sysctls.len(), 1);
}

#[test]
fn many_sysctls_and_env_entries_take_linear_time() {
    const N: usize = 40_000;
    let mut yaml = String::from("name: t\ntopology:\n  defaults:\n    sysctls:\n");
    for i in 0..N {
        yaml.push_str(&format!("      net.d.k{i}: 1\n"));
    }
    yaml.push_str("    env:\n");
    for i in 0..N {
        yaml.push_str(&format!("      D{i}: x\n"));
    }
    yaml.push_str("  nodes:\n    a:\n      sysctls:\n");
    for i in 0..N {
        yaml.push_str(&format!("        net.a.k{i}: 1\n"));
    }
    yaml.push_str("        net/d/k7: 0\n      env:\n");
    for i in 0..N {
        yaml.push_str(&format!("        A{i}: y\n"));
    }
    yaml.push_str("        D7: z\n");
    let t = within(5, || parse(&yaml).expect("valid"));
    let a = &t.nodes["a"];
    assert_eq!(a.sysctls.len(), 2 * N);
    assert_eq!(a.env.len(), 2 * N);
    // A node's entry replaces the default's in place, whatever its spelling.
    assert_eq!(a.sysctls[7].key, "net/d/k7");
    assert_eq!(a.sysctls[7].value, "0");
    assert_eq!(a.env[7], ("D7".to_owned(), "z".to_owned()));
}

#[test]
fn many_duplicate_keys_take_linear_time() {
    const N: usize = 40_000;
    let mut yaml = String::from("name: t\ntopology:\n  nodes:\n");
    for i in 0..N {
        yaml.push_str(&format!("    n{i}: {{}}\n    n{i}: {{}}\n    n{i}: {{}}\n"));
    }
    yaml.push_str("    a:\n      sysctls:\n");
    for i in 0..N {
        yaml.push_str(&format!("        net.a.k{i}: 1\n        net/a/k{i}: 1\n"));
    }
    let ps = within(5, || problems(&yaml));
    let dup_nodes = ps
        .iter()
        .filter(|p| p.message.contains("is defined more than once"))
        .count();
    assert_eq!(
        dup_nodes, N,
        "each node named once, however often it repeats"
    );
    let same = ps
        .iter()
        .filter(|p| p.message.contains("is the same as"))
        .count();
    assert_eq!(same, N);
}

// ---------------------------------------------------------------- expect

/// h1 -- r1 -- br (bridge) -- h2, with `expect` appended.
pub(crate) fn with_expect(expect: &str) -> String {
    format!(
        "name: t
topology:
  nodes:
    h1: {{}}
    r1: {{}}
    h2: {{}}
    quiet: {{}}
    br: {{kind: bridge}}
  links:
    - endpoints: [\"h1:eth0\", \"r1:eth0\"]
      ipv4: [10.0.1.2/24, 10.0.1.1/24]
      ipv6: [\"2001:db8:1::2/64\", null]
    - endpoints: [\"r1:eth1\", \"br:p1\"]
      ipv4: [10.0.2.1/24, null]
    - endpoints: [\"h2:eth0\", \"br:p2\"]
      ipv4: [10.0.2.2/24, null]
    - endpoints: [\"h2:eth1\", \"quiet:eth0\"]
expect:
{expect}"
    )
}

#[test]
fn expectations_collect_every_problem() {
    let yaml = with_expect(
        "  - {from: ghost, to: h2}
  - {from: br, to: h2}
  - {from: host, to: h2}
  - {from: h1, to: nobody}
  - {from: h1, to: br}
  - {from: h1, to: quiet}
  - {from: h1, to: \"h2:eth9\"}
  - {from: h1, to: \"h2:eth1\"}
  - {from: h1, to: \"ghost:eth0\"}
  - {from: h1, to: 10.0.2.2/24}
  - {from: h1, to: 10.0.2.300}
  - {from: h1, to: h2, port: 80}
  - {from: h1, to: h2, port: 80/sctp}
  - {from: h1, to: h2, port: 0/udp}
  - {from: h1, to: h2, port: 70000/tcp}
  - {from: h1, to: host}
  - {from: h1, to: 0.0.0.0}
  - {from: h1, to: \"::\", port: 80/tcp}
  - {from: h1, to: 255.255.255.255, reach: false}
  - {from: h1, to: 224.0.0.1}
  - {from: h1, to: \"ff02::1\"}
  - {from: h1, to: \"fe80::1\"}
",
    );
    let ps = problems(&yaml);
    let want = [
        ("expect[0].from", "no node named \"ghost\""),
        ("expect[1].from", "node \"br\" is a bridge"),
        ("expect[2].from", "\"host\" is not a node of the lab"),
        (
            "expect[3].to",
            "\"nobody\" is neither an address nor a node of the lab",
        ),
        ("expect[4].to", "a bridge has no addresses"),
        ("expect[5].to", "node \"quiet\" has no addresses"),
        (
            "expect[6].to",
            "\"eth9\" is not an interface of node \"h2\"",
        ),
        ("expect[7].to", "interface \"h2:eth1\" has no addresses"),
        ("expect[8].to", "no node named \"ghost\""),
        ("expect[9].to", "without a prefix length (10.0.2.2)"),
        (
            "expect[10].to",
            "\"10.0.2.300\" is neither an address nor a node",
        ),
        ("expect[11].port", "port 80 needs a protocol"),
        ("expect[12].port", "protocol \"sctp\" is not tcp or udp"),
        ("expect[13].port", "is not a port number"),
        ("expect[14].port", "is not a port number"),
        ("expect[15].to", "give one of its addresses"),
        (
            "expect[16].to",
            "\"0.0.0.0\" is the unspecified address (0.0.0.0), not a host",
        ),
        ("expect[17].to", "\"::\" is the unspecified address (::)"),
        (
            "expect[18].to",
            "\"255.255.255.255\" is the broadcast address",
        ),
        ("expect[19].to", "\"224.0.0.1\" is a multicast address"),
        ("expect[20].to", "\"ff02::1\" is a multicast address"),
        (
            "expect[21].to",
            "\"fe80::1\" is a link-local address (fe80::/10), which names no host without an interface",
        ),
    ];
    for (path, msg) in want {
        assert!(
            ps.iter().any(|p| p.path == path && p.message.contains(msg)),
            "no problem at {path:?} containing {msg:?}; got {ps:#?}"
        );
    }
    assert_eq!(ps.len(), want.len(), "one problem each: {ps:#?}");
}

#[test]
fn expectations_reject_unknown_keys_and_bad_types() {
    assert_parse_error(
        &with_expect("  - {from: h1, to: h2, proto: tcp}\n"),
        "unknown field `proto`",
    );
    assert_parse_error(
        &with_expect("  - {from: h1, to: h2, reach: maybe}\n"),
        "expect[0].reach",
    );
    assert_parse_error(&with_expect("  - {to: h2}\n"), "missing field `from`");
}

#[test]
fn a_bad_link_does_not_make_its_interface_unknown_to_expect() {
    // The link's address is bad; the expectation naming its interface must
    // not add a second, misleading problem.
    let yaml = "name: t
topology:
  nodes: {a: {}, b: {}}
  links:
    - endpoints: [\"a:eth0\", \"b:eth0\"]
      ipv4: [10.0.0.1, 10.0.0.2/24]
expect:
  - {from: a, to: \"b:eth0\"}
  - {from: a, to: b}
";
    let ps = problems(yaml);
    assert_eq!(ps.len(), 1, "{ps:#?}");
    assert_eq!(ps[0].path, "topology.links[0].ipv4[0]");
}

#[test]
fn impair_all_zero_is_no_impairment() {
    let t = parse(&impaired(
        "[{loss: 0%, delay: 0ms}, {delay: 5ms, loss: 0%}]",
    ))
    .expect("valid");
    assert_eq!(t.links[0].endpoints[0].impair, None);
    assert_eq!(
        t.links[0].endpoints[1].impair,
        Some(Impair {
            delay_us: Some(5_000),
            ..Impair::default()
        })
    );
}
