//! Integration tests of the lab engine, run as root: each builds real labs
//! under unique names and removes them, pass or fail.

mod common;

use common::{TestLab, can_build_labs, host_snapshot, leftovers_of, run, run_prefix};

const CHAIN: &str = r#"
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
  links:
    - endpoints: ["h1:eth0", "r1:eth0"]
      ipv4: [10.0.1.2/24, 10.0.1.1/24]
      ipv6: ["2001:db8:1::2/64", "2001:db8:1::1/64"]
    - endpoints: ["r1:eth1", "h2:eth0"]
      ipv4: [10.0.2.1/24, 10.0.2.2/24]
      ipv6: ["2001:db8:2::1/64", "2001:db8:2::2/64"]
      mtu: 9000
"#;

#[test]
fn routed_chain_reaches_across_the_router_over_ipv4_and_ipv6() {
    if !can_build_labs("routed_chain_reaches_across_the_router_over_ipv4_and_ipv6") {
        return;
    }
    let lab = TestLab::new("chain", CHAIN);
    lab.up();
    lab.assert_ping("h1", "10.0.2.2");
    lab.assert_ping("h1", "2001:db8:2::2");
    lab.assert_ping("h2", "10.0.1.2");
    lab.assert_ping("h2", "2001:db8:1::2");
    // The path really goes through r1: the TTL drops by one.
    let (_, out, _) = lab.exec("h1", &["ping", "-c", "1", "-W", "3", "10.0.2.2"]);
    assert!(out.contains("ttl=63"), "expected one hop:\n{out}");
    // Sysctls were written inside the router, not on the host.
    let (_, forward, _) = lab.exec("r1", &["cat", "/proc/sys/net/ipv4/ip_forward"]);
    assert_eq!(forward.trim(), "1");
    // MTU applied to both ends.
    let (_, mtu, _) = lab.exec("h2", &["cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(mtu.trim(), "9000");
}

#[test]
fn links_pass_packets_the_moment_up_returns() {
    if !can_build_labs("links_pass_packets_the_moment_up_returns") {
        return;
    }
    // Several labs in a row, so that link events come in a burst: that is
    // when the kernel puts off making a link operational by up to a second.
    for round in 0..3 {
        let lab = TestLab::new(&format!("ready{round}"), CHAIN);
        lab.up();
        for (node, ifaces) in [("h1", "eth0"), ("r1", "eth0 eth1"), ("h2", "eth0")] {
            for iface in ifaces.split(' ') {
                let path = format!("/sys/class/net/{iface}/operstate");
                let (_, state, _) = lab.exec(node, &["cat", &path]);
                assert_eq!(state.trim(), "up", "{node}:{iface} right after up");
            }
        }
        // One echo each, no retries: the first packets must pass.
        for target in ["10.0.2.2", "2001:db8:2::2"] {
            let (code, out, err) = lab.exec("h1", &["ping", "-c", "1", "-W", "2", target]);
            assert_eq!(code, 0, "first ping to {target}:\n{out}{err}");
        }
    }
}

#[test]
fn bridge_lan_connects_three_hosts() {
    if !can_build_labs("bridge_lan_connects_three_hosts") {
        return;
    }
    let lab = TestLab::new(
        "lan",
        r#"
name: LAB
topology:
  nodes:
    sw: {kind: bridge}
    h1: {}
    h2: {}
    h3: {}
  links:
    - endpoints: ["h1:eth0", "sw:p1"]
      ipv4: [192.168.10.1/24, null]
      ipv6: ["fd00:10::1/64", null]
    - endpoints: ["h2:eth0", "sw:p2"]
      ipv4: [192.168.10.2/24, null]
      ipv6: ["fd00:10::2/64", null]
    - endpoints: ["h3:eth0", "sw:p3"]
      ipv4: [192.168.10.3/24, null]
      ipv6: ["fd00:10::3/64", null]
"#,
    );
    lab.up();
    for (from, to) in [
        ("h1", "192.168.10.2"),
        ("h1", "192.168.10.3"),
        ("h2", "192.168.10.3"),
        ("h3", "fd00:10::1"),
    ] {
        lab.assert_ping(from, to);
    }
    // The bridge lives in its own namespace, with the ports enslaved.
    let json = lab.inspect_json();
    let sw = &json[0]["nodes"][0];
    assert_eq!(sw["kind"], "bridge");
    let ports: Vec<&str> = sw["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .filter(|i| i["bridge"] == "sw")
        .map(|i| i["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ports.len(), 3, "ports of sw: {ports:?}");
}

#[test]
fn every_namespace_of_a_node_is_its_own() {
    if !can_build_labs("every_namespace_of_a_node_is_its_own") {
        return;
    }
    let lab = TestLab::new("ns", CHAIN);
    lab.up();
    let json = lab.inspect_json();
    let nodes = json[0]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3);
    let kinds = ["net", "mnt", "pid", "uts", "ipc", "cgroup"];
    for kind in kinds {
        let host = nslab::test_support::ns_inode(
            std::process::id() as i32,
            *nslab::test_support::ENTER_ORDER
                .iter()
                .find(|k| k.proc_name() == kind)
                .expect("kind"),
        )
        .expect("host namespace");
        let mut seen = vec![host];
        for node in nodes {
            let inode = node["namespaces"][kind]
                .as_u64()
                .unwrap_or_else(|| panic!("{kind} inode of {}", node["name"]));
            assert!(
                !seen.contains(&inode),
                "{kind} namespace of {} is shared",
                node["name"]
            );
            seen.push(inode);
        }
    }
    // inspect agrees with the kernel on names and peers.
    let h1 = &nodes[0];
    assert_eq!(h1["hostname"], "h1");
    assert_eq!(h1["netns"], format!("{}-h1", lab.name));
    let eth0 = h1["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .find(|i| i["name"] == "eth0")
        .expect("eth0");
    assert_eq!(eth0["peer"], "r1:eth0");
    assert!(
        eth0["addresses"]
            .as_array()
            .expect("addresses")
            .iter()
            .any(|a| a == "10.0.1.2/24")
    );
    // `ip netns` interop.
    let out = std::process::Command::new("ip")
        .args([
            "-n",
            &format!("{}-h1", lab.name),
            "-o",
            "link",
            "show",
            "eth0",
        ])
        .output()
        .expect("ip -n");
    assert!(
        out.status.success(),
        "ip -n failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn exec_runs_inside_the_node() {
    if !can_build_labs("exec_runs_inside_the_node") {
        return;
    }
    let lab = TestLab::new(
        "exec",
        r#"
name: LAB
topology:
  nodes:
    a:
      hostname: alpha
      binds: ["./files/motd:/etc/motd:ro", "./files/data:/tmp/data"]
      env: {ROLE: server}
      exec: ["echo ready > /tmp/state"]
    b: {}
  links:
    - endpoints: ["a:eth0", "b:eth0"]
"#,
    );
    lab.write("files/motd", "hello from the bind\n");
    lab.write("files/data/x", "inside a dir\n");
    lab.up();
    let (code, pid1, _) = lab.exec("a", &["cat", "/proc/1/cmdline"]);
    assert_eq!(code, 0);
    assert!(pid1.starts_with("nslab-init"), "PID 1 is {pid1:?}");
    let (_, hostname, _) = lab.exec("a", &["hostname"]);
    assert_eq!(hostname.trim(), "alpha");
    let (_, motd, _) = lab.exec("a", &["cat", "/etc/motd"]);
    assert_eq!(motd, "hello from the bind\n");
    let (_, data, _) = lab.exec("a", &["cat", "/tmp/data/x"]);
    assert_eq!(data, "inside a dir\n");
    // Read-only bind.
    let (code, _, _) = lab.exec("a", &["sh", "-c", "echo x > /etc/motd"]);
    assert_ne!(code, 0, "a read-only bind was writable");
    // The exec step ran in the node, with its own /tmp.
    let (_, state, _) = lab.exec("a", &["cat", "/tmp/state"]);
    assert_eq!(state, "ready\n");
    let (code, _, _) = lab.exec("b", &["test", "-e", "/tmp/state"]);
    assert_ne!(code, 0, "b sees a's /tmp");
    assert!(
        !std::path::Path::new("/tmp/state").exists()
            || std::fs::read_to_string("/tmp/state").unwrap_or_default() != "ready\n"
    );
    // The host does not see the binds.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mountinfo.contains(" /etc/motd "),
        "bind leaked to the host"
    );
    // env and exit codes.
    let (_, role, _) = lab.exec("a", &["sh", "-c", "echo $ROLE"]);
    assert_eq!(role.trim(), "server");
    let (code, _, _) = lab.exec("a", &["sh", "-c", "exit 7"]);
    assert_eq!(code, 7);
    let (code, _, err) = lab.exec("a", &["no-such-command-here"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("command not found"), "{err}");
    // The node's process list holds only its own processes.
    let (_, ps, _) = lab.exec("a", &["sh", "-c", "ls /proc | grep -c '^[0-9]'"]);
    let count: usize = ps.trim().parse().expect("count");
    assert!(count <= 4, "node sees {count} processes");
    // NODE alone resolves when one lab has it; --all prefixes output.
    let (code, out, _) = run(&["exec", "--all", &lab.name, "--", "hostname"]);
    assert_eq!(code, 0);
    assert!(out.contains("a | alpha") && out.contains("b | b"), "{out}");
}

#[test]
fn a_failing_exec_step_rolls_up_back() {
    if !can_build_labs("a_failing_exec_step_rolls_up_back") {
        return;
    }
    let lab = TestLab::new(
        "fail",
        r#"
name: LAB
topology:
  nodes:
    a:
      exec: ["true", "echo broken >&2; exit 3"]
    b: {}
  links:
    - endpoints: ["a:eth0", "b:eth0"]
      ipv4: [10.9.0.1/24, 10.9.0.2/24]
"#,
    );
    let (code, _, err) = run(&["up", lab.file()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("node a"), "{err}");
    assert!(err.contains("exit 3"), "{err}");
    assert!(err.contains("code 3"), "{err}");
    assert!(err.contains("broken"), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(leftovers_of(&lab.name), Vec::<String>::new());
}

#[test]
fn down_leaves_nothing_and_the_host_unchanged() {
    if !can_build_labs("down_leaves_nothing_and_the_host_unchanged") {
        return;
    }
    let before = host_snapshot(&run_prefix());
    {
        let lab = TestLab::new(
            "down",
            r#"
name: LAB
topology:
  nodes:
    a:
      binds: ["./files/f:/tmp/f"]
    b: {}
    sw: {kind: bridge}
  links:
    - endpoints: ["a:eth0", "b:eth0"]
      ipv4: [10.8.0.1/24, 10.8.0.2/24]
    - endpoints: ["a:eth1", "sw:p1"]
    - endpoints: ["host:HOSTIF", "sw:p2"]
      ipv4: [10.7.0.1/30, null]
"#,
        );
        lab.write("files/f", "x");
        lab.up();
        assert!(!leftovers_of(&lab.name).is_empty(), "the lab should exist");
        // The host reaches into the lab through its end.
        let (code, out, err) = run(&["down", lab.file()]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("removed 3 node(s)"), "{out}");
        assert!(out.contains("1 host link(s)"), "{out}");
        assert_eq!(leftovers_of(&lab.name), Vec::<String>::new());
        // A second down succeeds and removes nothing.
        let (code, out, _) = run(&["down", "--lab", &lab.name]);
        assert_eq!(code, 0);
        assert!(out.contains("nothing to remove"), "{out}");
    }
    let after = host_snapshot(&run_prefix());
    let added: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
    let removed: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "host changed:\nadded {added:#?}\nremoved {removed:#?}"
    );
}

#[test]
fn down_works_from_state_when_the_file_is_gone() {
    if !can_build_labs("down_works_from_state_when_the_file_is_gone") {
        return;
    }
    let lab = TestLab::new("nofile", CHAIN);
    lab.up();
    std::fs::remove_file(&lab.file).expect("remove topology");
    let (code, out, err) = run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("removed 3 node(s)"), "{out}");
    assert_eq!(leftovers_of(&lab.name), Vec::<String>::new());
}

#[test]
fn up_refuses_an_existing_lab_unless_reconfigure() {
    if !can_build_labs("up_refuses_an_existing_lab_unless_reconfigure") {
        return;
    }
    let lab = TestLab::new("again", CHAIN);
    lab.up();
    let (code, _, err) = run(&["up", lab.file()]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = run(&["up", "--reconfigure", lab.file()]);
    assert_eq!(code, 0, "{err}");
    lab.assert_ping("h1", "10.0.2.2");
}

#[test]
fn a_host_link_reaches_into_the_lab() {
    if !can_build_labs("a_host_link_reaches_into_the_lab") {
        return;
    }
    let lab = TestLab::new(
        "host",
        r#"
name: LAB
topology:
  nodes:
    a: {}
  links:
    - endpoints: ["host:HOSTIF", "a:eth0"]
      ipv4: [10.6.0.1/30, 10.6.0.2/30]
"#,
    );
    lab.up();
    let out = std::process::Command::new("ping")
        .args(["-c", "1", "-W", "3", "10.6.0.2"])
        .output()
        .expect("ping");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn an_existing_host_interface_name_fails_and_rolls_back() {
    if !can_build_labs("an_existing_host_interface_name_fails_and_rolls_back") {
        return;
    }
    // `lo` always exists on the host: the link must fail without touching it.
    let lab = TestLab::new(
        "clash",
        r#"
name: LAB
topology:
  nodes:
    a: {}
  links:
    - endpoints: ["a:eth0", "host:lo"]
"#,
    );
    let (code, _, err) = run(&["up", lab.file()]);
    if code == 2 {
        // Validation may refuse `lo` outright, which is as good.
        assert!(err.contains("lo"), "{err}");
        return;
    }
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("link a:eth0 <-> host:lo"), "{err}");
    assert!(err.contains("exists"), "{err}");
    assert_eq!(leftovers_of(&lab.name), Vec::<String>::new());
    let lo = std::process::Command::new("ip")
        .args(["link", "show", "lo"])
        .output()
        .expect("ip");
    assert!(
        String::from_utf8_lossy(&lo.stdout).contains("UP"),
        "host lo changed"
    );
}

#[test]
fn two_ups_of_one_lab_never_build_it_twice() {
    if !can_build_labs("two_ups_of_one_lab_never_build_it_twice") {
        return;
    }
    let lab = TestLab::new("race", CHAIN);
    let spawn = || {
        common::nslab()
            .args(["up", lab.file()])
            .output()
            .expect("up")
    };
    let (first, second) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().expect("a"), b.join().expect("b"))
    });
    let codes = [first.status.code(), second.status.code()];
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(1)),
        "exit codes {codes:?}"
    );
    let loser = if first.status.success() {
        second
    } else {
        first
    };
    assert!(String::from_utf8_lossy(&loser.stderr).contains("already exists"));
    lab.assert_ping("h1", "10.0.2.2");
    let json = lab.inspect_json();
    assert_eq!(json[0]["nodes"].as_array().map(Vec::len), Some(3));
}

#[test]
fn exec_finds_a_node_by_its_name_alone_and_runs_a_shell() {
    if !can_build_labs("exec_finds_a_node_by_its_name_alone_and_runs_a_shell") {
        return;
    }
    // A node named like the lab is unique among running labs.
    let lab = TestLab::new("solo", "name: LAB\ntopology:\n  nodes:\n    LAB: {}\n");
    lab.up();
    let (code, out, err) = run(&["exec", &lab.name, "--", "hostname"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), lab.name);
    // No command: an interactive shell on the terminal. `script` gives it one.
    let shell = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("{} exec {}", env!("CARGO_BIN_EXE_nslab"), lab.name),
            "/dev/null",
        ])
        .env("SHELL", "/bin/sh")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(mut shell) = shell else {
        common::skipped(format_args!(
            "interactive part of exec_finds_a_node_by_its_name_alone_and_runs_a_shell: `script` (util-linux) is not installed"
        ));
        return;
    };
    use std::io::Write;
    shell
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"echo in-$(hostname)-pid1=$(cat /proc/1/comm); exit 5\n")
        .expect("type");
    let out = shell.wait_with_output().expect("shell");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("in-{}-pid1=nslab-init", lab.name)),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(5), "{text}");
}

