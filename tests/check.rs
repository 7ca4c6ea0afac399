//! `nslab check` against real labs, run as root: each builds labs under
//! unique names and removes them, pass or fail.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{TestLab, can_build_labs, run};
use serde_json::Value;

/// h1 -- r1 -- h2, and `lone` on r1 with no routes: r1 reaches it, the
/// hosts do not (lone cannot answer them), and lone reaches only r1's
/// address on their link.
const ROUTED: &str = r#"
name: LAB
topology:
  defaults:
    sysctls: {net.ipv4.ip_forward: 1, net.ipv6.conf.all.forwarding: 1}
  nodes:
    h1:
      routes: ["default via 10.0.1.1", "default via 2001:db8:1::1"]
    r1: {}
    h2:
      routes: ["default via 10.0.2.1", "default via 2001:db8:2::1"]
    lone: {}
  links:
    - endpoints: ["h1:eth0", "r1:eth0"]
      ipv4: [10.0.1.2/24, 10.0.1.1/24]
      ipv6: ["2001:db8:1::2/64", "2001:db8:1::1/64"]
    - endpoints: ["r1:eth1", "h2:eth0"]
      ipv4: [10.0.2.1/24, 10.0.2.2/24]
      ipv6: ["2001:db8:2::1/64", "2001:db8:2::2/64"]
    - endpoints: ["r1:eth2", "lone:eth0"]
      ipv4: [10.0.3.1/24, 10.0.3.2/24]
      ipv6: ["2001:db8:3::1/64", "2001:db8:3::2/64"]
"#;

/// Which address each node of [`ROUTED`] reaches: everything, except that
/// only r1 reaches lone, and lone reaches only r1's address on their link.
fn routed_reaches(from: &str, to: &str, address: &str) -> bool {
    match (from, to) {
        ("r1", _) => true,
        (_, "lone") => false,
        ("lone", _) => address == "10.0.3.1" || address == "2001:db8:3::1",
        _ => true,
    }
}

fn check(lab: &TestLab, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["check", lab.name.as_str()];
    args.extend_from_slice(extra);
    run(&args)
}

fn check_json(lab: &TestLab, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = check(lab, &args);
    let json = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("check --json is not JSON ({e}):\n{out}\n{err}"));
    (code, json)
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

#[test]
fn the_matrix_is_right_for_ipv4_and_ipv6() {
    if !can_build_labs("the_matrix_is_right_for_ipv4_and_ipv6") {
        return;
    }
    let lab = TestLab::new("ckmx", ROUTED);
    lab.up();
    // Right after `up`: the probes are sent again until answered, so a
    // first packet lost on a link the kernel is still activating does not
    // matter.
    let started = Instant::now();
    let (code, json) = check_json(&lab, &[]);
    let took = started.elapsed();
    // No expect: entries, so every pair must be reached; lone is not.
    assert_eq!(code, 1, "pingall fails: {json:#}");
    assert_eq!(json["expectations_from"], "pingall");
    assert_eq!(json["passed"], false);
    assert_eq!(json["timeout_ms"], 3000, "the default timeout");
    assert_eq!(json["nodes"], serde_json::json!(["h1", "r1", "h2", "lone"]));
    assert_eq!(json["errors"], serde_json::json!([]));
    // The unreachable pairs wait the 3 s timeout, all nodes at once: one
    // per node would be 12 s. Room for a busy host with 2 shared cores.
    assert!(
        took < Duration::from_secs(8),
        "one timeout for all nodes, not one per node: {took:?}"
    );

    let matrix = json["matrix"].as_array().expect("matrix");
    // Each node probes each address of the others: 8 addresses on h1 and
    // h2 and lone together, 6 on r1.
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for p in matrix {
        *count.entry(text(&p["from"])).or_default() += 1;
        let (from, to, address) = (text(&p["from"]), text(&p["to"]), text(&p["address"]));
        assert_ne!(from, to, "no node probes itself");
        let want = routed_reaches(from, to, address);
        assert_eq!(p["reached"], want, "{from} -> {to} {address}: {p}");
        let family = if address.contains(':') { 6 } else { 4 };
        assert_eq!(p["family"], family, "{p}");
        assert_eq!(p["probed"], true, "{p}");
        if want {
            let rtt = p["rtt_ms"].as_f64().expect("rtt of a reached address");
            assert!(rtt > 0.0 && rtt < 500.0, "{p}");
            assert_eq!(p["error"], Value::Null);
        } else {
            assert_eq!(p["rtt_ms"], Value::Null);
            assert!(p["error"].is_string(), "why not: {p}");
        }
    }
    assert_eq!(
        count,
        BTreeMap::from([("h1", 10), ("h2", 10), ("lone", 10), ("r1", 6)])
    );
    // lone has no route to h1: the kernel says so at once.
    let lone_h1 = matrix
        .iter()
        .find(|p| p["from"] == "lone" && p["address"] == "10.0.1.2")
        .expect("lone -> h1");
    assert_eq!(lone_h1["error"], "network is unreachable");

    // The same as a table.
    let (code, out, _) = check(&lab, &[]);
    assert_eq!(code, 1);
    let table = "\
from \\ to  h1     r1     h2     lone
h1         -      4✓ 6✓  4✓ 6✓  4✗ 6✗
r1         4✓ 6✓  -      4✓ 6✓  4✓ 6✓
h2         4✓ 6✓  4✓ 6✓  -      4✗ 6✗
lone       4✗ 6✗  4~ 6~  4✗ 6✗  -
";
    assert!(out.contains(table), "{out}");
    assert!(out.contains("(pingall): 7 of 12 pairs passed"), "{out}");
    assert!(
        out.contains("  FAIL h1 -> lone: 10.0.3.2 not reached (timeout)"),
        "{out}"
    );
    assert!(
        out.ends_with("check: FAIL (5 of 12 pairs failed)\n"),
        "{out}"
    );
}

