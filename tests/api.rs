//! The Rust API, through its public surface only: a routed lab built in
//! code serving UDP echo across its router, commands in nodes, and Drop
//! removing everything.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nslab::ApiError;
use nslab::Impairment;
use nslab::Lab;
use nslab::spec::Topology;

/// h1 — r1 — h2: a /30 and a /64 on each side, r1 forwarding both
/// families, default routes on the hosts.
fn routed(name: &str) -> Topology {
    Topology::builder(name)
        .node("h1")
        .node("r1")
        .node("h2")
        .sysctl("r1", "net.ipv4.ip_forward", 1)
        .sysctl("r1", "net.ipv6.conf.all.forwarding", 1)
        .link(["h1:eth0", "r1:eth0"])
        .ipv4(["10.0.1.2/30", "10.0.1.1/30"])
        .ipv6(["2001:db8:1::2/64", "2001:db8:1::1/64"])
        .link(["r1:eth1", "h2:eth0"])
        .ipv4(["10.0.2.1/30", "10.0.2.2/30"])
        .ipv6(["2001:db8:2::2/64", "2001:db8:2::1/64"])
        .route("h1", "default via 10.0.1.1")
        .route("h1", "default via 2001:db8:1::1")
        .route("h2", "default via 10.0.2.1")
        .route("h2", "default via 2001:db8:2::2")
        .build()
        .expect("a valid topology")
}

/// Sends `count` datagrams from `client` to `server`, checking each echo.
fn echo_round(client: &UdpSocket, server: SocketAddr, count: usize) {
    client
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    for i in 0..count {
        let message = format!("datagram {i} to {server}");
        client
            .send_to(message.as_bytes(), server)
            .expect("send to the server");
        let mut buf = [0u8; 1500];
        let (n, from) = client.recv_from(&mut buf).expect("an echo within 3 s");
        assert_eq!(from, server, "the echo comes from the server");
        assert_eq!(&buf[..n], message.as_bytes(), "the echo is the datagram");
    }
}

#[test]
fn a_routed_lab_built_in_code_serves_udp_echo_across_the_router() {
    if !common::can_build_labs("a_routed_lab_built_in_code_serves_udp_echo_across_the_router") {
        return;
    }
    let lab = common::lab_options()
        .up(&routed("apirouted"))
        .expect("lab up");
    assert!(lab.name().starts_with("apirouted-"), "{}", lab.name());
    let h1 = IpAddr::V4(lab.ipv4("h1", "eth0").expect("h1 has IPv4"));
    let h2 = IpAddr::V4(lab.ipv4("h2", "eth0").expect("h2 has IPv4"));
    let h1_v6 = IpAddr::V6(lab.ipv6("h1", "eth0").expect("h1 has IPv6"));
    let h2_v6 = IpAddr::V6(lab.ipv6("h2", "eth0").expect("h2 has IPv6"));
    assert_eq!(lab.address("h2", "eth0"), Some(h2));
    assert_eq!(
        lab.addresses("r1")
            .iter()
            .map(|(i, a)| format!("{i} {a}"))
            .collect::<Vec<_>>(),
        [
            "eth0 10.0.1.1/30",
            "eth0 2001:db8:1::1/64",
            "eth1 10.0.2.1/30",
            "eth1 2001:db8:2::2/64"
        ]
    );

    // IPv4: a Rust thread serves on a socket bound inside h2, and tells us
    // the source address of each datagram it gets.
    let server = lab
        .in_netns("h2", || UdpSocket::bind((h2, 7000)))
        .expect("enter h2")
        .expect("bind in h2");
    let server_addr = server.local_addr().expect("address");
    let (seen_tx, seen_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = server.recv_from(&mut buf) {
            let _ = seen_tx.send(from);
            let _ = server.send_to(&buf[..n], from);
        }
    });
    let client = lab
        .in_netns("h1", || UdpSocket::bind((IpAddr::from([0, 0, 0, 0]), 0)))
        .expect("enter h1")
        .expect("bind in h1");
    echo_round(&client, server_addr, 5);
    let seen: Vec<SocketAddr> = seen_rx.try_iter().collect();
    assert_eq!(seen.len(), 5, "the server got every datagram");
    assert!(
        seen.iter().all(|from| from.ip() == h1),
        "the server saw h1's own address ({h1}), so nothing translated it: {seen:?}"
    );
    // The path crosses exactly one router: a ping's reply arrives with
    // TTL 63 (64 less r1's hop).
    let ping = lab
        .exec("h1", ["ping", "-c", "1", "-W", "3", &h2.to_string()])
        .expect("run ping");
    assert!(ping.success(), "ping failed: {}", ping.stderr_text());
    assert!(
        ping.stdout_text().contains("ttl=63"),
        "{}",
        ping.stdout_text()
    );

    // IPv6: the server is a process in h2 (lab.spawn); it says when it has
    // bound its socket, and echoes each datagram prefixed with its source.
    let script = "import socket,sys\n\
        s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\n\
        s.bind(('::',7001))\n\
        print('ready',flush=True)\n\
        while True:\n\
        \x20   d,a=s.recvfrom(1500)\n\
        \x20   s.sendto(d,a)\n\
        \x20   print(a[0],flush=True)\n";
    let mut process = lab
        .spawn("h2", ["python3", "-c", script])
        .expect("start the IPv6 server");
    let mut lines = BufReader::new(process.take_stdout().expect("stdout")).lines();
    assert_eq!(
        lines.next().and_then(Result::ok).as_deref(),
        Some("ready"),
        "the server starts"
    );
    let client6 = lab
        .in_netns("h1", || UdpSocket::bind("[::]:0"))
        .expect("enter h1")
        .expect("bind in h1");
    echo_round(&client6, SocketAddr::new(h2_v6, 7001), 3);
    for _ in 0..3 {
        let line = lines.next().and_then(Result::ok).unwrap_or_default();
        assert_eq!(line, h1_v6.to_string(), "the server saw h1's address");
    }
    assert_eq!(process.try_wait().expect("state"), None, "still serving");
    let code = process.kill().expect("kill");
    assert_eq!(code, 128 + 15, "ended by SIGTERM");

    let report = lab.down().expect("down");
    assert_eq!(report.nodes, 3, "{report:?}");
}

