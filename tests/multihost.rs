//! Tests of multi-host labs (issue 14: one lab spread over several hosts
//! reached over ssh, the links between hosts made as VXLAN), run on
//! simulated hosts on this one machine.
//!
//! What the harness (`tests/common/underlay.rs`) models, and why: a
//! multi-host lab needs several machines that a controller reaches with
//! ssh, each running nslab with state of its own. An nslab node is a full
//! set of namespaces (net, mount, pid, uts, ipc, cgroup) held by its own
//! PID 1, so nslab itself runs inside one. The underlay is a lab of such
//! nodes on a bridge `ul`: a controller `ctl` (10.77.0.10, fd77::10) and
//! hosts `h1`..`hN` (10.77.0.11.., fd77::11..). Each host has
//!
//! - its own network stack and address, on the underlay bridge only, so
//!   traffic between hosts (ssh, and the VXLAN of cross-host links) stays
//!   inside the test's namespaces;
//! - its own `/run` and `/tmp` (tmpfs), so the nslab it runs keeps its own
//!   `/run/nslab` and `/run/netns`, and its labs are invisible to the
//!   machine's nslab and to the other hosts;
//! - its own cgroup tree: a node's cgroup namespace makes its cgroup the
//!   root of every hierarchy it sees, so the parts of one lab (all named
//!   `LAB`, their cgroups under `nslab/LAB`) do not meet, as on separate
//!   machines;
//! - its own `/root` (tmpfs), so an ssh session's shell reads none of the
//!   machine's root dotfiles and writes nothing in its home;
//! - its own sshd, listening on its addresses only, with a host key and the
//!   controller's public key made for this underlay (the machine's
//!   `/root/.ssh` and `/etc/ssh` are left alone); the controller's client
//!   configuration is `Underlay::ssh_command()`, which multi-host nslab
//!   reads from `NSLAB_SSH`.
//!
//! What they share is the machine: its kernel (one set of kernel modules
//! and sysctls outside the net namespaces, so a VXLAN port a host binds is
//! per net namespace, as on real hosts, but a kernel bug is everyone's),
//! its CPUs and memory (timings are not those of separate machines) and
//! every file outside their tmpfs (so each runs this build's nslab binary,
//! at the same path).

mod common;

use std::path::Path;

use common::underlay::{NSLAB, Underlay, text};
use common::{leftovers_of, unique_lab};

/// A lab of two nodes and one veth, for one simulated host.
fn tiny_lab(name: &str) -> String {
    format!(
        "name: {name}\n\
         topology:\n\
         \x20 nodes:\n\
         \x20   a: {{}}\n\
         \x20   b: {{}}\n\
         \x20 links:\n\
         \x20   - endpoints: [\"a:eth0\", \"b:eth0\"]\n\
         \x20     ipv4: [10.0.0.1/24, 10.0.0.2/24]\n\
         \x20     ipv6: [\"2001:db8::1/64\", \"2001:db8::2/64\"]\n"
    )
}

fn assert_ok(out: &std::process::Output, what: &str) {
    assert!(out.status.success(), "{what}:\n{}", text(out));
}

