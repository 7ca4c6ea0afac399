//! `up` and `down` on the fake kernel: what a failing `up` rolls back, in
//! which order, and what its journal holds when the rollback reads it.

use std::collections::BTreeSet;

use super::Kernel;
use super::fake::{Change, FakeKernel};
use crate::lab::down::teardown_locked;
use crate::lab::up::{UpOptions, up_on};
use crate::lab::{LabError, Progress};
use crate::plan::Plan;
use crate::state::{Entry, Recorded};
use crate::topology;

/// Every kind of step: id blocks (h2 has a user namespace), inits, names,
/// a bridge, a host link, addresses (v4 and v6), routes, an impairment, a
/// sysctl naming an interface, a link end set down, exec.
const EVERYTHING: &str = r#"
name: fakelab
topology:
  defaults:
    sysctls: {net.ipv4.ip_forward: 1}
  nodes:
    h1:
      routes: ["default via 10.0.1.1"]
      exec: ["echo up > /tmp/state"]
    r1:
      routes: ["10.9.0.0/24 via 10.0.2.2"]
      sysctls: {net.ipv4.conf.eth1.rp_filter: 2}
    h2:
      routes: ["default via 10.0.2.1"]
      userns: true
    sw: {kind: bridge}
  links:
    - endpoints: ["h1:eth0", "r1:eth0"]
      ipv4: [10.0.1.2/24, 10.0.1.1/24]
      ipv6: ["2001:db8:1::2/64", "2001:db8:1::1/64"]
      impair: [{rate: 10mbit}, null]
    - endpoints: ["r1:eth1", "sw:p1"]
      ipv4: [10.0.2.1/24, null]
    - endpoints: ["h2:eth0", "sw:p2"]
      ipv4: [10.0.2.2/24, null]
      state: [down, null]
    - endpoints: ["host:fk0", "sw:p3"]
      ipv4: [10.0.3.1/30, null]
"#;

fn plan() -> Plan {
    let topology =
        topology::parse_str(EVERYTHING, "fakelab.yml".as_ref(), ".".as_ref()).expect("valid");
    Plan::from_topology(&topology)
}

/// The standing entries of a journal, by kind.
#[derive(Debug, Default, PartialEq, Eq)]
struct Journaled {
    inits: BTreeSet<(String, i32)>,
    names: BTreeSet<String>,
    host_links: BTreeSet<String>,
    ready: bool,
}

fn journaled(recorded: &Recorded) -> Journaled {
    let mut out = Journaled::default();
    for entry in recorded.standing() {
        match entry {
            Entry::Init { node, pid } => {
                out.inits.insert((node.clone(), *pid));
            }
            Entry::NetnsName { name } => {
                out.names.insert(name.clone());
            }
            Entry::HostLink { name } => {
                out.host_links.insert(name.clone());
            }
            Entry::Ready => out.ready = true,
            Entry::Stopped { .. } | Entry::Removed { .. } | Entry::Step { .. } => {
                unreachable!("up stops, removes and applies nothing")
            }
            Entry::Retracted(_) => unreachable!("standing() leaves retractions out"),
        }
    }
    out
}