#[test]
fn exec_returns_status_and_output_and_refuses_what_cannot_run() {
    if !common::can_build_labs("exec_returns_status_and_output_and_refuses_what_cannot_run") {
        return;
    }
    let lab = common::lab_options()
        .up_yaml(
            "name: apiexec\n\
             topology:\n  nodes:\n    h1: {hostname: first, env: {GREETING: hello}}\n",
        )
        .expect("lab up");
    let out = lab
        .exec(
            "h1",
            [
                "sh",
                "-c",
                "echo $GREETING $(hostname); echo oops >&2; exit 3",
            ],
        )
        .expect("run sh");
    assert_eq!(out.status, 3);
    assert_eq!(out.stdout_text(), "hello first\n");
    assert_eq!(out.stderr_text(), "oops\n");

    let missing = lab.exec("h1", ["no-such-command-here"]);
    assert!(
        matches!(&missing, Err(e) if e.to_string().contains("command not found")),
        "{missing:?}"
    );
    assert!(matches!(
        lab.exec("ghost", ["true"]),
        Err(ApiError::NoNode { .. })
    ));
    assert!(matches!(
        lab.exec("h1", Vec::<String>::new()),
        Err(ApiError::EmptyCommand)
    ));
}

#[test]
fn impairments_are_set_read_back_and_cleared_at_run_time() {
    if !common::can_build_labs("impairments_are_set_read_back_and_cleared_at_run_time") {
        return;
    }
    // Rate only: it is tbf, which every kernel nslab runs on has; delay
    // and loss need sch_netem (tests/impair.rs covers them where present).
    let lab = common::lab_options().up(&routed("apiimp")).expect("lab up");
    let set = lab
        .impair("h1", "eth0", [("rate", "10mbit")])
        .expect("a rate on h1:eth0");
    let Impairment::Set(plan) = &set else {
        panic!("{set:?}")
    };
    assert_eq!(plan.rate_bits, Some(10_000_000), "{plan:?}");
    assert_eq!(lab.impairment("h1", "eth0").expect("read back"), set);
    assert_eq!(lab.impairment("h2", "eth0").expect("h2"), Impairment::None);
    let ping = lab
        .exec("h1", ["ping", "-c", "1", "-W", "2", "10.0.2.2"])
        .expect("ping");
    assert!(ping.success(), "{}", ping.stdout_text());

    let bad = lab.impair("h1", "eth0", [("latency", "5ms"), ("rate", "fast")]);
    let text = bad
        .as_ref()
        .map_err(ToString::to_string)
        .expect_err("refused");
    assert!(text.contains("unknown impairment \"latency\""), "{text}");
    assert!(text.contains("rate:"), "{text}");
    assert!(matches!(
        lab.impair("ghost", "eth0", [("rate", "1mbit")]),
        Err(ApiError::NoNode { .. })
    ));
    assert_eq!(lab.impairment("h1", "eth0").expect("unchanged"), set);

    assert!(lab.clear_impairment("h1", "eth0").expect("clear"));
    assert!(!lab.clear_impairment("h1", "eth0").expect("clear again"));
    assert_eq!(
        lab.impairment("h1", "eth0").expect("cleared"),
        Impairment::None
    );
}

