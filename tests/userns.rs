//! A user namespace per node (`userns: true`): the node's root is an
//! unprivileged host id, root only over the node's own namespaces; binds
//! are idmapped; ids never overlap between nodes; `down` leaves no user
//! namespace, mount or id block behind.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use common::{TestLab, USERNS_RANGE, can_build_labs, run};

/// a and b have user namespaces of their own (from `defaults`), c has not.
const MIXED: &str = r#"
name: LAB
topology:
  defaults:
    userns: true
  nodes:
    a:
      binds: ["./conf:/run/conf:ro", "./data:/run/data"]
    b: {}
    c: {userns: false}
  links:
    - endpoints: [a:eth0, b:eth0]
      ipv4: [10.0.0.1/24, 10.0.0.2/24]
    - endpoints: [b:eth1, c:eth0]
      ipv4: [10.0.1.1/24, 10.0.1.2/24]
"#;

fn mixed() -> TestLab {
    let lab = TestLab::new("uns", MIXED);
    lab.write("conf/daemon.conf", "setting 1\n");
    std::fs::create_dir_all(lab.dir.join("data")).expect("data dir");
    lab
}

/// `sh -c SCRIPT` in a node; (code, stdout, stderr).
fn sh(lab: &TestLab, node: &str, script: &str) -> (i32, String, String) {
    lab.exec(node, &["sh", "-c", script])
}