#[test]
fn every_simulated_host_answers_over_ssh_and_runs_nslab() {
    let root_ssh = Path::new("/root/.ssh").exists();
    let Some(ul) = Underlay::start(3) else {
        return;
    };

    // The controller runs the nslab under test, and its commands see the
    // ssh command to use in NSLAB_SSH.
    assert_ok(&ul.ctl(&["--version"]), "nslab --version in ctl");
    let out = ul.in_ctl(&["printenv", "NSLAB_SSH"]);
    assert_ok(&out, "printenv NSLAB_SSH in ctl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        ul.ssh_command()
    );

    // Every host answers ssh from the controller, on both addresses, as
    // itself, and runs the nslab under test.
    let ssh: Vec<String> = ul
        .ssh_command()
        .split_whitespace()
        .map(String::from)
        .collect();
    for i in 1..=ul.hosts() {
        let target = format!("root@{}", ul.host_address(i));
        let mut cmd: Vec<&str> = ssh.iter().map(String::as_str).collect();
        cmd.extend([target.as_str(), NSLAB, "--version"]);
        let out = ul.in_ctl(&cmd);
        assert_ok(&out, &format!("{} from ctl", cmd.join(" ")));
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("nslab "),
            "nslab --version on h{i}: {}",
            text(&out)
        );
        let out = ul.ssh(i, &["hostname"]);
        assert_ok(&out, &format!("ssh h{i} hostname"));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("h{i}"));
        // Its root's home is its own, empty (not the machine's /root).
        let out = ul.ssh(i, &["ls", "-A", "/root"]);
        assert_ok(&out, &format!("ssh h{i} ls -A /root"));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "", "h{i}'s /root");
        let target6 = format!("root@{}", ul.host_address6(i));
        let mut cmd: Vec<&str> = ssh.iter().map(String::as_str).collect();
        cmd.extend([target6.as_str(), "hostname"]);
        let out = ul.in_ctl(&cmd);
        assert_ok(&out, &format!("{} from ctl", cmd.join(" ")));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("h{i}"));
    }

    // A lab of its own on h1, made, used and removed over ssh by the
    // nslab there.
    let tiny = unique_lab("tiny");
    let file = ul.write("tiny.yml", &tiny_lab(&tiny));
    let file = file.to_str().expect("a UTF-8 path");
    let out = ul.ssh(1, &[NSLAB, "up", file]);
    assert_ok(&out, "nslab up on h1 over ssh");
    let target = format!("{tiny}/a");
    for address in ["10.0.0.2", "2001:db8::2"] {
        let out = ul.ssh(
            1,
            &[
                NSLAB, "exec", &target, "--", "ping", "-c", "1", "-W", "3", address,
            ],
        );
        assert_ok(&out, &format!("ping {address} in {tiny} on h1 over ssh"));
    }
    // Its state is h1's alone: not the machine's, not another host's.
    assert_eq!(ul.labs_in("h1"), vec![tiny.clone()]);
    assert!(ul.labs_in("h2").is_empty(), "h2 holds no lab");
    assert!(ul.labs_in("ctl").is_empty(), "ctl holds no lab");
    assert!(
        !Path::new("/run/nslab").join(&tiny).exists(),
        "the machine's /run/nslab has no {tiny}"
    );
    let out = ul.ssh(1, &[NSLAB, "down", "--lab", &tiny]);
    assert_ok(&out, "nslab down on h1 over ssh");
    assert!(ul.labs_in("h1").is_empty(), "h1 holds no lab after down");
    assert_eq!(leftovers_of(&tiny), Vec::<String>::new());

    drop(ul);
    assert_eq!(
        Path::new("/root/.ssh").exists(),
        root_ssh,
        "/root/.ssh is left as it was"
    );
}

#[test]
fn an_underlay_leaves_nothing_behind_even_with_a_lab_left_on_a_host() {
    let Some(ul) = Underlay::start(1) else {
        return;
    };
    let lab = ul.lab().to_string();
    let dir = ul.dir().to_path_buf();
    // A lab that a failed test would leave up on h1.
    let tiny = unique_lab("left");
    let file = ul.write("left.yml", &tiny_lab(&tiny));
    let out = ul.ssh(1, &[NSLAB, "up", file.to_str().expect("a UTF-8 path")]);
    assert_ok(&out, "nslab up on h1 over ssh");
    assert_eq!(ul.labs_in("h1"), vec![tiny.clone()]);

    drop(ul);
    assert_eq!(leftovers_of(&tiny), Vec::<String>::new());
    assert_eq!(leftovers_of(&lab), Vec::<String>::new());
    assert!(!dir.exists(), "{} is removed", dir.display());
    let sshd = std::process::Command::new("pgrep")
        .args(["-f", &format!("sshd -f {}", dir.display())])
        .output()
        .expect("run pgrep");
    assert!(
        sshd.stdout.is_empty(),
        "no sshd of the underlay runs: {}",
        String::from_utf8_lossy(&sshd.stdout)
    );
}

/// The `hosts:` block of a spread lab over the underlay's hosts `which`.
fn hosts_block(ul: &Underlay, which: &[usize]) -> String {
    let mut text = String::from("hosts:\n");
    for &i in which {
        let address = ul.host_address(i);
        text.push_str(&format!(
            "  h{i}: {{ssh: \"root@{address}\", underlay: {address}, nslab: {NSLAB}}}\n"
        ));
    }
    text
}

