//! `scenario:` and `nslab run-scenario`: timed link, node and check steps
//! played on a running lab. A chain without daemons shows a check that
//! fails once a link is down (exit 1, naming the expectation) and passes
//! again once it is up, through the CLI and through `Lab::run_scenario`;
//! the OSPF triangle of `topologies/` reroutes round a failed link (FRR);
//! bad scenarios are refused with their key paths (exit 2).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{TestLab, can_build_labs, lab_options, run, skipped};
use nslab::spec::{LinkState, NodeAction, StepAction, Topology};

/// h1 -- r1 -- h2, h1 expected to reach h2; `STEPS` becomes the scenario.
const CHAIN: &str = r#"
name: LAB
topology:
  nodes:
    h1: {routes: ["default via 10.0.1.1"]}
    r1: {sysctls: {net.ipv4.ip_forward: 1}}
    h2: {routes: ["default via 10.0.2.1"]}
  links:
    - endpoints: ["h1:eth0", "r1:eth0"]
      ipv4: [10.0.1.2/30, 10.0.1.1/30]
    - endpoints: ["r1:eth1", "h2:eth0"]
      ipv4: [10.0.2.1/30, 10.0.2.2/30]
expect:
  - {from: h1, to: h2}
scenario:
STEPS
"#;

fn chain(tag: &str, steps: &str) -> TestLab {
    TestLab::new(tag, &CHAIN.replace("STEPS\n", steps))
}

/// `up` or `down`, as r1's eth1 is now, read from the kernel.
fn r1_eth1(lab: &TestLab) -> String {
    let (code, out, err) = lab.exec("r1", &["ip", "-o", "link", "show", "dev", "eth1"]);
    assert_eq!(code, 0, "{err}");
    if out.contains("state DOWN") || !out.contains(",UP") {
        "down".into()
    } else {
        "up".into()
    }
}

