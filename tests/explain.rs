//! `nslab explain`: the script it prints builds the same lab as `nslab up`.
//! The lab tests (root only) bring a topology up with nslab under one
//! unique name and with the script under another, compare every node of
//! the two, and remove both, pass or fail.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{TestLab, can_build_labs, leftovers_of, output_of, run, unique_lab};
use nslab::plan::{Place, Plan};
use nslab::spec::NodeKind;
use serde_json::Value;

/// The repository's topologies folder.
fn topologies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies")
}

#[test]
fn explain_and_up_dry_run_print_one_script_and_build_nothing() {
    let lab = TestLab::new(
        "dry",
        "name: LAB\ntopology:\n  nodes:\n    a: {}\n    b: {}\n  links:\n    - endpoints: [\"a:eth0\", \"b:eth0\"]\n      ipv4: [10.0.0.1/24, 10.0.0.2/24]\n",
    );
    let (code, explained, err) = run(&["explain", lab.file()]);
    assert_eq!(code, 0, "explain failed: {err}");
    let (code, dry, err) = run(&["up", "--dry-run", lab.file()]);
    assert_eq!(code, 0, "up --dry-run failed: {err}");
    assert_eq!(explained, dry);
    assert!(explained.starts_with("#!/bin/sh\n"));
    assert!(explained.contains(&format!("\nLAB=${{LAB:-{}}}\n", lab.name)));
    let syntax = Command::new("sh")
        .args(["-n", "-c", &explained])
        .output()
        .expect("sh -n");
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    assert_eq!(leftovers_of(&lab.name), Vec::<String>::new());
    // Bad input is refused as by `up`, with code 2.
    let (code, _, err) = run(&["explain", "/nonexistent/lab.yml"]);
    assert_eq!(code, 2, "{err}");
}

/// A lab built by the explained script; removed by its own `down` when
/// dropped, pass or fail.
struct ScriptLab {
    name: String,
    script: PathBuf,
}

impl ScriptLab {
    /// Writes the script of `topology` and runs it under the lab name `name`.
    fn up(topology: &str, dir: &Path, name: String) -> Self {
        let (code, text, err) = run(&["explain", topology]);
        assert_eq!(code, 0, "explain failed: {err}");
        let script = dir.join("explained.sh");
        std::fs::write(&script, text).expect("write the script");
        let lab = ScriptLab { name, script };
        let (code, out, err) = lab.sh(&[]);
        assert_eq!(code, 0, "the script failed:\n{out}\n{err}");
        lab
    }

    fn sh(&self, args: &[&str]) -> (i32, String, String) {
        output_of(
            Command::new("sh")
                .arg(&self.script)
                .args(args)
                .env("LAB", &self.name)
                .output()
                .expect("run sh"),
        )
    }

    fn record(&self) -> PathBuf {
        Path::new(nslab::test_support::RECORD_ROOT).join(&self.name)
    }

    fn pid(&self, node: &str) -> i32 {
        let file = self.record().join(format!("{node}.pid"));
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .parse()
            .expect("a pid")
    }
}

impl Drop for ScriptLab {
    fn drop(&mut self) {
        let _ = self.sh(&["down"]);
    }
}

/// One lab as the tests see it: per node, its PID 1 and its netns name.
struct Side {
    what: &'static str,
    nodes: BTreeMap<String, (i32, String)>,
}