/// What the log says was built: inits, names reserved, host ends of the
/// veths made.
fn built(log: &[Change], plan: &Plan) -> Journaled {
    let mut out = Journaled::default();
    for change in log {
        match change {
            Change::Init { node, pid } => {
                out.inits.insert((node.clone(), *pid));
            }
            Change::ReserveName(name) => {
                out.names.insert(name.clone());
            }
            Change::Request(what) => {
                for link in &plan.links {
                    if *what == format!("veth link {}", plan.link_label(link)) {
                        out.host_links.extend(
                            link.endpoints
                                .iter()
                                .filter(|e| e.place == crate::plan::Place::Host)
                                .map(|e| e.ifname.clone()),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn is_teardown(change: &Change) -> bool {
    matches!(
        change,
        Change::Terminate(_)
            | Change::RemoveName(_)
            | Change::DeleteHostLink { .. }
            | Change::RemoveCgroups(_)
            | Change::ReleaseIds(_)
    )
}

#[test]
fn a_whole_up_journals_everything_and_down_removes_it_all() {
    let plan = plan();
    let kernel = FakeKernel::new("whole", None);
    let report = up_on(&kernel, &plan, &UpOptions::default()).expect("up on the fake");
    assert_eq!((report.nodes, report.links), (4, 4));
    let log = kernel.log();
    assert!(!log.iter().any(is_teardown), "{log:#?}");
    // Every step the plan asks for, each once.
    let requests = |prefix: &str| {
        log.iter()
            .filter(|c| matches!(c, Change::Request(w) if w.starts_with(prefix)))
            .count()
    };
    assert_eq!(requests("bridge sw"), 1);
    assert_eq!(requests("veth "), 4);
    assert_eq!(requests("mark host:fk0"), 1);
    assert_eq!(requests("address "), 7);
    assert_eq!(requests("bridge port "), 3);
    assert_eq!(requests("up "), 5);
    assert_eq!(requests("node "), 3, "routes");
    assert_eq!(requests("qdisc on h1:eth0"), 1);
    assert_eq!(requests("down h2:eth0"), 1);
    assert!(log.contains(&Change::Sysctls(vec!["r1".into()])));
    assert!(log.contains(&Change::Exec {
        node: "h1".into(),
        command: "echo up > /tmp/state".into()
    }));
    // Phases in order: inits before any wiring, the bridge before the
    // veths, veths before addresses, addresses before routes, exec last.
    let first = |f: &dyn Fn(&Change) -> bool| log.iter().position(f).expect("present");
    let last = |f: &dyn Fn(&Change) -> bool| log.iter().rposition(f).expect("present");
    let request = |prefix: &'static str| move |c: &Change| matches!(c, Change::Request(w) if w.starts_with(prefix));
    assert!(last(&|c| matches!(c, Change::Init { .. })) < first(&request("bridge sw")));
    assert!(last(&request("bridge sw")) < first(&request("veth ")));
    assert!(last(&request("veth ")) < first(&request("address ")));
    assert!(last(&request("address ")) < first(&request("node ")));
    assert!(last(&request("node ")) < first(&request("qdisc ")));
    // Ends set down last: routes through them were added while up.
    assert!(last(&request("qdisc ")) < first(&request("down ")));
    assert!(matches!(log.last(), Some(Change::Exec { .. })));

    // The journal: every init, name and host link, then ready.
    let recorded = crate::state::read_in(kernel.state_root(), &plan.lab)
        .expect("readable")
        .expect("state");
    let journal = journaled(&recorded);
    assert!(journal.ready);
    assert_eq!(journal.inits, built(&log, &plan).inits);
    assert_eq!(journal.names.len(), 4);
    assert_eq!(journal.names, built(&log, &plan).names);
    assert_eq!(journal.host_links, BTreeSet::from(["fk0".to_string()]));

    let report = teardown_locked(&kernel, &plan.lab, &Progress::default()).expect("down");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        (report.nodes, report.netns_names, report.state),
        (4, 4, true)
    );
    assert_eq!(kernel.leftovers(), (vec![], vec![], vec![]));
    assert_eq!(report.cgroups, 1);
    assert!(kernel.cgroups_left().is_empty());
    assert_eq!(report.id_blocks, 1);
    assert!(kernel.id_blocks_left().is_empty());
}

#[test]
fn up_refused_at_any_step_rolls_back_exactly_what_it_built() {
    let steps = rolls_back_at_every_step("refuse", &plan(), &[]);
    assert!(steps >= 30, "only {steps} steps");
}

/// Refuses each kernel-changing step of `up` of `plan` in turn (on a
/// fake whose host has the interfaces `host_links` of its own) and checks
/// that exactly what was built is rolled back, the host's own interfaces
/// left. Returns how many steps a whole `up` takes.
fn rolls_back_at_every_step(tag: &str, plan: &Plan, host_links: &[&str]) -> usize {
    let fake = |k: Option<usize>| {
        (host_links.iter()).fold(FakeKernel::new(tag, k), |kernel, name| {
            kernel.with_host_link(name)
        })
    };
    let whole = fake(None);
    up_on(&whole, plan, &UpOptions::default()).expect("up on the fake");
    let steps = whole.steps();
    let hosts: Vec<String> = (host_links.iter())
        .map(|name| format!("{}:{name}", std::process::id()))
        .collect();
    for k in 1..=steps {
        let kernel = fake(Some(k));
        let error = up_on(&kernel, plan, &UpOptions::default()).expect_err("refused");
        let LabError::RolledBack { rollback, .. } = &error else {
            panic!("k={k}: not rolled back: {error}");
        };
        assert!(!rollback.contains("errors"), "k={k}: {rollback}");
        let log = kernel.log();
        let refused = log
            .iter()
            .position(|c| matches!(c, Change::Refused(_)))
            .unwrap_or_else(|| panic!("k={k}: nothing refused: {log:#?}"));
        // The rollback comes after everything `up` did; `up` did nothing
        // after it.
        let teardown_at = log.iter().position(is_teardown).unwrap_or(log.len());
        assert!(teardown_at > refused, "k={k}: {log:#?}");
        assert!(
            log[teardown_at..].iter().all(is_teardown),
            "k={k}: up went on during its rollback: {log:#?}"
        );
        let made = built(&log[..teardown_at], plan);

        // The journal as the rollback read it holds every object made.
        let journal = journaled(&kernel.last_journal().expect("journal read"));
        assert!(!journal.ready, "k={k}");
        assert_eq!(journal.inits, made.inits, "k={k}: inits");
        assert_eq!(journal.names, made.names, "k={k}: names");
        assert_eq!(journal.host_links, made.host_links, "k={k}: host links");

        // The rollback: the inits made end together (the kernel takes
        // their namespaces, with every link, address, route and qdisc in
        // them); then the names made, which held those namespaces; then
        // the lab's host ends, if any is still there. Nothing else.
        let mut expected = Vec::new();
        if !made.inits.is_empty() {
            let mut pids: Vec<i32> = made.inits.iter().map(|(_, pid)| *pid).collect();
            pids.sort();
            expected.push(Change::Terminate(pids));
        }
        expected.extend(made.names.iter().cloned().map(Change::RemoveName));
        // Then the cgroups, when they were made (found by the lab's name).
        if log[..teardown_at]
            .iter()
            .any(|c| matches!(c, Change::MakeCgroups(_)))
        {
            expected.push(Change::RemoveCgroups(plan.lab.clone()));
        }
        // Then the id blocks, when they were claimed (found by name too).
        if log[..teardown_at]
            .iter()
            .any(|c| matches!(c, Change::ClaimIds(_)))
        {
            expected.push(Change::ReleaseIds(plan.lab.clone()));
        }
        let teardown: Vec<Change> = log[teardown_at..]
            .iter()
            .filter(|c| {
                !matches!(
                    c,
                    Change::DeleteHostLink {
                        was_there: false,
                        ..
                    }
                )
            })
            .cloned()
            .collect();
        assert_eq!(teardown, expected, "k={k}: {log:#?}");
        for change in &log[teardown_at..] {
            if let Change::DeleteHostLink { name, .. } = change {
                assert!(made.host_links.contains(name), "k={k}: deleted {name}");
            }
        }

        // Nothing left: no init, name or link (the host's own are
        // there still), no state, lock or root.
        assert_eq!(
            kernel.leftovers(),
            (vec![], vec![], hosts.clone()),
            "k={k}: {log:#?}"
        );
        assert!(!kernel.state_root_exists(), "k={k}: state left");
        assert!(kernel.cgroups_left().is_empty(), "k={k}: cgroups left");
        assert!(kernel.id_blocks_left().is_empty(), "k={k}: id blocks left");
    }
    steps
}

/// A macvlan on the host's `xq-nope9`, a vxlan and a dummy, each with an
/// address; the dummy impaired and kept down.
const DEVICES: &str = r#"
name: fakedev
topology:
  nodes:
    a: {}
    b: {}
  links:
    - endpoints: ["a:eth0", "b:eth0"]
    - endpoints: ["a:mv0"]
      macvlan: {parent: xq-nope9}
      ipv4: [10.0.9.2/24]
    - endpoints: ["b:vx0"]
      vxlan: {remote: 192.0.2.1, vni: 100}
      ipv4: [10.0.8.2/24]
    - endpoints: ["b:d0"]
      dummy: true
      ipv6: ["2001:db8:9::1/64"]
      impair: {delay: 5ms}
      state: [down]
"#;

#[test]
fn devices_are_made_after_the_veths_from_the_host_and_go_with_their_nodes() {
    let topology =
        topology::parse_str(DEVICES, "fakedev.yml".as_ref(), ".".as_ref()).expect("valid");
    let plan = Plan::from_topology(&topology);
    let kernel = FakeKernel::new("devices", None).with_host_link("xq-nope9");
    up_on(&kernel, &plan, &UpOptions::default()).expect("up on the fake");
    let log = kernel.log();
    let at = |what: &str| {
        (log.iter())
            .position(|c| matches!(c, Change::Request(w) if w == what))
            .unwrap_or_else(|| panic!("no {what:?}: {log:#?}"))
    };
    let macvlan = at("macvlan a:mv0 on xq-nope9 (bridge)");
    let vxlan = at("vxlan b:vx0 to 192.0.2.1 vni 100 port 14789");
    let dummy = at("dummy b:d0");
    let veth = at("veth link a:eth0 <-> b:eth0");
    assert!(veth < macvlan.min(vxlan).min(dummy), "{log:#?}");
    let devices_made = macvlan.max(vxlan).max(dummy);
    for later in [
        "address 10.0.9.2/24 on a:mv0",
        "address 10.0.8.2/24 on b:vx0",
        "address 2001:db8:9::1/64 on b:d0",
        "up a:mv0",
        "qdisc on b:d0",
        "down b:d0",
    ] {
        assert!(at(later) > devices_made, "{later}: {log:#?}");
    }
    // Born in their nodes, nothing of theirs on the host.
    let (_, _, links) = kernel.leftovers();
    let host = std::process::id();
    let on_host: Vec<&String> = (links.iter())
        .filter(|l| l.starts_with(&format!("{host}:")))
        .collect();
    assert_eq!(on_host, [&format!("{host}:xq-nope9")]);
    teardown_locked(&kernel, &plan.lab, &Progress::default()).expect("down");
    assert_eq!(
        kernel.leftovers(),
        (vec![], vec![], vec![format!("{host}:xq-nope9")])
    );
    rolls_back_at_every_step("devices-refused", &plan, &["xq-nope9"]);
}

#[test]
fn a_missing_parent_fails_naming_it() {
    let topology =
        topology::parse_str(DEVICES, "fakedev.yml".as_ref(), ".".as_ref()).expect("valid");
    let plan = Plan::from_topology(&topology);
    // The real `up` checks parents before anything is built; the fake
    // skips that check, so the request itself finds none and rolls back.
    let kernel = FakeKernel::new("no-parent", None);
    let error = up_on(&kernel, &plan, &UpOptions::default()).expect_err("no xq-nope9");
    assert!(
        error
            .to_string()
            .contains("macvlan a:mv0 on xq-nope9 (bridge): the host has no interface xq-nope9"),
        "{error}"
    );
    assert_eq!(kernel.leftovers(), (vec![], vec![], vec![]));
    let missing = crate::lab::devices::check_parents(&plan, &plan.devices)
        .expect_err("no such host interface");
    assert!(
        missing.to_string().contains("has no interface xq-nope9"),
        "{missing}"
    );
}

/// `up` runs the nodes' `exec` steps in start order: a node's after all of
/// those of the nodes it waits for, the others in file order.
#[test]
fn up_runs_exec_steps_in_start_order() {
    let yaml = r#"
name: order
topology:
  nodes:
    c: {exec: ["c1", "c2"], wait-for: [b]}
    a: {exec: ["a1"], stages: {create: {wait-for: [{node: b, stage: configure}]}}}
    b: {exec: ["b1", "b2"]}
    d: {exec: ["d1"]}
"#;
    let topology = topology::parse_str(yaml, "order.yml".as_ref(), ".".as_ref()).expect("valid");
    let plan = Plan::from_topology(&topology);
    let kernel = FakeKernel::new("order", None);
    up_on(&kernel, &plan, &UpOptions::default()).expect("up on the fake");
    let ran: Vec<String> = (kernel.log().iter())
        .filter_map(|c| match c {
            Change::Exec { command, .. } => Some(command.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ran, ["b1", "b2", "c1", "c2", "a1", "d1"]);
    teardown_locked(&kernel, &plan.lab, &Progress::default()).expect("down");
}
