//! `nslab stats` and `Lab::stats`: a busy node shows its CPU, process
//! counts follow what runs in each node, and interface counters grow by the
//! packets sent.

mod common;

use std::time::{Duration, Instant};

use common::{TestLab, run};
use nslab::spec::Topology;
use nslab::{LabOptions, NodeStats, StatsReport};

/// Pings sent from h2 to h1.
const PINGS: u64 = 1000;

fn pair(name: &str) -> Topology {
    Topology::builder(name)
        .node("h1")
        .node("h2")
        .link(["h1:eth0", "h2:eth0"])
        .ipv4(["10.0.9.1/30", "10.0.9.2/30"])
        .build()
        .expect("valid topology")
}

fn node<'a>(report: &'a StatsReport, name: &str) -> &'a NodeStats {
    report
        .nodes
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no {name} in {report:?}"))
}

/// (rx_packets, tx_packets) of a node's interface.
fn packets(report: &StatsReport, name: &str, iface: &str) -> (u64, u64) {
    let i = node(report, name)
        .interfaces
        .iter()
        .find(|i| i.name == iface)
        .unwrap_or_else(|| panic!("no {name}:{iface} in {report:?}"));
    (i.rx_packets, i.tx_packets)
}

/// A process's CPU time (utime + stime) in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a name") + 2..]
        .split(' ')
        .collect();
    // Fields 14 and 15 of stat(5), counted from field 3 (the state).
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn clock_ticks() -> i64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .expect("sysconf")
        .expect("CLK_TCK")
}

#[test]
fn a_busy_node_its_processes_and_its_pings_show_through_the_api() {
    if !common::can_build_labs("a_busy_node_its_processes_and_its_pings_show_through_the_api") {
        return;
    }
    let lab = LabOptions::new()
        .unique()
        .nslab_exe(env!("CARGO_BIN_EXE_nslab"))
        .up(&pair("stats"))
        .expect("lab up");

    let idle = lab.stats().expect("stats");
    assert_eq!(idle.lab, lab.name());
    assert!(
        (0.4..1.0).contains(&idle.interval_seconds),
        "{}",
        idle.interval_seconds
    );
    for name in ["h1", "h2"] {
        let n = node(&idle, name);
        assert!(n.running && n.pid.is_some(), "{n:?}");
        assert_eq!(n.processes, Some(1), "the init alone: {n:?}");
        assert!(n.memory_bytes.is_some_and(|m| m > 0), "{n:?}");
        assert_eq!(n.memory_limit_bytes, None, "no limit yet: {n:?}");
        assert!(n.cpu_percent.is_some_and(|c| c < 20.0), "idle: {n:?}");
    }

    // A busy loop in h1 (one shell, no other process), and a sleep beside.
    let busy = lab
        .spawn("h1", ["sh", "-c", "while :; do :; done"])
        .expect("spawn the loop");
    let sleeper = lab.spawn("h1", ["sleep", "60"]).expect("spawn sleep");
    // The loop's own CPU use, read from /proc around the call, is what the
    // node's figure must match: the machine may be shared, so the loop may
    // get less than a whole CPU.
    let (started, ticks) = (Instant::now(), cpu_ticks(busy.pid()));
    let before = lab.stats().expect("stats");
    let own = (cpu_ticks(busy.pid()) - ticks) as f64
        / clock_ticks() as f64
        / started.elapsed().as_secs_f64()
        * 100.0;
    let h1 = node(&before, "h1");
    assert_eq!(h1.processes, Some(3), "init, sh and sleep: {h1:?}");
    assert_eq!(node(&before, "h2").processes, Some(1));
    let cpu = h1.cpu_percent.expect("a CPU figure");
    eprintln!("h1 at {cpu:.1}% CPU, its loop at {own:.1}%");
    assert!(
        cpu > 25.0 && (cpu - own).abs() < 20.0,
        "the busy node at {cpu:.1}%, its loop at {own:.1}%: {h1:?}"
    );
    let h2_cpu = node(&before, "h2").cpu_percent.expect("a CPU figure");
    assert!(h2_cpu < 10.0, "the idle node: {:?}", node(&before, "h2"));

    let h1_addr = lab.ipv4("h1", "eth0").expect("h1 address").to_string();
    let count = PINGS.to_string();
    let ping = lab
        .exec(
            "h2",
            ["ping", "-f", "-q", "-c", &count, "-W", "1", &h1_addr],
        )
        .expect("run ping");
    assert!(
        ping.success(),
        "{}{}",
        ping.stdout_text(),
        ping.stderr_text()
    );
    let after = lab.stats().expect("stats");
    for name in ["h1", "h2"] {
        let (rx0, tx0) = packets(&before, name, "eth0");
        let (rx1, tx1) = packets(&after, name, "eth0");
        assert!(
            rx1 - rx0 >= PINGS && tx1 - tx0 >= PINGS,
            "{name}:eth0 rx {rx0} -> {rx1}, tx {tx0} -> {tx1} after {PINGS} pings"
        );
    }

    drop(busy);
    drop(sleeper);
    let ended = lab.stats().expect("stats");
    assert_eq!(node(&ended, "h1").processes, Some(1), "{ended:?}");

    // Memory is the node's cgroup's figure: 32 MiB written to h2's own
    // tmpfs count, though no process of h2 holds them. (Where no hierarchy
    // counts the node's memory, the figure is its processes' alone.)
    let counted = nslab::test_support::cgroup_roots().iter().any(|root| {
        let dir = root.join("nslab").join(lab.name()).join("h2");
        dir.join("memory.usage_in_bytes").exists() || dir.join("memory.current").exists()
    });
    if !counted {
        common::skipped(format_args!(
            "a_busy_node_its_processes_and_its_pings_show_through_the_api: memory from the cgroup (no hierarchy counts the node's memory here)"
        ));
        return;
    }
    let before = node(&ended, "h2").memory_bytes.expect("h2's memory");
    let fill = lab
        .exec(
            "h2",
            ["dd", "if=/dev/zero", "of=/tmp/fill", "bs=1M", "count=32"],
        )
        .expect("dd");
    assert!(fill.success(), "{}", fill.stderr_text());
    let filled = lab.stats().expect("stats");
    let after = node(&filled, "h2").memory_bytes.expect("h2's memory");
    assert!(
        after >= before + (30 << 20),
        "h2's memory {before} -> {after} after 32 MiB on its tmpfs"
    );
}