/// A routed chain r1..rN: r1 and rN are hosts with a default route, the
/// routers between forward, each link a /30 and a /64 of its own.
fn chain(name: &str, hosts: &str, n: usize) -> String {
    let mut nodes = String::new();
    let mut links = String::new();
    for i in 1..=n {
        nodes.push_str(&format!("    r{i}:\n      sysctls: {{net.ipv4.ip_forward: 1, net.ipv6.conf.all.forwarding: 1}}\n"));
        let mut routes = Vec::new();
        if i > 1 {
            routes.push(format!("10.9.0.0/16 via 10.9.{}.1", i - 1));
            routes.push(format!("\"2001:db8:9::/48 via 2001:db8:9:{:x}::1\"", i - 1));
        }
        // Toward rN (the further /30s and /64s).
        if i < n {
            for j in (i + 1)..n {
                routes.push(format!("10.9.{j}.0/30 via 10.9.{i}.2"));
                routes.push(format!("\"2001:db8:9:{j:x}::/64 via 2001:db8:9:{i:x}::2\""));
            }
        }
        if i > 1 {
            // Back toward r1: more specific than the /16 for the earlier links.
            for j in 1..(i - 1) {
                routes.push(format!("10.9.{j}.0/30 via 10.9.{}.1", i - 1));
                routes.push(format!(
                    "\"2001:db8:9:{j:x}::/64 via 2001:db8:9:{:x}::1\"",
                    i - 1
                ));
            }
            routes.retain(|r| !r.starts_with("10.9.0.0/16") && !r.contains("2001:db8:9::/48"));
        }
        nodes.push_str(&format!("      routes: [{}]\n", routes.join(", ")));
    }
    for i in 1..n {
        links.push_str(&format!(
            "    - endpoints: [r{i}:eth1, r{}:eth0]\n      ipv4: [10.9.{i}.1/30, 10.9.{i}.2/30]\n      ipv6: [\"2001:db8:9:{i:x}::1/64\", \"2001:db8:9:{i:x}::2/64\"]\n",
            i + 1
        ));
    }
    format!(
        "name: {name}\n{hosts}topology:\n  nodes:\n{nodes}  links:\n{links}expect:\n  - {{from: r1, to: r{n}}}\n  - {{from: r{n}, to: r1}}\n"
    )
}

/// Labs and cgroups nslab left on host `i` of the underlay for `lab`.
fn left_on_host(ul: &Underlay, i: usize, lab: &str) -> Vec<String> {
    let mut left: Vec<String> = ul
        .labs_in(&format!("h{i}"))
        .into_iter()
        .filter(|l| l == lab)
        .collect();
    let out = ul.in_host(
        i,
        &[
            "sh",
            "-c",
            &format!("ls -d /sys/fs/cgroup/*/nslab/{lab} 2>/dev/null || true"),
        ],
    );
    left.extend(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| format!("cgroup {l}")),
    );
    left
}

fn assert_nothing_left(ul: &Underlay, hosts: &[usize], lab: &str) {
    for &i in hosts {
        // The kernel ends a part's nodes with their inits; give it a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut left = left_on_host(ul, i, lab);
        while !left.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
            left = left_on_host(ul, i, lab);
        }
        assert_eq!(left, Vec::<String>::new(), "what {lab} left on h{i}");
    }
    let out = ul.in_ctl(&["ls", "-A", "/run/nslab/.spread"]);
    let records = String::from_utf8_lossy(&out.stdout);
    assert!(
        !records.contains(lab),
        "the controller's record of {lab} is gone: {records}"
    );
}

