//! The matrix and the expectations, from plans and made-up outcomes.

use std::path::Path;

use super::*;
use crate::topology::parse_str;

/// h1 -- r1 -- sw (bridge) -- h2, and h3 on sw without addresses.
const LAB: &str = r#"name: t
topology:
  nodes:
    h1: {}
    r1: {}
    h2: {}
    sw: {kind: bridge}
    h3: {}
  links:
    - endpoints: ["h1:eth0", "r1:eth0"]
      ipv4: [10.0.1.2/24, 10.0.1.1/24]
      ipv6: ["2001:db8:1::2/64", "2001:db8:1::1/64"]
    - endpoints: ["r1:eth1", "sw:p1"]
      ipv4: [10.0.2.1/24, null]
    - endpoints: ["h2:eth0", "sw:p2"]
      ipv4: [10.0.2.2/24, null]
    - endpoints: ["h3:eth0", "sw:p3"]
"#;

fn plan(yaml: &str) -> Plan {
    let t = parse_str(yaml, Path::new("lab.yml"), Path::new("/")).expect("valid topology");
    Plan::from_topology(&t)
}

fn with_expect(expect: &str) -> Plan {
    plan(&format!("{LAB}expect:\n{expect}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

const MS: Duration = Duration::from_millis(1);

/// Outcomes made up by `f(source, probe)` for every probe of the plan.
fn simulate(
    check: &CheckPlan,
    f: impl Fn(&str, &Probe) -> Outcome,
) -> Vec<Result<Vec<Outcome>, String>> {
    check
        .sources
        .iter()
        .zip(&check.probes)
        .map(|(source, probes)| Ok(probes.iter().map(|p| f(source, p)).collect()))
        .collect()
}

fn report(check: &CheckPlan, f: impl Fn(&str, &Probe) -> Outcome) -> CheckReport {
    check.evaluate(&simulate(check, f), Duration::from_secs(1), 12 * MS)
}

/// Addresses in 10.0.1.0/24 and 2001:db8:1::/64 answer; 10.0.2.0/24 only
/// from r1 (as if h1 had no route there).
fn partly_routed(source: &str, probe: &Probe) -> Outcome {
    let address = match probe {
        Probe::Echo(a) => *a,
        Probe::Tcp(a) | Probe::Udp(a) => a.ip(),
    };
    let text = address.to_string();
    if text.starts_with("10.0.1.") || text.starts_with("2001:db8:1::") || source == "r1" {
        Outcome::Answered(MS / 2)
    } else {
        Outcome::Failed("network is unreachable".into())
    }
}

#[test]
fn matrix_probes_every_other_node_address_once() {
    let check = CheckPlan::new(&plan(LAB));
    assert_eq!(
        check.sources,
        ["h1", "r1", "h2", "h3"],
        "bridges do not probe"
    );
    let echo = |s: &str| Probe::Echo(ip(s));
    assert_eq!(
        check.probes[0],
        [
            echo("10.0.1.1"),
            echo("2001:db8:1::1"),
            echo("10.0.2.1"),
            echo("10.0.2.2")
        ],
        "h1: r1's and h2's addresses, not its own"
    );
    assert_eq!(
        check.probes[1],
        [echo("10.0.1.2"), echo("2001:db8:1::2"), echo("10.0.2.2")]
    );
    // h3 has no address but still probes everyone.
    assert_eq!(check.probes[3].len(), 6);
    assert_eq!(check.matrix.len(), 4 + 3 + 5 + 6);
}

#[test]
fn pingall_when_no_expectations() {
    let check = CheckPlan::new(&plan(LAB));
    let all = report(&check, |_, _| Outcome::Answered(MS));
    assert_eq!(all.expectations_from, Expectations::Pingall);
    // Every source to every other node with addresses (h3 has none).
    assert_eq!(all.expectations.len(), 3 * 2 + 3);
    assert!(all.passed);
    assert!(
        all.matrix
            .iter()
            .all(|p| p.reached && p.rtt_ms == Some(1.0))
    );

    let some = report(&check, partly_routed);
    assert!(!some.passed);
    let failed: Vec<(&str, &str)> = some
        .expectations
        .iter()
        .filter(|e| !e.passed)
        .map(|e| (e.from.as_str(), e.to.as_str()))
        .collect();
    // h1 reaches r1 only on one of its addresses: a node target needs all.
    assert_eq!(
        failed,
        [
            ("h1", "r1"),
            ("h1", "h2"),
            ("h2", "r1"),
            ("h3", "r1"),
            ("h3", "h2")
        ]
    );
    let h1_h2 = some
        .matrix
        .iter()
        .find(|p| p.from == "h1" && p.address == ip("10.0.2.2"))
        .expect("probed");
    assert_eq!(h1_h2.to.as_deref(), Some("h2"));
    assert_eq!(h1_h2.interface.as_deref(), Some("eth0"));
    assert_eq!(h1_h2.family, 4);
    assert!(!h1_h2.reached);
    assert_eq!(h1_h2.rtt_ms, None);
    assert_eq!(h1_h2.error.as_deref(), Some("network is unreachable"));
}

#[test]
fn expectations_pass_and_fail() {
    let check = CheckPlan::new(&with_expect(
        r#"  - {from: h1, to: "r1:eth0"}
  - {from: h1, to: h2}
  - {from: h1, to: h2, reach: false}
  - {from: h1, to: 203.0.113.9, reach: false}
  - {from: h1, to: 10.0.1.1, reach: false}
  - {from: r1, to: "2001:db8:1::2"}
"#,
    ));
    let r = report(&check, partly_routed);
    assert_eq!(r.expectations_from, Expectations::Topology);
    let verdicts: Vec<bool> = r.expectations.iter().map(|e| e.passed).collect();
    assert_eq!(verdicts, [true, false, true, true, false, true]);
    assert!(!r.passed);
    // An address of the lab is attributed to its node.
    assert_eq!(r.expectations[4].probes[0].to.as_deref(), Some("r1"));
    assert_eq!(r.expectations[3].probes[0].to, None);
    assert_eq!(
        r.expectations[0].probes.len(),
        2,
        "both addresses of r1:eth0"
    );
    // The expectation's echo is the matrix's: probed once.
    assert_eq!(
        check.probes[0]
            .iter()
            .filter(|p| **p == Probe::Echo(ip("10.0.1.1")))
            .count(),
        1
    );
    // Only the out-of-lab address adds a probe to h1's matrix probes.
    assert_eq!(check.probes[0].len(), 5);
}

#[test]
fn ports_use_tcp_and_udp_probes() {
    let check = CheckPlan::new(&with_expect(
        r#"  - {from: h1, to: r1, port: 80/tcp}
  - {from: h1, to: "r1:eth0", port: 53/udp}
  - {from: h1, to: "r1:eth0", port: 54/udp, reach: false}
"#,
    ));
    let tcp = |s: &str| Probe::Tcp(SocketAddr::new(ip(s), 80));
    assert!(check.probes[0].contains(&tcp("10.0.1.1")));
    assert!(check.probes[0].contains(&tcp("2001:db8:1::1")));
    assert!(check.probes[0].contains(&tcp("10.0.2.1")));
    let udp = Probe::Udp(SocketAddr::new(ip("10.0.1.1"), 53));
    assert!(check.probes[0].contains(&udp));

    // TCP: connected everywhere but 10.0.2.1 (refused). UDP 53: silence, and
    // the address answers echo except 2001:db8:1::1. UDP 54: refused.
    let r = report(&check, |_, p| match p {
        Probe::Tcp(a) if a.ip() == ip("10.0.2.1") => Outcome::Failed("connection refused".into()),
        Probe::Tcp(_) => Outcome::Answered(MS),
        Probe::Udp(a) if a.port() == 54 => Outcome::Failed("connection refused".into()),
        Probe::Udp(_) => Outcome::Silent,
        Probe::Echo(a) if *a == ip("2001:db8:1::1") => Outcome::TimedOut,
        Probe::Echo(_) => Outcome::Answered(MS),
    });
    let tcp = &r.expectations[0];
    assert_eq!(tcp.port.as_deref(), Some("80/tcp"));
    assert!(!tcp.passed, "one address refused");
    assert_eq!(
        tcp.probes.iter().map(|p| p.reached).collect::<Vec<_>>(),
        [true, true, false]
    );
    let udp = &r.expectations[1];
    assert!(!udp.passed);
    assert_eq!(udp.probes[0].address, ip("10.0.1.1"));
    assert!(
        udp.probes[0].reached,
        "silence from an address that answers echo"
    );
    assert_eq!(udp.probes[0].rtt_ms, None);
    assert!(
        !udp.probes[1].reached,
        "silence from an address that does not"
    );
    assert!(r.expectations[2].passed, "refused everywhere: not reached");
}

#[test]
fn udp_silence_without_its_echo_is_not_probed() {
    // Silence only means something next to the echo to the same address:
    // without it, a `reach: false` must not pass on silence alone.
    let check = CheckPlan::new(&with_expect(
        "  - {from: h1, to: \"r1:eth0\", port: 54/udp, reach: false}\n",
    ));
    let r = report(&check, |_, p| match p {
        Probe::Udp(_) => Outcome::Silent,
        Probe::Echo(a) if a.is_ipv6() => {
            Outcome::NotProbed("could not open a raw ICMPv6 socket: permission denied".into())
        }
        Probe::Echo(_) => Outcome::TimedOut,
        Probe::Tcp(_) => Outcome::Answered(MS),
    });
    let e = &r.expectations[0];
    assert!(!e.passed, "{e:?}");
    let v4 = &e.probes[0];
    assert_eq!(v4.address, ip("10.0.1.1"));
    assert!(v4.probed && !v4.reached, "silence and no echo: {v4:?}");
    let v6 = &e.probes[1];
    assert_eq!(v6.address, ip("2001:db8:1::1"));
    assert!(!v6.probed && !v6.reached, "{v6:?}");
    assert_eq!(
        v6.error.as_deref(),
        Some(
            "no reply and no error, and the echo that would tell an open port from a dead \
             address was not probed: could not open a raw ICMPv6 socket: permission denied"
        )
    );
    assert!(!r.passed);
}

#[test]
fn a_source_that_cannot_probe_fails_its_pairs() {
    let check = CheckPlan::new(&plan(LAB));
    let mut results = simulate(&check, |_, _| Outcome::Answered(MS));
    results[1] = Err("node t/r1 is not running".into());
    let r = check.evaluate(&results, Duration::from_secs(1), MS);
    assert_eq!(
        r.errors,
        [SourceError {
            node: "r1".into(),
            error: "node t/r1 is not running".into()
        }]
    );
    assert!(!r.passed);
    assert!(
        r.matrix
            .iter()
            .filter(|p| p.from == "r1")
            .all(|p| !p.reached)
    );
    assert!(
        r.matrix
            .iter()
            .filter(|p| p.from != "r1")
            .all(|p| p.reached)
    );
}

#[test]
fn a_source_that_cannot_probe_fails_must_not_reach_too() {
    let check = CheckPlan::new(&with_expect(
        "  - {from: r1, to: h2, reach: false}\n  - {from: h1, to: \"r1:eth0\"}\n",
    ));
    let mut results = simulate(&check, |_, _| Outcome::TimedOut);
    results[1] = Err("node t/r1 is not running".into());
    let r = check.evaluate(&results, Duration::from_secs(1), MS);
    // Not having looked is not "not reached".
    let e = &r.expectations[0];
    assert!(!e.passed, "{e:?}");
    assert!(e.probes.iter().all(|p| !p.probed && !p.reached));
    assert_eq!(
        e.probes[0].error.as_deref(),
        Some("node t/r1 is not running")
    );
    assert!(!r.passed);
    // The same for a probe that could not run on a node that did.
    let mut results = simulate(&check, |source, p| match p {
        Probe::Echo(a) if a.is_ipv6() && source == "h1" => {
            Outcome::NotProbed("could not open a raw ICMPv6 socket: permission denied".into())
        }
        _ => Outcome::Answered(MS),
    });
    results[1] = Ok(vec![Outcome::TimedOut; check.probes[1].len()]);
    let r = check.evaluate(&results, Duration::from_secs(1), MS);
    assert!(r.expectations[0].passed, "r1 ran: its timeouts count");
    assert!(!r.expectations[1].passed, "h1 could not send to r1's IPv6");
    assert!(!r.passed);
    assert_eq!(
        r.errors,
        [SourceError {
            node: "h1".into(),
            error: "could not open a raw ICMPv6 socket: permission denied".into()
        }],
        "each reason once"
    );
    let text = render_text(&r);
    assert!(
        text.contains(
            "2001:db8:1::1 not probed (could not open a raw ICMPv6 socket: permission denied)"
        ),
        "{text}"
    );
    assert!(
        text.ends_with(
            "check: FAIL (1 of 2 expectations failed; 1 node(s) could not probe, the check is incomplete)\n"
        ),
        "{text}"
    );
}

#[test]
fn errors_fail_the_check_even_when_every_expectation_passes() {
    // Only the matrix needs h3's probes; the one expectation is h1's.
    let check = CheckPlan::new(&with_expect("  - {from: h1, to: \"r1:eth0\"}\n"));
    let mut results = simulate(&check, |_, _| Outcome::Answered(MS));
    results[3] = Err("node t/h3 is not running".into());
    let r = check.evaluate(&results, Duration::from_secs(1), MS);
    assert!(r.expectations.iter().all(|e| e.passed));
    assert!(!r.passed);
    let text = render_text(&r);
    assert!(
        text.contains("h3         4? 6?  4? 6?  4?\n"),
        "not probed is not unreachable:\n{text}"
    );
    assert!(
        text.ends_with("check: FAIL (1 node(s) could not probe, the check is incomplete)\n"),
        "{text}"
    );
}

#[test]
fn udp_pacing_follows_the_intervals_read_from_the_nodes() {
    let check = CheckPlan::new(&with_expect(
        "  - {from: h1, to: r1, port: 53/udp}\n  - {from: r1, to: 203.0.113.9, port: 53/udp}\n",
    ));
    // r1 is the only node UDP probes go to; h2 and the out-of-lab address
    // are not nodes to read.
    assert_eq!(check.paced_nodes(), ["r1"]);
    let read = HashMap::from([
        ("r1".to_string(), [Some(Duration::ZERO), Some(250 * MS)]),
        ("h1".to_string(), [Some(400 * MS), None]),
    ]);
    let pacing = check.pacing(&read);
    let interval = |s: &str| pacing.interval(ip(s));
    // r1's values, on each of its addresses.
    assert_eq!(interval("10.0.1.1"), Duration::ZERO);
    assert_eq!(interval("10.0.2.1"), Duration::ZERO);
    assert_eq!(interval("2001:db8:1::1"), 250 * MS);
    // h1's IPv4 value; its IPv6 one, h2 and outsiders were not read.
    assert_eq!(interval("10.0.1.2"), 400 * MS);
    assert_eq!(interval("2001:db8:1::2"), UNREAD_RATELIMIT);
    assert_eq!(interval("10.0.2.2"), UNREAD_RATELIMIT);
    assert_eq!(interval("203.0.113.9"), UNREAD_RATELIMIT);
    // Nothing read at all: every host at the fallback.
    let none = check.pacing(&HashMap::new());
    assert_eq!(none.interval(ip("2001:db8:1::1")), UNREAD_RATELIMIT);
}

#[test]
fn ratelimit_values_are_milliseconds() {
    assert_eq!(ratelimit_interval("1000\n"), Some(1000 * MS));
    assert_eq!(ratelimit_interval("252"), Some(252 * MS));
    assert_eq!(ratelimit_interval("0"), Some(Duration::ZERO));
    assert_eq!(ratelimit_interval("-1"), None);
    assert_eq!(ratelimit_interval(""), None);
    assert_eq!(
        RATELIMIT_SYSCTLS,
        ["net/ipv4/icmp_ratelimit", "net/ipv6/icmp/ratelimit"]
    );
}

#[test]
fn an_expectation_from_a_node_the_plan_lacks_fails() {
    let mut p = with_expect("  - {from: h1, to: h2}\n");
    p.expect[0].from = "gone".into();
    let check = CheckPlan::new(&p);
    let r = report(&check, |_, _| Outcome::Answered(MS));
    assert!(!r.expectations[0].passed);
    assert!(r.expectations[0].probes.is_empty());
}

#[test]
fn json_has_the_documented_fields() {
    let check = CheckPlan::new(&with_expect("  - {from: h1, to: h2, port: 80/tcp}\n"));
    let r = report(&check, |_, _| Outcome::Answered(MS / 4));
    let json = serde_json::to_value(&r).expect("json");
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&json),
        [
            "elapsed_ms",
            "errors",
            "expectations",
            "expectations_from",
            "lab",
            "matrix",
            "nodes",
            "passed",
            "timeout_ms"
        ]
    );
    assert_eq!(json["expectations_from"], "topology");
    let probe = &json["matrix"][0];
    assert_eq!(
        keys(probe),
        [
            "address",
            "error",
            "family",
            "from",
            "interface",
            "probed",
            "reached",
            "rtt_ms",
            "to"
        ]
    );
    assert_eq!(probe["probed"], true);
    assert_eq!(probe["from"], "h1");
    assert_eq!(probe["to"], "r1");
    assert_eq!(probe["address"], "10.0.1.1");
    assert_eq!(probe["family"], 4);
    assert_eq!(probe["rtt_ms"], 0.25);
    let e = &json["expectations"][0];
    assert_eq!(keys(e), ["from", "passed", "port", "probes", "reach", "to"]);
    assert_eq!(e["port"], "80/tcp");
    assert_eq!(e["to"], "h2");
}

#[test]
fn text_table_for_a_small_lab() {
    let check = CheckPlan::new(&with_expect(
        "  - {from: h1, to: h2, reach: false}\n  - {from: h1, to: \"r1:eth0\"}\n",
    ));
    let r = report(&check, partly_routed);
    let text = render_text(&r);
    let table = "\
from \\ to  h1     r1     h2
h1         -      4~ 6✓  4✗
r1         4✓ 6✓  -      4✓
h2         4✓ 6✓  4~ 6✓  -
h3         4✓ 6✓  4~ 6✓  4✗
";
    assert!(text.contains(table), "{text}");
    assert!(text.contains("expectations: 2 of 2 passed"), "{text}");
    assert!(
        text.contains(
            "  PASS h1 -> h2 (must not reach): 10.0.2.2 not reached (network is unreachable)"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "  PASS h1 -> r1:eth0: 10.0.1.1 reached (0.5 ms), 2001:db8:1::1 reached (0.5 ms)"
        ),
        "{text}"
    );
    assert!(text.ends_with("check: PASS\n"), "{text}");
}

#[test]
fn text_says_pingall_and_lists_failures() {
    let check = CheckPlan::new(&plan(LAB));
    let text = render_text(&report(&check, partly_routed));
    assert!(
        text.contains("no expect: entries in the topology, so every node must reach every address of every other node (pingall): 4 of 9 pairs passed"),
        "{text}"
    );
    assert!(
        text.contains("  FAIL h1 -> h2: 10.0.2.2 not reached (network is unreachable)"),
        "{text}"
    );
    assert!(
        !text.contains("PASS r1"),
        "only failures are listed:\n{text}"
    );
    assert!(
        text.ends_with("check: FAIL (5 of 9 pairs failed)\n"),
        "{text}"
    );
}

#[test]
fn big_labs_get_a_summary_with_failing_pairs() {
    // A star of 30 hosts on one bridge; h0 cannot reach anyone.
    let mut yaml = String::from("name: big\ntopology:\n  nodes:\n    sw: {kind: bridge}\n");
    for i in 0..30 {
        yaml.push_str(&format!("    h{i}: {{}}\n"));
    }
    yaml.push_str("  links:\n");
    for i in 0..30 {
        yaml.push_str(&format!(
            "    - endpoints: [\"h{i}:eth0\", \"sw:p{i}\"]\n      ipv4: [10.0.0.{}/24, null]\n",
            i + 1
        ));
    }
    let check = CheckPlan::new(&plan(&yaml));
    let r = report(&check, |source, _| {
        if source == "h0" {
            Outcome::TimedOut
        } else {
            Outcome::Answered(MS)
        }
    });
    let text = render_text(&r);
    assert!(
        !text.contains("from \\ to"),
        "no table past {MAX_TABLE_NODES} nodes"
    );
    assert!(
        text.contains("reachability: 30 node(s), 870 probe(s) (every node to every address of every other node): 841 reached, 29 not"),
        "{text}"
    );
    assert!(
        text.contains("failing pairs (29):\n  h0 -> h1: 10.0.0.2 not reached (timeout)\n"),
        "{text}"
    );
    assert!(
        text.contains("check: FAIL (29 of 870 pairs failed)"),
        "{text}"
    );
}

#[test]
fn a_probe_that_could_not_run_makes_the_check_incomplete() {
    let check = CheckPlan::new(&plan(LAB));
    let all = report(&check, |_, _| Outcome::Answered(MS));
    assert_eq!(all.conclusion(), Conclusion::Passed);
    assert_eq!(
        report(&check, partly_routed).conclusion(),
        Conclusion::Failed
    );
    // Outweighs the failed expectations of the other nodes.
    let h1_cannot = report(&check, |source, probe| {
        if source == "h1" {
            Outcome::NotProbed("no socket".into())
        } else {
            partly_routed(source, probe)
        }
    });
    assert_eq!(h1_cannot.conclusion(), Conclusion::Incomplete);
}