#[test]
fn expectations_built_in_code_are_checked_through_the_api() {
    if !common::can_build_labs("expectations_built_in_code_are_checked_through_the_api") {
        return;
    }
    let topology = Topology::builder("apichk")
        .node("h1")
        .node("h2")
        .link(["h1:eth0", "h2:eth0"])
        .ipv4(["10.0.3.1/24", "10.0.3.2/24"])
        .expect_reach("h1", "h2")
        .expect_port("h1", "h2", "7000/udp")
        .expect_blocked("h1", "203.0.113.9", None)
        .build()
        .expect("a valid topology");
    let lab = common::lab_options().up(&topology).expect("lab up");
    let server = lab
        .in_netns("h2", || UdpSocket::bind("10.0.3.2:7000"))
        .expect("thread")
        .expect("bind");
    std::thread::spawn(move || {
        let mut buf = [0; 1500];
        while let Ok((n, from)) = server.recv_from(&mut buf) {
            let _ = server.send_to(&buf[..n], from);
        }
    });
    let report = lab.check(Duration::from_secs(3)).expect("check ran");
    assert!(report.passed, "{}", nslab::check::render_text(&report));
    assert_eq!(report.expectations.len(), 3);
    assert!(report.expectations.iter().all(|e| e.passed));

    // Once h2's side is down, both expectations that need h2 fail.
    let down = lab
        .exec("h2", ["ip", "link", "set", "eth0", "down"])
        .expect("ip");
    assert!(down.success(), "{}", down.stderr_text());
    let report = lab.check(Duration::from_millis(500)).expect("check ran");
    assert!(!report.passed);
    let failed: Vec<&str> = report
        .expectations
        .iter()
        .filter(|e| !e.passed)
        .map(|e| e.to.as_str())
        .collect();
    assert_eq!(
        failed,
        ["h2", "h2"],
        "{}",
        nslab::check::render_text(&report)
    );
}

#[test]
fn bad_topology_text_is_refused_before_anything_is_made() {
    // No privileges needed: validation comes first.
    let err = common::lab_options()
        .up_yaml("name: apibad\ntopology:\n  nodes: {h1: {}}\n  links:\n    - endpoints: [\"h1:eth0\", \"ghost:eth0\"]\n")
        .expect_err("invalid");
    assert!(matches!(err, ApiError::Topology(_)), "{err}");
    assert!(err.to_string().contains("no node named \"ghost\""), "{err}");
    assert!(common::leftovers_of("apibad").is_empty());
}

/// Waits up to `limit` for `done`.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

#[test]
fn dropping_the_lab_removes_everything() {
    if !common::can_build_labs("dropping_the_lab_removes_everything") {
        return;
    }
    let lab = Lab::up_with(&routed("apidrop"), &common::lab_options()).expect("lab up");
    let name = lab.name().to_string();
    assert!(
        std::path::Path::new("/run/netns")
            .join(lab.netns_name("h1"))
            .exists(),
        "the lab is there to begin with"
    );
    assert!(!common::leftovers_of(&name).is_empty());
    // A process still running in a node when the lab goes.
    let process = lab.spawn("r1", ["sleep", "600"]).expect("spawn sleep");
    let pid = process.pid();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    drop(lab);

    assert_eq!(common::leftovers_of(&name), Vec::<String>::new());
    // The node's pid namespace ended with its init, and the command with it.
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .map_or(true, |c| !c.contains("sleep"))
    };
    assert!(
        eventually(Duration::from_secs(5), gone),
        "sleep {pid} outlived its lab"
    );
    drop(process);
}

