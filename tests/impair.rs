//! Link impairments, run as root on real labs: from the topology and at run
//! time with `nslab impair`, checked by reading the kernel back, by
//! measuring throughput with iperf3 and (where the kernel has sch_netem)
//! by ping round trips.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{KillOnDrop, TestLab, can_build_labs, leftovers_of, nslab, run};

/// Two nodes on one link; `IMPAIR` is replaced by the link's `impair:` line.
const PAIR: &str = r#"
name: LAB
topology:
  nodes:
    a: {}
    b: {}
  links:
    - endpoints: ["a:eth0", "b:eth0"]
      ipv4: [10.77.0.1/24, 10.77.0.2/24]
      IMPAIR
"#;

fn pair(tag: &str, impair: &str) -> TestLab {
    TestLab::new(tag, &PAIR.replace("IMPAIR", impair))
}

/// `nslab impair ARGS...`: (exit code, stdout, stderr).
fn impair(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["impair"];
    all.extend_from_slice(args);
    run(&all)
}

/// What `--show` prints after `TARGET: `.
fn show(target: &str) -> String {
    let (code, out, err) = impair(&[target, "--show"]);
    assert_eq!(code, 0, "impair --show {target}: {err}");
    out.trim()
        .strip_prefix(&format!("{target}: "))
        .unwrap_or_else(|| panic!("unexpected --show output: {out:?}"))
        .to_string()
}

#[test]
fn topology_rate_comes_up_and_show_reports_it() {
    if !can_build_labs("topology_rate_comes_up_and_show_reports_it") {
        return;
    }
    let lab = pair("imptopo", "impair: [{rate: 10mbit}, null]");
    lab.up();
    assert_eq!(show(&format!("{}/a:eth0", lab.name)), "rate 10mbit");
    assert_eq!(show(&format!("{}/b:eth0", lab.name)), "no impairment");
    lab.assert_ping("a", "10.77.0.2");
    // inspect reads it back too.
    let json = lab.inspect_json();
    let impair_of = |node: &str| {
        json[0]["nodes"]
            .as_array()
            .and_then(|nodes| nodes.iter().find(|n| n["name"] == node))
            .and_then(|n| n["interfaces"].as_array())
            .and_then(|ifs| ifs.iter().find(|i| i["name"] == "eth0"))
            .map(|i| i["impair"].clone())
            .unwrap_or_else(|| panic!("no {node}:eth0 in inspect:\n{json}"))
    };
    assert_eq!(impair_of("a"), serde_json::json!({"rate_bits": 10_000_000}));
    assert_eq!(impair_of("b"), serde_json::Value::Null);

    // A map applies to both ends.
    let both = pair("impboth", "impair: {rate: 2mbit}");
    both.up();
    assert_eq!(show(&format!("{}/a:eth0", both.name)), "rate 2mbit");
    assert_eq!(show(&format!("{}/b:eth0", both.name)), "rate 2mbit");
}