#[test]
fn a_routed_chain_over_three_hosts_passes_ipv4_and_ipv6_end_to_end() {
    let Some(ul) = Underlay::start(3) else {
        return;
    };
    // The shipped example, its hosts made the underlay's.
    let lab = unique_lab("spread");
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/topologies/spread/chain.yml"
    ))
    .expect("topologies/spread/chain.yml");
    let mut yaml = example.replace("name: spread-chain", &format!("name: {lab}"));
    for (host, i) in [("a", 1), ("b", 2), ("c", 3)] {
        let address = ul.host_address(i);
        yaml = yaml.replace(
            &format!("  {host}: {{ssh: root@192.0.2.1{i}, underlay: 192.0.2.1{i}}}"),
            &format!("  {host}: {{ssh: root@{address}, underlay: {address}, nslab: {NSLAB}}}"),
        );
    }
    assert!(!yaml.contains("192.0.2."), "every host replaced:\n{yaml}");
    let file = ul.write("chain.yml", &yaml);
    let file = file.to_str().expect("a UTF-8 path");
    let out = ul.ctl(&["up", file]);
    assert_ok(&out, "up of the spread chain from ctl");
    let said = String::from_utf8_lossy(&out.stdout);
    eprint!("$ nslab up {file}\n{said}");
    assert!(
        said.contains("over 3 host(s): 6 node(s), 2 cross-host link(s)"),
        "{said}"
    );
    // Two nodes on each host, each part its own lab there.
    for i in 1..=3 {
        assert_eq!(
            ul.labs_in(&format!("h{i}")),
            vec![lab.clone()],
            "h{i}'s part"
        );
    }

    // End to end, across both tunnels, both families; by name too.
    let r1 = format!("{lab}/r1");
    for address in ["10.9.5.2", "2001:db8:9:5::2", "r6"] {
        let out = ul.ctl(&["exec", &r1, "--", "ping", "-c", "2", "-W", "3", address]);
        assert_ok(&out, &format!("ping {address} from r1 (h1) to r6 (h3)"));
    }
    let out = ul.ctl(&["exec", &format!("{lab}/r6"), "--", "hostname"]);
    assert_ok(&out, "exec on r6 through its host");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "r6");

    // inspect: one lab, every node with its host, tunnels marked.
    let out = ul.ctl(&["inspect", &lab]);
    assert_ok(&out, "inspect of the spread lab");
    let view = String::from_utf8_lossy(&out.stdout);
    for (node, host) in [("r1", "a"), ("r3", "b"), ("r6", "c")] {
        assert!(
            view.lines()
                .any(|l| l.trim_start().starts_with(node) && l.contains(&format!("host {host}"))),
            "{node} on {host} in:\n{view}"
        );
    }
    assert!(
        view.contains("mtu 1450, vxlan"),
        "a tunnel end's MTU:\n{view}"
    );
    assert!(
        view.contains("tunnel r2:eth1 (a) <-> r3:eth0 (b) vni"),
        "{view}"
    );

    // capture on r6 (h3) while r1 (h1) pings it: the file is written on
    // the controller, the packets read on r6's host.
    let script = format!(
        "{NSLAB} capture {lab}/r6:eth0 -c 8 --duration 20 -w /tmp/r6.pcap & capture=$!; sleep 1.5; \
         {NSLAB} exec {lab}/r1 -- ping -c 6 -i 0.2 10.9.5.2 >/dev/null; wait $capture && tcpdump -nr /tmp/r6.pcap"
    );
    let out = ul.in_ctl(&["sh", "-c", &script]);
    assert_ok(
        &out,
        "capture on r6 through its host, written on the controller",
    );
    let packets = String::from_utf8_lossy(&out.stdout);
    assert!(
        packets.contains("ICMP echo request") || packets.contains("ICMP6"),
        "{packets}"
    );

    // inspect of every lab lists it on the controller.
    let out = ul.ctl(&["inspect"]);
    assert_ok(&out, "inspect of every lab");
    let all = String::from_utf8_lossy(&out.stdout);
    assert!(
        all.contains(&format!("lab {lab} (spread over hosts: a, b, c;")),
        "{all}"
    );

    // check: the expectations, each probed from its node's host.
    let out = ul.ctl(&["check", &lab]);
    assert_ok(&out, "check across hosts");

    // stats and events fan out to every host, each line or object with
    // its host; `link` runs on the node's host.
    let out = ul.ctl(&["stats", &lab, "--json"]);
    assert_ok(&out, "stats of the spread lab");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for host in ["a", "b", "c"] {
        assert!(stats["hosts"][host].is_array(), "{host}'s stats in {stats}");
    }
    let script = format!(
        "{NSLAB} events {lab} --json > /tmp/events & events=$!; sleep 2; \
         {NSLAB} link down {lab}/r3:eth1 && sleep 1 && {NSLAB} link up {lab}/r3:eth1 && sleep 1; \
         kill $events; wait $events; cat /tmp/events"
    );
    let out = ul.in_ctl(&["sh", "-c", &script]);
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(
        events
            .lines()
            .any(|l| l.contains("\"host\":\"b\"") && l.contains("r3")),
        "an event of r3 on host b:\n{}",
        text(&out)
    );

    // A scenario, added by apply (no node or link changes), played from
    // the controller: a link of r3 (b) down, the check fails; up again, a
    // router on c restarted, the check passes.
    let with_scenario = format!(
        "{yaml}scenario:\n  - {{at: 0.5s, link: \"r3:eth1\", state: down}}\n  - {{at: 1s, check: true}}\n  - {{at: 1.5s, link: \"r3:eth1\", state: up}}\n  - {{at: 2s, node: r5, action: restart}}\n  - {{at: 3s, check: true}}\n"
    );
    let file = ul.write("chain.yml", &with_scenario);
    let file = file.to_str().expect("a UTF-8 path");
    let out = ul.ctl(&["apply", file]);
    assert_ok(&out, "apply of the scenario");
    let out = ul.ctl(&["run-scenario", &lab, "--timeout", "1"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the first check fails:\n{}",
        text(&out)
    );
    let lines: Vec<&str> = said.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("[1] check: FAILED")),
        "{said}"
    );
    assert!(
        lines.iter().any(|l| l.contains("[3] node r5 restart")),
        "{said}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("[4] check: passed on every host")),
        "{said}"
    );
    assert!(
        said.contains("5 step(s)") && said.contains("2 check(s), 1 failed: FAIL"),
        "{said}"
    );

    let out = ul.ctl(&["down", "--lab", &lab]);
    assert_ok(&out, "down of the spread lab");
    assert_nothing_left(&ul, &[1, 2, 3], &lab);
}

