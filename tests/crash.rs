//! Nothing lost, nothing leaked: `up` killed at every step, killed at
//! random moments, failing on its own, racing with `down` and with other
//! labs; state lost. After each, `down` leaves no trace.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::{TestLab, can_build_labs, nslab, run};

/// Every feature: nodes, a bridge, a host link, binds, tmpfs, routes,
/// sysctls, exec, impairments (a rate: netem may be missing), the
/// management network with a forwarded port (subnet and port set by
/// [`with_own_mgmt`]).
const EVERYTHING: &str = r#"
name: LAB
mgmt: {ipv4-subnet: MGMT_SUBNET}
topology:
  defaults:
    sysctls: {net.ipv4.ip_forward: 1}
  nodes:
    h1:
      routes: ["default via 10.0.1.1"]
      binds: ["./files/motd:/etc/motd:ro"]
      tmpfs: [/tmp, /run, /var/tmp]
      exec: ["echo up > /tmp/state"]
      ports: ["127.0.0.1:MGMT_PORT:80"]
    r1:
      routes: ["10.9.0.0/24 via 10.0.2.2"]
    h2:
      routes: ["default via 10.0.2.1"]
    sw: {kind: bridge}
  links:
    - endpoints: ["h1:eth1", "r1:eth1"]
      ipv4: [10.0.1.2/24, 10.0.1.1/24]
      ipv6: ["2001:db8:1::2/64", "2001:db8:1::1/64"]
      impair: [{rate: 10mbit}, null]
    - endpoints: ["r1:eth2", "sw:p1"]
      ipv4: [10.0.2.1/24, null]
    - endpoints: ["h2:eth1", "sw:p2"]
      ipv4: [10.0.2.2/24, null]
    - endpoints: ["host:HOSTIF", "sw:p3"]
      ipv4: [10.0.3.1/30, null]
      impair: [null, {rate: 100mbit}]
"#;

/// `yaml` with a management subnet and a forwarded port of its own, so
/// that labs of it run beside each other.
fn with_own_mgmt(yaml: &str, subnet: &str) -> String {
    let port = common::free_port();
    yaml.replace("MGMT_SUBNET", subnet)
        .replace("MGMT_PORT", &port.to_string())
}

fn everything() -> TestLab {
    // Subnets 172.31.230-234: tests build these labs side by side.
    static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(230);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let lab = TestLab::new(
        "all",
        &with_own_mgmt(EVERYTHING, &format!("172.31.{n}.0/24")),
    );
    lab.write("files/motd", "motd\n");
    lab
}

fn down_and_check(lab: &TestLab, context: &str) {
    let (code, out, err) = run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "{context}: down failed: {out}{err}");
    let left = lab.leftovers();
    assert!(
        left.is_empty(),
        "{context}: leftovers after down: {left:#?}"
    );
}

#[test]
fn up_killed_after_every_step_is_cleaned_by_down() {
    kill_after_every_step(
        "up_killed_after_every_step_is_cleaned_by_down",
        &everything(),
    );
}

/// The same with every node in a user namespace of its own: id blocks are
/// claimed, maps written and binds idmapped along the way.
#[test]
fn up_of_user_namespaced_nodes_killed_after_every_step_is_cleaned_by_down() {
    let yaml = EVERYTHING.replace("  defaults:\n", "  defaults:\n    userns: true\n");
    assert_ne!(yaml, EVERYTHING);
    let yaml = with_own_mgmt(&yaml, "172.31.235.0/24");
    let lab = TestLab::new("allns", &yaml);
    lab.write("files/motd", "motd\n");
    kill_after_every_step(
        "up_of_user_namespaced_nodes_killed_after_every_step_is_cleaned_by_down",
        &lab,
    );
}

