//! The plan built from a topology, end to end from YAML through
//! `topology::parse_str`, and plans saved by older versions.

use std::path::{Path, PathBuf};

use crate::plan::{EndpointPlan, LinkPlan, Place, Plan};
use crate::spec::{
    Bind, Expect, ExpectTarget, Impair, LinkState, Node, NodeKind, Port, Protocol, Route, Sysctl,
};
use crate::topology::tests::{TempDir, impaired, ip, net, parse, with_expect, with_link};
use crate::topology::{lab_name_of, load, parse_str};

#[test]
fn addresses_allowed_on_host_endpoints() {
    let t = parse(&with_link(
        "endpoints: [\"a:eth0\", \"host:nsl0\"]\n      ipv4: [10.0.0.1/24, 10.0.0.2/24]\n      ipv6: [null, \"fd00::2/64\"]",
    ))
    .expect("valid");
    let plan = Plan::from_topology(&t);
    assert_eq!(plan.links[0].endpoints[1].place, Place::Host);
    assert_eq!(
        plan.links[0].endpoints[1].addresses,
        vec![net("10.0.0.2/24"), net("fd00::2/64")]
    );
}

#[test]
fn impair_map_applies_to_both_ends() {
    let t = parse(&impaired(
        "{delay: 20ms, jitter: 5ms, loss: 1%, rate: 10mbit, corrupt: 0.1%, duplicate: 0.1%}",
    ))
    .expect("valid");
    let want = Impair {
        delay_us: Some(20_000),
        jitter_us: Some(5_000),
        loss: Some(1.0),
        corrupt: Some(0.1),
        duplicate: Some(0.1),
        rate_bits: Some(10_000_000),
    };
    assert_eq!(t.links[0].endpoints[0].impair, Some(want));
    assert_eq!(t.links[0].endpoints[1].impair, Some(want));
    // And the plan carries it to each end.
    let plan = Plan::from_topology(&t);
    assert_eq!(plan.links[0].endpoints[0].impair, Some(want));
    assert_eq!(plan.links[0].endpoints[1].impair, Some(want));
}

#[test]
fn plans_without_impairments_load_and_save_as_before() {
    // A plan.json written before impairments existed has no `impair` key.
    let old = r#"{"place":{"node":0},"ifname":"eth0","addresses":[],"mac":null}"#;
    let end: EndpointPlan = serde_json::from_str(old).expect("old endpoint loads");
    assert_eq!(end.impair, None);
    assert_eq!(serde_json::to_string(&end).expect("json"), old);
}