#[test]
fn a_bridge_lan_spans_two_hosts() {
    let Some(ul) = Underlay::start(2) else {
        return;
    };
    let lab = unique_lab("lan");
    let yaml = format!(
        "name: {lab}\n{}topology:\n  nodes:\n    sw: {{kind: bridge, host: h1}}\n    a: {{}}\n    b: {{host: h2}}\n  links:\n    - endpoints: [a:eth0, sw:p1]\n      ipv4: [10.8.0.1/24, null]\n      ipv6: [\"2001:db8:8::1/64\", null]\n    - endpoints: [b:eth0, sw:p2]\n      ipv4: [10.8.0.2/24, null]\n      ipv6: [\"2001:db8:8::2/64\", null]\n",
        hosts_block(&ul, &[1, 2])
    );
    let file = ul.write("lan.yml", &yaml);
    let out = ul.ctl(&["up", file.to_str().expect("a UTF-8 path")]);
    assert_ok(&out, "up of the LAN over two hosts");
    for address in ["10.8.0.1", "2001:db8:8::1"] {
        let out = ul.ctl(&[
            "exec",
            &format!("{lab}/b"),
            "--",
            "ping",
            "-c",
            "2",
            "-W",
            "3",
            address,
        ]);
        assert_ok(
            &out,
            &format!("ping {address} from b (h2) over the bridge on h1"),
        );
    }
    // exec --all: every host runs it on its nodes.
    let out = ul.ctl(&["exec", "--all", &lab, "--", "hostname"]);
    assert_ok(&out, "exec --all over both hosts");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("host h1:") && said.contains("host h2:"),
        "{said}"
    );
    for node in ["a", "b"] {
        assert!(
            said.lines()
                .any(|l| l.trim_end().ends_with(&format!(" {node}"))),
            "{node} in:\n{said}"
        );
    }

    // apply: a node added on h2 with a port on the LAN (a new tunnel);
    // the running nodes keep their inits.
    let pids = || {
        let out = ul.ctl(&["inspect", &lab, "--json"]);
        assert_ok(&out, "inspect --json");
        let views: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        (views[0]["nodes"].as_array().expect("nodes").iter())
            .map(|n| {
                (
                    n["name"].as_str().unwrap_or("").to_owned(),
                    n["pid"].as_i64(),
                )
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let before = pids();
    let edited = yaml.replace(
        "    b: {host: h2}\n",
        "    b: {host: h2}\n    c: {host: h2}\n",
    ) + "    - endpoints: [c:eth0, sw:p3]\n      ipv4: [10.8.0.3/24, null]\n";
    let file = ul.write("lan.yml", &edited);
    let file = file.to_str().expect("a UTF-8 path");
    let out = ul.ctl(&["apply", file, "--dry-run"]);
    assert_ok(&out, "apply --dry-run");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("+ node c") && said.contains("host h2:"),
        "{said}"
    );
    let out = ul.ctl(&["apply", file]);
    assert_ok(&out, "apply of an added node");
    let out = ul.ctl(&[
        "exec",
        &format!("{lab}/c"),
        "--",
        "ping",
        "-c",
        "2",
        "-W",
        "3",
        "10.8.0.1",
    ]);
    assert_ok(&out, "ping from the added c (h2) over the bridge on h1");
    let after = pids();
    for node in ["sw", "a", "b"] {
        assert_eq!(before[node], after[node], "{node} kept its init");
    }
    assert!(after["c"].is_some(), "c runs: {after:?}");
    let out = ul.ctl(&["apply", file, "--dry-run"]);
    assert_ok(&out, "apply --dry-run of the applied file");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no change"),
        "{}",
        text(&out)
    );

    // The tunnel end on h1 is a port of the bridge.
    let out = ul.ctl(&["inspect", &lab]);
    assert_ok(&out, "inspect");
    let view = String::from_utf8_lossy(&out.stdout);
    assert!(
        view.lines().any(|l| l.trim_start().starts_with("p2")
            && l.contains("bridge sw")
            && l.contains("vxlan")),
        "sw:p2 is a VXLAN port of sw:\n{view}"
    );
    let out = ul.ctl(&["down", "--lab", &lab]);
    assert_ok(&out, "down");
    assert_nothing_left(&ul, &[1, 2], &lab);
}