/// `up` of `lab` killed (SIGKILL, by the fault switch) after step 1, then
/// after step 2, and so on until it finishes; `down` after each.
fn kill_after_every_step(test: &str, lab: &TestLab) {
    if !cfg!(feature = "fault-injection") {
        // Only a build with the feature reads NSLAB_FAULT_AFTER.
        common::skipped(format_args!(
            "{test}: needs `--features fault-injection` (scripts/test enables it)"
        ));
        return;
    }
    if !can_build_labs(test) {
        return;
    }
    let mut crashes = 0;
    for k in 1..500 {
        let out = nslab()
            .args(["up", lab.file()])
            .env("NSLAB_FAULT_AFTER", k.to_string())
            .output()
            .expect("up");
        if out.status.success() {
            // k went past the last step: the lab came up whole.
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("kernel-changing steps taken"), "{err}");
            down_and_check(lab, "after a full up");
            break;
        }
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGKILL),
            "k={k}: expected death by SIGKILL: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        crashes += 1;
        down_and_check(lab, &format!("killed after step {k}"));
    }
    eprintln!(
        "{test}: up was killed after each of its {crashes} kernel-changing steps; down cleaned every time"
    );
    assert!(
        crashes >= 20,
        "only {crashes} steps: is the fault switch wired?"
    );
}

fn chain(nodes: usize) -> String {
    let mut yaml = String::from("name: LAB\ntopology:\n  nodes:\n");
    for i in 0..nodes {
        yaml.push_str(&format!("    n{i}:\n      binds: [\"./files/x:/tmp/x\"]\n"));
    }
    yaml.push_str("  links:\n");
    for i in 1..nodes {
        yaml.push_str(&format!(
            "    - endpoints: [\"n{}:right\", \"n{i}:left\"]\n      ipv4: [10.{}.{}.1/30, 10.{}.{}.2/30]\n",
            i - 1,
            i / 256,
            i % 256,
            i / 256,
            i % 256
        ));
    }
    yaml
}

#[test]
fn up_killed_at_random_moments_is_cleaned_by_down() {
    if !can_build_labs("up_killed_at_random_moments_is_cleaned_by_down") {
        return;
    }
    let lab = TestLab::new("rand", &chain(30));
    lab.write("files/x", "x");
    // Time one full up to know the window to shoot into.
    let started = Instant::now();
    lab.up();
    let full = started.elapsed();
    down_and_check(&lab, "after a full up");
    let mut seed = u64::from(std::process::id()) | 1;
    for round in 0..8 {
        // xorshift: a different moment each round, reproducible per pid.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = full.mul_f64((seed % 1000) as f64 / 1000.0);
        let mut child = nslab().args(["up", lab.file()]).spawn().expect("up");
        std::thread::sleep(delay);
        // SAFETY: kill(2) of our own child by pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        down_and_check(
            &lab,
            &format!("round {round}: killed after {delay:?} of {full:?}"),
        );
    }
}

#[test]
fn up_failing_on_its_own_rolls_back() {
    if !can_build_labs("up_failing_on_its_own_rolls_back") {
        return;
    }
    let cases = [
        (
            "unreachable gateway",
            "name: LAB\ntopology:\n  nodes:\n    a:\n      routes: [\"10.99.0.0/24 via 10.55.0.1\"]\n    b: {}\n  links:\n    - endpoints: [\"a:eth0\", \"b:eth0\"]\n      ipv4: [10.0.0.1/24, 10.0.0.2/24]\n",
            "route 10.99.0.0/24 via 10.55.0.1",
        ),
        (
            "failing exec",
            "name: LAB\ntopology:\n  nodes:\n    a:\n      exec: [\"exit 9\"]\n",
            "code 9",
        ),
        (
            "host name taken",
            "name: LAB\ntopology:\n  nodes:\n    a: {}\n  links:\n    - endpoints: [\"a:eth0\", \"host:HOSTIF\"]\n    - endpoints: [\"a:eth1\", \"host:HOSTIF\"]\n",
            "",
        ),
    ];
    for (what, yaml, expected) in cases {
        let lab = TestLab::new("self", yaml);
        let (code, _, err) = run(&["up", lab.file()]);
        if what == "host name taken" && code == 2 {
            // Validation already refuses a host interface used twice.
            continue;
        }
        assert_eq!(code, 1, "{what}: {err}");
        assert!(err.contains(expected), "{what}: {err}");
        assert!(err.contains("rolled back"), "{what}: {err}");
        let left = lab.leftovers();
        assert!(left.is_empty(), "{what}: {left:#?}");
    }
}