impl Side {
    fn of_nslab(lab: &TestLab) -> Side {
        let json = lab.inspect_json();
        let nodes = json[0]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| {
                let name = n["name"].as_str().expect("name").to_string();
                let pid = n["pid"].as_i64().expect("pid") as i32;
                let netns = n["netns"].as_str().expect("netns").to_string();
                (name, (pid, netns))
            })
            .collect();
        Side {
            what: "nslab",
            nodes,
        }
    }

    fn of_script(lab: &ScriptLab, plan: &Plan) -> Side {
        let nodes = plan
            .nodes
            .iter()
            .map(|n| {
                let netns = format!("{}-{}", lab.name, n.name);
                (n.name.clone(), (lab.pid(&n.name), netns))
            })
            .collect();
        Side {
            what: "script",
            nodes,
        }
    }

    fn ip_json(&self, node: &str, args: &[&str]) -> Value {
        let netns = &self.nodes[node].1;
        let out = Command::new("ip")
            .args(["-j", "-n", netns])
            .args(args)
            .output()
            .expect("ip");
        assert!(
            out.status.success(),
            "ip {args:?} in {netns}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("ip -j gives JSON")
    }

    fn tc_json(&self, node: &str) -> Value {
        let netns = &self.nodes[node].1;
        let out = Command::new("tc")
            .args(["-j", "-n", netns, "qdisc", "show"])
            .output()
            .expect("tc");
        assert!(
            out.status.success(),
            "tc qdisc show in {netns}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("tc -j gives JSON")
    }

    /// Runs `args` in all of the node's namespaces; its stdout, trimmed.
    fn in_node(&self, node: &str, args: &[&str]) -> String {
        let pid = self.nodes[node].0.to_string();
        let out = Command::new("nsenter")
            .args(["-t", &pid, "-a"])
            .args(args)
            .output()
            .expect("nsenter");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        match out.status.success() {
            true => text,
            false => format!("failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        }
    }

    /// Everything compared of one node.
    fn facts(
        &self,
        plan: &Plan,
        node: &str,
        fixed_macs: &[(&str, &str)],
    ) -> BTreeMap<String, String> {
        let mut facts = BTreeMap::new();
        let id = plan.node_id(node).expect("node in plan");
        for link in self
            .ip_json(node, &["-d", "link", "show"])
            .as_array()
            .expect("links")
        {
            let name = link["ifname"].as_str().expect("ifname");
            let up = link["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == "UP"));
            let mut fact = format!(
                "up={up} mtu={} kind={} master={}",
                link["mtu"], link["linkinfo"]["info_kind"], link["master"]
            );
            if fixed_macs.contains(&(node, name)) {
                fact.push_str(&format!(" mac={}", link["address"]));
            }
            facts.insert(format!("link {name}"), fact);
        }
        for link in self
            .ip_json(node, &["address", "show"])
            .as_array()
            .expect("addresses")
        {
            let name = link["ifname"].as_str().expect("ifname");
            for a in link["addr_info"].as_array().expect("addr_info") {
                // Link-local addresses follow the random MACs.
                if a["scope"] != "link" {
                    facts.insert(
                        format!(
                            "address {name} {}/{}",
                            a["local"].as_str().expect("local"),
                            a["prefixlen"]
                        ),
                        format!("scope={}", a["scope"]),
                    );
                }
            }
        }
        for family in ["-4", "-6"] {
            let routes = self.ip_json(node, &[family, "route", "show", "table", "main"]);
            for r in routes.as_array().expect("routes") {
                // The kernel adds these when a link-local address comes,
                // some time after the link is up: not the topology's.
                if r["dst"] == "fe80::/64" {
                    continue;
                }
                facts.insert(
                    format!(
                        "route {family} {} via {} dev {} metric {}",
                        r["dst"], r["gateway"], r["dev"], r["metric"]
                    ),
                    format!(
                        "protocol={} scope={} prefsrc={}",
                        r["protocol"], r["scope"], r["prefsrc"]
                    ),
                );
            }
        }
        for qdisc in self.tc_json(node).as_array().expect("qdiscs") {
            // The kernel's own default qdiscs (noqueue) are the same on both.
            if qdisc["kind"] == "noqueue" {
                continue;
            }
            facts.insert(
                format!("qdisc {} {}", qdisc["dev"], qdisc["handle"]),
                format!(
                    "kind={} parent={} root={} options={}",
                    qdisc["kind"], qdisc["parent"], qdisc["root"], qdisc["options"]
                ),
            );
        }
        facts.insert("hostname".into(), self.in_node(node, &["hostname"]));
        let mut sysctls: Vec<String> = plan.nodes[id]
            .sysctls
            .iter()
            .map(|s| s.path.display().to_string())
            .collect();
        sysctls.extend([
            "net/ipv6/conf/all/accept_dad".into(),
            "net/ipv6/conf/default/accept_dad".into(),
        ]);
        for path in sysctls {
            let value = self.in_node(node, &["cat", &format!("/proc/sys/{path}")]);
            facts.insert(format!("sysctl {path}"), value);
        }
        let node_plan = &plan.nodes[id];
        let mut mounts: Vec<PathBuf> = vec!["/proc".into(), "/sys".into()];
        mounts.extend(node_plan.tmpfs.iter().cloned());
        mounts.extend(node_plan.binds.iter().map(|b| b.target.clone()));
        for path in mounts {
            let path = path.display().to_string();
            // The top mount at the path: its type and whether it is read-only.
            let table = self.in_node(
                node,
                &[
                    "findmnt",
                    "-n",
                    "-o",
                    "FSTYPE,VFS-OPTIONS",
                    "--mountpoint",
                    &path,
                ],
            );
            let top = table.lines().last().unwrap_or_default();
            let mut words = top.split_whitespace();
            let fstype = words.next().unwrap_or_default();
            let read_only = words
                .next()
                .unwrap_or_default()
                .split(',')
                .next()
                .unwrap_or_default();
            // A bind shows the very file or folder of the host.
            let identity = self.in_node(node, &["stat", "-L", "-c", "%d:%i", &path]);
            let identity = match fstype {
                "tmpfs" | "proc" | "sysfs" => String::new(),
                _ => format!(" {identity}"),
            };
            facts.insert(
                format!("mount {path}"),
                format!("{fstype} {read_only}{identity}"),
            );
        }
        facts
    }

    /// The STP state of every bridge port (`forwarding` once usable).
    fn port_states(&self, plan: &Plan) -> BTreeMap<String, String> {
        let mut states = BTreeMap::new();
        for node in plan.nodes.iter().filter(|n| n.kind == NodeKind::Bridge) {
            for link in self
                .ip_json(&node.name, &["-d", "link", "show"])
                .as_array()
                .expect("links")
            {
                let state = &link["linkinfo"]["info_slave_data"]["state"];
                if !state.is_null() {
                    states.insert(
                        format!("{}:{}", node.name, link["ifname"]),
                        state.to_string(),
                    );
                }
            }
        }
        states
    }

    /// Which of the lab's own addresses each node reaches with one ping.
    fn reachability(&self, plan: &Plan) -> BTreeMap<String, bool> {
        let mut targets: Vec<(usize, String)> = Vec::new();
        for end in plan.links.iter().flat_map(|l| &l.endpoints) {
            if let Place::Node(id) = end.place {
                targets.extend(end.addresses.iter().map(|a| (id, a.addr().to_string())));
            }
        }
        let mut reached = BTreeMap::new();
        for (from, node) in plan.nodes.iter().enumerate() {
            if node.kind == NodeKind::Bridge {
                continue;
            }
            for (to, address) in &targets {
                if *to == from {
                    continue;
                }
                let netns = &self.nodes[&node.name].1;
                let ok = Command::new("ip")
                    .args([
                        "netns", "exec", netns, "ping", "-c", "1", "-W", "3", "-t", "255", address,
                    ])
                    .output()
                    .expect("ping")
                    .status
                    .success();
                reached.insert(format!("{} -> {address}", node.name), ok);
            }
        }
        reached
    }
}

/// Brings `yaml` up both ways, compares the two node by node, removes both
/// and checks that nothing of either is left.
fn compare(
    tag: &str,
    yaml: &str,
    files: &[(&str, &str)],
    fixed_macs: &[(&str, &str)],
    reads: &[(&str, &str)],
) {
    let lab = TestLab::new(tag, yaml);
    for (path, contents) in files {
        lab.write(path, contents);
    }
    let plan = Plan::from_topology(&nslab::topology::load(&lab.file).expect("topology"));
    lab.up();
    let other = unique_lab(&format!("{tag}sh"));
    let script = ScriptLab::up(lab.file(), &lab.dir, other.clone());
    let holders: Vec<i32> = plan.nodes.iter().map(|n| script.pid(&n.name)).collect();

    let sides = [Side::of_nslab(&lab), Side::of_script(&script, &plan)];
    // Read first, before the kernel's link-state worker (up to a second
    // late) could make up for a port brought up in the wrong order.
    let [a, b] = [&sides[0], &sides[1]].map(|s| s.port_states(&plan));
    assert_eq!(
        a, b,
        "bridge port states right after up: nslab (left) and script (right) differ"
    );
    for node in &plan.nodes {
        let [a, b] = [&sides[0], &sides[1]].map(|s| s.facts(&plan, &node.name, fixed_macs));
        assert!(
            a.contains_key("link lo") && a.contains_key("mount /proc"),
            "{a:#?}"
        );
        assert_eq!(
            a, b,
            "node {}: {} (left) and {} (right) differ",
            node.name, sides[0].what, sides[1].what
        );
    }
    for (node, path) in reads {
        let [a, b] = [&sides[0], &sides[1]].map(|s| s.in_node(node, &["cat", path]));
        assert!(!a.starts_with("failed"), "{node}:{path}: {a}");
        assert_eq!(a, b, "{node}:{path}");
    }
    let [a, b] = [&sides[0], &sides[1]].map(|s| s.reachability(&plan));
    assert!(
        a.values().any(|ok| *ok),
        "nslab's lab reaches nothing: {a:?}"
    );
    assert_eq!(a, b, "reachability: nslab (left) and script (right) differ");

    // The script's own `down` removes exactly its lab.
    let (code, out, err) = script.sh(&["down"]);
    assert_eq!(code, 0, "down failed:\n{out}\n{err}");
    assert!(out.contains(&format!("lab {other}: removed")), "{out}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let alive = || {
        holders
            .iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                    !s.rsplit(')')
                        .next()
                        .unwrap_or_default()
                        .trim_start()
                        .starts_with('Z')
                })
            })
            .count()
    };
    while alive() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(alive(), 0, "holders of {other} still alive");
    assert_eq!(leftovers_of(&other), Vec::<String>::new());
    assert!(!script.record().exists());
    // nslab's lab is untouched by it.
    assert_eq!(Side::of_nslab(&lab).nodes.len(), plan.nodes.len());
    drop(script);
    drop(lab);
}