#[test]
fn a_down_end_is_kept_in_the_plan() {
    let t = parse(&with_link(
        "endpoints: [\"a:eth0\", \"b:eth0\"]\n      state: [null, down]",
    ))
    .expect("valid");
    let plan = Plan::from_topology(&t);
    let [a, b] = &plan.links[0].endpoints;
    assert_eq!((a.state, b.state), (LinkState::Up, LinkState::Down));
    // Saved only when down: plan.json of an all-up lab is as before.
    let json = serde_json::to_string(b).expect("json");
    assert!(json.ends_with(r#""state":"down"}"#), "{json}");
    assert!(!serde_json::to_string(a).expect("json").contains("state"));
    let back: EndpointPlan = serde_json::from_str(&json).expect("loads");
    assert_eq!(&back, b);
}

// ---------------------------------------------------------------- the example

const EXAMPLE: &str = r#"name: chain3
topology:
  defaults:                       # merged into every node; a node's own keys win
    sysctls: {net.ipv4.ip_forward: 1}
  nodes:
    h1:
      routes: ["default via 10.0.1.1", "default via 2001:db8:1::1"]
    r1: {}
    h2:
      routes: ["default via 10.0.2.1"]
      binds: ["./files/h2-hosts:/etc/hosts:ro"]
      env: {ROLE: server}
      exec: ["sh -c 'echo ready > /tmp/state'"]
    lan:
      kind: bridge
  links:
    - endpoints: ["h1:eth0", "r1:eth0"]
      ipv4: [10.0.1.2/24, 10.0.1.1/24]
      ipv6: ["2001:db8:1::2/64", "2001:db8:1::1/64"]
    - endpoints: ["r1:eth1", "lan:p1"]
      ipv4: [10.0.2.1/24, null]
    - endpoints: ["h2:eth0", "lan:p2"]
      ipv4: [10.0.2.2/24, null]
      mtu: 9000
"#;

#[test]
fn example_plans_exactly() {
    let dir = TempDir::new("example");
    std::fs::write(dir.0.join("files/h2-hosts"), "127.0.0.1 localhost\n").expect("write");
    let t = parse_str(EXAMPLE, Path::new("chain3.yml"), &dir.0).expect("valid");
    assert_eq!(t.name, "chain3");
    let plan = Plan::from_topology(&t);

    let fwd = || Sysctl {
        key: "net.ipv4.ip_forward".into(),
        path: "net/ipv4/ip_forward".into(),
        value: "1".into(),
    };
    let tmpfs = || vec![PathBuf::from("/tmp"), PathBuf::from("/run")];
    let route = |text: &str, dest: &str, gw: &str| Route {
        text: text.into(),
        destination: net(dest),
        gateway: Some(ip(gw)),
        device: None,
        metric: None,
    };
    let node = |name: &str| Node {
        name: name.into(),
        kind: NodeKind::Node,
        hostname: name.into(),
        tmpfs: tmpfs(),
        binds: vec![],
        sysctls: vec![fwd()],
        routes: vec![],
        env: vec![],
        exec: vec![],
        limits: Default::default(),
        userns: false,
        startup_delay: None,
        wait_for: vec![],
    };
    let ep = |place: Place, ifname: &str, addrs: &[&str]| EndpointPlan {
        place,
        ifname: ifname.into(),
        addresses: addrs.iter().map(|a| net(a)).collect(),
        mac: None,
        impair: None,
        state: Default::default(),
        master: None,
    };
    let want = Plan {
        lab: "chain3".into(),
        source: Some(PathBuf::from("chain3.yml")),
        lab_dir: None,
        lab_files: Vec::new(),
        notes: Vec::new(),
        mgmt: None,
        container_prefix: None,
        remote_names: Vec::new(),
        spread: None,
        nodes: vec![
            Node {
                routes: vec![
                    route("default via 10.0.1.1", "0.0.0.0/0", "10.0.1.1"),
                    route("default via 2001:db8:1::1", "::/0", "2001:db8:1::1"),
                ],
                ..node("h1")
            },
            node("r1"),
            Node {
                routes: vec![route("default via 10.0.2.1", "0.0.0.0/0", "10.0.2.1")],
                binds: vec![Bind {
                    source: dir.0.join("files/h2-hosts"),
                    target: "/etc/hosts".into(),
                    read_only: true,
                }],
                env: vec![("ROLE".into(), "server".into())],
                exec: vec!["sh -c 'echo ready > /tmp/state'".into()],
                ..node("h2")
            },
            Node {
                kind: NodeKind::Bridge,
                ..node("lan")
            },
        ],
        links: vec![
            LinkPlan {
                endpoints: [
                    ep(Place::Node(0), "eth0", &["10.0.1.2/24", "2001:db8:1::2/64"]),
                    ep(Place::Node(1), "eth0", &["10.0.1.1/24", "2001:db8:1::1/64"]),
                ],
                mtu: None,
            },
            LinkPlan {
                endpoints: [
                    ep(Place::Node(1), "eth1", &["10.0.2.1/24"]),
                    ep(Place::Node(3), "p1", &[]),
                ],
                mtu: None,
            },
            LinkPlan {
                endpoints: [
                    ep(Place::Node(2), "eth0", &["10.0.2.2/24"]),
                    ep(Place::Node(3), "p2", &[]),
                ],
                mtu: Some(9000),
            },
        ],
        devices: vec![],
        expect: vec![],
        scenario: Default::default(),
    };
    assert_eq!(plan, want);
    assert_eq!(plan.link_label(&plan.links[1]), "r1:eth1 <-> lan:p1");
}

#[test]
fn example_loads_from_a_file() {
    let dir = TempDir::new("load");
    std::fs::write(dir.0.join("files/h2-hosts"), "").expect("write");
    let file = dir.0.join("chain3.yml");
    std::fs::write(&file, EXAMPLE).expect("write");
    let t = load(&file).expect("valid");
    let plan = Plan::from_topology(&t);
    assert_eq!(plan.source, Some(file.clone()));
    assert_eq!(plan.nodes[2].binds[0].source, dir.0.join("files/h2-hosts"));
    assert_eq!(lab_name_of(&file), Some("chain3".to_owned()));
}

#[test]
fn expectations_are_planned() {
    let t = parse(&with_expect(
        "  - {from: h1, to: h2}
  - {from: h1, to: 203.0.113.9, reach: false}
  - {from: h1, to: \"2001:db8:1::1\"}
  - {from: h1, to: h2, port: 80/tcp}
  - {from: r1, to: \"h1:eth0\", port: 53/udp, reach: true}
",
    ))
    .expect("valid");
    let plan = Plan::from_topology(&t);
    let node = |n: &str| ExpectTarget::Node(n.into());
    let tcp80 = Port {
        number: 80,
        protocol: Protocol::Tcp,
    };
    let udp53 = Port {
        number: 53,
        protocol: Protocol::Udp,
    };
    let e = |from: &str, to, port, reach| Expect {
        from: from.into(),
        to,
        port,
        reach,
    };
    assert_eq!(
        plan.expect,
        vec![
            e("h1", node("h2"), None, true),
            e("h1", ExpectTarget::Address(ip("203.0.113.9")), None, false),
            e("h1", ExpectTarget::Address(ip("2001:db8:1::1")), None, true),
            e("h1", node("h2"), Some(tcp80), true),
            e(
                "r1",
                ExpectTarget::Interface {
                    node: "h1".into(),
                    iface: "eth0".into()
                },
                Some(udp53),
                true
            ),
        ]
    );
}

#[test]
fn old_plans_without_expect_still_load() {
    let t = parse(&with_expect("  - {from: h1, to: h2}\n")).expect("valid");
    let plan = Plan::from_topology(&t);
    let mut json: serde_json::Value = serde_json::to_value(&plan).expect("to json");
    json.as_object_mut().expect("object").remove("expect");
    let old: Plan = serde_json::from_value(json).expect("an older plan.json loads");
    assert!(old.expect.is_empty());
    assert_eq!(old.nodes, plan.nodes);
}

#[test]
fn impairment_warnings_name_the_link_end() {
    let t = parse(&with_link(
        "endpoints: [\"a:eth0\", \"b:eth0\"]\n      impair: [{delay: 10ms, jitter: 5ms}, {delay: 1ms, jitter: 2ms}]",
    ))
    .expect("valid");
    let warnings = Plan::from_topology(&t).impairment_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("b:eth0: jitter 2ms is larger than delay 1ms"),
        "{warnings:?}"
    );
}

#[test]
fn plans_keep_the_scenario_and_old_plans_read_without_one() {
    let yaml = "name: scn\ntopology:\n  nodes: {a: {}, b: {}}\n  links: [{endpoints: [\"a:eth0\", \"b:eth0\"]}]\nscenario:\n  - {at: 1s, link: \"a:eth0\", state: down}\n  - {at: 2s, check: true}\n";
    let topology =
        crate::topology::parse_str(yaml, "scn.yml".as_ref(), ".".as_ref()).expect("valid");
    let plan = Plan::from_topology(&topology);
    assert_eq!(plan.scenario.steps.len(), 2);
    let json = serde_json::to_string(&plan).expect("json");
    let back: Plan = serde_json::from_str(&json).expect("read back");
    assert_eq!(back.scenario, topology.scenario);
    // A plan saved before scenarios existed reads as one without.
    let mut old: serde_json::Value = serde_json::from_str(&json).expect("value");
    old.as_object_mut().expect("object").remove("scenario");
    let old: Plan = serde_json::from_value(old).expect("old plan");
    assert!(old.scenario.is_empty());
}
