//! `nslab node stop|start|restart`: a node powered off keeps its net
//! namespace and links (set down: its peers lose carrier), and comes back
//! with a new init, its addresses, routes, sysctls and exec steps, the
//! other nodes untouched.

mod common;

use common::{TestLab, can_build_labs, run};

/// h1 -- r1 -- h2, r1 with a route, a late sysctl and an exec step.
const CHAIN: &str = r#"
name: LAB
topology:
  nodes:
    h1:
      routes: ["default via 10.0.1.1"]
    r1:
      sysctls: {net.ipv4.ip_forward: 1, net.ipv4.conf.eth1.rp_filter: 2}
      routes: ["10.9.0.0/24 via 10.0.2.2"]
      exec: ["echo booted > /tmp/boot"]
    h2:
      routes: ["default via 10.0.2.1"]
  links:
    - endpoints: [h1:eth0, r1:eth0]
      ipv4: [10.0.1.2/24, 10.0.1.1/24]
      ipv6: ["2001:db8:1::2/64", "2001:db8:1::1/64"]
    - endpoints: [r1:eth1, h2:eth0]
      ipv4: [10.0.2.1/24, 10.0.2.2/24]
"#;

/// Node name → init pid (0 when not running), and whether it is stopped.
fn nodes(lab: &TestLab) -> Vec<(String, i64, bool)> {
    let json = lab.inspect_json();
    json[0]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().expect("name").to_string(),
                n["pid"].as_i64().unwrap_or(0),
                n["stopped"].as_bool().expect("stopped"),
            )
        })
        .collect()
}

fn pid_of(lab: &TestLab, node: &str) -> i64 {
    nodes(lab)
        .into_iter()
        .find(|(n, ..)| n == node)
        .map_or(0, |(_, pid, _)| pid)
}