#[test]
fn chain3_by_hand_matches_nslab() {
    if !can_build_labs("chain3_by_hand_matches_nslab") {
        return;
    }
    let yaml = std::fs::read_to_string(topologies().join("chain3.yml")).expect("chain3.yml");
    let hosts = std::fs::read_to_string(topologies().join("files/h2-hosts")).expect("h2-hosts");
    compare(
        "chain3",
        &yaml.replace("name: chain3", "name: LAB"),
        // Under the test's folder in /tmp: hidden in h2 by its own tmpfs.
        &[("files/h2-hosts", &hosts)],
        &[],
        &[("h2", "/tmp/state"), ("h2", "/etc/hosts")],
    );
}

#[test]
fn teaching_walk_through_by_hand_matches_nslab() {
    if !can_build_labs("teaching_walk_through_by_hand_matches_nslab") {
        return;
    }
    // The lab of topologies/teaching/README.md, whose step 8 runs this.
    let dir = topologies().join("teaching");
    let yaml = std::fs::read_to_string(dir.join("namespaces.yml")).expect("namespaces.yml");
    let greeting =
        std::fs::read_to_string(dir.join("files/greeting.txt")).expect("files/greeting.txt");
    compare(
        "teach",
        &yaml.replace("name: teaching", "name: LAB"),
        &[("files/greeting.txt", &greeting)],
        &[],
        &[
            ("bob", "/run/greeting.txt"),
            ("alice", "/proc/sys/kernel/hostname"),
        ],
    );
}

