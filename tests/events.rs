//! `nslab events` and `Lab::events`, run as root on real labs: what is
//! done in a lab (a link set down, an address, a route, an impairment, a
//! teardown, a lab brought up) comes out of the stream, read from the
//! kernel, and the stream of a lab ends by itself once it is down.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::{KillOnDrop, TestLab, can_build_labs, lab_options, nslab, run};
use nslab::events::{EventKind, LinkAction, NodeAction};
use serde_json::Value;

const PAIR: &str = r#"
name: LAB
topology:
  nodes:
    r1: {}
    r2: {}
  links:
    - endpoints: ["r1:eth0", "r2:eth0"]
      ipv4: [10.0.12.1/24, 10.0.12.2/24]
"#;

/// Starts `nslab events ARGS... --json`; returns it, once it says it is
/// watching, with its stdout lines arriving on a channel.
fn start_events(args: &[&str]) -> (KillOnDrop, Receiver<String>) {
    let mut child = KillOnDrop(
        nslab()
            .arg("events")
            .args(args)
            .arg("--json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nslab events"),
    );
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    stderr.read_line(&mut first).expect("read stderr");
    assert!(first.starts_with("nslab: watching"), "{first:?}");
    let stdout = child.stdout.take().expect("stdout");
    let (sender, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines)
}

/// Waits up to `limit` for the child to exit; its exit code.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Collects the JSON lines until one matches `stop` (included) or `limit`.
fn collect_until(
    lines: &Receiver<String>,
    limit: Duration,
    stop: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    let mut events = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = lines.recv_timeout(left) else {
            break;
        };
        let event: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let done = stop(&event);
        events.push(event);
        if done {
            break;
        }
    }
    events
}

/// The first event with these fields (`detail.` for fields of the detail).
fn find<'a>(events: &'a [Value], fields: &[(&str, Value)]) -> &'a Value {
    events
        .iter()
        .find(|e| {
            fields
                .iter()
                .all(|(key, want)| match key.strip_prefix("detail.") {
                    Some(detail) => &e["detail"][detail] == want,
                    None => &e[*key] == want,
                })
        })
        .unwrap_or_else(|| {
            let all: Vec<String> = events.iter().map(Value::to_string).collect();
            panic!("no event with {fields:?} in:\n{}", all.join("\n"))
        })
}