#[test]
fn expectations_pass_and_fail_with_the_right_exit_code() {
    if !can_build_labs("expectations_pass_and_fail_with_the_right_exit_code") {
        return;
    }
    let passing = format!(
        "{ROUTED}expect:
  - {{from: h1, to: h2}}
  - {{from: h1, to: \"2001:db8:2::2\"}}
  - {{from: h1, to: 203.0.113.9, reach: false}}
  - {{from: h1, to: \"2001:db8:99::1\", reach: false}}
  - {{from: h1, to: lone, reach: false}}
  - {{from: r1, to: \"lone:eth0\"}}
  - {{from: lone, to: h2, reach: false}}
"
    );
    let lab = TestLab::new("ckok", &passing);
    lab.up();
    let (code, json) = check_json(&lab, &[]);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["expectations_from"], "topology");
    let expectations = json["expectations"].as_array().expect("expectations");
    assert_eq!(expectations.len(), 7);
    for e in expectations {
        assert_eq!(e["passed"], true, "{e}");
    }
    // A node target means each of its addresses.
    assert_eq!(expectations[0]["probes"].as_array().map(Vec::len), Some(2));
    let (code, out, _) = check(&lab, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("expectations: 7 of 7 passed"), "{out}");
    assert!(
        out.contains("  PASS h1 -> 203.0.113.9 (must not reach): 203.0.113.9 not reached ("),
        "{out}"
    );
    assert!(out.ends_with("check: PASS\n"), "{out}");

    let failing = format!(
        "{ROUTED}expect:
  - {{from: h1, to: h2}}
  - {{from: h1, to: lone}}
  - {{from: h1, to: 10.0.2.2, reach: false}}
  - {{from: lone, to: r1}}
"
    );
    let lab = TestLab::new("ckbad", &failing);
    lab.up();
    let (code, json) = check_json(&lab, &[]);
    assert_eq!(code, 1, "{json:#}");
    let verdicts: Vec<&Value> = json["expectations"]
        .as_array()
        .expect("expectations")
        .iter()
        .map(|e| &e["passed"])
        .collect();
    assert_eq!(verdicts, [true, false, false, false]);
    let (code, out, _) = check(&lab, &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("  FAIL h1 -> lone: 10.0.3.2 not reached (timeout)"),
        "{out}"
    );
    assert!(
        out.contains("  FAIL h1 -> 10.0.2.2 (must not reach): 10.0.2.2 reached ("),
        "{out}"
    );
    // Some of r1's addresses are reached from lone: not all, so it fails.
    assert!(out.contains("10.0.3.1 reached ("), "{out}");
    assert!(
        out.ends_with("check: FAIL (3 of 4 expectations failed)\n"),
        "{out}"
    );
}

/// Two hosts on one link, with port expectations; listeners are bound by
/// the test inside h2's net namespace.
const PORTS: &str = r#"
name: LAB
topology:
  nodes:
    h1: {}
    h2: {}
  links:
    - endpoints: ["h1:eth0", "h2:eth0"]
      ipv4: [10.0.9.1/24, 10.0.9.2/24]
      ipv6: ["fd00:9::1/64", "fd00:9::2/64"]
expect:
  - {from: h1, to: h2, port: 8080/tcp}
  - {from: h1, to: h2, port: 8081/tcp, reach: false}
  - {from: h1, to: "h2:eth0", port: 5353/udp}
  - {from: h1, to: h2, port: 5354/udp, reach: false}
  - {from: h1, to: 10.0.9.2, port: 8081/tcp}
  - {from: h1, to: "fd00:9::2", port: 5354/udp}
  - {from: h1, to: 10.0.9.77, port: 5353/udp, reach: false}
"#;

#[test]
fn tcp_and_udp_ports_are_checked_against_listeners() {
    if !can_build_labs("tcp_and_udp_ports_are_checked_against_listeners") {
        return;
    }
    let lab = TestLab::new("ckport", PORTS);
    lab.up();
    // Sockets keep the net namespace they were made in: these listen in
    // h2 (dual-stack, so IPv4 too) until dropped, before the lab is.
    let (h2, _) =
        nslab::test_support::resolve_node(&format!("{}/h2", lab.name).parse().expect("a node"))
            .expect("h2 runs");
    let (tcp, udp) = h2
        .in_netns(|| {
            (
                std::net::TcpListener::bind("[::]:8080"),
                std::net::UdpSocket::bind("[::]:5353"),
            )
        })
        .expect("enter h2");
    let (_tcp, _udp) = (tcp.expect("listen on 8080"), udp.expect("bind 5353"));

    let (code, json) = check_json(&lab, &[]);
    assert_eq!(code, 1, "two expectations are wrong: {json:#}");
    let expectations = json["expectations"].as_array().expect("expectations");
    let verdicts: Vec<(&str, &str, bool)> = expectations
        .iter()
        .map(|e| (text(&e["to"]), text(&e["port"]), e["passed"] == true))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("h2", "8080/tcp", true),
            ("h2", "8081/tcp", true),
            ("h2:eth0", "5353/udp", true),
            ("h2", "5354/udp", true),
            ("10.0.9.2", "8081/tcp", false),
            ("fd00:9::2", "5354/udp", false),
            // Nobody has this address: silence proves nothing.
            ("10.0.9.77", "5353/udp", true),
        ]
    );
    // Both families, each probe with its reason.
    let probes = |i: usize| {
        expectations[i]["probes"]
            .as_array()
            .expect("probes")
            .clone()
    };
    assert_eq!(probes(0).len(), 2);
    assert!(
        probes(0)
            .iter()
            .all(|p| p["reached"] == true && p["rtt_ms"].is_f64())
    );
    assert!(
        probes(1)
            .iter()
            .all(|p| p["reached"] == false && p["error"] == "connection refused"),
        "{:?}",
        probes(1)
    );
    assert!(probes(2).iter().all(|p| p["reached"] == true));
    assert!(
        probes(3)
            .iter()
            .all(|p| p["reached"] == false && p["error"] == "connection refused"),
        "{:?}",
        probes(3)
    );
    let (code, out, _) = check(&lab, &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains(
            "  FAIL h1 -> 10.0.9.2 port 8081/tcp: 10.0.9.2 not reached (connection refused)"
        ),
        "{out}"
    );
    assert!(
        out.contains("  PASS h1 -> h2 port 8080/tcp: 10.0.9.2 reached ("),
        "{out}"
    );
    assert!(
        out.ends_with("check: FAIL (2 of 7 expectations failed)\n"),
        "{out}"
    );
}

#[test]
fn check_refuses_unknown_labs_and_bad_timeouts() {
    if !can_build_labs("check_refuses_unknown_labs_and_bad_timeouts") {
        return;
    }
    let name = common::unique_lab("cknone");
    // The check could not run: 2, not the 1 of a failed expectation.
    let (code, _, err) = run(&["check", &name]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("no lab {name}")), "{err}");
    let (code, _, err) = run(&["check", "Bad/Name"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["check", &name, "--timeout", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("give a number of seconds above 0"), "{err}");
    let (code, out, _) = run(&["check", "--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("0 every expectation passed; 1 an expectation failed; 2")
            && out.contains("[default: 3]"),
        "{out}"
    );
}

#[test]
fn the_example_topology_passes_its_own_expectations() {
    if !can_build_labs("the_example_topology_passes_its_own_expectations") {
        return;
    }
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/topologies/expect.yml");
    let yaml = std::fs::read_to_string(file).expect("topologies/expect.yml");
    let lab = TestLab::new("ckex", &yaml.replace("name: expect", "name: LAB"));
    lab.up();
    let (code, out, err) = check(&lab, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("expectations: 6 of 6 passed"), "{out}");
}

#[test]
fn a_node_that_stopped_is_reported_and_fails_its_pairs() {
    if !can_build_labs("a_node_that_stopped_is_reported_and_fails_its_pairs") {
        return;
    }
    let lab = TestLab::new(
        "ckstop",
        &format!(
            "{ROUTED}expect:\n  - {{from: lone, to: h1, reach: false}}\n  - {{from: h1, to: r1}}\n"
        ),
    );
    lab.up();
    let nodes = lab.inspect_json()[0]["nodes"].clone();
    let pid = nodes
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["name"] == "lone")
        .and_then(|n| n["pid"].as_i64())
        .expect("lone's init pid");
    // This test's own node: its init ends, its net namespace (named in
    // /run/netns) stays.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill lone's init");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, json) = check_json(&lab, &[]);
    // The check is incomplete: 2, not the 1 of a failed expectation.
    assert_eq!(code, 2, "{json:#}");
    assert_eq!(json["passed"], false);
    assert_eq!(
        json["errors"],
        serde_json::json!([{"node": "lone", "error": format!("node {}/lone is not running", lab.name)}])
    );
    for p in json["matrix"].as_array().expect("matrix") {
        if p["from"] == "lone" {
            assert_eq!(p["probed"], false, "{p}");
            assert_eq!(p["reached"], false, "{p}");
            assert_eq!(p["error"], format!("node {}/lone is not running", lab.name));
        }
    }
    // Nothing was sent from lone, so even "lone must not reach h1" fails.
    let e = &json["expectations"][0];
    assert_eq!((text(&e["from"]), text(&e["to"])), ("lone", "h1"));
    assert_eq!(e["reach"], false);
    assert_eq!(e["passed"], false, "{e}");
    assert_eq!(json["expectations"][1]["passed"], true);
    let (code, out, _) = check(&lab, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!(
            "  node lone: could not probe: node {}/lone is not running",
            lab.name
        )),
        "{out}"
    );
    assert!(out.contains("lone       4? 6?  4? 6?  4? 6?  -"), "{out}");
    assert!(
        out.contains("  FAIL lone -> h1 (must not reach): 10.0.1.2 not probed (node "),
        "{out}"
    );
    assert!(
        out.ends_with(
            "check: FAIL (1 of 2 expectations failed; 1 node(s) could not probe, the check is incomplete)\n"
        ),
        "{out}"
    );
}

/// `head` (ending in `expect:`) and 12 expectations that h1 does not reach
/// closed UDP ports 7001 to 7012 of h2.
fn with_closed_udp_ports(head: &str) -> String {
    let mut yaml = head.to_string();
    for port in 7001..=7012 {
        yaml.push_str(&format!(
            "  - {{from: h1, to: h2, port: {port}/udp, reach: false}}\n"
        ));
    }
    yaml
}

/// h1 probes 12 closed UDP ports on each of h2's addresses, and one open
/// one. The kernel answers a closed port with an ICMP port unreachable,
/// but rate-limits those per peer (a burst of 6, then, with this kernel's
/// defaults, one a second for IPv4 and one per 100 ms for IPv6; check
/// reads the live values): without pacing, the closed ports past
/// the burst were silent and reported reached (7 of 24, then 12 of 24).
fn many_udp_ports() -> String {
    with_closed_udp_ports(
        r#"
name: LAB
topology:
  nodes:
    h1: {}
    h2: {}
  links:
    - endpoints: ["h1:eth0", "h2:eth0"]
      ipv4: [10.0.8.1/24, 10.0.8.2/24]
      ipv6: ["fd00:8::1/64", "fd00:8::2/64"]
expect:
  - {from: h1, to: h2, port: 6000/udp}
"#,
    )
}

#[test]
fn many_closed_udp_ports_on_one_target_are_all_refused() {
    if !can_build_labs("many_closed_udp_ports_on_one_target_are_all_refused") {
        return;
    }
    let lab = TestLab::new("ckudp", &many_udp_ports());
    lab.up();
    let (h2, _) =
        nslab::test_support::resolve_node(&format!("{}/h2", lab.name).parse().expect("a node"))
            .expect("h2 runs");
    let udp = h2
        .in_netns(|| std::net::UdpSocket::bind("[::]:6000"))
        .expect("enter h2")
        .expect("bind 6000");
    // Twice: the second run starts with the target's ICMP budget spent.
    for run in 0..2 {
        let started = Instant::now();
        let (code, json) = check_json(&lab, &[]);
        let took = started.elapsed();
        eprintln!("run {run}: {took:?}");
        // Paced: about 1.1 s per IPv4 port past what h2 could still refuse
        // at once, plus the timeout of the silent one (7.7 s and 13.2 s
        // measured here).
        assert!(took < Duration::from_secs(30), "run {run}: {took:?}");
        let expectations = json["expectations"].as_array().expect("expectations");
        assert_eq!(expectations.len(), 13);
        let open = &expectations[0];
        assert_eq!(open["passed"], true, "{open}");
        for e in &expectations[1..] {
            for p in e["probes"].as_array().expect("probes") {
                assert_eq!(p["reached"], false, "run {run}: {e}");
                assert_eq!(p["error"], "connection refused", "run {run}: {e}");
            }
            assert_eq!(e["passed"], true, "run {run}: {e}");
        }
        assert_eq!(code, 0, "run {run}: {json:#}");
    }
    drop(udp);
}

/// Two hosts, IPv4 only, and a TCP expectation.
const SYN: &str = r#"
name: LAB
topology:
  nodes:
    h1: {}
    h2: {}
  links:
    - endpoints: ["h1:eth0", "h2:eth0"]
      ipv4: [10.0.7.1/24, 10.0.7.2/24]
expect:
  - {from: h1, to: 10.0.7.2, port: 8080/tcp}
"#;

#[test]
fn a_lost_first_syn_is_sent_again_within_the_timeout() {
    if !can_build_labs("a_lost_first_syn_is_sent_again_within_the_timeout") {
        return;
    }
    let lab = TestLab::new("cksyn", SYN);
    lab.up();
    let (h2, _) =
        nslab::test_support::resolve_node(&format!("{}/h2", lab.name).parse().expect("a node"))
            .expect("h2 runs");
    let _listener = h2
        .in_netns(|| std::net::TcpListener::bind("0.0.0.0:8080"))
        .expect("enter h2")
        .expect("listen on 8080");
    // Once without loss: h1 learns h2's MAC, so later SYNs need no ARP.
    let (code, json) = check_json(&lab, &[]);
    assert_eq!(code, 0, "{json:#}");

    // h2 drops what h1 sends (its address is gone, h1 still knows its
    // MAC) until the address is back, 300 ms into the check. The kernel
    // would send the SYN again only after 1 s, past this 0.95 s timeout; a
    // fresh connect every 237 ms gets through.
    let netns = format!("{}-h2", lab.name);
    let ip = |verb: &str| {
        let out = std::process::Command::new("ip")
            .args(["-n", &netns, "addr", verb, "10.0.7.2/24", "dev", "eth0"])
            .output()
            .expect("run ip");
        assert!(out.status.success(), "ip addr {verb}: {out:?}");
    };
    ip("del");
    let child = common::nslab()
        .args(["check", &lab.name, "--json", "--timeout", "0.95"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start check");
    std::thread::sleep(Duration::from_millis(300));
    ip("add");
    let (code, out, err) = common::output_of(child.wait_with_output().expect("check ends"));
    let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    let probe = &json["expectations"][0]["probes"][0];
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(probe["reached"], true, "{probe}");
    // Timed from the connect that got through (at 237 ms or later), not
    // from the start of the run.
    let rtt = probe["rtt_ms"].as_f64().expect("rtt");
    assert!(rtt < 200.0, "{probe}");
}

/// h1 probes 12 closed UDP ports on h2, IPv4 only. h2's topology sets its
/// ICMP error intervals (IPv4 1500 ms, IPv6 40 ms: whole jiffies at any
/// common HZ, so the kernel shows them back unchanged).
fn ratelimit_lab() -> String {
    with_closed_udp_ports(
        r#"
name: LAB
topology:
  nodes:
    h1: {}
    h2:
      sysctls: {net.ipv4.icmp_ratelimit: 1500, net.ipv6.icmp.ratelimit: 40}
  links:
    - endpoints: ["h1:eth0", "h2:eth0"]
      ipv4: [10.0.9.1/24, 10.0.9.2/24]
expect:
"#,
    )
}

#[test]
fn udp_pacing_follows_the_live_ratelimit_of_the_target() {
    if !can_build_labs("udp_pacing_follows_the_live_ratelimit_of_the_target") {
        return;
    }
    let lab = TestLab::new("ckrl", &ratelimit_lab());
    lab.up();
    let sysctl = |node: &str, key: &str| -> Duration {
        let (code, out, err) = lab.exec(node, &["cat", &format!("/proc/sys/{key}")]);
        assert_eq!(code, 0, "read {key} in {node}: {err}");
        Duration::from_millis(out.trim().parse().expect("milliseconds"))
    };
    let (v4, v6) = ("net/ipv4/icmp_ratelimit", "net/ipv6/icmp/ratelimit");
    let ms = Duration::from_millis;

    // What check reads: each node's own values, as the node itself sees them.
    let nodes = nslab::test_support::running_nodes(&lab.name).expect("running nodes");
    let read = nslab::test_support::icmp_ratelimits(&nodes);
    assert_eq!(read["h2"], [Some(ms(1500)), Some(ms(40))]);
    assert_eq!(read["h2"], [Some(sysctl("h2", v4)), Some(sysctl("h2", v6))]);
    assert_eq!(read["h1"], [Some(sysctl("h1", v4)), Some(sysctl("h1", v6))]);

    // Changed at run time: the topology still says 1500 ms.
    let (code, _, err) = lab.exec(
        "h2",
        &["sh", "-c", "echo 300 > /proc/sys/net/ipv4/icmp_ratelimit"],
    );
    assert_eq!(code, 0, "set h2's ratelimit: {err}");
    assert_eq!(sysctl("h2", v4), ms(300));

    let started = Instant::now();
    let (code, json) = check_json(&lab, &[]);
    let took = started.elapsed();
    eprintln!("12 closed ports paced at 300 ms: {took:?}");
    assert_eq!(code, 0, "{json:#}");
    for e in json["expectations"].as_array().expect("expectations") {
        let probe = &e["probes"][0];
        assert_eq!(probe["error"], "connection refused", "{e}");
    }
    // h2 refuses at most its burst of 6 at once; the other 6 or more go
    // out paced at 300 ms plus a 30 ms margin each: at least 1.98 s. Paced
    // by the topology's 1500 ms they would take at least 9.9 s.
    assert!(took >= ms(1900), "paced: {took:?}");
    assert!(took < ms(6000), "by the live 300 ms: {took:?}");
}
