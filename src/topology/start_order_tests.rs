//! `startup-delay`, `wait-for` and `stages`, through the loader, in
//! nslab's files and containerlab's.

use std::path::Path;

use super::super::tests::{assert_problem_in, problems_of};
use super::super::{Topology, TopologyError, parse_str};

fn nslab(yaml: &str) -> Result<Topology, TopologyError> {
    parse_str(yaml, Path::new("lab.yml"), Path::new("/"))
}

fn clab(yaml: &str) -> Result<Topology, TopologyError> {
    parse_str(
        yaml,
        Path::new("/srv/labs/t.clab.yml"),
        Path::new("/srv/labs"),
    )
}

/// (wait_for, startup_delay) of a node.
fn order_of(t: &Topology, node: &str) -> (Vec<String>, Option<u32>) {
    let n = &t.nodes[node];
    (n.wait_for.clone(), n.startup_delay)
}

#[track_caller]
fn assert_nslab_problem(yaml: &str, path: &str, msg: &str) {
    assert_problem_in(&problems_of(nslab(yaml), Path::new("lab.yml")), path, msg);
}

#[track_caller]
fn assert_clab_problem(yaml: &str, path: &str, msg: &str) {
    let origin = Path::new("/srv/labs/t.clab.yml");
    assert_problem_in(&problems_of(clab(yaml), origin), path, msg);
}

#[test]
fn nslab_files_take_the_keys_on_nodes_and_defaults() {
    let t = nslab(
        "name: o\ntopology:\n  defaults: {startup-delay: 2, wait-for: [a]}\n  nodes:\n    a: {wait-for: [], startup-delay: 0}\n    b: {wait-for: [c, a]}\n    c: {stages: {configure: {wait-for: [{node: a, stage: create-links}]}}}\n    sw: {kind: bridge}\n",
    );
    // `defaults`' waits are every node's, so `a` waits for itself.
    let ps = problems_of(t, Path::new("lab.yml"));
    assert_problem_in(
        &ps,
        "topology.defaults.wait-for[0]",
        "node \"a\" waits for itself",
    );
    assert_eq!(ps.len(), 1, "{ps:#?}");
    let t = nslab(
        "name: o\ntopology:\n  defaults: {startup-delay: 2}\n  nodes:\n    a: {startup-delay: 0}\n    b: {wait-for: [c, a, c]}\n    c: {stages: {configure: {wait-for: [{node: a, stage: create-links}]}}}\n    sw: {kind: bridge}\n",
    )
    .expect("valid");
    assert_eq!(order_of(&t, "a"), (vec![], Some(0)));
    assert_eq!(order_of(&t, "b"), (vec!["c".into(), "a".into()], Some(2)));
    assert_eq!(order_of(&t, "c"), (vec!["a".into()], Some(2)));
    // A bridge runs no steps: `defaults`' order is not its.
    assert_eq!(order_of(&t, "sw"), (vec![], None));
}

#[test]
fn containerlab_levels_add_waits_and_the_most_specific_delay_wins() {
    let yaml = r#"
name: lv
topology:
  defaults:
    startup-delay: 9
    stages: {create: {wait-for: [{node: db, stage: create}]}}
  kinds:
    linux:
      wait-for: [dns]
  groups:
    web:
      startup-delay: 3
      stages:
        create: {wait-for: [{node: db, stage: create}, {node: cache, stage: configure}]}
  nodes:
    db: {kind: bridge}
    dns: {kind: linux}
    cache: {kind: linux}
    w1:
      group: web
      stages: {create-links: {wait-for: [{node: dns, stage: create}]}}
"#;
    // db is a bridge here to show it refused; make it a node for the rest.
    assert_clab_problem(
        yaml,
        "topology.nodes.w1.stages.create.wait-for[0]",
        "\"db\" is a bridge: it runs no `exec` steps to wait for",
    );
    let t = clab(&yaml.replace("db: {kind: bridge}", "db: {kind: linux, wait-for: []}"));
    let ps = problems_of(t, Path::new("/srv/labs/t.clab.yml"));
    // Every linux node inherits the kind's `wait-for: [dns]`, dns too.
    assert_problem_in(
        &ps,
        "topology.nodes.dns.wait-for[0]",
        "node \"dns\" waits for itself",
    );
    let fixed = yaml
        .replace("db: {kind: bridge}", "db: {kind: bridge, image: x}")
        .replace(
            "stages: {create: {wait-for: [{node: db, stage: create}]}}",
            "env: {}",
        )
        .replace("{node: db, stage: create}, ", "")
        .replace("wait-for: [dns]", "wait-for: []");
    let t = clab(&fixed).expect("valid");
    assert_eq!(
        order_of(&t, "w1"),
        (vec!["cache".into(), "dns".into()], Some(3))
    );
    assert_eq!(order_of(&t, "dns"), (vec![], Some(9)));
}

#[test]
fn waits_name_other_nodes_that_run_steps() {
    let base = "name: w\ntopology:\n  nodes:\n    a: {}\n    b: {wait-for: [WHO]}\n    sw: {kind: bridge}\n";
    assert_nslab_problem(
        &base.replace("WHO", "ghost"),
        "topology.nodes.b.wait-for[0]",
        "\"ghost\" is not a node of the lab",
    );
    assert_nslab_problem(
        &base.replace("WHO", "b"),
        "topology.nodes.b.wait-for[0]",
        "node \"b\" waits for itself",
    );
    assert_nslab_problem(
        &base.replace("WHO", "sw"),
        "topology.nodes.b.wait-for[0]",
        "\"sw\" is a bridge",
    );
    assert_nslab_problem(
        &base.replace("sw: {kind: bridge}", "sw: {kind: bridge, startup-delay: 1}"),
        "topology.nodes.sw.startup-delay",
        "a bridge node runs no `exec` steps, so it takes no `startup-delay`",
    );
    assert_nslab_problem(
        &base.replace("WHO", "\"\""),
        "topology.nodes.b.wait-for[0]",
        "empty",
    );
}

