//! Soak: many up/down cycles of a 20-node lab in this one process, through
//! the library API. Nothing may grow: open fds, memory, net namespaces,
//! mounts, processes. `NSLAB_SOAK_CYCLES` sets the count (default 10; the
//! 200-cycle figures are in docs/testing.md).

mod common;

use std::path::Path;

use nslab::plan::Plan;
use nslab::test_support::{self as lab, UpOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Usage {
    fds: usize,
    rss_kib: u64,
    net_namespaces: usize,
    mounts: usize,
    /// Children of this process, zombies included.
    processes: usize,
}

fn usage() -> Usage {
    let count = |dir: &str| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0);
    let mut net = std::collections::BTreeSet::new();
    let mut processes = 0;
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if entry.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        // Our children, zombies included: an init we failed to reap shows
        // here. (The machine's other processes are none of our business.)
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1));
        if ppid == Some(me.as_str()) {
            processes += 1;
        }
        if let Ok(target) = std::fs::read_link(entry.path().join("ns/net")) {
            net.insert(target);
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .count();
    Usage {
        fds: count("/proc/self/fd"),
        rss_kib,
        net_namespaces: net.len() + count("/run/netns"),
        mounts,
        processes,
    }
}

#[test]
fn up_down_cycles_leak_nothing() {
    if !common::can_build_labs("up_down_cycles_leak_nothing") {
        return;
    }
    // SAFETY: set before any thread of ours reads the environment; this
    // binary holds this one test.
    unsafe { std::env::set_var(nslab::test_support::EXE_ENV, env!("CARGO_BIN_EXE_nslab")) };
    let cycles: usize = std::env::var("NSLAB_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut yaml = format!(
        "name: {}\ntopology:\n  nodes:\n",
        common::unique_lab("soak")
    );
    for i in 0..20 {
        yaml.push_str(&format!("    n{i}: {{}}\n"));
    }
    yaml.push_str("  links:\n");
    for i in 1..20 {
        yaml.push_str(&format!(
            "    - endpoints: [\"n{}:r\", \"n{i}:l\"]\n      ipv4: [10.0.{i}.1/24, 10.0.{i}.2/24]\n",
            i - 1
        ));
    }
    let topology =
        nslab::topology::parse_str(&yaml, Path::new("soak.yml"), Path::new("/")).expect("valid");
    let plan = Plan::from_topology(&topology);

    // One warm-up cycle: the first one sizes allocator pools and caches.
    lab::up(&plan, &UpOptions::default()).expect("up");
    lab::down(&plan.lab.parse().expect("a lab name")).expect("down");
    let start = usage();
    let started = std::time::Instant::now();
    for cycle in 0..cycles {
        lab::up(&plan, &UpOptions::default()).unwrap_or_else(|e| panic!("cycle {cycle}: up: {e}"));
        lab::down(&plan.lab.parse().expect("a lab name"))
            .unwrap_or_else(|e| panic!("cycle {cycle}: down: {e}"));
        if (cycle + 1) % 50 == 0 {
            eprintln!("  after {:>4} cycles: {:?}", cycle + 1, usage());
        }
    }
    let end = usage();
    eprintln!(
        "soak: {cycles} up/down cycles of 20 nodes in {:.1} s\n  start {start:?}\n  end   {end:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(common::leftovers_of(&plan.lab).is_empty());
    assert_eq!(end.fds, start.fds, "open fds grew");
    assert_eq!(end.mounts, start.mounts, "mounts grew");
    assert!(end.processes <= start.processes, "processes grew");
    assert!(
        end.net_namespaces <= start.net_namespaces,
        "net namespaces grew"
    );
    assert!(
        end.rss_kib <= start.rss_kib + 1024,
        "memory grew by {} KiB",
        end.rss_kib - start.rss_kib
    );
}