/// The uid_map of each running node, from `inspect --json`.
fn uid_maps(lab: &TestLab) -> BTreeMap<String, Option<String>> {
    let json = lab.inspect_json();
    json[0]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().expect("name").to_string(),
                n["uid_map"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// The first host uid of a `0 START COUNT` map.
fn start_of(map: &str) -> u32 {
    let fields: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{map}");
    assert_eq!(fields[0], "0", "{map}");
    assert_eq!(fields[2], "65536", "{map}");
    fields[1].parse().expect("start")
}

/// User namespaces (by inode) of live processes whose root is host uid
/// `start`; zombies are left out (they hold no namespace but their
/// credentials, until this host's slow reaper gets to them).
fn user_namespaces_mapped_to(starts: &[u32]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if state
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        {
            continue;
        }
        let Ok(map) = std::fs::read_to_string(format!("/proc/{pid}/uid_map")) else {
            continue;
        };
        let outside = map.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        if outside.is_some_and(|o: u32| starts.contains(&o)) {
            let ns = std::fs::metadata(format!("/proc/{pid}/ns/user")).map_or(0, |m| m.ino());
            found.push(format!("pid {pid} in user:[{ns}] mapped to {map:?}"));
        }
    }
    found
}

/// Polls until `check` returns nothing (or `within` passes); its last
/// answer.
fn settle(within: Duration, check: impl Fn() -> Vec<String>) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let left = check();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_user_namespaced_node_is_root_over_its_own_namespaces_only() {
    if !can_build_labs("a_user_namespaced_node_is_root_over_its_own_namespaces_only") {
        return;
    }
    let lab = mixed();
    lab.up();

    // Root inside, an unprivileged block of the range outside.
    let maps = uid_maps(&lab);
    let a = start_of(maps["a"].as_deref().expect("a has a map"));
    let b = start_of(maps["b"].as_deref().expect("b has a map"));
    assert_eq!(maps["c"], None, "c shares the host's user namespace");
    for start in [a, b] {
        assert!(
            (USERNS_RANGE.0..USERNS_RANGE.0 + USERNS_RANGE.1).contains(&start)
                && (start - USERNS_RANGE.0) % 65536 == 0,
            "{start} is not a block of the range"
        );
    }
    assert_ne!(a, b, "two nodes share ids");
    let (code, out, err) = sh(
        &lab,
        "a",
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map",
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["0", "0"], "{out}");
    assert_eq!(start_of(lines[2]), a);
    assert_eq!(start_of(lines[3]), a, "gid map");
    let (_, out, _) = sh(&lab, "c", "cat /proc/self/uid_map");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "4294967295"]
    );

    // The host's files are not the node root's.
    let (code, _, err) = sh(&lab, "a", "echo x > /etc/nslab-userns-test");
    assert_ne!(code, 0, "node root wrote a host root-owned file");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(!std::path::Path::new("/etc/nslab-userns-test").exists());
    let (code, _, _) = sh(&lab, "c", "test -w /etc");
    assert_eq!(code, 0, "a node without userns is host root (as before)");

    // Nor the host's devices, mounts or kernel: mounting the host's root
    // block device fails, and so do the knobs that load modules.
    let device = host_root_device();
    let (code, _, err) = sh(&lab, "a", &format!("mount -t ext4 -o ro {device} /mnt"));
    assert_ne!(code, 0, "mounted the host's {device}");
    assert!(err.contains("permission denied"), "{err}");
    let (code, _, _) = sh(&lab, "a", "echo /bin/true > /proc/sys/kernel/modprobe");
    assert_ne!(code, 0, "node root set the host's modprobe helper");
    let finit_module = "my $s = \"\"; syscall(313, -1, $s, 0); print $! + 0";
    let (_, host_errno, _) = common::output_of(
        std::process::Command::new("perl")
            .args(["-e", finit_module])
            .output()
            .expect("perl"),
    );
    if host_errno == libc::ENOSYS.to_string() {
        common::skipped(format_args!(
            "a_user_namespaced_node_is_root_over_its_own_namespaces_only: loading a module (this kernel has no module loading at all, so finit_module fails everywhere; the modprobe knob was checked instead)"
        ));
    } else {
        let (_, errno, _) = lab.exec("a", &["perl", "-e", finit_module]);
        assert_eq!(errno, libc::EPERM.to_string(), "finit_module in the node");
    }

    // Its own namespaces are its root's: addresses, links, ping.
    let (code, _, err) = sh(
        &lab,
        "a",
        "ip addr add 10.9.9.9/32 dev lo && ip link set eth0 mtu 1400",
    );
    assert_eq!(code, 0, "{err}");
    lab.assert_ping("a", "10.0.0.2");
    let (code, _, err) = sh(&lab, "b", "ping -c 1 -W 2 10.0.1.2");
    assert_eq!(code, 0, "b to c (no userns): {err}");

    // Its tmpfs belongs to its root: root inside, the block's first id on
    // the host.
    let (_, out, _) = sh(&lab, "a", "stat -c %u:%g /tmp /run; touch /tmp/mine");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["0:0", "0:0"]);
    let init = lab.inspect_json()[0]["nodes"][0]["pid"]
        .as_i64()
        .expect("pid of a");
    let mine = std::fs::metadata(format!("/proc/{init}/root/tmp/mine")).expect("a's file");
    assert_eq!((mine.uid(), mine.gid()), (a, a));

    // Binds are idmapped: host root's files are the node root's, read-only
    // where asked, and what the node writes is host root's on the host.
    let (code, out, err) = sh(
        &lab,
        "a",
        "stat -c %u:%g /run/conf/daemon.conf; cat /run/conf/daemon.conf; echo new > /run/data/out",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0:0\nsetting 1\n");
    let written = std::fs::metadata(lab.dir.join("data/out")).expect("written through the bind");
    assert_eq!((written.uid(), written.gid()), (0, 0));
    let (code, _, err) = sh(&lab, "a", "echo x > /run/conf/daemon.conf");
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    let mountinfo = std::fs::read_to_string(format!("/proc/{init}/mountinfo")).expect("mountinfo");
    assert!(
        mountinfo
            .lines()
            .any(|l| l.contains(" /run/conf ") && l.contains("idmapped")),
        "no idmapped mount on /run/conf:\n{mountinfo}"
    );

    // `inspect` shows the maps, and lsns lists the nodes' user namespaces.
    let (code, out, _) = run(&["inspect", &lab.name]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!(
            "user namespace: uid map 0 {a} 65536, gid map 0 {a} 65536"
        )),
        "{out}"
    );
    let lsns = std::process::Command::new("lsns")
        .args(["-t", "user", "-n", "-o", "NS,PID"])
        .output()
        .expect("lsns");
    let lsns = String::from_utf8_lossy(&lsns.stdout);
    let json = lab.inspect_json();
    for node in json[0]["nodes"].as_array().expect("nodes").iter().take(2) {
        let ns = node["namespaces"]["user"]
            .as_u64()
            .expect("user ns of a userns node");
        assert!(
            lsns.lines()
                .any(|l| l.trim_start().starts_with(&ns.to_string())),
            "{ns} not in lsns:\n{lsns}"
        );
    }
    assert!(json[0]["nodes"][2]["namespaces"].get("user").is_none());

    // down leaves no user namespace, no idmapped mount, no id block.
    let (code, out, err) = run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 id block(s)"), "{out}");
    let left = settle(Duration::from_secs(10), || {
        user_namespaces_mapped_to(&[a, b])
    });
    assert!(left.is_empty(), "user namespaces left: {left:#?}");
    assert!(common::id_claims_of(&lab.name).is_empty());
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!host_mounts.contains("idmapped"), "{host_mounts}");
    assert!(lab.leftovers().is_empty(), "{:?}", lab.leftovers());
}

/// The block device of the host's `/`, from mountinfo.
fn host_root_device() -> String {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    mountinfo
        .lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            (left.split(' ').nth(4)? == "/").then(|| right.split(' ').nth(1).map(str::to_string))?
        })
        .filter(|d| d.starts_with("/dev/"))
        .unwrap_or_else(|| "/dev/vda".into())
}