#[test]
fn a_host_interface_that_exists_is_left_alone() {
    if !can_build_labs("a_host_interface_that_exists_is_left_alone") {
        return;
    }
    // Someone else's interface, made by the first lab; the second lab wants
    // the same host name and must fail without touching it.
    let owner = TestLab::new(
        "own",
        "name: LAB\ntopology:\n  nodes:\n    a: {}\n  links:\n    - endpoints: [\"a:eth0\", \"host:HOSTIF\"]\n",
    );
    owner.up();
    let clash = TestLab::new(
        "clash",
        &format!(
            "name: LAB\ntopology:\n  nodes:\n    a: {{}}\n  links:\n    - endpoints: [\"a:eth0\", \"host:{}\"]\n",
            owner.host_if
        ),
    );
    let (code, _, err) = run(&["up", clash.file()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("exists"), "{err}");
    assert!(common::leftovers_of(&clash.name).is_empty());
    let still = std::process::Command::new("ip")
        .args(["-o", "link", "show", "dev", &owner.host_if])
        .output()
        .expect("ip");
    assert!(
        still.status.success(),
        "the other lab's host interface was removed"
    );
    // And a down of the failed lab does not touch it either.
    let _ = run(&["down", "--lab", &clash.name]);
    let still = std::process::Command::new("ip")
        .args(["-o", "link", "show", "dev", &owner.host_if])
        .output()
        .expect("ip");
    assert!(still.status.success(), "down of another lab removed it");
}

#[test]
fn down_cleans_a_lab_whose_state_was_lost() {
    if !can_build_labs("down_cleans_a_lab_whose_state_was_lost") {
        return;
    }
    let lab = everything();
    lab.up();
    std::fs::remove_dir_all(format!("/run/nslab/{}", lab.name)).expect("remove state");
    let (code, out, err) = run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("removed 5 node(s), 5 netns name(s), 2 host link(s)"),
        "{out}"
    );
    assert!(lab.leftovers().is_empty(), "{:#?}", lab.leftovers());
}

#[test]
fn a_lab_is_found_by_its_marks_alone() {
    if !can_build_labs("a_lab_is_found_by_its_marks_alone") {
        return;
    }
    let lab = everything();
    lab.up();
    std::fs::remove_dir_all(format!("/run/nslab/{}", lab.name)).expect("remove state");
    // Kill every init too: only the netns names and the host link remain,
    // found by the marks on the namespaces' lo and on the host link.
    for init in nslab::test_support::find_inits(Some(&lab.name)).expect("scan") {
        // SAFETY: kill(2) of a node init of this test's lab.
        unsafe { libc::kill(init.pid, libc::SIGKILL) };
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(!lab.leftovers().is_empty());
    // `down --all` would also end other tests' labs: ask what it would do.
    let (code, out, err) = run(&["down", "--all", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l == lab.name), "{out}");
    let (code, out, err) = run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("5 netns name(s), 2 host link(s)"), "{out}");
    assert!(lab.leftovers().is_empty(), "{:#?}", lab.leftovers());
}

/// Starts, as user nobody, a process whose command line looks like a node
/// init's: `nslab-init __init TAG`.
fn spoofed_init(tag: &str) -> std::process::Child {
    let dir = std::env::temp_dir().join(format!("nslab-spoof-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("__init"), "sleep 30\n").expect("script");
    let _ = std::process::Command::new("chmod")
        .args(["-R", "a+rX", dir.to_str().expect("utf-8")])
        .status();
    std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "bash",
            "-c",
        ])
        .arg(format!(
            "cd {} && exec -a nslab-init bash __init '{tag}'",
            dir.display()
        ))
        .spawn()
        .expect("setpriv")
}

#[test]
fn spoofed_inits_are_never_taken_for_nodes() {
    if !can_build_labs("spoofed_inits_are_never_taken_for_nodes") {
        return;
    }
    let fake_lab = common::unique_lab("spoof");
    let mut escaping = spoofed_init("../x");
    let mut lookalike = spoofed_init(&format!("{fake_lab}/n0"));
    std::thread::sleep(Duration::from_millis(200));
    let labs = nslab::test_support::find_labs().expect("find labs");
    assert!(
        !labs.iter().any(|l| l == ".." || l.contains('/')),
        "{labs:?}"
    );
    assert!(
        !labs.contains(&fake_lab),
        "a user's process passed for an init: {labs:?}"
    );
    // Neither `down` nor `exec` treats the look-alike as a node.
    let (code, out, _) = run(&["down", "--lab", &fake_lab]);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to remove"), "{out}");
    assert!(
        lookalike.try_wait().expect("wait").is_none(),
        "down killed a user's process"
    );
    let (code, _, _) = run(&["exec", &format!("{fake_lab}/n0"), "--", "true"]);
    assert_ne!(code, 0);
    let _ = escaping.kill();
    let _ = lookalike.kill();
    let _ = escaping.wait();
    let _ = lookalike.wait();
}