#[test]
fn bridge_lan_by_hand_matches_nslab() {
    if !can_build_labs("bridge_lan_by_hand_matches_nslab") {
        return;
    }
    let yaml =
        std::fs::read_to_string(topologies().join("bridge-lan.yml")).expect("bridge-lan.yml");
    compare(
        "blan",
        &yaml.replace("name: bridge-lan", "name: LAB"),
        &[],
        &[],
        &[],
    );
}

#[test]
fn odd_names_late_sysctls_and_binds_by_hand_match_nslab() {
    if !can_build_labs("odd_names_late_sysctls_and_binds_by_hand_match_nslab") {
        return;
    }
    compare(
        "odd",
        r#"
name: LAB
topology:
  defaults:
    sysctls: {net.ipv4.ip_forward: 1}
  nodes:
    a:
      hostname: alpha
      sysctls: {net.ipv4.conf.eth0.rp_filter: 2, net.ipv4.ip_default_ttl: 99}
      routes: ["10.9.0.0/16 dev eth0 metric 50", "10.8.0.0/16 via 10.0.0.2 metric 7"]
      binds: ["files/motd:/etc/motd:ro", "files/dir:/run/deep/dir", "files/motd:/tmp/m"]
      tmpfs: [/tmp, /run, /var/tmp]
      env: {GREETING: "hello 'world'", X: "$y"}
      exec: ["echo \"$GREETING $X\" > /tmp/g", "cat /run/deep/dir/f > /tmp/f2"]
    b-c:
      routes: ["default via 10.0.0.1"]
    b_c:
      routes: ["default via fd00::1"]
    br: {kind: bridge}
  links:
    - endpoints: ["a:eth0", "b-c:eth0"]
      ipv4: [10.0.0.1/24, 10.0.0.2/24]
      mac: ["02:00:00:00:00:0a", null]
      mtu: 1400
    - endpoints: ["a:e$x", "br:p1"]
      ipv4: [10.1.0.1/24, null]
      ipv6: ["fd00::1/64", null]
    - endpoints: ["b_c:dev", "br:help"]
      ipv6: ["fd00::2/64", null]
"#,
        &[
            ("files/motd", "from the host\n"),
            ("files/dir/f", "inside\n"),
        ],
        &[("a", "eth0")],
        &[
            ("a", "/tmp/g"),
            ("a", "/tmp/f2"),
            ("a", "/etc/motd"),
            ("a", "/tmp/m"),
        ],
    );
}