#[test]
fn generated_shapes_come_up_and_route_end_to_end() {
    if !can_build_labs("generated_shapes_come_up_and_route_end_to_end") {
        return;
    }
    use nslab::test_support::{Shape, generate};
    for shape in [
        Shape::Linear(12),
        Shape::Star(6),
        Shape::Tree {
            depth: 2,
            fanout: 3,
        },
        Shape::Grid { rows: 3, cols: 4 },
    ] {
        let yaml = generate(shape, "LAB").expect("generate");
        let lab = TestLab::new("gen", &yaml);
        lab.up();
        let (node, address) = shape.far_ends().expect("ends");
        lab.assert_ping(&node, &address.to_string());
    }
}

#[test]
fn a_bind_target_inside_another_bind_is_never_created_on_the_host() {
    if !can_build_labs("a_bind_target_inside_another_bind_is_never_created_on_the_host") {
        return;
    }
    let lab = TestLab::new(
        "nest",
        r#"
name: LAB
topology:
  nodes:
    a:
      binds: ["./files/dir:/tmp/d", "./files/f:/tmp/d/sub/f"]
"#,
    );
    lab.write("files/dir/keep", "x");
    lab.write("files/f", "y");
    let (code, _, err) = run(&["up", lab.file()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not on the node's tmpfs"), "{err}");
    assert!(
        !lab.dir.join("files/dir/sub").exists(),
        "created a folder on the host"
    );
    assert!(common::leftovers_of(&lab.name).is_empty());
}
