//! The Rust API from async code: `Lab` used inside `#[tokio::test]`, on a
//! current-thread runtime and on a multi-thread one. The `_async` methods
//! leave the runtime free to serve a socket that a command in the lab
//! talks to; the blocking methods (and the teardown in `Drop`) must not
//! panic there.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use nslab::Impairment;
use nslab::Lab;
use nslab::spec::Topology;

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

/// A UDP client for a node: sends `COUNT` datagrams to `ADDRESS PORT`, one
/// at a time, and prints each echo; fails when one has not come back
/// within 3 s.
const UDP_CLIENT: &str = "import socket,sys\n\
    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
    s.settimeout(3)\n\
    for i in range(int(sys.argv[3])):\n\
    \x20   s.sendto(b'echo %d'%i,(sys.argv[1],int(sys.argv[2])))\n\
    \x20   d,a=s.recvfrom(1500)\n\
    \x20   print(d.decode(),flush=True)\n";

/// The expected output of [`UDP_CLIENT`] for `count` datagrams.
fn echoes(count: usize) -> String {
    (0..count).map(|i| format!("echo {i}\n")).collect()
}

fn assert_send<T: Send>(_: T) {}

/// The `_async` methods: up, exec (ping, and a UDP client served by a task
/// of this runtime), wait for and kill processes, impair, check and down.
async fn async_calls(test: &str, name: &str) {
    if !common::can_build_labs(test) {
        return;
    }
    let lab = common::lab_options()
        .up_async(&routed(name))
        .await
        .expect("lab up");
    let h1 = lab.ipv4("h1", "eth0").expect("h1 has IPv4");
    let h2 = lab.ipv4("h2", "eth0").expect("h2 has IPv4");
    // Their futures can go to another thread (tokio::spawn, select!).
    assert_send(lab.exec_async("h1", ["true"]));
    assert_send(lab.check_async(Duration::from_secs(1)));
    assert_send(common::lab_options().up_async(&routed(name)));

    let ping = lab
        .exec_async("h1", ["ping", "-c", "1", "-W", "3", &h2.to_string()])
        .await
        .expect("run ping");
    assert!(ping.success(), "ping failed: {}", ping.stderr_text());
    assert!(
        ping.stdout_text().contains("ttl=63"),
        "{}",
        ping.stdout_text()
    );

    // A task of this runtime serves UDP echo on a socket bound inside h2,
    // and reports the source of each datagram.
    let socket = lab
        .in_netns("h2", || std::net::UdpSocket::bind((h2, 7000)))
        .expect("enter h2")
        .expect("bind in h2");
    socket.set_nonblocking(true).expect("non-blocking");
    let socket = tokio::net::UdpSocket::from_std(socket).expect("a tokio socket");
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<SocketAddr>();
    let server = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = seen_tx.send(from);
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    let client = ["python3", "-c", UDP_CLIENT, &h2.to_string(), "7000"];
    // exec: the runtime serves while the command runs.
    let out = lab
        .exec_async("h1", client.iter().copied().chain(["3"]))
        .await
        .expect("run the client");
    assert!(out.success(), "the client failed: {}", out.stderr_text());
    assert_eq!(out.stdout_text(), echoes(3));
    // spawn: the runtime serves while the process is waited for.
    let mut process = lab
        .spawn("h1", client.iter().copied().chain(["2"]))
        .expect("start the client");
    let stdout = process.take_stdout().expect("stdout");
    assert_eq!(process.wait_async().await.expect("wait"), 0);
    let text = std::io::read_to_string(stdout).expect("read the client's output");
    assert_eq!(text, echoes(2));
    let mut seen = Vec::new();
    while let Ok(from) = seen_rx.try_recv() {
        seen.push(from);
    }
    assert_eq!(seen.len(), 5, "the server got every datagram: {seen:?}");
    assert!(
        seen.iter().all(|from| from.ip() == IpAddr::V4(h1)),
        "from h1 ({h1}): {seen:?}"
    );
    server.abort();

    let sleeper = lab.spawn("r1", ["sleep", "600"]).expect("spawn sleep");
    assert_eq!(sleeper.kill_async().await.expect("kill"), 128 + 15);

    let set = lab
        .impair_async("h1", "eth0", [("rate", "10mbit")])
        .await
        .expect("a rate on h1:eth0");
    let Impairment::Set(plan) = &set else {
        panic!("{set:?}")
    };
    assert_eq!(plan.rate_bits, Some(10_000_000), "{plan:?}");
    assert_eq!(
        lab.impairment_async("h1", "eth0").await.expect("read back"),
        set
    );
    assert!(
        lab.clear_impairment_async("h1", "eth0")
            .await
            .expect("clear")
    );
    assert_eq!(
        lab.impairment_async("h1", "eth0").await.expect("cleared"),
        Impairment::None
    );

    let report = lab
        .check_async(Duration::from_secs(3))
        .await
        .expect("check ran");
    assert!(report.passed, "{}", nslab::check::render_text(&report));

    let unique_name = lab.name().to_string();
    let report = lab.down_async().await.expect("down");
    assert_eq!(report.nodes, 3, "{report:?}");
    assert_eq!(common::leftovers_of(&unique_name), Vec::<String>::new());

    // A lab simply dropped in async code is torn down too.
    dropped_lab_leaves_nothing(
        common::lab_options()
            .up_async(&routed(name))
            .await
            .expect("lab up"),
    );
}

#[tokio::test]
async fn async_calls_work_on_a_current_thread_runtime() {
    async_calls("async_calls_work_on_a_current_thread_runtime", "asyncct").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_calls_work_on_a_multi_thread_runtime() {
    async_calls("async_calls_work_on_a_multi_thread_runtime", "asyncmt").await;
}

/// The blocking methods called straight from an async test: up, exec,
/// impair, check and down, then a second lab torn down by `Drop`.
async fn blocking_calls_from_async(test: &str, name: &str) {
    if !common::can_build_labs(test) {
        return;
    }
    let lab = common::lab_options().up(&routed(name)).expect("lab up");
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

    dropped_lab_leaves_nothing(common::lab_options().up(&routed(name)).expect("lab up"));
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