#[test]
fn runtime_set_show_and_clear() {
    if !can_build_labs("runtime_set_show_and_clear") {
        return;
    }
    let lab = pair("imprun", "mtu: 9000");
    lab.up();
    let target = format!("{}/a:eth0", lab.name);
    assert_eq!(show(&target), "no impairment");

    let (code, out, err) = impair(&[&target, "--rate", "20mbit"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("{target}: rate 20mbit"));
    assert_eq!(show(&target), "rate 20mbit");
    // Replaced, not added to.
    let (code, _, err) = impair(&[&target, "--rate", "1500kbit"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(show(&target), "rate 1500kbit");
    // A 9000-byte frame still fits the bucket (two frames at least), so
    // a full-size ping gets through.
    let (code, out, err) = lab.exec(
        "a",
        &[
            "ping",
            "-c",
            "1",
            "-W",
            "3",
            "-s",
            "8972",
            "-M",
            "do",
            "10.77.0.2",
        ],
    );
    assert_eq!(code, 0, "jumbo ping through the bucket:\n{out}\n{err}");

    let (code, out, err) = impair(&[&target, "--clear"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("{target}: impairment removed"));
    assert_eq!(show(&target), "no impairment");
    let (code, out, _) = impair(&[&target, "--clear"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("{target}: no impairment to remove"));

    // Zero values impair nothing: all zero is the same as --clear.
    let (code, _, err) = impair(&[&target, "--rate", "20mbit"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = impair(&[&target, "--delay", "0us", "--loss", "0%"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("{target}: no impairment"));
    assert_eq!(show(&target), "no impairment");

    // Bad values are bad input (exit 2), each named, before anything runs.
    let (code, _, err) = impair(&[&target, "--rate", "10", "--loss", "5"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--rate: rate \"10\": needs a unit"), "{err}");
    assert!(err.contains("--loss: loss \"5\": needs a % sign"), "{err}");
    let (code, _, err) = impair(&[&target, "--jitter", "5ms"]);
    assert_eq!(code, 2);
    assert!(err.contains("needs a delay"), "{err}");
    let (code, _, err) = impair(&[&target]);
    assert_eq!(code, 2);
    assert!(err.contains("say what to set"), "{err}");
    // tbf counts bytes: a rate that is not a whole number of them, and a
    // jitter past netem's 32-bit nanoseconds, are refused.
    let (code, _, err) = impair(&[&target, "--rate", "1.5kbit"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("multiple of 8 bits (1496bit or 1504bit)"),
        "{err}"
    );
    let (code, _, err) = impair(&[&target, "--delay", "10s", "--jitter", "3s"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("at most 2147483us"), "{err}");
    let (code, _, _) = impair(&[&target, "--show", "--rate", "1mbit"]);
    assert_eq!(code, 2, "--show with a value is refused");
    // Unknown interfaces and nodes are named.
    let (code, _, err) = impair(&[&format!("{}/a:eth7", lab.name), "--show"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("has no interface eth7 (it has: eth0)"),
        "{err}"
    );
    let (code, _, err) = impair(&[&format!("{}/zz:eth0", lab.name), "--show"]);
    assert_eq!(code, 1);
    assert!(err.contains("has no node zz"), "{err}");
}

/// Runs `iperf3 -s -1` in `server` and a 3-second TCP test from `client`
/// to `address`; returns the rate the receiver measured, in bits per
/// second.
fn iperf3(lab: &TestLab, client: &str, server: &str, address: &str) -> f64 {
    let mut server = KillOnDrop(
        nslab()
            .args(["exec", &format!("{}/{server}", lab.name), "--"])
            .args(["iperf3", "-s", "-1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start iperf3 -s"),
    );
    // The server needs a moment to listen: retry the client until it
    // connects. (iperf3 3.12 exits 0 even when it cannot connect, with
    // the reason in the JSON's "error".)
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
        let (code, out, err) = lab.exec(
            client,
            &["iperf3", "-c", address, "-t", "3", "-O", "1", "-J"],
        );
        let json: Option<serde_json::Value> = serde_json::from_str(&out).ok();
        let error = json
            .as_ref()
            .and_then(|j| j["error"].as_str())
            .map(str::to_owned);
        match (code, json, error) {
            (0, Some(json), None) => break json,
            (_, _, Some(e)) if e.contains("unable to connect") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            _ => panic!("iperf3 client failed (exit code {code}):\n{out}\n{err}"),
        }
    };
    // `-1`: the server ends after this one test.
    let stop = Instant::now() + Duration::from_secs(10);
    while server.0.try_wait().ok().flatten().is_none() && Instant::now() < stop {
        std::thread::sleep(Duration::from_millis(50));
    }
    report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no end.sum_received in {report}"))
}

fn has_iperf3(test: &str) -> bool {
    let found = Command::new("iperf3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        common::skipped(format_args!(
            "{test}: iperf3 is not installed (scripts/test installs it)"
        ));
    }
    found
}

#[test]
fn rate_is_measured_with_iperf3() {
    let test = "rate_is_measured_with_iperf3";
    if !can_build_labs(test) || !has_iperf3(test) {
        return;
    }
    let lab = pair("impperf", "impair: [{rate: 10mbit}, null]");
    lab.up();
    // iperf3 counts TCP payload; the bucket counts whole frames (about 4 %
    // more for 1448 payload bytes in a 1514-byte frame): 15 % is ample.
    for (rate, bits) in [("10mbit", 10e6), ("50mbit", 50e6)] {
        if rate != "10mbit" {
            let (code, _, err) = impair(&[&format!("{}/a:eth0", lab.name), "--rate", rate]);
            assert_eq!(code, 0, "{err}");
        }
        let measured = iperf3(&lab, "a", "b", "10.77.0.2");
        eprintln!(
            "{test}: rate {rate}: iperf3 measured {:.2} Mbit/s ({:+.1} %)",
            measured / 1e6,
            (measured / bits - 1.0) * 100.0
        );
        assert!(
            (measured - bits).abs() <= 0.15 * bits,
            "rate {rate}: measured {measured} bit/s, more than 15 % off"
        );
    }
}

/// The round-trip time ping reports on average, in milliseconds.
fn ping_rtt_ms(lab: &TestLab, from: &str, to: &str) -> f64 {
    let (code, out, err) = lab.exec(from, &["ping", "-c", "5", "-i", "0.2", "-W", "3", to]);
    assert_eq!(code, 0, "ping {to}:\n{out}\n{err}");
    // rtt min/avg/max/mdev = 0.041/0.052/0.071/0.011 ms
    out.lines()
        .find_map(|l| l.split(" = ").nth(1))
        .and_then(|v| v.split('/').nth(1))
        .and_then(|avg| avg.parse().ok())
        .unwrap_or_else(|| panic!("no rtt in ping output:\n{out}"))
}

#[test]
fn netem_impairments_or_a_named_missing_module() {
    let test = "netem_impairments_or_a_named_missing_module";
    if !can_build_labs(test) {
        return;
    }
    let lab = pair("impnetem", "impair: [{rate: 10mbit}, null]");
    lab.up();
    let target = format!("{}/a:eth0", lab.name);
    let base = ping_rtt_ms(&lab, "a", "10.77.0.2");

    // A jitter above the delay is allowed, as tc allows it, with a warning
    // (given before the kernel is asked).
    let (_, _, err) = impair(&[&target, "--delay", "5ms", "--jitter", "20ms"]);
    assert!(
        err.contains(&format!(
            "nslab: warning: {target}: jitter 20ms is larger than delay 5ms: "
        )),
        "{err}"
    );
    let (code, out, err) = impair(&[&target, "--delay", "20ms"]);
    if code != 0 {
        // This kernel has no netem: the error must say so by name, and the
        // refused request must have left the old impairment in place.
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            err.contains("sch_netem"),
            "the error does not name sch_netem: {err}"
        );
        assert_eq!(
            show(&target),
            "rate 10mbit",
            "a refused change kept the old"
        );
        // And a topology asking for a delay fails `up` with the same name,
        // rolled back.
        let delayed = pair("impdelay", "impair: {delay: 20ms, loss: 1%}");
        let (code, out, err) = run(&["up", delayed.file()]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            err.contains("sch_netem") && err.contains("rolled back"),
            "{err}"
        );
        assert_eq!(leftovers_of(&delayed.name), Vec::<String>::new());
        common::skipped(format_args!(
            "{test}: kernel has no sch_netem (the error names it: checked)"
        ));
        return;
    }
    // netem is there: the delay is read back and ping sees it (one way:
    // only a's egress is delayed).
    assert_eq!(out.trim(), format!("{target}: delay 20ms"));
    let delayed = ping_rtt_ms(&lab, "a", "10.77.0.2");
    assert!(
        (base + 15.0..base + 30.0).contains(&delayed),
        "ping RTT {delayed} ms with a 20 ms delay (without: {base} ms)"
    );
    // Everything at once, netem with a tbf child, decoded back.
    let (code, _, err) = impair(&[
        &target,
        "--delay",
        "20ms",
        "--jitter",
        "5ms",
        "--loss",
        "1%",
        "--rate",
        "10mbit",
        "--corrupt",
        "0.1%",
        "--duplicate",
        "0.1%",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        show(&target),
        "delay 20ms jitter 5ms loss 1% corrupt 0.1% duplicate 0.1% rate 10mbit"
    );
    // From the topology too.
    let both = pair("impdelay", "impair: [{delay: 10ms, rate: 5mbit}, null]");
    both.up();
    assert_eq!(
        show(&format!("{}/a:eth0", both.name)),
        "delay 10ms rate 5mbit"
    );
}

#[test]
fn set_and_clear_leave_a_root_qdisc_nslab_does_not_set() {
    let test = "set_and_clear_leave_a_root_qdisc_nslab_does_not_set";
    if !can_build_labs(test) {
        return;
    }
    let lab = pair("impother", "mtu: 1500");
    lab.up();
    let target = format!("{}/a:eth0", lab.name);
    // Someone's own root qdisc, made with tc in the node (pfifo: one this
    // kernel has).
    let (code, out, err) = lab.exec(
        "a",
        &[
            "tc", "qdisc", "add", "dev", "eth0", "root", "handle", "7:", "pfifo", "limit", "50",
        ],
    );
    if code != 0 {
        common::skipped(format_args!(
            "{test}: tc cannot add a pfifo root qdisc here: {out}{err}"
        ));
        return;
    }
    let other = "root qdisc pfifo (not an impairment nslab sets)";
    assert_eq!(show(&target), other);
    // Setting an impairment, --clear and an all-zero impairment all leave
    // it, and say why and what to do.
    let node = format!("{}/a", lab.name);
    for args in [
        &["--rate", "10mbit"][..],
        &["--clear"][..],
        &["--loss", "0%"][..],
    ] {
        let mut all = vec![target.as_str()];
        all.extend_from_slice(args);
        let (code, out, err) = impair(&all);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(
            err.contains(&format!(
                "{target}: its root qdisc is pfifo, not an impairment nslab sets (netem, tbf): left in place; remove it yourself first (nslab exec {node} -- tc qdisc del dev eth0 root)"
            )),
            "{args:?}: {err}"
        );
        assert_eq!(show(&target), other, "{args:?}");
        let (_, out, _) = lab.exec("a", &["tc", "qdisc", "show", "dev", "eth0"]);
        assert!(out.contains("qdisc pfifo 7: root"), "{args:?}: {out}");
    }
    // Once its owner has removed it, nslab sets and clears impairments.
    let (code, out, err) = lab.exec("a", &["tc", "qdisc", "del", "dev", "eth0", "root"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(show(&target), "no impairment");
    let (code, _, err) = impair(&[&target, "--rate", "10mbit"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(show(&target), "rate 10mbit");
    let (code, out, err) = impair(&[&target, "--clear"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("{target}: impairment removed"));
    assert_eq!(show(&target), "no impairment");
}