#[test]
fn a_cycle_is_named_once_with_its_nodes_in_order() {
    let yaml = "name: c\ntopology:\n  nodes:\n    a: {wait-for: [b]}\n    b: {stages: {create: {wait-for: [{node: c, stage: configure}]}}}\n    c: {wait-for: [a]}\n    d: {wait-for: [e]}\n    e: {wait-for: [d]}\n    f: {wait-for: [a]}\n";
    let ps = problems_of(nslab(yaml), Path::new("lab.yml"));
    assert_eq!(ps.len(), 2, "{ps:#?}");
    assert_problem_in(
        &ps,
        "topology.nodes.a.wait-for[0]",
        "the nodes wait for each other in a cycle: a waits for b, which waits for c, which waits for a; none of them could start",
    );
    assert_problem_in(
        &ps,
        "topology.nodes.d.wait-for[0]",
        "d waits for e, which waits for d",
    );
}

#[test]
fn a_long_chain_of_waits_is_checked_without_recursion() {
    let mut yaml = String::from("name: long\ntopology:\n  nodes:\n    n0: {wait-for: [n19999]}\n");
    for i in 1..20_000 {
        yaml.push_str(&format!("    n{i}: {{wait-for: [n{}]}}\n", i - 1));
    }
    let ps = problems_of(nslab(&yaml), Path::new("lab.yml"));
    assert_eq!(ps.len(), 1);
    assert!(
        ps[0]
            .message
            .contains("n0 waits for n19999, which waits for n19998")
    );
}

#[test]
fn startup_delay_is_whole_seconds_up_to_an_hour() {
    let with = |d: &str| format!("name: d\ntopology:\n  nodes:\n    a: {{startup-delay: {d}}}\n");
    let t = nslab(&with("3600")).expect("an hour");
    assert_eq!(t.nodes["a"].startup_delay, Some(3600));
    for (bad, msg) in [
        (
            "3601",
            "startup-delay 3601 is out of range: give 0 to 3600 seconds",
        ),
        ("-1", "out of range"),
        (
            "5s",
            "startup-delay \"5s\" is not a whole number of seconds",
        ),
        ("\"5\"", "not a whole number of seconds"),
        ("true", "not a whole number of seconds"),
    ] {
        assert_nslab_problem(&with(bad), "topology.nodes.a.startup-delay", msg);
    }
}

#[test]
fn stages_nslab_cannot_honour_are_refused_by_name() {
    let with = |stages: &str| {
        format!("name: s\ntopology:\n  nodes:\n    a: {{}}\n    b:\n      stages: {stages}\n")
    };
    for (stages, path, msg) in [
        (
            "{create: {wait-for: [{node: a, stage: healthy}]}}",
            "topology.nodes.b.stages.create.wait-for[0].stage",
            "cannot wait for \"a\" to be healthy: nslab has no health checks",
        ),
        (
            "{create: {wait-for: [{node: a, stage: exit}]}}",
            "topology.nodes.b.stages.create.wait-for[0].stage",
            "a node of nslab does not exit while its lab runs",
        ),
        (
            "{create: {wait-for: [{node: a, stage: booted}]}}",
            "topology.nodes.b.stages.create.wait-for[0].stage",
            "\"booted\" is not one of containerlab's stages",
        ),
        (
            "{create: {wait-for: [{node: a}]}}",
            "topology.nodes.b.stages.create.wait-for[0].stage",
            "give the stage of \"a\" to wait for",
        ),
        (
            "{create: {wait-for: [{stage: create}]}}",
            "topology.nodes.b.stages.create.wait-for[0].node",
            "give the node to wait for",
        ),
        (
            "{healthy: {wait-for: [{node: a, stage: create}]}}",
            "topology.nodes.b.stages.healthy.wait-for",
            "a node's `healthy` stage cannot wait in nslab",
        ),
        (
            "{exit: {wait-for: [{node: a, stage: create}]}}",
            "topology.nodes.b.stages.exit.wait-for",
            "a node's `exit` stage cannot wait in nslab",
        ),
        (
            "{create-links: {exec: [{command: ls, phase: on-enter}]}}",
            "topology.nodes.b.stages.create-links.exec",
            "containerlab's per-stage `exec` is not supported",
        ),
        (
            "{configure: {exec: {on-exit: [ls]}}}",
            "topology.nodes.b.stages.configure.exec",
            "write them as the node's `exec` steps",
        ),
    ] {
        assert_nslab_problem(&with(stages), path, msg);
        assert_clab_problem(&with(stages), path, msg);
    }
}

#[test]
fn an_unknown_stage_key_is_a_parse_error() {
    let yaml = "name: s\ntopology:\n  nodes:\n    a: {stages: {boot: {}}}\n";
    let err = nslab(yaml).expect_err("unknown stage").to_string();
    assert!(err.contains("unknown field `boot`"), "{err}");
}
