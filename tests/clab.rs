//! containerlab's topology files, run by nslab: the example in
//! `topologies/clab/` comes up and routes, every level of its settings
//! reaches its nodes, its lab directory is made, `--strict` refuses its
//! images, what nslab cannot honour is refused before anything is built,
//! and `down` leaves nothing.

mod common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use common::{TestLab, can_build_labs, run, skipped};

fn example(name: &str) -> String {
    let path = format!("{}/topologies/clab/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).expect("example")
}

/// A containerlab file with a management network of its own, so that
/// tests run side by side: `mgmt:` (or its subnets, when given) set to
/// the next of 172.31.240-255.0/24 and 3fff:ffff:N::/64.
fn own_subnets(yaml: &str) -> String {
    static NEXT: AtomicU8 = AtomicU8::new(240);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let (v4, v6) = (format!("172.31.{n}.0/24"), format!("3fff:ffff:{n}::/64"));
    match yaml.contains("\nmgmt:") {
        true => yaml
            .replace("172.20.30.0/24", &v4)
            .replace("3fff:172:20:30::/64", &v6)
            .replace("172.20.30.", &format!("172.31.{n}.")),
        false => yaml.replacen(
            "name: LAB\n",
            &format!("name: LAB\nmgmt: {{ipv4-subnet: {v4}, ipv6-subnet: \"{v6}\"}}\n"),
            1,
        ),
    }
}

/// The example with its name made this run's, its management network on
/// subnets of its own and its port forwarded from a free one; `TestLab`
/// writes it as `lab.yml`, so it is known as containerlab's by its keys
/// alone. Returns the lab, the host's port and c2's management address.
fn linux_lab() -> (TestLab, u16, String) {
    let port = common::free_port();
    let yaml = own_subnets(
        &example("linux.clab.yml")
            .replace("name: clab-linux", "name: LAB")
            .replace("127.0.0.1:8080:80", &format!("127.0.0.1:{port}:80")),
    );
    let c2 = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("mgmt-ipv4: "))
        .expect("c2's address")
        .to_owned();
    (TestLab::new("clab", &yaml), port, c2)
}