#[test]
fn the_init_refuses_to_run_by_hand() {
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(
                "exec -a nslab-init {} __init lab/node 3>&-",
                env!("CARGO_BIN_EXE_nslab")
            ),
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not started by nslab"));
}

#[test]
fn eight_labs_build_and_fall_side_by_side() {
    if !can_build_labs("eight_labs_build_and_fall_side_by_side") {
        return;
    }
    let labs: Vec<TestLab> = (0..8).map(|_| TestLab::new("par", &chain(6))).collect();
    for lab in &labs {
        lab.write("files/x", "x");
    }
    std::thread::scope(|s| {
        for lab in &labs {
            s.spawn(|| lab.up());
        }
    });
    for lab in &labs {
        lab.assert_ping("n0", "10.0.1.2");
    }
    std::thread::scope(|s| {
        for lab in &labs {
            s.spawn(|| down_and_check(lab, "parallel down"));
        }
    });
}

#[test]
fn down_during_up_is_safe() {
    if !can_build_labs("down_during_up_is_safe") {
        return;
    }
    let lab = TestLab::new("dd", &chain(20));
    lab.write("files/x", "x");
    for delay_ms in [0, 2, 10, 30] {
        let mut up = nslab().args(["up", lab.file()]).spawn().expect("up");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let (code, out, err) = run(&["down", "--lab", &lab.name]);
        let _ = up.wait();
        assert_eq!(code, 0, "{out}{err}");
        // down waited for the lock, so whatever up built is gone, or up
        // came second and its lab is whole: either way one more down clears.
        down_and_check(&lab, &format!("down {delay_ms} ms into up"));
    }
}

#[test]
fn exec_refuses_a_node_that_is_not_running() {
    if !can_build_labs("exec_refuses_a_node_that_is_not_running") {
        return;
    }
    let lab = TestLab::new(
        "dead",
        "name: LAB\ntopology:\n  nodes:\n    a: {}\n    b: {}\n",
    );
    lab.up();
    let init = nslab::test_support::find_inits(Some(&lab.name))
        .expect("scan")
        .into_iter()
        .find(|i| i.node == "a")
        .expect("init of a");
    // SAFETY: kill(2) of this test lab's init.
    unsafe { libc::kill(init.pid, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(100));
    let (code, _, err) = lab.exec("a", &["true"]);
    assert_eq!(code, 1);
    assert!(err.contains("is not running"), "{err}");
    let (code, _, _) = lab.exec("b", &["true"]);
    assert_eq!(code, 0);
    let (_, out, _) = run(&["inspect", &lab.name]);
    assert!(out.contains("degraded"), "{out}");
}

#[test]
fn state_is_for_root_only() {
    if !can_build_labs("state_is_for_root_only") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let lab = TestLab::new("perm", "name: LAB\ntopology:\n  nodes:\n    a: {}\n");
    lab.up();
    let dir = format!("/run/nslab/{}", lab.name);
    for (path, mode) in [
        (dir.clone(), 0o700),
        (format!("{dir}/plan.json"), 0o600),
        (format!("{dir}/journal"), 0o600),
        ("/run/nslab".to_string(), 0o700),
    ] {
        let actual = std::fs::metadata(&path).expect(&path).permissions().mode() & 0o777;
        assert_eq!(actual, mode, "{path} has mode {actual:o}");
    }
    // No temp file is left next to the plan (it is written then renamed).
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["hosts", "journal", "netns-placeholder", "plan.json"]
    );
}

/// r1 -- r2, r1 -- h1.
const APPLY_BASE: &str = r#"
name: LAB
topology:
  nodes:
    r1: {sysctls: {net.ipv4.ip_forward: 1}}
    r2: {routes: ["10.9.0.0/24 via 10.0.0.1"]}
    h1: {routes: ["default via 10.0.1.1"]}
  links:
    - endpoints: ["r1:eth0", "r2:eth0"]
      ipv4: [10.0.0.1/30, 10.0.0.2/30]
    - endpoints: ["h1:eth0", "r1:eth1"]
      ipv4: [10.0.1.2/24, 10.0.1.1/24]
