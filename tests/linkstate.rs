//! Link state, run as root on real labs: `nslab link down|up|flap`,
//! `state: down` in a topology, the Rust API's `link_down`/`link_up`, and
//! `inspect`'s operstate, each checked by reading the kernel back (`ip -j
//! link` in the node's namespace) and by pinging across.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{KillOnDrop, TestLab, can_build_labs, nslab, run};
use nslab::spec::Topology;

/// h1 — r1 — h2, IPv4 and IPv6, default routes on the hosts through r1.
/// `STATE` is replaced by the first link's `state:` line (or nothing).
const ROUTED: &str = r#"
name: LAB
topology:
  nodes:
    h1: {routes: ["default via 10.61.1.1", "default via fd61:1::1"]}
    r1: {sysctls: {net.ipv4.ip_forward: 1, net.ipv6.conf.all.forwarding: 1}}
    h2: {routes: ["default via 10.61.2.1", "default via fd61:2::1"]}
  links:
    - endpoints: ["h1:eth0", "r1:eth0"]
      ipv4: [10.61.1.2/24, 10.61.1.1/24]
      ipv6: ["fd61:1::2/64", "fd61:1::1/64"]
      STATE
    - endpoints: ["r1:eth1", "h2:eth0"]
      ipv4: [10.61.2.1/24, 10.61.2.2/24]
      ipv6: ["fd61:2::1/64", "fd61:2::2/64"]
"#;

fn routed(tag: &str, state: &str) -> TestLab {
    TestLab::new(tag, &ROUTED.replace("STATE", state))
}

/// An interface as the kernel has it: (administratively up, has a
/// carrier, operstate), from `ip -j link` in the node's namespace.
fn link_of(lab: &str, node: &str, iface: &str) -> (bool, bool, String) {
    let out = std::process::Command::new("ip")
        .args(["-n", &format!("{lab}-{node}"), "-j", "link", "show", iface])
        .output()
        .expect("run ip");
    assert!(out.status.success(), "ip link show {iface} in {lab}-{node}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j is JSON");
    let link = &json[0];
    let flags: Vec<&str> = link["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    (
        flags.contains(&"UP"),
        !flags.contains(&"NO-CARRIER"),
        link["operstate"].as_str().unwrap_or("").to_string(),
    )
}