#[test]
fn the_linux_example_comes_up_routes_and_goes() {
    if !can_build_labs("the_linux_example_comes_up_routes_and_goes") {
        return;
    }
    let (lab, port, c2) = linux_lab();
    let (code, out, err) = run(&["up", lab.file()]);
    assert_eq!(code, 0, "up failed:\n{out}\n{err}");
    assert!(
        err.contains("nslab: note: images not used (nslab runs the host's own software): ghcr.io/hellt/network-multitool (r1, c1, c2, c3)"),
        "{err}"
    );
    // Across the router, to the bridge's LAN.
    lab.assert_ping("c1", "192.168.2.30");
    lab.assert_ping("c2", "192.168.1.10");
    // The group's env over the defaults', the group's sysctl over the
    // forwarding a Docker host gives, the kind's bind.
    let (code, out, _) = lab.exec(
        "c2",
        &[
            "sh",
            "-c",
            "echo $ROLE $SITE; cat /proc/sys/net/ipv4/ip_forward; ls -d /run/node",
        ],
    );
    assert_eq!((code, out.as_str()), (0, "client north\n0\n/run/node\n"));
    let (_, out, _) = lab.exec("r1", &["cat", "/proc/sys/net/ipv4/ip_forward"]);
    assert_eq!(out, "1\n");
    // containerlab's MTU unless the link gives one; the MAC of the extended form.
    let (_, out, _) = lab.exec("c1", &["cat", "/sys/class/net/eth1/mtu"]);
    assert_eq!(out, "9500\n");
    let (_, out, _) = lab.exec(
        "r1",
        &[
            "cat",
            "/sys/class/net/eth2/mtu",
            "/sys/class/net/eth2/address",
        ],
    );
    assert_eq!(out, "1500\n02:00:00:00:02:01\n");
    // c1's own resolver, the others the host's.
    let (_, out, _) = lab.exec("c1", &["cat", "/etc/resolv.conf"]);
    assert!(
        out.contains("nameserver 192.0.2.53\nsearch lab.example\n"),
        "{out}"
    );
    let (_, out, _) = lab.exec("c2", &["cat", "/etc/resolv.conf"]);
    assert_eq!(
        out,
        std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
    );
    // The lab directory, a folder per node, bound where the file says.
    let dir = lab.dir.join(format!("clab-{}", lab.name));
    for node in ["r1", "c1", "c2", "c3", "sw"] {
        assert!(dir.join(node).is_dir(), "{}/{node}", dir.display());
    }
    let (code, _, err) = lab.exec("c3", &["touch", "/run/node/from-c3"]);
    assert_eq!(code, 0, "{err}");
    assert!(dir.join("c3/from-c3").exists());
    // The management network: every node by name in every node's
    // /etc/hosts, the host reaching c2, and c2's web server (its `cmd`)
    // answering on the forwarded port of the host.
    let (code, out, err) = lab.exec("c1", &["getent", "ahostsv4", "c2"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("{c2} ")), "{out}");
    let long_name = format!("clab-{}-c2", lab.name);
    let (code, _, err) = lab.exec("c3", &["getent", "hosts", &long_name]);
    assert_eq!(code, 0, "containerlab's name {long_name}: {err}");
    let (_, hosts, _) = lab.exec("r1", &["cat", "/etc/hosts"]);
    for node in ["r1", "c1", "c2", "c3"] {
        assert!(hosts.contains(&format!("\t{node} clab-")), "{hosts}");
    }
    assert!(!hosts.contains("\tsw"), "a bridge has no address: {hosts}");
    let (code, _, err) = lab.exec("c1", &["ping", "-c", "1", "-W", "2", "c3"]);
    assert_eq!(code, 0, "c1 reaches c3 by name over eth0: {err}");
    let ping = std::process::Command::new("ping")
        .args(["-c", "1", "-W", "2", &c2])
        .output()
        .expect("ping");
    assert!(ping.status.success(), "the host reaches c2 at {c2}");
    let page = http_get(port, Duration::from_secs(10));
    assert!(page.starts_with("HTTP/1.0 200"), "{page}");
    let (code, out, err) = run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "down failed:\n{out}\n{err}");
    assert_eq!(lab.leftovers(), Vec::<String>::new());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still answers after down"
    );
    // Like containerlab's, the lab directory holds the user's files: kept.
    assert!(dir.join("c3/from-c3").exists());
}

/// `GET /` on the host's `port`, retried until the server answers or
/// `within` passes; the answer's text.
fn http_get(port: u16, within: Duration) -> String {
    use std::io::{Read, Write};
    let deadline = Instant::now() + within;
    loop {
        let answer = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        });
        match answer {
            Ok(text) if !text.is_empty() => return text,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("port {port} never answered: {other:?}"),
        }
    }
}

#[test]
fn strict_refuses_images_and_nothing_is_built() {
    let (lab, _, _) = linux_lab();
    for verb in [&["validate", "--strict"][..], &["up", "--strict"]] {
        let mut args = verb.to_vec();
        args.push(lab.file());
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{verb:?}: {err}");
        assert!(
            err.contains("images not used") && err.contains("(--strict)"),
            "{err}"
        );
    }
    assert_eq!(lab.leftovers(), Vec::<String>::new());
    assert!(!lab.dir.join(format!("clab-{}", lab.name)).exists());
}

