//! The Rust API from async code: `Lab` used inside `#[tokio::test]`, on a
//! current-thread runtime and on a multi-thread one. The blocking methods
//! (and the teardown in `Drop`) must not panic there.

mod common;

use std::time::Duration;

use nslab::lab::Impairment;
use nslab::topology::Topology;
use nslab::{Lab, LabOptions};

fn options() -> LabOptions {
    LabOptions::new()
        .unique()
        .nslab_exe(env!("CARGO_BIN_EXE_nslab"))
}

/// h1 — r1 — h2: a /30 on each side, r1 forwarding, default routes on the
/// hosts.
fn routed(name: &str) -> Topology {
    Topology::builder(name)
        .node("h1")
        .node("r1")
        .node("h2")
        .sysctl("r1", "net.ipv4.ip_forward", 1)
        .link(["h1:eth0", "r1:eth0"])
        .ipv4(["10.0.1.2/30", "10.0.1.1/30"])
        .link(["r1:eth1", "h2:eth0"])
        .ipv4(["10.0.2.1/30", "10.0.2.2/30"])
        .route("h1", "default via 10.0.1.1")
        .route("h2", "default via 10.0.2.1")
        .build()
        .expect("a valid topology")
}

/// The blocking methods called straight from an async test: up, exec,
/// impair, check and down, then a second lab torn down by `Drop`.
async fn blocking_calls_from_async(test: &str, name: &str) {
    if !common::can_build_labs(test) {
        return;
    }
    let lab = options().up(&routed(name)).expect("lab up");
    let h2 = lab.ipv4("h2", "eth0").expect("h2 has IPv4").to_string();
    let ping = lab
        .exec("h1", ["ping", "-c", "1", "-W", "3", &h2])
        .expect("run ping");
    assert!(ping.success(), "ping failed: {}", ping.stderr_text());
    assert!(
        ping.stdout_text().contains("ttl=63"),
        "{}",
        ping.stdout_text()
    );
    let set = lab
        .impair("h1", "eth0", [("rate", "10mbit")])
        .expect("a rate on h1:eth0");
    assert!(matches!(set, Impairment::Set(_)), "{set:?}");
    assert_eq!(lab.impairment("h1", "eth0").expect("read back"), set);
    assert!(lab.clear_impairment("h1", "eth0").expect("clear"));
    let report = lab.check(Duration::from_secs(3)).expect("check ran");
    assert!(report.passed, "{}", nslab::check::render_text(&report));
    let unique_name = lab.name().to_string();
    let report = lab.down().expect("down");
    assert_eq!(report.nodes, 3, "{report:?}");
    assert_eq!(common::leftovers_of(&unique_name), Vec::<String>::new());

    dropped_lab_leaves_nothing(options().up(&routed(name)).expect("lab up"));
}

/// Drops `lab`, with a process still running in one of its nodes, and
/// checks that nothing of it is left.
fn dropped_lab_leaves_nothing(lab: Lab) {
    let name = lab.name().to_string();
    assert!(
        !common::leftovers_of(&name).is_empty(),
        "the lab is there to begin with"
    );
    let process = lab.spawn("r1", ["sleep", "600"]).expect("spawn sleep");
    let pid = process.pid();
    drop(lab);
    assert_eq!(common::leftovers_of(&name), Vec::<String>::new());
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .map_or(true, |c| !c.contains("sleep"))
    };
    let start = std::time::Instant::now();
    while !gone() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(), "sleep {pid} outlived its lab");
    drop(process);
}

#[tokio::test]
async fn blocking_calls_work_on_a_current_thread_runtime() {
    blocking_calls_from_async(
        "blocking_calls_work_on_a_current_thread_runtime",
        "asyncblockct",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_calls_work_on_a_multi_thread_runtime() {
    blocking_calls_from_async(
        "blocking_calls_work_on_a_multi_thread_runtime",
        "asyncblockmt",
    )
    .await;
}