#[test]
fn a_stopped_node_keeps_its_links_and_comes_back_whole() {
    if !can_build_labs("a_stopped_node_keeps_its_links_and_comes_back_whole") {
        return;
    }
    let lab = TestLab::new("life", CHAIN);
    lab.up();
    lab.assert_ping("h1", "10.0.2.2");
    let (h1, r1, h2) = (pid_of(&lab, "h1"), pid_of(&lab, "r1"), pid_of(&lab, "h2"));
    let netns = std::fs::metadata(format!("/run/netns/{}-r1", lab.name)).expect("r1's netns");

    // Stop: r1's processes end, its peers lose carrier, its net namespace
    // stays; the other nodes are untouched.
    let (code, out, err) = run(&["node", "stop", &format!("{}/r1", lab.name)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("stopped: init"), "{out}");
    let state = nodes(&lab);
    assert_eq!(state[1], ("r1".to_string(), 0, true), "{state:?}");
    assert_eq!((state[0].1, state[2].1), (h1, h2));
    assert_eq!(lab.inspect_json()[0]["status"], "running");
    let (_, link, _) = lab.exec("h1", &["ip", "-o", "link", "show", "eth0"]);
    assert!(
        link.contains("NO-CARRIER"),
        "h1's eth0 after r1 stopped: {link}"
    );
    let (code, _, _) = lab.exec("h1", &["ping", "-c", "1", "-W", "1", "10.0.2.2"]);
    assert_ne!(code, 0, "h1 reached h2 through a stopped r1");
    let (code, _, err) = lab.exec("r1", &["true"]);
    assert_ne!(code, 0, "exec in a stopped node");
    assert!(err.contains("not running"), "{err}");
    let kept = std::fs::metadata(format!("/run/netns/{}-r1", lab.name)).expect("kept netns");
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&kept),
        std::os::unix::fs::MetadataExt::ino(&netns)
    );
    let (code, _, err) = run(&["node", "stop", &format!("{}/r1", lab.name)]);
    assert_ne!(code, 0, "stopped twice");
    assert!(err.contains("not running"), "{err}");

    // Start: a new init in the same net namespace, everything of r1 back.
    let (code, out, err) = run(&["node", "start", &format!("{}/r1", lab.name)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 interface(s) up"), "{out}");
    let r1_again = pid_of(&lab, "r1");
    assert!(
        r1_again != 0 && r1_again != r1,
        "r1's init {r1} -> {r1_again}"
    );
    assert_eq!((pid_of(&lab, "h1"), pid_of(&lab, "h2")), (h1, h2));
    lab.assert_ping("h1", "10.0.2.2");
    let (_, addresses, _) = lab.exec("r1", &["ip", "-o", "address", "show", "eth0"]);
    assert!(addresses.contains("2001:db8:1::1/64"), "{addresses}");
    let (_, routes, _) = lab.exec("r1", &["ip", "route", "show", "10.9.0.0/24"]);
    assert!(routes.contains("via 10.0.2.2"), "r1's route back: {routes}");
    let (_, rp, _) = lab.exec("r1", &["cat", "/proc/sys/net/ipv4/conf/eth1/rp_filter"]);
    assert_eq!(rp.trim(), "2");
    let (_, boot, _) = lab.exec("r1", &["cat", "/tmp/boot"]);
    assert_eq!(boot, "booted\n", "the exec step ran again, on a fresh /tmp");
    let (code, _, err) = run(&["node", "start", &format!("{}/r1", lab.name)]);
    assert_ne!(code, 0, "started twice");
    assert!(err.contains("it is running"), "{err}");

    // Unknown names are bad input.
    let (code, _, err) = run(&["node", "restart", &format!("{}/ghost", lab.name)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ghost"), "{err}");
    let (code, _, _) = run(&["node", "stop", "no-such-lab/r1"]);
    assert_eq!(code, 2);

    // A lab with a stopped node goes down whole.
    let (code, _, err) = run(&["node", "stop", &format!("{}/r1", lab.name)]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(lab.leftovers().is_empty(), "{:?}", lab.leftovers());
}

#[test]
fn a_user_namespaced_node_restarts_through_the_api() {
    if !can_build_labs("a_user_namespaced_node_restarts_through_the_api") {
        return;
    }
    let topology = nslab::Topology::builder("liferust")
        .node("a")
        .node("b")
        .userns("b", true)
        .bind("b", "/etc/hostname:/run/host-hostname:ro")
        .link(["a:eth0", "b:eth0"])
        .ipv4(["10.0.0.1/24", "10.0.0.2/24"])
        .build()
        .expect("topology");
    let mut lab = common::lab_options().up(&topology).expect("up");
    let map = |lab: &nslab::Lab| {
        lab.exec("b", ["cat", "/proc/self/uid_map"])
            .expect("exec")
            .stdout_text()
    };
    let before = map(&lab);
    let pid_of_a = |lab: &nslab::Lab| {
        let stats = lab.stats().expect("stats");
        stats
            .nodes
            .iter()
            .find(|n| n.name == "a")
            .and_then(|n| n.pid)
    };
    let a = pid_of_a(&lab);
    assert!(a.is_some());
    let stopped = lab.stop_node("b").expect("stop");
    assert!(lab.exec("b", ["true"]).is_err(), "b is stopped");
    let started = lab.start_node("b").expect("start");
    assert_ne!(stopped.pid, started.pid);
    // The same user namespace (it owns the kept net namespace), root
    // inside, its idmapped bind back.
    assert_eq!(map(&lab), before);
    let id = lab
        .exec("b", ["stat", "-c", "%u", "/run/host-hostname"])
        .expect("stat");
    assert_eq!(id.stdout_text().trim(), "0");
    let ping = lab
        .exec("a", ["ping", "-c", "1", "-W", "2", "10.0.0.2"])
        .expect("ping");
    assert!(ping.success(), "{}", ping.stderr_text());
    let restarted = lab.restart_node("b").expect("restart");
    assert_ne!(restarted.pid, started.pid);
    assert_eq!(pid_of_a(&lab), a, "a was left alone");
    let report = lab.down().expect("down");
    assert!(report.errors.is_empty(), "{report:?}");
}
