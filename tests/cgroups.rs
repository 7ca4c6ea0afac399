//! cgroup limits per node, run as root on real labs: each node is in its
//! own cgroup `nslab/LAB/NODE` of every hierarchy nslab uses, limits hold,
//! and `down` leaves no cgroup behind and the host's own untouched.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{TestLab, can_build_labs, leftovers_of};

/// The node's cgroup directory in the hierarchy whose root ends in
/// `hierarchy` (`memory`, `cpuacct`, ... on cgroup v1), else in the v2 one.
fn node_dir(lab: &TestLab, node: &str, hierarchy: &str) -> PathBuf {
    let dirs = nslab::test_support::node_cgroups(&lab.name, node);
    let v1 = dirs
        .iter()
        .find(|(v, d)| *v == 1 && d.ancestors().nth(3).is_some_and(|r| r.ends_with(hierarchy)));
    let v2 = dirs.iter().find(|(v, _)| *v == 2);
    v1.or(v2)
        .map(|(_, d)| d.clone())
        .unwrap_or_else(|| panic!("no cgroup of {node} for {hierarchy}: {dirs:?}"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// CPU time used by the node's cgroup so far, in nanoseconds.
fn cpu_used_ns(lab: &TestLab, node: &str) -> u64 {
    let dir = node_dir(lab, node, "cpuacct");
    let v1 = dir.join("cpuacct.usage");
    if v1.exists() {
        return read(&v1).parse().expect("cpuacct.usage");
    }
    let stat = read(&dir.join("cpu.stat"));
    let usec: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .expect("usage_usec")
        .parse()
        .expect("a number");
    usec * 1000
}

/// What nslab could change of the host's own cgroups: the files it reads
/// or writes at each hierarchy's root, and the cgroups of this process.
fn host_cgroups() -> Vec<String> {
    let mut lines = Vec::new();
    for root in nslab::test_support::cgroup_roots() {
        for file in [
            "cgroup.subtree_control",
            "cpuset.cpus",
            "cpuset.mems",
            "memory.limit_in_bytes",
            "cpu.cfs_quota_us",
            "cpu.cfs_period_us",
        ] {
            if let Ok(text) = std::fs::read_to_string(root.join(file)) {
                lines.push(format!("{}/{file}: {}", root.display(), text.trim()));
            }
        }
    }
    lines.push(std::fs::read_to_string("/proc/self/cgroup").expect("own cgroups"));
    lines
}

const LIMITED: &str = r#"
name: LAB
topology:
  nodes:
    hog: {memory: 64M}
    busy: {cpus: 0.2}
    few: {pids: 20}
    sibling: {}
    sw: {kind: bridge}
  links:
    - endpoints: ["hog:eth0", "sw:p1"]
    - endpoints: ["sibling:eth0", "sw:p2"]
"#;

#[test]
fn each_node_has_its_cgroups_and_its_limits_hold() {
    let test = "each_node_has_its_cgroups_and_its_limits_hold";
    if !can_build_labs(test) {
        return;
    }
    let host_before = host_cgroups();
    let lab = TestLab::new("cg", LIMITED);
    lab.up();

    // Every node but the bridge has a cgroup in every hierarchy, and
    // inside the node its cgroups are the root of its cgroup namespace.
    for node in ["hog", "busy", "few", "sibling"] {
        for (version, dir) in nslab::test_support::node_cgroups(&lab.name, node) {
            assert!(dir.is_dir(), "v{version} {}", dir.display());
        }
        let (code, out, err) = lab.exec(node, &["cat", "/proc/self/cgroup"]);
        assert_eq!(code, 0, "{err}");
        for line in out.lines() {
            assert!(line.ends_with(":/"), "{node}: {line}");
        }
    }
    // /sys/fs/cgroup in a node shows the node's own cgroup as the root:
    // its limit, not the host's.
    let (code, out, err) = lab.exec(
        "hog",
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
        ],
    );
    assert_eq!((code, out.trim()), (0, "67108864"), "{err}");
    for (_, dir) in nslab::test_support::node_cgroups(&lab.name, "sw") {
        assert!(!dir.exists(), "a bridge has no cgroup: {}", dir.display());
    }
    let exec_in = |node: &str| {
        let procs = node_dir(&lab, node, "pids").join("cgroup.procs");
        let mut child = common::nslab()
            .args(["exec", &format!("{}/{node}", lab.name), "--", "sleep", "2"])
            .spawn()
            .expect("exec");
        std::thread::sleep(Duration::from_millis(500));
        let inside = read(&procs).lines().count();
        let _ = child.wait();
        inside
    };
    // A command started in the node is in its cgroups: the init, the
    // helper that started the command, and the command.
    assert_eq!(exec_in("sibling"), 3, "exec is not in the node's cgroup");

    // memory: 64M: a 200 MiB hog is OOM-killed inside the node; the
    // sibling and the host go on.
    let (code, _, err) = lab.exec(
        "hog",
        &["python3", "-c", "b = bytearray(200 << 20); print(len(b))"],
    );
    assert_eq!(code, 137, "the hog was not killed (SIGKILL): {err}");
    let memory = node_dir(&lab, "hog", "memory");
    let oom_control = memory.join("memory.oom_control");
    let kills = if oom_control.exists() {
        read(&oom_control)
    } else {
        read(&memory.join("memory.events"))
    };
    let oom_kills: u64 = kills
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .expect("oom_kill count")
        .parse()
        .expect("a number");
    assert!(oom_kills >= 1, "{kills}");
    // `nslab stats` reports the limit.
    let (code, out, err) = common::run(&["stats", &lab.name, "--json"]);
    assert_eq!(code, 0, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).expect("json");
    let limit_of = |node: &str| {
        stats[0]["nodes"]
            .as_array()
            .and_then(|nodes| nodes.iter().find(|n| n["name"] == node))
            .map(|n| n["memory_limit_bytes"].clone())
    };
    assert_eq!(limit_of("hog"), Some(serde_json::json!(64 << 20)), "{out}");
    assert_eq!(limit_of("sibling"), Some(serde_json::Value::Null), "{out}");
    let (code, out, _) = lab.exec("sibling", &["echo", "alive"]);
    assert_eq!((code, out.trim()), (0, "alive"), "the sibling was hurt");
    let (code, out, _) = lab.exec("hog", &["echo", "alive"]);
    assert_eq!((code, out.trim()), (0, "alive"), "the hog's node is gone");

    // cpus: 0.2: a busy loop gets 20% ± 5 points of one CPU over 2 s.
    let mut spin = common::KillOnDrop(
        common::nslab()
            .args([
                "exec",
                &format!("{}/busy", lab.name),
                "--",
                "sh",
                "-c",
                "while :; do :; done",
            ])
            .spawn()
            .expect("spin"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let (t0, used0) = (Instant::now(), cpu_used_ns(&lab, "busy"));
    std::thread::sleep(Duration::from_secs(2));
    let (used1, t1) = (cpu_used_ns(&lab, "busy"), Instant::now());
    spin.0.kill().expect("kill");
    let share = (used1 - used0) as f64 / (t1 - t0).as_nanos() as f64;
    eprintln!(
        "busy loop with cpus: 0.2 used {:.1}% of a CPU",
        share * 100.0
    );
    assert!((0.15..=0.25).contains(&share), "{:.3}", share);
    drop(spin);

    // pids: 20: forks succeed until the node holds 20 processes. In the
    // cgroup: the init, the helper that started python, python, and the
    // children it forked; the next fork fails with EAGAIN.
    let fork_until_refused = [
        "import os, time",
        "n = 0",
        "try:",
        "    while n < 40:",
        "        if os.fork() == 0:",
        "            time.sleep(3)",
        "            os._exit(0)",
        "        n += 1",
        "except OSError as e:",
        "    print(n, e.errno)",
    ]
    .join("\n");
    let (code, out, err) = lab.exec("few", &["python3", "-c", &fork_until_refused]);
    assert_eq!(code, 0, "{err}");
    let figures: Vec<i64> = out
        .split_whitespace()
        .map(|w| w.parse().expect("a number"))
        .collect();
    assert_eq!(
        figures,
        vec![20 - 3, i64::from(libc_eagain())],
        "forks before the 21st process fails: {out}"
    );
    assert_eq!(read(&node_dir(&lab, "few", "pids").join("pids.max")), "20");

    let name = lab.name.clone();
    drop(lab);
    assert_eq!(leftovers_of(&name), Vec::<String>::new());
    for root in nslab::test_support::cgroup_roots() {
        assert!(!root.join("nslab").join(&name).exists());
    }
    assert_eq!(
        host_cgroups(),
        host_before,
        "the host's own cgroups changed"
    );
}

#[test]
fn down_all_finds_a_labs_cgroups_by_name_after_its_state_is_lost() {
    let test = "down_all_finds_a_labs_cgroups_by_name_after_its_state_is_lost";
    if !can_build_labs(test) {
        return;
    }
    let lab = TestLab::new(
        "cgcrash",
        "name: LAB\ntopology:\n  nodes:\n    a: {memory: 32M}\n",
    );
    lab.up();
    // Only the cgroups are left: the init ended, the state and names gone.
    for init in nslab::test_support::find_inits(Some(&lab.name)).expect("inits") {
        let _ = std::process::Command::new("kill")
            .args(["-9", &init.pid.to_string()])
            .status();
    }
    let (code, _, err) = common::run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "{err}");
    // Made again by hand, as a crash between mkdir and the init would leave.
    let dirs = nslab::test_support::node_cgroups(&lab.name, "a");
    for (_, dir) in &dirs {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    let labs = nslab::test_support::find_labs().expect("find labs");
    assert!(labs.contains(&lab.name), "{labs:?}");
    let (code, out, err) = common::run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("{} cgroup(s)", dirs.len())), "{out}");
    assert_eq!(leftovers_of(&lab.name), Vec::<String>::new());
}

fn libc_eagain() -> i32 {
    11 // EAGAIN on Linux
}