#[tokio::test]
async fn stats_async_answers_inside_a_runtime() {
    if !common::can_build_labs("stats_async_answers_inside_a_runtime") {
        return;
    }
    let lab = LabOptions::new()
        .unique()
        .nslab_exe(env!("CARGO_BIN_EXE_nslab"))
        .up_async(&pair("statsasync"))
        .await
        .expect("lab up");
    let report = lab.stats_async().await.expect("stats");
    assert_eq!(report.nodes.len(), 2);
    assert!(report.nodes.iter().all(|n| n.processes == Some(1)));
    lab.down_async().await.expect("down");
}

const CLI_LAB: &str = "\
name: LAB
topology:
  nodes:
    a: {}
    b: {}
    sw: {kind: bridge}
  links:
    - endpoints: [a:eth0, sw:p1]
      ipv4: [10.0.8.1/24, null]
    - endpoints: [b:eth0, sw:p2]
      ipv4: [10.0.8.2/24, null]
";

#[test]
fn the_command_prints_a_table_and_documented_json() {
    if !common::can_build_labs("the_command_prints_a_table_and_documented_json") {
        return;
    }
    let lab = TestLab::new("stats", CLI_LAB);
    lab.up();
    let (code, _, err) = lab.exec("a", &["ping", "-c", "3", "-i", "0.01", "10.0.8.2"]);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = run(&["stats", &lab.name, "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("stats --json is JSON");
    let reports = json.as_array().expect("an array of labs");
    assert_eq!(reports.len(), 1, "{json}");
    let report = &reports[0];
    assert_eq!(report["lab"], lab.name.as_str());
    assert!(report["interval_seconds"].as_f64().is_some_and(|s| s > 0.4));
    let nodes = report["nodes"].as_array().expect("nodes");
    let names: Vec<&str> = nodes.iter().filter_map(|n| n["name"].as_str()).collect();
    assert_eq!(names, ["a", "b", "sw"]);
    for n in nodes {
        assert_eq!(n["running"], true, "{n}");
        assert!(n["pid"].as_i64().is_some(), "{n}");
        assert!(n["cpu_percent"].as_f64().is_some(), "{n}");
        assert!(n["memory_bytes"].as_u64().is_some_and(|m| m > 0), "{n}");
        assert!(n["memory_limit_bytes"].is_null(), "{n}");
        assert_eq!(n["processes"], 1, "{n}");
        for i in n["interfaces"].as_array().expect("interfaces") {
            for field in [
                "rx_bytes",
                "rx_packets",
                "rx_dropped",
                "tx_bytes",
                "tx_packets",
                "tx_dropped",
            ] {
                assert!(i[field].as_u64().is_some(), "{field} in {i}");
            }
        }
    }
    assert_eq!(nodes[2]["kind"], "bridge");
    let a_eth0 = nodes[0]["interfaces"]
        .as_array()
        .and_then(|i| i.iter().find(|i| i["name"] == "eth0"))
        .expect("a:eth0");
    assert!(
        a_eth0["tx_packets"].as_u64().is_some_and(|p| p >= 3),
        "{a_eth0}"
    );
    assert!(
        a_eth0["rx_packets"].as_u64().is_some_and(|p| p >= 3),
        "{a_eth0}"
    );

    let (code, out, err) = run(&["stats", &lab.name]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("lab {} (CPU % over 0.5", lab.name)),
        "{out}"
    );
    assert!(
        out.contains("NODE  CPU %  MEM USAGE / LIMIT  PIDS  IFACE"),
        "{out}"
    );
    assert!(out.contains("/ none"), "{out}");
    for row in ["a ", "b ", "sw "] {
        assert!(
            out.lines().any(|l| l.starts_with(row)),
            "no {row:?} row:\n{out}"
        );
    }

    let (code, out, err) = run(&["stats", "nosuchlab-stats"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("no lab nosuchlab-stats"), "{err}");
    let (code, out, err) = run(&["stats", "no/such"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("\"no/such\" is not a valid lab name"), "{err}");
}

#[test]
fn watch_prints_once_a_second_until_interrupted() {
    if !common::can_build_labs("watch_prints_once_a_second_until_interrupted") {
        return;
    }
    let lab = TestLab::new("statswatch", CLI_LAB);
    lab.up();
    let child = common::nslab()
        .args(["stats", &lab.name, "--json", "--watch"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start stats --watch");
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(2800));
    let interrupted = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let mut child = common::KillOnDrop(child);
    interrupted.expect("SIGINT");
    while child.try_wait().expect("poll").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "still running after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.try_wait().expect("poll").expect("exited");
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    let code = status.code().unwrap_or(-1);
    assert_eq!(code, 0, "Ctrl-C ends it cleanly: {err}");
    let lines: Vec<&str> = out.lines().collect();
    // Samples at about 0.5 s (the first), 1.5 s and 2.5 s.
    assert!((2..=4).contains(&lines.len()), "{out}");
    for line in &lines {
        let json: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(json[0]["lab"], lab.name.as_str(), "{line}");
    }
}