#[test]
fn a_controller_killed_midway_leaves_a_lab_that_down_removes_from_every_host() {
    let Some(ul) = Underlay::start(3) else {
        return;
    };
    let lab = unique_lab("killed");
    let file = ul.write("killed.yml", &chain(&lab, &hosts_block(&ul, &[1, 2, 3]), 6));
    // The controller kills itself (SIGKILL) once the first part is up:
    // the others are being built, or not yet.
    let out = ul.in_ctl(&[
        "env",
        "NSLAB_FAULT_AFTER=1",
        NSLAB,
        "up",
        file.to_str().expect("a UTF-8 path"),
    ]);
    assert!(
        !out.status.success(),
        "the controller was killed:\n{}",
        text(&out)
    );
    let out = ul.ctl(&["down", "--lab", &lab]);
    assert_ok(&out, "down after the killed controller");
    assert_nothing_left(&ul, &[1, 2, 3], &lab);
}

#[test]
fn a_host_that_cannot_be_reached_is_named_and_nothing_is_built() {
    let Some(ul) = Underlay::start(2) else {
        return;
    };
    let lab = unique_lab("unreach");
    // h3 is on the underlay's subnet, but nothing answers there.
    let hosts = format!(
        "{}  h3: {{ssh: \"root@10.77.0.99\", underlay: 10.77.0.99, nslab: {NSLAB}}}\n",
        hosts_block(&ul, &[1, 2])
    );
    let file = ul.write("unreach.yml", &chain(&lab, &hosts, 6));
    let out = ul.ctl(&["up", file.to_str().expect("a UTF-8 path")]);
    assert!(!out.status.success(), "up must fail:\n{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("host h3 (root@10.77.0.99) cannot be used"),
        "{said}"
    );
    assert_nothing_left(&ul, &[1, 2], &lab);
    // A host that runs a lab of that name already (its own, one host's)
    // is named, and its lab left alone.
    let own = ul.write("own.yml", &tiny_lab(&lab));
    assert_ok(
        &ul.ssh(1, &[NSLAB, "up", own.to_str().expect("a UTF-8 path")]),
        "h1's own lab",
    );
    let hosts = hosts_block(&ul, &[1, 2]);
    let file = ul.write("taken.yml", &chain(&lab, &hosts, 4));
    let out = ul.ctl(&["up", file.to_str().expect("a UTF-8 path")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is up already on host h1"),
        "{}",
        text(&out)
    );
    assert_eq!(ul.labs_in("h1"), vec![lab.clone()], "h1's own lab stays");
    assert_ok(
        &ul.ssh(1, &[NSLAB, "down", "--lab", &lab]),
        "down of h1's own lab",
    );
    assert_nothing_left(&ul, &[1, 2], &lab);

    // A host without nslab at the path given is named too.
    let hosts = hosts_block(&ul, &[1, 2]).replace(
        &format!("nslab: {NSLAB}}}\n  h2"),
        "nslab: /nowhere/nslab}\n  h2",
    );
    let file = ul.write("nonslab.yml", &chain(&lab, &hosts, 4));
    let out = ul.ctl(&["up", file.to_str().expect("a UTF-8 path")]);
    assert!(!out.status.success(), "up must fail:\n{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("host h1") && said.contains("no nslab at \"/nowhere/nslab\""),
        "{said}"
    );
    assert_nothing_left(&ul, &[1, 2], &lab);
}