/// `inspect --json`'s interface `iface` of `node`.
fn inspected(lab: &TestLab, node: &str, iface: &str) -> serde_json::Value {
    let json = lab.inspect_json();
    let nodes = json[0]["nodes"].as_array().expect("nodes").clone();
    let node = nodes.iter().find(|n| n["name"] == node).expect("node");
    node["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .find(|i| i["name"] == iface)
        .expect("interface")
        .clone()
}

fn ping_fails(lab: &TestLab, node: &str, address: &str) {
    let (code, out, _) = lab.exec(node, &["ping", "-c", "1", "-W", "1", address]);
    assert_ne!(code, 0, "{node} -> {address} should fail:\n{out}");
}

/// Both families across r1, so routes through the interface count.
fn pings_across(lab: &TestLab) {
    lab.assert_ping("h1", "10.61.2.2");
    lab.assert_ping("h1", "fd61:2::2");
}

#[test]
fn link_down_and_up() {
    if !can_build_labs("link_down_and_up") {
        return;
    }
    let lab = routed("lsdown", "");
    lab.up();
    let target = format!("{}/h1:eth0", lab.name);
    pings_across(&lab);

    let started = Instant::now();
    let (code, out, err) = run(&["link", "down", &target]);
    let took = started.elapsed();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{target}: down\n"));
    eprintln!("nslab link down (whole process): {took:?}");
    assert!(!link_of(&lab.name, "h1", "eth0").0, "h1:eth0 down");
    let (up, carrier, operstate) = link_of(&lab.name, "r1", "eth0");
    assert!(up && !carrier, "r1:eth0 is up without a carrier");
    // Which of the two depends on the kernel's view of a veth's lower link.
    assert!(
        ["DOWN", "LOWERLAYERDOWN"].contains(&operstate.as_str()),
        "{operstate}"
    );
    let r1 = inspected(&lab, "r1", "eth0");
    assert_eq!(r1["up"], true);
    assert_eq!(r1["operstate"], operstate.to_lowercase());
    let h1 = inspected(&lab, "h1", "eth0");
    assert_eq!(h1["up"], false);
    assert_eq!(h1["operstate"], "down");
    let (_, text, _) = run(&["inspect", &lab.name]);
    assert!(
        text.contains("no carrier, mtu 1500, peer h1:eth0"),
        "{text}"
    );
    ping_fails(&lab, "h1", "10.61.2.2");
    ping_fails(&lab, "h1", "10.61.1.1");

    // Up again: carrier back, and the IPv6 address and default routes the
    // kernel dropped with the down are back too.
    let (code, out, err) = run(&["link", "up", &target]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{target}: up\n"));
    assert!(link_of(&lab.name, "h1", "eth0").0);
    let (up, carrier, _) = link_of(&lab.name, "r1", "eth0");
    assert!(up && carrier, "r1:eth0 has its carrier back");
    assert_eq!(inspected(&lab, "r1", "eth0")["operstate"], "up");
    pings_across(&lab);

    // Twice the same state is no error.
    let (code, _, err) = run(&["link", "up", &target]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn link_flap() {
    if !can_build_labs("link_flap") {
        return;
    }
    let lab = routed("lsflap", "");
    lab.up();
    let target = format!("{}/h1:eth0", lab.name);
    let started = Instant::now();
    let flap = nslab()
        .args(["link", "flap", &target, "--down", "300ms", "--up", "300ms"])
        .args(["--count", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn flap");
    let mut flap = KillOnDrop(flap);
    // r1's carrier, polled: each change is recorded once.
    let mut carrier = true;
    let mut changes = Vec::new();
    while flap.try_wait().expect("poll flap").is_none() {
        let now = link_of(&lab.name, "r1", "eth0").1;
        if now != carrier {
            changes.push((now, started.elapsed()));
            carrier = now;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "flap hangs");
        std::thread::sleep(Duration::from_millis(10));
    }
    let total = started.elapsed();
    // The last change, made just before flap exited.
    if link_of(&lab.name, "r1", "eth0").1 != carrier {
        changes.push((!carrier, total));
    }
    let mut output = String::new();
    std::io::Read::read_to_string(flap.stdout.as_mut().expect("stdout"), &mut output)
        .expect("read");
    assert!(flap.wait().expect("wait").success(), "{output}");
    let states: Vec<bool> = changes.iter().map(|(c, _)| *c).collect();
    assert_eq!(states, [false, true, false, true], "{changes:?}\n{output}");
    // Down 300 ms, up 300 ms, down 300 ms: 900 ms and a process start.
    assert!(
        total >= Duration::from_millis(850) && total < Duration::from_millis(2500),
        "{total:?}"
    );
    let down_for = changes[1].1 - changes[0].1;
    assert!(
        down_for >= Duration::from_millis(250) && down_for < Duration::from_millis(600),
        "down for {down_for:?}"
    );
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 4, "{output}");
    for (line, state) in lines.iter().zip(["down", "up", "down", "up"]) {
        assert!(line.ends_with(&format!("{target}: {state}")), "{line}");
        assert!(line.contains("Z +"), "a timestamp: {line}");
    }
    assert!(link_of(&lab.name, "h1", "eth0").0);
    pings_across(&lab);

    // Interrupted while down: the link is left up.
    let flap = nslab()
        .args(["link", "flap", &target, "--down", "10s", "--up", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flap");
    let mut flap = KillOnDrop(flap);
    let waited = Instant::now();
    while link_of(&lab.name, "h1", "eth0").0 {
        assert!(waited.elapsed() < Duration::from_secs(5), "never went down");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = nix::unistd::Pid::from_raw(flap.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = flap.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    assert!(waited.elapsed() < Duration::from_secs(3), "stopped at once");
    assert!(link_of(&lab.name, "h1", "eth0").0, "left up");
    assert!(link_of(&lab.name, "r1", "eth0").1, "carrier back");
    pings_across(&lab);
}

#[test]
fn state_down_in_the_topology() {
    if !can_build_labs("state_down_in_the_topology") {
        return;
    }
    let lab = routed("lsstate", "state: [down, null]");
    let started = Instant::now();
    lab.up();
    let took = started.elapsed();
    // Not waited for: `up` waits up to 5 s for links to run.
    assert!(took < Duration::from_secs(3), "up took {took:?}");
    assert!(!link_of(&lab.name, "h1", "eth0").0);
    let (up, carrier, _) = link_of(&lab.name, "r1", "eth0");
    assert!(up && !carrier);
    let (_, text, _) = run(&["inspect", &lab.name]);
    assert!(text.contains("down, mtu 1500, peer r1:eth0"), "{text}");
    ping_fails(&lab, "h1", "10.61.2.2");
    // The other link runs.
    lab.assert_ping("h2", "10.61.2.1");

    let (code, _, err) = run(&["link", "up", &format!("{}/h1:eth0", lab.name)]);
    assert_eq!(code, 0, "{err}");
    pings_across(&lab);
}

#[test]
fn bad_targets_exit_2_naming_the_unknown_part() {
    if !can_build_labs("bad_targets_exit_2_naming_the_unknown_part") {
        return;
    }
    let lab = routed("lsbad", "");
    lab.up();
    let name = &lab.name;
    let cases = [
        (format!("{name}-gone/h1:eth0"), "no lab"),
        (format!("{name}/h9:eth0"), "has no node h9"),
        (
            format!("{name}/h1:eth9"),
            "has no interface eth9 (it has: eth0)",
        ),
        (format!("{name}/h1"), "say which interface"),
    ];
    for (target, says) in &cases {
        for verb in ["down", "up"] {
            let (code, _, err) = run(&["link", verb, target]);
            assert_eq!(code, 2, "link {verb} {target}: {err}");
            assert!(err.contains(says), "link {verb} {target}: {err}");
        }
    }
    let target = format!("{name}/h1:eth0");
    for bad in [
        vec!["--down", "0s", "--up", "1s"],
        vec!["--down", "1", "--up", "1s"],
        vec!["--down", "1s", "--up", "1s", "--count", "0"],
        vec!["--up", "1s"],
    ] {
        let mut args = vec!["link", "flap", target.as_str()];
        args.extend(bad.iter().copied());
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    // Nothing was touched.
    assert!(link_of(name, "h1", "eth0").0);

    let sideways = TestLab::new(
        "lsbadyml",
        &ROUTED.replace("STATE", "state: [sideways, up]"),
    );
    let (code, _, err) = run(&["validate", sideways.file()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("topology.links[0].state[0]") && err.contains("sideways"),
        "{err}"
    );
}

/// `Lab::link_down` and `link_up`, blocking and async; the time of one
/// down request (socket, lookup and the request) is logged.
#[test]
fn api_link_down_and_up() {
    if !can_build_labs("api_link_down_and_up") {
        return;
    }
    let topology = Topology::builder("lsapi")
        .node("h1")
        .node("h2")
        .route("h1", "default via fd62::2")
        .link(["h1:eth0", "h2:eth0"])
        .ipv4(["10.62.0.1/24", "10.62.0.2/24"])
        .ipv6(["fd62::1/64", "fd62::2/64"])
        .link(["h1:eth1", "h2:eth1"])
        .state([None, Some("down")])
        .build()
        .expect("valid");
    let lab = common::lab_options().up(&topology).expect("up");
    let name = lab.name().to_string();
    assert!(!link_of(&name, "h2", "eth1").0, "state: down");
    assert!(!link_of(&name, "h1", "eth1").1);

    // Timed: the netns opened through the init's pidfd, a socket there,
    // the link looked up and the one request. Median of 9 down/up turns.
    let mut took = Vec::new();
    for _ in 0..9 {
        let started = Instant::now();
        lab.link_down("h1", "eth0").expect("link_down");
        took.push(started.elapsed());
        lab.link_up("h1", "eth0").expect("link_up");
    }
    took.sort();
    eprintln!("Lab::link_down: median {:?} (of {took:?})", took[4]);
    assert!(took[4] < Duration::from_millis(200), "{took:?}");
    lab.link_down("h1", "eth0").expect("link_down");
    assert!(!link_of(&name, "h1", "eth0").0);
    assert!(!link_of(&name, "h2", "eth0").1, "h2:eth0 lost its carrier");
    let ping = |to: &str| {
        lab.exec("h1", ["ping", "-c", "1", "-W", "1", to])
            .expect("exec")
            .status
    };
    assert_ne!(ping("10.62.0.2"), 0);
    lab.link_up("h1", "eth0").expect("link_up");
    assert!(link_of(&name, "h2", "eth0").1);
    assert_eq!(ping("10.62.0.2"), 0);
    // Its IPv6 address and the route through it are back.
    assert_eq!(ping("fd62::2"), 0);
    let out = lab
        .exec("h1", ["ip", "-6", "route", "show", "default"])
        .expect("exec");
    assert!(
        out.stdout_text().contains("via fd62::2"),
        "{}",
        out.stdout_text()
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        lab.link_up_async("h2", "eth1")
            .await
            .expect("link_up_async");
        assert!(link_of(&name, "h1", "eth1").1, "carrier on h1:eth1");
        lab.link_down_async("h1", "eth1")
            .await
            .expect("link_down_async");
        assert!(!link_of(&name, "h1", "eth1").0);
        assert!(!link_of(&name, "h2", "eth1").1);
    });

    let err = lab.link_down("h1", "eth7").expect_err("no eth7");
    assert!(err.to_string().contains("has no interface eth7"), "{err}");
    let err = lab.link_down("h9", "eth0").expect_err("no h9");
    assert!(err.to_string().contains("h9"), "{err}");
}