#[test]
fn nodes_of_labs_side_by_side_never_share_ids() {
    if !can_build_labs("nodes_of_labs_side_by_side_never_share_ids") {
        return;
    }
    const MANY: &str = "name: LAB\ntopology:\n  defaults: {userns: true}\n  nodes: {n1: {}, n2: {}, n3: {}, n4: {}}\n";
    let labs: Vec<TestLab> = (0..3).map(|_| TestLab::new("ids", MANY)).collect();
    std::thread::scope(|scope| {
        for lab in &labs {
            scope.spawn(|| lab.up());
        }
    });
    let mut starts = Vec::new();
    for lab in &labs {
        for (node, map) in uid_maps(lab) {
            let start = start_of(
                map.as_deref()
                    .unwrap_or_else(|| panic!("{node} has no map")),
            );
            starts.push(start);
        }
    }
    starts.sort();
    assert_eq!(starts.len(), 12);
    for pair in starts.windows(2) {
        assert!(pair[1] - pair[0] >= 65536, "blocks overlap: {starts:?}");
    }
}

#[test]
fn a_bind_that_cannot_be_idmapped_fails_before_anything_is_built() {
    if !can_build_labs("a_bind_that_cannot_be_idmapped_fails_before_anything_is_built") {
        return;
    }
    // sysfs cannot be idmapped.
    let lab = TestLab::new(
        "noidmap",
        "name: LAB\ntopology:\n  nodes:\n    a: {userns: true, binds: [\"/sys/kernel:/run/k:ro\"]}\n",
    );
    let (code, out, err) = run(&["up", lab.file()]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("bind source /sys/kernel"), "{err}");
    assert!(err.contains("does not support idmapped mounts"), "{err}");
    assert!(!err.contains("rolled back"), "it was built first: {err}");
    assert!(lab.leftovers().is_empty(), "{:?}", lab.leftovers());

    // A range holding a real user's id is refused the same way.
    let lab = TestLab::new(
        "badrange",
        "name: LAB\ntopology:\n  nodes:\n    a: {userns: true}\n",
    );
    let (code, _, err) = common::output_of(
        common::nslab()
            .args(["up", lab.file()])
            .env("NSLAB_USERNS_RANGE", "0:65536")
            .output()
            .expect("nslab"),
    );
    assert_ne!(code, 0);
    assert!(err.contains("the id range 0:65536"), "{err}");
    assert!(!err.contains("rolled back"), "it was built first: {err}");
    assert!(lab.leftovers().is_empty(), "{:?}", lab.leftovers());
}

#[test]
fn exec_check_impair_stats_and_capture_work_in_a_user_namespaced_node() {
    if !can_build_labs("exec_check_impair_stats_and_capture_work_in_a_user_namespaced_node") {
        return;
    }
    let topology = nslab::Topology::builder("unsverbs")
        .node("a")
        .node("b")
        .userns("a", true)
        .userns("b", true)
        .memory("a", "64M")
        .link(["a:eth0", "b:eth0"])
        .ipv4(["10.0.0.1/24", "10.0.0.2/24"])
        .exec("b", "sleep 60 > /dev/null 2>&1 &")
        .expect_reach("a", "b")
        .build()
        .expect("topology");
    let lab = common::lab_options().up(&topology).expect("up");

    // exec, as the node's root in its user namespace.
    let id = lab.exec("a", ["cat", "/proc/self/uid_map"]).expect("exec");
    assert!(id.success());
    assert_eq!(start_of(&id.stdout_text()) % 65536, USERNS_RANGE.0 % 65536);

    // check: the probes reach across.
    let report = lab.check(Duration::from_secs(2)).expect("check");
    assert!(report.passed, "{report:#?}");

    // impair: set, read back, clear.
    let set = lab
        .impair("a", "eth0", [("rate", "10mbit")])
        .expect("impair");
    let nslab::Impairment::Set(plan) = &set else {
        panic!("{set:?}")
    };
    assert_eq!(plan.rate_bits, Some(10_000_000));
    assert_eq!(lab.impairment("a", "eth0").expect("read back"), set);
    assert!(lab.clear_impairment("a", "eth0").expect("clear"));

    // stats: b's exec step left a process running; a's limit is read back.
    let stats = lab.stats().expect("stats");
    let node = |name: &str| stats.nodes.iter().find(|n| n.name == name).expect("node");
    assert_eq!(node("a").memory_limit_bytes, Some(64 << 20));
    assert!(node("b").processes >= Some(2), "{:?}", node("b"));

    // capture: packets of a's eth0 while it pings b.
    let capture = common::nslab()
        .args(["capture", &format!("{}/a:eth0", lab.name()), "--count", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("capture");
    let capture = common::KillOnDrop(capture);
    std::thread::sleep(Duration::from_millis(300));
    let ping = lab
        .exec("a", ["ping", "-c", "3", "-i", "0.2", "10.0.0.2"])
        .expect("ping");
    assert!(ping.success(), "{}", ping.stderr_text());
    let mut capture = capture;
    let deadline = Instant::now() + Duration::from_secs(5);
    while capture.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut pcap = Vec::new();
    use std::io::Read;
    capture
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut pcap)
        .expect("read");
    // A pcap header (24 bytes) and two packets.
    assert!(pcap.len() > 24 + 2 * 16, "{} bytes", pcap.len());
}