#[test]
fn what_nslab_cannot_honour_is_refused_by_node_and_key() {
    let lab = TestLab::new(
        "clabno",
        "name: LAB\ntopology:\n  nodes:\n    srl: {kind: nokia_srlinux, image: ghcr.io/nokia/srlinux}\n    c1: {kind: linux, ports: [\"8080-8081:80-81\"]}\n  links:\n    - endpoints: [\"srl:e1-1\", \"c1:eth1\"]\n",
    );
    let (code, _, err) = run(&["up", lab.file()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("topology.nodes.srl.kind: kind \"nokia_srlinux\" is a vendor's network OS"),
        "{err}"
    );
    assert!(
        err.contains(
            "topology.nodes.c1.ports[0]: port \"8080-8081:80-81\": ranges of ports are not taken"
        ),
        "{err}"
    );
    assert_eq!(lab.leftovers(), Vec::<String>::new());
    assert!(!lab.dir.join(format!("clab-{}", lab.name)).exists());
}

/// The FRR examples run the host's FRR: OSPF converges and the PCs reach
/// each other across it. `frr-ospf.clab.yml` is written as containerlab's
/// FRR labs are (`kind: linux` nodes of FRR's image, daemons and frr.conf
/// bound into /etc/frr); `frr-kind.clab.yml` is the same lab in nslab's
/// `kind: frr` form.
#[test]
fn the_frr_example_runs_the_hosts_frr_and_converges() {
    frr_example_converges(
        "the_frr_example_runs_the_hosts_frr_and_converges",
        "frr-ospf",
    );
}

#[test]
fn the_kind_frr_example_runs_the_hosts_frr_and_converges() {
    frr_example_converges(
        "the_kind_frr_example_runs_the_hosts_frr_and_converges",
        "frr-kind",
    );
}

fn frr_example_converges(test: &str, name: &str) {
    if !can_build_labs(test) {
        return;
    }
    if !std::path::Path::new("/usr/lib/frr/frrinit.sh").exists() {
        skipped(format_args!(
            "{test}: FRR is not installed (Debian package frr)"
        ));
        return;
    }
    let yaml = own_subnets(
        &example(&format!("frr-ospf/{name}.clab.yml"))
            .replace(&format!("name: {name}"), "name: LAB"),
    );
    let lab = TestLab::new("clabfrr", &yaml);
    for router in ["router1", "router2", "router3"] {
        for file in ["daemons", "frr.conf"] {
            lab.write(
                &format!("{router}/{file}"),
                &example(&format!("frr-ospf/{router}/{file}")),
            );
        }
    }
    lab.up();
    // OSPF converges: every PC reaches every other one across the routers.
    let deadline = Instant::now() + Duration::from_secs(40);
    for (from, to) in [
        ("PC1", "192.168.13.2"),
        ("PC2", "192.168.11.2"),
        ("PC3", "192.168.12.2"),
    ] {
        loop {
            let (code, _, _) = lab.exec(from, &["ping", "-c", "1", "-W", "1", to]);
            if code == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{from} never reached {to}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let (code, out, err) = lab.exec("router1", &["vtysh", "-c", "show ip ospf neighbor"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("Full").count(), 2, "{out}");
    // FRR's files are the node's own: its /run and /var/tmp.
    let (_, out, _) = lab.exec("router2", &["ls", "/run/frr"]);
    assert!(
        out.contains("zebra.pid") && out.contains("ospfd.pid"),
        "{out}"
    );
    let (code, out, err) = run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "down failed:\n{out}\n{err}");
    assert_eq!(lab.leftovers(), Vec::<String>::new());
}

/// containerlab's `user` runs the node's `exec` steps and `cmd` as that
/// user, and `cmd` runs in the background with its output in the node's
/// /run/cmd.log.
#[test]
fn user_and_cmd_run_as_containerlab_runs_them() {
    if !can_build_labs("user_and_cmd_run_as_containerlab_runs_them") {
        return;
    }
    let lab = TestLab::new(
        "clabuser",
        &own_subnets(
            "name: LAB\ntopology:\n  nodes:\n    a:\n      kind: linux\n      user: nobody\n      cmd: echo main process of $$(hostname)\n      exec: [\"id -u > /tmp/who\"]\n",
        ),
    );
    lab.up();
    let (code, out, err) = lab.exec("a", &["cat", "/tmp/who"]);
    assert_eq!((code, out.as_str()), (0, "65534\n"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, out, _) = lab.exec("a", &["cat", "/run/cmd.log"]);
        if out == "main process of a\n" {
            break;
        }
        assert!(Instant::now() < deadline, "/run/cmd.log: {out:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, out, err) = run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "down failed:\n{out}\n{err}");
    assert_eq!(lab.leftovers(), Vec::<String>::new());
}

/// containerlab's start order: `wait-for` (and a stage's) runs a node's
/// `cmd` and `exec` steps after all of those of the nodes it waits for,
/// whatever the file's order, and `startup-delay` holds back that node
/// alone, counted from the first step. Each step writes the time into a
/// folder bound in every node.
#[test]
fn wait_for_and_startup_delay_order_the_nodes_steps() {
    if !can_build_labs("wait_for_and_startup_delay_order_the_nodes_steps") {
        return;
    }
    let lab = TestLab::new(
        "clabord",
        r#"name: LAB
topology:
  kinds:
    linux:
      binds: ["stamps:/run/stamps"]
  nodes:
    b:
      kind: linux
      wait-for: [a]
      cmd: sh -c 'date +%s.%N > /run/stamps/b-cmd'
      exec: ["test -s /run/stamps/a && date +%s.%N > /run/stamps/b"]
    c:
      kind: linux
      stages: {create: {wait-for: [{node: b, stage: create}]}}
      exec: ["test -s /run/stamps/b && date +%s.%N > /run/stamps/c"]
    late:
      kind: linux
      startup-delay: 1
      exec: ["date +%s.%N > /run/stamps/late"]
    a:
      kind: linux
      exec: ["date +%s.%N > /run/stamps/a0", "sleep 0.3", "date +%s.%N > /run/stamps/a"]
    free:
      kind: linux
      exec: ["date +%s.%N > /run/stamps/free"]
"#,
    );
    lab.write("stamps/.keep", "");
    lab.up();
    let stamp = |name: &str| -> f64 {
        let path = lab.dir.join("stamps").join(name);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // `cmd` runs in the background: its stamp may come late.
            if let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(t) = text.trim().parse()
            {
                return t;
            }
            assert!(Instant::now() < deadline, "no stamp {}", path.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let (a0, a, b, c) = (stamp("a0"), stamp("a"), stamp("b"), stamp("c"));
    let (late, free, b_cmd) = (stamp("late"), stamp("free"), stamp("b-cmd"));
    // b after all of a's steps (its own step checks a's file too), its
    // `cmd` (started in the background as its first step) as well; c
    // after b.
    assert!(
        a0 < a && a < b_cmd && a < b && b < c,
        "a0 {a0} a {a} b-cmd {b_cmd} b {b} c {c}"
    );
    // The delay: a second after the first step at least; a node without one
    // went first.
    assert!(late - a0 >= 0.95, "late {late} a0 {a0}");
    assert!(late - a0 < 10.0, "late {late} a0 {a0}");
    assert!(free < late, "free {free} late {late}");
    let (code, out, err) = run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "down failed:\n{out}\n{err}");
    assert_eq!(lab.leftovers(), Vec::<String>::new());
}

/// `up --hosts` lists the nodes in the host's /etc/hosts under their
/// containerlab names; `down` takes them out and leaves the file as it
/// was, byte for byte.
#[test]
fn hosts_names_the_nodes_on_the_host_until_down() {
    if !can_build_labs("hosts_names_the_nodes_on_the_host_until_down") {
        return;
    }
    let before = std::fs::read("/etc/hosts").expect("/etc/hosts");
    let lab = TestLab::new(
        "clabhosts",
        &own_subnets(
            "name: LAB\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n",
        ),
    );
    let (code, out, err) = run(&["up", "--hosts", lab.file()]);
    assert_eq!(code, 0, "up failed:\n{out}\n{err}");
    let hosts = std::fs::read_to_string("/etc/hosts").expect("/etc/hosts");
    let name = format!("clab-{}-b", lab.name);
    assert!(
        hosts.contains(&format!("###### NSLAB-{}-START ######\n", lab.name)),
        "{hosts}"
    );
    let found = std::process::Command::new("getent")
        .args(["ahostsv4", &name])
        .output()
        .expect("getent");
    let address = String::from_utf8_lossy(&found.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(found.status.success(), "the host does not know {name}");
    let ping = std::process::Command::new("ping")
        .args(["-c", "1", "-W", "2", &name])
        .output()
        .expect("ping");
    assert!(
        ping.status.success(),
        "the host reaches {name} at {address}"
    );
    let (code, out, err) = run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "down failed:\n{out}\n{err}");
    assert!(out.contains("its names in /etc/hosts"), "{out}");
    assert_eq!(std::fs::read("/etc/hosts").expect("/etc/hosts"), before);
    assert_eq!(lab.leftovers(), Vec::<String>::new());
}

/// `apply` adds a node to the management network (its eth0, its address,
/// its name in every node's /etc/hosts) and refuses to change the
/// forwarded ports of a running lab.
#[test]
fn apply_adds_a_node_to_the_management_network_and_its_names() {
    if !can_build_labs("apply_adds_a_node_to_the_management_network_and_its_names") {
        return;
    }
    let yaml = own_subnets(
        "name: LAB\ntopology:\n  nodes:\n    a: {kind: linux, ports: [\"127.0.0.1:PORT:80\"]}\n    b: {kind: linux}\n",
    );
    let port = common::free_port();
    let yaml = yaml.replace("PORT", &port.to_string());
    let lab = TestLab::new("clabapply", &yaml);
    lab.up();
    let grown = yaml.replace(
        "    b: {kind: linux}\n",
        "    b: {kind: linux}\n    c: {kind: linux}\n",
    );
    let file = lab.write(
        "grown.clab.yml",
        &grown.replace("name: LAB", &format!("name: {}", lab.name)),
    );
    let (code, out, err) = run(&["apply", file.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "apply failed:\n{out}\n{err}");
    let (code, out, err) = lab.exec("a", &["ping", "-c", "1", "-W", "2", "c"]);
    let (_, hosts, _) = lab.exec("a", &["cat", "/etc/hosts"]);
    assert_eq!(
        code, 0,
        "a reaches c by name over eth0:\n{out}\n{err}\n{hosts}"
    );
    let (_, hosts, _) = lab.exec("c", &["cat", "/etc/hosts"]);
    assert!(
        hosts.contains("\ta clab-") && hosts.contains("\tc clab-"),
        "{hosts}"
    );
    let moved = grown.replace(
        &format!("127.0.0.1:{port}:80"),
        &format!("127.0.0.1:{port}:81"),
    );
    let file = lab.write(
        "moved.clab.yml",
        &moved.replace("name: LAB", &format!("name: {}", lab.name)),
    );
    let (code, _, err) = run(&["apply", file.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("forwarded ports"), "{err}");
    let (code, out, err) = run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "down failed:\n{out}\n{err}");
    assert_eq!(lab.leftovers(), Vec::<String>::new());
}

/// A `kind: bridge` node with `host-bridge: true` is the host's bridge of
/// that name, as containerlab expects one: the lab's ends on it are host
/// ends made its ports, and `down` takes those away and leaves the bridge.
/// Without the bridge, `up` builds nothing.
#[test]
fn host_bridge_joins_the_hosts_own_bridge() {
    if !can_build_labs("host_bridge_joins_the_hosts_own_bridge") {
        return;
    }
    let bridge = common::host_ifname(990);
    let yaml = own_subnets(&format!(
        "name: LAB\ntopology:\n  nodes:\n    a: {{kind: linux, exec: [\"ip addr add 10.78.0.1/24 dev eth1\"]}}\n    b: {{kind: linux, exec: [\"ip addr add 10.78.0.2/24 dev eth1\"]}}\n    {bridge}: {{kind: bridge, host-bridge: true}}\n  links:\n    - endpoints: [\"a:eth1\", \"{bridge}:{}\"]\n    - endpoints: [\"b:eth1\", \"{bridge}:{}\"]\n",
        common::host_ifname(991),
        common::host_ifname(992),
    ));
    let lab = TestLab::new("clabhostbr", &yaml);
    let (code, _, err) = run(&["up", lab.file()]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!("the host has no bridge {bridge}")),
        "{err}"
    );
    assert_eq!(lab.leftovers(), Vec::<String>::new());
    let ip = |args: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .expect("ip");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ip(&["link", "add", &bridge, "type", "bridge"]);
    ip(&["link", "set", &bridge, "up"]);
    let (code, out, err) = run(&["up", lab.file()]);
    let ports = ip(&["-br", "link", "show", "master", &bridge]);
    let pinged = lab
        .exec("a", &["ping", "-c", "1", "-W", "2", "10.78.0.2"])
        .0;
    let (down, _, _) = run(&["down", "--lab", &lab.name]);
    let after = ip(&["-br", "link", "show", "master", &bridge]);
    ip(&["link", "del", &bridge]);
    assert_eq!(code, 0, "up failed:\n{out}\n{err}");
    assert_eq!(ports.lines().count(), 2, "{ports}");
    assert_eq!(pinged, 0, "a reaches b across the host's bridge");
    assert_eq!(down, 0);
    assert_eq!(after, "", "the lab's ports went with it");
    assert_eq!(lab.leftovers(), Vec::<String>::new());
}