"#;

/// APPLY_BASE with every kind of step: h1 removed; r3 (user-namespaced,
/// with an exec step) added with a link to r2, one to the host and one to
/// a new bridge; r2's route and address changed, r1's sysctl, an
/// impairment set.
const APPLY_NEXT: &str = r#"
name: LAB
topology:
  nodes:
    r1: {sysctls: {net.ipv4.ip_forward: 0}}
    r2: {routes: ["10.9.0.0/24 via 10.0.2.2"]}
    r3: {userns: true, exec: ["echo made > /tmp/made"]}
    sw: {kind: bridge}
  links:
    - endpoints: ["r1:eth0", "r2:eth0"]
      ipv4: [10.0.0.1/30, 10.0.0.2/30]
      ipv6: [null, "2001:db8::2/64"]
      impair: [{rate: 10mbit}, null]
    - endpoints: ["r2:eth1", "r3:eth0"]
      ipv4: [10.0.2.1/24, 10.0.2.2/24]
    - endpoints: ["r3:eth1", "host:HOSTIF"]
      ipv4: [10.0.4.1/24, 10.0.4.2/24]
    - endpoints: ["r3:eth2", "sw:p1"]
"#;

/// The lab is what APPLY_NEXT says.
fn is_next(lab: &TestLab, context: &str) {
    let out = |node: &str, args: &[&str]| {
        let (code, out, err) = lab.exec(node, args);
        assert_eq!(code, 0, "{context}: {node} {args:?}: {err}");
        out
    };
    out("r3", &["ping", "-c1", "-W2", "10.0.2.1"]);
    out("r3", &["ping", "-c1", "-W2", "10.0.4.2"]);
    assert_eq!(out("r3", &["cat", "/tmp/made"]).trim(), "made", "{context}");
    assert!(
        out("r2", &["ip", "route"]).contains("10.9.0.0/24 via 10.0.2.2"),
        "{context}"
    );
    assert_eq!(
        out("r1", &["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
        "0"
    );
    assert!(
        out("r1", &["tc", "qdisc", "show", "dev", "eth0"]).contains("tbf"),
        "{context}"
    );
    assert!(out("sw", &["ip", "-o", "link", "show", "p1"]).contains("master sw"));
    assert!(
        !std::path::Path::new(&format!("/run/netns/{}-h1", lab.name)).exists(),
        "{context}: h1 is still there"
    );
}

#[test]
fn apply_killed_after_every_step_is_cleaned_by_down_or_finished_by_apply() {
    let test = "apply_killed_after_every_step_is_cleaned_by_down_or_finished_by_apply";
    if !cfg!(feature = "fault-injection") {
        common::skipped(format_args!(
            "{test}: needs `--features fault-injection` (scripts/test enables it)"
        ));
        return;
    }
    if !can_build_labs(test) {
        return;
    }
    let lab = TestLab::new("crashapply", APPLY_BASE);
    let next = APPLY_NEXT
        .replace("LAB", &lab.name)
        .replace("HOSTIF", &lab.host_if);
    let next = lab.write("next.yml", &next);
    let mut crashes = 0;
    for k in 1..500 {
        lab.up();
        let out = nslab()
            .arg("apply")
            .arg(&next)
            .env("NSLAB_FAULT_AFTER", k.to_string())
            .output()
            .expect("apply");
        if out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("kernel-changing steps taken"), "{err}");
            is_next(&lab, "after a full apply");
            down_and_check(&lab, "after a full apply");
            break;
        }
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGKILL),
            "k={k}: expected death by SIGKILL: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        crashes += 1;
        if k % 2 == 1 {
            // A second apply finishes the change.
            let (code, out, err) = run(&["apply", next.to_str().expect("utf-8")]);
            let context = format!("apply again after apply was killed after step {k}");
            assert_eq!(code, 0, "{context}: {out}{err}");
            is_next(&lab, &context);
        }
        down_and_check(&lab, &format!("apply killed after step {k}"));
    }
    eprintln!(
        "{test}: apply was killed after each of its {crashes} kernel-changing steps; down, or apply then down, cleaned every time"
    );
    assert!(
        crashes >= 15,
        "only {crashes} steps: is the fault switch wired?"
    );
}