#[test]
fn rate_impairments_by_hand_match_nslab() {
    if !can_build_labs("rate_impairments_by_hand_match_nslab") {
        return;
    }
    // Rates only: netem (delay, loss...) needs sch_netem, which some
    // kernels lack; the script's netem lines are checked by the unit tests.
    compare(
        "rate",
        r#"
name: LAB
topology:
  nodes:
    a: {}
    b: {}
  links:
    - endpoints: ["a:eth0", "b:eth0"]
      ipv4: [10.0.0.1/24, 10.0.0.2/24]
      impair: {rate: 10mbit}
    - endpoints: ["a:eth1", "b:eth1"]
      ipv4: [10.0.1.1/24, 10.0.1.2/24]
      mtu: 9000
      impair: [{rate: 200mbit}, null]
"#,
        &[],
        &[],
        &[],
    );
}

/// True when the kernel has sch_netem: tc adds a netem root qdisc to the
/// loopback of a throwaway net namespace.
fn kernel_has_netem() -> bool {
    Command::new("unshare")
        .args(["-n", "tc", "qdisc", "add", "dev", "lo", "root", "netem"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn netem_impairments_by_hand_match_nslab() {
    let test = "netem_impairments_by_hand_match_nslab";
    if !can_build_labs(test) {
        return;
    }
    if !kernel_has_netem() {
        // The script's netem lines are checked against tc's bytes by the
        // unit tests (kernel::netlink::qdisc).
        common::skipped(format_args!(
            "{test}: kernel has no sch_netem (tc cannot add a netem qdisc)"
        ));
        return;
    }
    // netem with a tbf child (handles, queue length, bucket), and netem
    // alone with a queue sized for 1 Gbit/s over 100 ms.
    compare(
        "netem",
        r#"
name: LAB
topology:
  nodes:
    a: {}
    b: {}
  links:
    - endpoints: ["a:eth0", "b:eth0"]
      ipv4: [10.0.0.1/24, 10.0.0.2/24]
      impair: [{delay: 20ms, jitter: 5ms, loss: 1%, corrupt: 0.1%, duplicate: 0.1%, rate: 10mbit}, {delay: 100ms}]
"#,
        &[],
        &[],
        &[],
    );
}

#[test]
fn user_namespaced_nodes_by_hand_match_nslab() {
    if !can_build_labs("user_namespaced_nodes_by_hand_match_nslab") {
        return;
    }
    compare(
        "uns",
        r#"
name: LAB
topology:
  defaults:
    userns: true
    sysctls: {net.ipv4.ip_forward: 1}
  nodes:
    a:
      routes: ["default via 10.0.0.2"]
      exec: ["id -u > /tmp/uid"]
    r: {}
    b:
      userns: false
      routes: ["default via 10.0.1.1"]
  links:
    - endpoints: [a:eth0, r:eth0]
      ipv4: [10.0.0.1/24, 10.0.0.2/24]
    - endpoints: [r:eth1, b:eth0]
      ipv4: [10.0.1.1/24, 10.0.1.2/24]
"#,
        &[],
        &[],
        &[("a", "/tmp/uid"), ("a", "/proc/self/uid_map")],
    );
}