#[test]
fn cli_streams_a_labs_events_and_ends_after_down() {
    if !can_build_labs("cli_streams_a_labs_events_and_ends_after_down") {
        return;
    }
    let lab = TestLab::new("events", PAIR);
    lab.up();
    let started = Instant::now();
    let (mut child, lines) = start_events(&[&lab.name]);

    let ok = |(code, out, err): (i32, String, String)| assert_eq!(code, 0, "{out}{err}");
    ok(lab.exec("r1", &["ip", "link", "set", "eth0", "down"]));
    ok(lab.exec("r1", &["ip", "addr", "add", "10.9.0.1/24", "dev", "lo"]));
    ok(lab.exec(
        "r2",
        &[
            "ip",
            "route",
            "add",
            "10.3.0.0/24",
            "via",
            "10.0.12.1",
            "dev",
            "eth0",
            "proto",
            "bird",
        ],
    ));
    ok(run(&[
        "impair",
        &format!("{}/r2:eth0", lab.name),
        "--rate",
        "10mbit",
    ]));
    // What the events say, read back from the kernel too.
    let (_, r2_link, _) = lab.exec("r2", &["ip", "-o", "link", "show", "eth0"]);
    assert!(r2_link.contains("NO-CARRIER"), "{r2_link}");
    ok(run(&["down", "--lab", &lab.name]));

    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(5)),
        Some(0),
        "the stream ends by itself after down"
    );
    let events = collect_until(&lines, Duration::from_secs(1), |_| false);
    let name = Value::from(lab.name.as_str());
    for event in &events {
        assert_eq!(event["lab"], name, "{event}");
        assert!(
            event["time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{event}"
        );
    }
    let link = |node: &str| {
        [
            ("node", Value::from(node)),
            ("kind", "link".into()),
            ("action", "down".into()),
            ("interface", "eth0".into()),
        ]
    };
    let r1 = find(&events, &link("r1"));
    assert_eq!(r1["detail"]["admin_up"], false, "{r1}");
    // The peer lost its carrier.
    let r2 = find(&events, &link("r2"));
    assert_eq!(r2["detail"]["carrier"], false, "{r2}");
    assert_eq!(r2["detail"]["admin_up"], true, "{r2}");
    find(
        &events,
        &[
            ("node", "r1".into()),
            ("kind", "address".into()),
            ("action", "add".into()),
            ("interface", "lo".into()),
            ("detail.address", "10.9.0.1/24".into()),
        ],
    );
    find(
        &events,
        &[
            ("node", "r2".into()),
            ("kind", "route".into()),
            ("action", "add".into()),
            ("interface", "eth0".into()),
            ("detail.destination", "10.3.0.0/24".into()),
            ("detail.gateway", "10.0.12.1".into()),
            ("detail.protocol", "bird".into()),
        ],
    );
    let impaired = find(
        &events,
        &[
            ("node", "r2".into()),
            ("kind", "impairment".into()),
            ("action", "set".into()),
            ("interface", "eth0".into()),
        ],
    );
    assert_eq!(impaired["detail"]["text"], "rate 10mbit", "{impaired}");
    for node in ["r1", "r2"] {
        let stopped = find(
            &events,
            &[
                ("node", node.into()),
                ("kind", "node".into()),
                ("action", "stopped".into()),
            ],
        );
        assert!(stopped["detail"]["pid"].as_i64().is_some(), "{stopped}");
    }
    let last = events.last().expect("events");
    assert_eq!(
        (&last["kind"], &last["action"]),
        (&"lab".into(), &"down".into())
    );
    assert!(last["node"].is_null());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn every_lab_stream_sees_a_lab_come_up_and_stops_on_sigterm() {
    if !can_build_labs("every_lab_stream_sees_a_lab_come_up_and_stops_on_sigterm") {
        return;
    }
    let lab = TestLab::new("evall", PAIR);
    let (mut child, lines) = start_events(&[]);
    lab.up();
    let name = Value::from(lab.name.as_str());
    let mine = |e: &Value| e["lab"] == name;
    // Both nodes started (the rescan finds them within half a second, so
    // what up did before is not seen), then a change in one of them.
    let started = collect_until(&lines, Duration::from_secs(5), |e| {
        mine(e) && e["kind"] == "node" && e["node"] == "r2"
    });
    let started: Vec<Value> = started.into_iter().filter(mine).collect();
    let more = collect_until(&lines, Duration::from_millis(100), |_| false);
    let mut events: Vec<Value> = started
        .into_iter()
        .chain(more.into_iter().filter(mine))
        .collect();
    for node in ["r1", "r2"] {
        find(
            &events,
            &[
                ("node", node.into()),
                ("kind", "node".into()),
                ("action", "started".into()),
            ],
        );
    }
    let (code, _, err) = lab.exec("r2", &["ip", "addr", "add", "10.7.0.2/32", "dev", "lo"]);
    assert_eq!(code, 0, "{err}");
    events.extend(
        collect_until(&lines, Duration::from_secs(3), |e| {
            mine(e) && e["kind"] == "address"
        })
        .into_iter()
        .filter(mine),
    );
    find(
        &events,
        &[
            ("node", "r2".into()),
            ("kind", "address".into()),
            ("action", "add".into()),
            ("detail.address", "10.7.0.2/32".into()),
        ],
    );
    // It watches every lab until a signal.
    drop(lab);
    let down = collect_until(&lines, Duration::from_secs(3), |e| {
        mine(e) && e["kind"] == "lab"
    });
    assert!(
        down.iter().any(|e| mine(e) && e["action"] == "down"),
        "{down:?}"
    );
    assert_eq!(child.try_wait().expect("try_wait"), None, "still running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(3)), Some(0));
}

#[test]
fn api_iterator_sees_a_link_go_down_and_ends_after_down() {
    if !can_build_labs("api_iterator_sees_a_link_go_down_and_ends_after_down") {
        return;
    }
    let yaml = PAIR.replace("LAB", "evapi");
    let lab = lab_options().up_yaml(&yaml).expect("up");
    let events = lab.events().expect("events");
    // The iterator blocks: read it on a thread, to wait with a limit.
    let (sender, received) = channel();
    let reader = std::thread::spawn(move || {
        for event in events {
            let event = event.expect("an event");
            if sender.send(event).is_err() {
                break;
            }
        }
    });
    let out = lab
        .exec("r2", ["ip", "link", "set", "eth0", "down"])
        .expect("exec");
    assert!(out.success(), "{}", out.stderr_text());
    let event = std::iter::from_fn(|| received.recv_timeout(Duration::from_secs(3)).ok())
        .find(|e| {
            matches!(
                &e.kind,
                EventKind::Link {
                    action: LinkAction::Down,
                    ..
                }
            )
        })
        .expect("a link down");
    let EventKind::Link {
        interface,
        admin_up,
        ..
    } = &event.kind
    else {
        unreachable!()
    };
    assert_eq!(
        (event.node.as_deref(), interface.as_str(), *admin_up),
        (Some("r2"), "eth0", false)
    );
    assert_eq!(event.lab, lab.name());
    assert!(event.to_string().contains("/r2 link eth0 down"), "{event}");

    lab.down().expect("down");
    let rest: Vec<_> =
        std::iter::from_fn(|| received.recv_timeout(Duration::from_secs(3)).ok()).collect();
    reader.join().expect("the iterator ended");
    let stopped = rest
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::Node {
                    action: NodeAction::Stopped,
                    ..
                }
            )
        })
        .count();
    assert_eq!(stopped, 2, "{rest:?}");
    assert!(
        matches!(rest.last().map(|e| &e.kind), Some(EventKind::LabDown)),
        "{rest:?}"
    );
}

#[tokio::test]
async fn the_async_stream_sees_an_address() {
    use futures::StreamExt;
    if !can_build_labs("the_async_stream_sees_an_address") {
        return;
    }
    let yaml = PAIR.replace("LAB", "evasync");
    let lab = lab_options().up_yaml_async(&yaml).await.expect("up");
    let mut events = lab.events_async().await.expect("events");
    let out = lab
        .exec_async("r1", ["ip", "addr", "add", "10.8.0.1/32", "dev", "lo"])
        .await
        .expect("exec");
    assert!(out.success(), "{}", out.stderr_text());
    let event = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(event) = events.next().await {
            let event = event.expect("an event");
            if let EventKind::Address { address, .. } = &event.kind
                && address.to_string() == "10.8.0.1/32"
            {
                return Some(event);
            }
        }
        None
    })
    .await
    .expect("in time")
    .expect("the address");
    assert_eq!(event.node.as_deref(), Some("r1"));
    drop(events);
    lab.down_async().await.expect("down");
}