#[test]
fn a_spawned_process_is_ended_when_dropped() {
    if !common::can_build_labs("a_spawned_process_is_ended_when_dropped") {
        return;
    }
    let lab = common::lab_options()
        .up_yaml("name: apispawn\ntopology:\n  nodes: {h1: {}}\n")
        .expect("lab up");
    // A shell with a child of its own: the whole process group goes.
    let process = lab
        .spawn("h1", ["sh", "-c", "sleep 600 & echo $! > /tmp/child; wait"])
        .expect("spawn");
    let shell = process.pid();
    let child_file = || {
        lab.exec("h1", ["cat", "/tmp/child"])
            .map(|o| o.stdout_text())
    };
    assert!(
        eventually(Duration::from_secs(5), || child_file()
            .is_ok_and(|t| !t.trim().is_empty())),
        "the shell started its child"
    );
    let sleeps = || {
        lab.exec("h1", ["pgrep", "-x", "sleep"])
            .map(|o| o.stdout_text().lines().count())
            .unwrap_or(0)
    };
    assert_eq!(sleeps(), 1);
    drop(process);
    assert!(!std::path::Path::new(&format!("/proc/{shell}")).exists());
    assert!(
        eventually(Duration::from_secs(3), || sleeps() == 0),
        "the child was ended too"
    );
}

/// Live (not zombie) processes on the host whose command line is exactly
/// `sleep ARG`. Found by command line because their pids inside a node
/// differ from the host's.
fn sleeps_with(arg: &str) -> Vec<i32> {
    let wanted = format!("sleep\0{arg}\0").into_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X']))
            })
        })
        .collect()
}

#[test]
fn a_process_takes_its_whole_group_with_it_even_after_the_command_exited() {
    if !common::can_build_labs(
        "a_process_takes_its_whole_group_with_it_even_after_the_command_exited",
    ) {
        return;
    }
    let lab = common::lab_options()
        .up_yaml("name: apigroup\ntopology:\n  nodes: {h1: {}}\n")
        .expect("lab up");
    let tag = format!("1000.{}", std::process::id());
    let (plain, stubborn, killed) = (format!("{tag}1"), format!("{tag}2"), format!("{tag}3"));

    // The shell leaves two sleeps in its group and exits at once; one of
    // them ignores SIGTERM, so only SIGKILL ends it.
    let script =
        format!("sleep {plain} & (trap '' TERM; exec sleep {stubborn}) & echo started; exit 0");
    let mut process = lab.spawn("h1", ["sh", "-c", &script]).expect("spawn");
    let mut lines = BufReader::new(process.take_stdout().expect("stdout")).lines();
    assert_eq!(
        lines.next().and_then(Result::ok).as_deref(),
        Some("started")
    );
    assert!(
        eventually(Duration::from_secs(5), || process
            .try_wait()
            .is_ok_and(|code| code == Some(0))),
        "the shell exited (and was reaped)"
    );
    assert!(
        eventually(Duration::from_secs(5), || sleeps_with(&plain).len() == 1
            && sleeps_with(&stubborn).len() == 1),
        "both sleeps outlive the shell"
    );
    drop(process);
    assert!(
        eventually(Duration::from_secs(2), || sleeps_with(&plain).is_empty()),
        "the sleep left in the group was ended with the Process"
    );
    assert!(
        eventually(Duration::from_secs(2), || sleeps_with(&stubborn).is_empty()),
        "the sleep that ignores SIGTERM was killed"
    );

    // kill does the same, and returns the command's own exit code.
    let script = format!("sleep {killed} & echo started; exit 7");
    let mut process = lab.spawn("h1", ["sh", "-c", &script]).expect("spawn");
    let mut lines = BufReader::new(process.take_stdout().expect("stdout")).lines();
    assert_eq!(
        lines.next().and_then(Result::ok).as_deref(),
        Some("started")
    );
    assert!(eventually(Duration::from_secs(5), || sleeps_with(&killed)
        .len()
        == 1));
    // Once the shell has exited: a SIGTERM before its `exit 7` would be
    // what it ended by (143).
    assert!(
        eventually(Duration::from_secs(5), || process
            .try_wait()
            .is_ok_and(|code| code == Some(7))),
        "the shell exited with 7"
    );
    assert_eq!(process.kill().expect("kill"), 7);
    assert!(
        eventually(Duration::from_secs(2), || sleeps_with(&killed).is_empty()),
        "kill ended the sleep left in the group"
    );
}
