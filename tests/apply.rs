//! `nslab apply` and `Lab::apply`, as root on real labs: only the
//! difference is made, live; what did not change keeps its pids, ifindexes
//! and counters; what cannot change live is refused before anything
//! changes; a lab that is not running is brought up; `events` shows the
//! steps. (A killed `apply` is in tests/crash.rs.)

mod common;

use std::sync::mpsc::channel;
use std::time::Duration;

use common::{TestLab, can_build_labs, lab_options, run};
use nslab::events::EventKind;

/// r2 -- r1 -- h1, r1 with a sysctl, h1 with a default route.
const BASE: &str = r#"
name: LAB
topology:
  nodes:
    r1: {sysctls: {net.ipv4.ip_forward: 1}}
    r2: {}
    h1: {routes: ["default via 10.0.1.1"]}
  links:
    - endpoints: ["r1:eth0", "r2:eth0"]
      ipv4: [10.0.0.1/30, 10.0.0.2/30]
    - endpoints: ["h1:eth0", "r1:eth1"]
      ipv4: [10.0.1.2/24, 10.0.1.1/24]
"#;

/// BASE with h1 gone, r3 (with an exec step) and a bridge added, r2's
/// route, address, MTU, impairment and r1's sysctls changed.
const NEXT: &str = r#"
name: LAB
topology:
  nodes:
    r1: {sysctls: {net.ipv4.ip_forward: 0, net.ipv4.conf.all.rp_filter: 2}}
    r2: {routes: ["10.9.0.0/24 via 10.0.2.2"]}
    r3:
      routes: ["default via 10.0.2.1"]
      exec: ["echo made > /tmp/made"]
    sw: {kind: bridge}
  links:
    - endpoints: ["r1:eth0", "r2:eth0"]
      ipv4: [10.0.0.1/30, 10.0.0.2/30]
      ipv6: ["2001:db8::1/64", "2001:db8::2/64"]
      mtu: 9000
      impair: [null, {rate: 10mbit}]
    - endpoints: ["r2:eth1", "r3:eth0"]
      ipv4: [10.0.2.1/24, 10.0.2.2/24]
    - endpoints: ["r3:eth1", "sw:p1"]
      ipv4: [10.0.3.1/24, null]
"#;

fn write(lab: &TestLab, name: &str, yaml: &str) -> String {
    let path = lab.write(name, &yaml.replace("LAB", &lab.name));
    path.to_str().expect("utf-8").to_string()
}

fn pid_of(lab: &TestLab, node: &str) -> i64 {
    let json = lab.inspect_json();
    let nodes = json[0]["nodes"].as_array().expect("nodes").clone();
    nodes
        .iter()
        .find(|n| n["name"] == node)
        .and_then(|n| n["pid"].as_i64())
        .unwrap_or(0)
}

/// What `cat` prints for a file inside a node.
fn read_in(lab: &TestLab, node: &str, path: &str) -> String {
    let (code, out, err) = lab.exec(node, &["cat", path]);
    assert_eq!(code, 0, "cat {path} in {node}: {err}");
    out.trim().to_string()
}