#[test]
fn a_check_fails_while_a_link_is_down_and_says_which() {
    if !can_build_labs("a_check_fails_while_a_link_is_down_and_says_which") {
        return;
    }
    let lab = chain(
        "scnfail",
        "  - {at: 0s, check: true}\n  - {at: 300ms, link: \"r1:eth1\", state: down}\n  - {at: 0.5s, check: true}\n",
    );
    lab.up();
    let started = Instant::now();
    let (code, out, err) = run(&["run-scenario", &lab.name, "--timeout", "0.5"]);
    let took = started.elapsed();
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].contains("[0] check: passed"), "{out}");
    assert!(lines[1].contains("[1] link r1:eth1 down"), "{out}");
    assert!(lines[1].trim_start().starts_with("+0.3"), "{out}");
    assert!(
        lines[2].contains("[2] check: FAILED: h1 -> h2 (10.0.2.2: "),
        "{out}"
    );
    assert!(lines[3].ends_with("2 check(s), 1 failed: FAIL"), "{out}");
    // The link is down in the kernel, and the run kept to its times.
    assert_eq!(r1_eth1(&lab), "down");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn a_link_up_again_passes_the_final_check() {
    if !can_build_labs("a_link_up_again_passes_the_final_check") {
        return;
    }
    let lab = chain(
        "scnup",
        "  - {at: 0s, check: true}\n  - {at: 200ms, link: \"r1:eth1\", state: down}\n  - {at: 400ms, link: \"r1:eth1\", state: up}\n  - {at: 500ms, check: true}\n",
    );
    lab.up();
    let (code, out, err) = run(&["run-scenario", &lab.name, "--timeout", "1"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("[2] link r1:eth1 up"), "{out}");
    assert!(out.contains("[3] check: passed"), "{out}");
    assert!(out.contains("2 check(s), 0 failed: PASS"), "{out}");
    assert_eq!(r1_eth1(&lab), "up");
    lab.assert_ping("h1", "10.0.2.2");
}

#[test]
fn the_api_runs_a_built_scenario_with_a_node_restart() {
    if !can_build_labs("the_api_runs_a_built_scenario_with_a_node_restart") {
        return;
    }
    let ms = Duration::from_millis;
    let link = |state| StepAction::Link {
        node: "r1".into(),
        iface: "eth1".into(),
        state,
    };
    let topology = Topology::builder("scnapi")
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
        .expect_reach("h1", "h2")
        .scenario_step(ms(0), StepAction::Check)
        .scenario_step(ms(100), link(LinkState::Down))
        .scenario_step(ms(200), link(LinkState::Up))
        .scenario_step(
            ms(300),
            StepAction::Node {
                node: "r1".into(),
                action: NodeAction::Restart,
            },
        )
        .scenario_step(ms(400), StepAction::Check)
        .build()
        .expect("valid");
    let mut lab = lab_options().up(&topology).expect("up");
    let r1_before = lab.exec("r1", ["cat", "/proc/1/stat"]).expect("exec");
    let report = lab.run_scenario(Duration::from_secs(1)).expect("run");
    assert!(report.passed, "{}", report.summary());
    assert_eq!(report.steps.len(), 5);
    let checks: Vec<Option<bool>> = report.steps.iter().map(|s| s.passed()).collect();
    assert_eq!(checks, [Some(true), None, None, None, Some(true)]);
    for (step, at) in report.steps.iter().zip([0, 100, 200, 300, 400]) {
        assert!(step.started >= ms(at), "{}", step.line());
    }
    // r1 was restarted: its init is a new process, which the lab follows.
    let r1_after = lab
        .exec("r1", ["cat", "/proc/1/stat"])
        .expect("exec after restart");
    assert_ne!(r1_before.stdout_text(), r1_after.stdout_text());
    let ping = lab
        .exec("h1", ["ping", "-c", "1", "-W", "1", "10.0.2.2"])
        .expect("ping");
    assert!(ping.success(), "{}", ping.stderr_text());
}

#[test]
fn the_ospf_triangle_reroutes_round_a_failed_link() {
    if !can_build_labs("the_ospf_triangle_reroutes_round_a_failed_link") {
        return;
    }
    if !Path::new("/usr/lib/frr/zebra").is_file() {
        skipped(format_args!(
            "the_ospf_triangle_reroutes_round_a_failed_link: /usr/lib/frr/zebra is not installed (Debian package frr)"
        ));
        return;
    }
    // The example itself, under a lab name of this test run.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let text = std::fs::read_to_string(root.join("ospf-triangle.yml")).expect("example");
    let lab = TestLab::new("scnospf", &text.replace("name: ospf-triangle", "name: LAB"));
    let files = lab.dir.join("files");
    std::os::unix::fs::symlink(root.join("files"), &files).expect("link files/");
    lab.up();
    let started = Instant::now();
    let (code, out, err) = run(&["run-scenario", &lab.name]);
    let took = started.elapsed();
    let (_, routes, _) = lab.exec("r1", &["ip", "-4", "route", "show", "10.3.0.0/24"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}\nr1: {routes}");
    assert_eq!(out.matches("check: passed").count(), 3, "{out}");
    assert!(out.contains("[1] link r1:to-r3 down"), "{out}");
    eprintln!("{out}run-scenario took {took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    // Back on the direct link, learnt from OSPF.
    assert!(
        routes.contains("dev to-r3 proto ospf"),
        "r1's route to h3's LAN: {routes}"
    );
}

#[test]
fn unknown_labs_and_labs_without_a_scenario_are_bad_input() {
    if !can_build_labs("unknown_labs_and_labs_without_a_scenario_are_bad_input") {
        return;
    }
    let (code, _, err) = run(&["run-scenario", "no-such-lab-scn"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no lab no-such-lab-scn"), "{err}");
    let lab = TestLab::new(
        "scnnone",
        "name: LAB\ntopology:\n  nodes:\n    a: {}\n    b: {}\n  links:\n    - endpoints: [\"a:eth0\", \"b:eth0\"]\n",
    );
    lab.up();
    let (code, _, err) = run(&["run-scenario", &lab.name]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has no scenario"), "{err}");
}

#[test]
fn bad_scenarios_are_refused_with_key_paths() {
    let lab = chain(
        "scnbad",
        r#"  - {at: 2s, check: true}
  - {at: 3s, node: r9, action: restart}
  - {at: 1s, check: true}
  - {at: 4, check: true}
  - {at: 5s, link: "r1:eth7", state: down}
  - {at: 6s, link: "r1:eth0", state: sideways}
  - {at: 7s, check: true, node: r1, action: stop}
  - {at: 8s}
  - {at: 9s, node: r1, action: start}
  - {at: 10s, node: h1, action: stop}
  - {at: 11s, link: "h1:eth0", state: up}
  - {at: 12s, node: h1, action: reboot}
  - {link: "r1:eth0", state: down}
  - {at: 14s, state: down, check: true}
"#,
    );
    let (code, out, err) = run(&["validate", lab.file()]);
    assert_eq!(code, 2, "{out}{err}");
    for want in [
        "scenario[1].node: no node \"r9\"",
        "scenario[2].at: 1s is before the step above it (3s)",
        "scenario[3].at: \"4\" needs a unit",
        "scenario[4].link: \"r1:eth7\": \"eth7\" is not an interface of node \"r1\"",
        "scenario[5].state: state \"sideways\" is not up or down",
        "scenario[6]: a step has exactly one of link, node or check",
        "scenario[7]: a step needs one of link, node or check",
        "scenario[8].action: node \"r1\" is running here: start follows a stop",
        "scenario[10].link: node \"h1\" is stopped by a step above",
        "scenario[11].action: action \"reboot\" is not stop, start or restart",
        "scenario[12].at: missing",
        "scenario[13].state: state goes with link",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // Step 9 (stop h1) is valid: no problem names it.
    assert!(!err.contains("scenario[9]"), "{err}");
    // `up` refuses the same file before building anything.
    let (code, _, err) = run(&["up", lab.file()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("scenario[1].node"), "{err}");
}