#[test]
fn apply_makes_only_the_difference_live() {
    if !can_build_labs("apply_makes_only_the_difference_live") {
        return;
    }
    let lab = TestLab::new("apply", BASE);
    lab.up();
    let next = write(&lab, "next.yml", NEXT);
    lab.assert_ping("r1", "10.0.0.2");
    let (r1, r2) = (pid_of(&lab, "r1"), pid_of(&lab, "r2"));
    let index = read_in(&lab, "r1", "/sys/class/net/eth0/ifindex");
    let sent: u64 = read_in(&lab, "r1", "/sys/class/net/eth0/statistics/tx_packets")
        .parse()
        .expect("a count");
    assert!(sent > 0);

    // --dry-run lists the changes and makes none.
    let (code, out, err) = run(&["apply", "--dry-run", &next]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "- node h1",
        "- link h1:eth0 <-> r1:eth1",
        "+ node r3",
        "+ node sw",
        "+ link r2:eth1 <-> r3:eth0",
        "+ link r3:eth1 <-> sw:p1",
        "+ r2: route 10.9.0.0/24 via 10.0.2.2",
        "~ r1: sysctl net.ipv4.ip_forward 1 -> 0",
        "+ r1: sysctl net.ipv4.conf.all.rp_filter=2",
        "~ link r1:eth0 <-> r2:eth0: mtu 1500 -> 9000",
        "+ r1:eth0: address 2001:db8::1/64",
        "~ r2:eth0: impair none -> rate 10mbit",
    ] {
        assert!(lines.contains(&want), "{want:?} missing from:\n{out}");
    }
    assert_eq!(pid_of(&lab, "r3"), 0, "a dry run built r3");
    assert!(std::path::Path::new(&format!("/run/netns/{}-h1", lab.name)).exists());

    let (code, out, err) = run(&["apply", &next]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("change(s) applied"), "{out}");

    // What stayed is untouched: same inits, same interface, its counters
    // going on.
    assert_eq!((pid_of(&lab, "r1"), pid_of(&lab, "r2")), (r1, r2));
    assert_eq!(read_in(&lab, "r1", "/sys/class/net/eth0/ifindex"), index);
    let now: u64 = read_in(&lab, "r1", "/sys/class/net/eth0/statistics/tx_packets")
        .parse()
        .expect("a count");
    assert!(now >= sent, "counters reset: {now} < {sent}");
    // What changed did.
    assert_eq!(read_in(&lab, "r1", "/sys/class/net/eth0/mtu"), "9000");
    assert_eq!(
        read_in(&lab, "r1", "/proc/sys/net/ipv4/ip_forward"),
        "0",
        "sysctl"
    );
    assert_eq!(
        read_in(&lab, "r1", "/proc/sys/net/ipv4/conf/all/rp_filter"),
        "2"
    );
    lab.assert_ping("r1", "2001:db8::2");
    let (_, qdisc, _) = lab.exec("r2", &["tc", "qdisc", "show", "dev", "eth0"]);
    assert!(qdisc.contains("tbf"), "{qdisc}");
    let (_, routes, _) = lab.exec("r2", &["ip", "route"]);
    assert!(routes.contains("10.9.0.0/24 via 10.0.2.2"), "{routes}");
    // New nodes are whole: linked, routed, exec steps run, bridge ports.
    lab.assert_ping("r3", "10.0.2.1");
    assert_eq!(read_in(&lab, "r3", "/tmp/made"), "made");
    let (_, port, _) = lab.exec("sw", &["ip", "-o", "link", "show", "p1"]);
    assert!(port.contains("master sw"), "{port}");
    // What went is gone.
    assert!(!std::path::Path::new(&format!("/run/netns/{}-h1", lab.name)).exists());
    let (_, links, _) = lab.exec("r1", &["ip", "-o", "link"]);
    assert!(!links.contains("eth1"), "{links}");
    let (code, _, _) = lab.exec("h1", &["true"]);
    assert_ne!(code, 0, "h1 still runs");

    // The same file again: nothing to do.
    let (code, out, err) = run(&["apply", &next]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("no change"), "{out}");

    // And back: the removed sysctl goes back to a new node's value.
    let (code, out, err) = run(&["apply", lab.file()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        read_in(&lab, "r1", "/proc/sys/net/ipv4/conf/all/rp_filter"),
        "0"
    );
    assert_eq!(read_in(&lab, "r1", "/proc/sys/net/ipv4/ip_forward"), "1");
    lab.assert_ping("h1", "10.0.1.1");
    assert_eq!(pid_of(&lab, "r3"), 0);
    let (code, out, err) = run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(lab.leftovers().is_empty(), "{:?}", lab.leftovers());
}

#[test]
fn apply_refuses_what_cannot_change_live_and_recreate_rebuilds_it() {
    if !can_build_labs("apply_refuses_what_cannot_change_live_and_recreate_rebuilds_it") {
        return;
    }
    let lab = TestLab::new("applyno", BASE);
    lab.up();
    let r2 = pid_of(&lab, "r2");
    let renamed = write(
        &lab,
        "renamed.yml",
        &BASE
            .replace("    r2: {}", "    r2: {hostname: edge}\n    r9: {}")
            .replace(
                "  links:",
                "  links:\n    - endpoints: [\"r9:eth0\", \"r2:eth9\"]",
            ),
    );
    let (code, out, err) = run(&["apply", &renamed]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("node r2: `hostname` changed") && err.contains("--recreate r2"),
        "{err}"
    );
    // Nothing changed: not even what could have.
    assert_eq!(pid_of(&lab, "r9"), 0);
    assert_eq!(pid_of(&lab, "r2"), r2);

    let (code, out, err) = run(&["apply", "--recreate", "r2", &renamed]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("~ node r2 (recreated)"), "{out}");
    assert_ne!(pid_of(&lab, "r2"), r2);
    let (_, hostname, _) = lab.exec("r2", &["hostname"]);
    assert_eq!(hostname.trim(), "edge");
    // Its links came back with it.
    lab.assert_ping("r1", "10.0.0.2");
    assert_ne!(pid_of(&lab, "r9"), 0);

    // Bad input, exit 2: an unknown node to recreate, a lab the file does
    // not name, a file whose name was edited.
    let (code, _, err) = run(&["apply", "--recreate", "nope", &renamed]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no node nope"), "{err}");
    let (code, _, err) = run(&["apply", "--lab", "other", &renamed]);
    assert_eq!(code, 2, "{err}");
    // (The lab runs from the file applied last.)
    let text = std::fs::read_to_string(&renamed).expect("read");
    let edited = text.replace(
        &format!("name: {}", lab.name),
        &format!("name: {}x", lab.name),
    );
    std::fs::write(&renamed, edited).expect("edit");
    let (code, _, err) = run(&["apply", &renamed]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("meant for lab"), "{err}");
    assert!(!std::path::Path::new(&format!("/run/nslab/{}x", lab.name)).exists());
}

#[test]
fn apply_of_a_lab_that_is_not_running_brings_it_up() {
    if !can_build_labs("apply_of_a_lab_that_is_not_running_brings_it_up") {
        return;
    }
    let lab = TestLab::new("applyup", BASE);
    let (code, out, err) = run(&["apply", "--dry-run", lab.file()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("not running, so apply brings it up"), "{out}");
    assert_eq!(lab.leftovers(), Vec::<String>::new());
    let (code, out, err) = run(&["apply", lab.file()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("brought it up"), "{out}");
    lab.assert_ping("h1", "10.0.1.1");
}

#[test]
fn lab_apply_changes_a_lab_and_events_show_its_steps() {
    if !can_build_labs("lab_apply_changes_a_lab_and_events_show_its_steps") {
        return;
    }
    let topology = |yaml: &str| {
        nslab::topology::parse_str(
            &yaml.replace("LAB", "lapply"),
            "t.yml".as_ref(),
            ".".as_ref(),
        )
        .expect("valid")
    };
    let mut lab = lab_options().up(&topology(BASE)).expect("up");
    let events = lab.events().expect("events");
    let (sender, received) = channel();
    std::thread::spawn(move || {
        for event in events.flatten() {
            if sender.send(event).is_err() {
                break;
            }
        }
    });
    let report = lab.apply(&topology(NEXT), &[]).expect("apply");
    assert!(
        report.changes.contains(&"+ node r3".to_string()),
        "{report:?}"
    );
    let out = lab
        .exec("r3", ["ping", "-c1", "-W2", "10.0.2.1"])
        .expect("exec");
    assert!(out.success(), "{}", out.stderr_text());
    assert!(lab.plan().node_id("h1").is_none());
    let steps: Vec<String> =
        std::iter::from_fn(|| received.recv_timeout(Duration::from_secs(3)).ok())
            .filter_map(|e| match e.kind {
                EventKind::Apply { step, .. } => Some(step),
                _ => None,
            })
            .take_while(|step| step != "apply: done")
            .collect();
    assert!(steps.iter().any(|s| s == "+ node r3"), "{steps:?}");
    assert!(steps.iter().any(|s| s == "- node h1"), "{steps:?}");
    // A change that cannot be made live is an error, and changes nothing.
    let refused = lab.apply(&topology(&NEXT.replace("r2: {", "r2: {hostname: x, ")), &[]);
    assert!(refused.is_err());
    lab.down().expect("down");
}

/// docs/api.md's example, as written there.
fn hosts(h3: bool) -> Result<nslab::Topology, nslab::TopologyError> {
    let mut builder = nslab::Topology::builder("grow")
        .node("h1")
        .node("h2")
        .link(["h1:eth0", "h2:eth0"])
        .ipv4(["10.0.0.1/24", "10.0.0.2/24"]);
    if h3 {
        builder = builder
            .node("h3")
            .link(["h2:eth1", "h3:eth0"])
            .ipv4(["10.0.1.2/24", "10.0.1.3/24"]);
    }
    builder.build()
}

#[test]
fn a_node_joins_a_running_lab() -> Result<(), Box<dyn std::error::Error>> {
    if !can_build_labs("a_node_joins_a_running_lab") {
        return Ok(());
    }
    let mut lab = nslab::LabOptions::new()
        .unique()
        .nslab_exe(env!("CARGO_BIN_EXE_nslab"))
        .up(&hosts(false)?)?;
    // Applied to this lab (`grow-<suffix>`), whatever the topology's name.
    let report = lab.apply(&hosts(true)?, &[])?;
    assert_eq!(report.changes, ["+ node h3", "+ link h2:eth1 <-> h3:eth0"]);
    assert!(lab.exec("h3", ["ping", "-c", "1", "10.0.1.2"])?.success());
    Ok(())
}

#[test]
fn a_host_end_set_down_and_up_by_apply_gets_its_addresses_back() {
    if !can_build_labs("a_host_end_set_down_and_up_by_apply_gets_its_addresses_back") {
        return;
    }
    let yaml = r#"
name: LAB
topology:
  nodes:
    r1: {}
  links:
    - endpoints: ["r1:eth0", "host:HOSTIF"]
      ipv6: ["2001:db8:9::1/64", "2001:db8:9::2/64"]
"#;
    let lab = TestLab::new("applyhost", yaml);
    lab.up();
    let down = write(
        &lab,
        "down.yml",
        &yaml
            .replace("HOSTIF", &lab.host_if)
            .replace("::2/64\"]", "::2/64\"]\n      state: [null, down]"),
    );
    let host = |what: &str| {
        let out = std::process::Command::new("ip")
            .args(["-o", what, "show", "dev", &lab.host_if])
            .output()
            .expect("ip");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let (code, out, err) = run(&["apply", &down]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("~ host:{}: state up -> down", lab.host_if)),
        "{out}"
    );
    assert!(!host("link").contains(",UP"), "{}", host("link"));
    let (code, out, err) = run(&["apply", lab.file()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(host("link").contains(",UP"), "{}", host("link"));
    assert!(
        host("address").contains("2001:db8:9::2/64"),
        "{}",
        host("address")
    );
}

/// Nodes `apply` adds run their `exec` steps in start order: a wait on a
/// node that runs already is met, one on another new node is kept.
#[test]
fn apply_runs_new_nodes_steps_in_start_order() {
    if !can_build_labs("apply_runs_new_nodes_steps_in_start_order") {
        return;
    }
    let lab = TestLab::new(
        "applyord",
        "name: LAB\ntopology:\n  nodes:\n    a: {binds: [\"stamps:/run/stamps\"]}\n",
    );
    lab.write("stamps/.keep", "");
    lab.up();
    let next = write(
        &lab,
        "next.yml",
        r#"name: LAB
topology:
  defaults:
    binds: ["stamps:/run/stamps"]
  nodes:
    a: {}
    late: {wait-for: [a, first], exec: ["test -e /run/stamps/first && touch /run/stamps/late"]}
    first: {exec: ["sleep 0.2", "touch /run/stamps/first"]}
"#,
    );
    let (code, out, err) = run(&["apply", &next]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(lab.dir.join("stamps/late").exists(), "{out}{err}");
    let (code, out, err) = run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "down failed:\n{out}\n{err}");
    assert_eq!(lab.leftovers(), Vec::<String>::new());
}
