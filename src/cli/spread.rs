//! The command line on a spread lab (a file with `hosts:`): `up` and
//! `down` drive every host; a verb on a node runs on its host, a verb on
//! the lab on every host, merged here. A remote nslab (`NSLAB_HERE` set)
//! acts on its own part and never forwards.

use std::io::IsTerminal;
use std::process::Stdio;

use super::{Command, EXIT_FAILED, EXIT_INVALID, Outcome, failed};
use crate::lab::LabView;
use crate::spec::Topology;
use crate::spread::forward::{failure, on_every_host, on_node_host};
use crate::spread::record::{self, Record};
use crate::spread::{self, HERE_ENV, SpreadError};

/// Whether this nslab was run by a controller for its own part.
pub(super) fn here() -> bool {
    std::env::var_os(HERE_ENV).is_some()
}

/// `up FILE` of a file with `hosts:`.
pub(super) fn up(topology: &Topology, reconfigure: bool, quiet: bool) -> Outcome {
    let options = spread::UpOptions { reconfigure };
    let report = spread::up(topology, &options).map_err(spread_failure)?;
    if !quiet {
        let nodes: usize = report.hosts.iter().map(|h| h.1).sum();
        println!(
            "lab {} is up over {} host(s): {nodes} node(s), {} cross-host link(s) in {:.3} s",
            report.lab,
            report.hosts.len(),
            report.tunnels,
            report.total.as_secs_f64()
        );
        for (host, nodes, took) in &report.hosts {
            println!(
                "  host {host}: {nodes} node(s) in {:.3} s",
                took.as_secs_f64()
            );
        }
    }
    Ok(0)
}

/// `apply FILE` of a file with `hosts:`: each host's nslab says what it
/// changed, under the host's name.
pub(super) fn apply(
    topology: &Topology,
    dry_run: bool,
    recreate: &[String],
    quiet: bool,
) -> Outcome {
    let options = spread::ApplyOptions {
        dry_run,
        recreate: recreate.to_vec(),
    };
    let report = spread::apply(topology, &options).map_err(spread_failure)?;
    if !quiet || dry_run {
        for (host, said) in &report.hosts {
            if !host.is_empty() {
                println!("host {host}:");
            }
            print!("{said}");
            if !said.ends_with('\n') {
                println!();
            }
        }
    }
    if !quiet && !dry_run {
        println!(
            "lab {}: applied over {} host(s) in {:.3} s",
            report.lab,
            report.hosts.len(),
            report.total.as_secs_f64()
        );
    }
    Ok(0)
}

/// `down` of `lab` when this machine has its record: `None` when it has
/// none (a lab of this host's).
pub(super) fn down(lab: &str, quiet: bool) -> Option<Outcome> {
    if here() {
        return None;
    }
    match record::read(lab) {
        Ok(None) => None,
        Err(e) => Some(Err(failed(e))),
        Ok(Some(_)) => Some(spread::down(lab).map_err(spread_failure).map(|report| {
            if !quiet {
                println!(
                    "lab {}: removed from {} host(s) in {:.3} s",
                    report.lab,
                    report.hosts,
                    report.total.as_secs_f64()
                );
            }
            0
        })),
    }
}

/// Every spread lab this machine has a record of, taken down (`down --all`).
pub(super) fn down_all(quiet: bool) -> Outcome {
    if here() {
        return Ok(0);
    }
    for lab in record::list().map_err(failed)? {
        if let Some(outcome) = down(&lab, quiet) {
            outcome?;
        }
    }
    Ok(0)
}

fn spread_failure(e: SpreadError) -> (i32, String) {
    match e {
        SpreadError::Exists { .. }
        | SpreadError::NoNode { .. }
        | SpreadError::Plan(_)
        | SpreadError::Refused { .. } => (EXIT_INVALID, e.to_string()),
        SpreadError::Hosts { .. } => (EXIT_FAILED, format!("on the hosts of the lab:\n  {e}")),
        e => failed(e),
    }
}

/// Runs `command` on the hosts of its spread lab when it names one this
/// machine has a record of: `None` otherwise (it runs here).
pub(super) fn route(command: &Command) -> Option<Outcome> {
    if here() {
        return None;
    }
    let (target, scope) = match command {
        Command::Exec(args) => match args.target() {
            (lab, true) => (lab, Scope::Lab { json: false }),
            (target, false) => (target, Scope::Node),
        },
        Command::Capture(args) => (args.target(), Scope::Node),
        Command::Impair(args) => (args.target(), Scope::Node),
        Command::Link(args) => (args.target(), Scope::Node),
        Command::Node(args) => (args.target(), Scope::Node),
        Command::Check(args) => (args.lab(), Scope::Lab { json: args.json() }),
        Command::Stats(args) => match args.lab() {
            (Some(lab), json, true) => (lab, Scope::Stream { json }),
            (Some(lab), json, false) => (lab, Scope::Lab { json }),
            (None, ..) => return None,
        },
        Command::Events(args) => match args.lab() {
            (Some(lab), json) => (lab, Scope::Stream { json }),
            (None, _) => return None,
        },
        Command::RunScenario(args) => {
            let (lab, timeout) = args.lab();
            (lab, Scope::Scenario { timeout })
        }
        Command::Inspect(args) => match args.lab() {
            (Some(lab), json) => (lab, Scope::Inspect { json }),
            (None, _) => return None,
        },
        _ => return None,
    };
    let lab = target.split_once('/').map_or(target, |(lab, _)| lab);
    let record = match record::read(lab) {
        Ok(Some(record)) => record,
        Ok(None) | Err(_) => return None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    Some(match scope {
        Scope::Node => on_node(&record, target, args),
        Scope::Lab { json } => on_lab(&record, &args, json),
        Scope::Stream { json } => stream(&record, &args, json),
        Scope::Inspect { json } => inspect(&record, json),
        Scope::Scenario { timeout } => run_scenario(&record, timeout),
    })
}

enum Scope {
    /// Run on the node's host.
    Node,
    /// Run on every host; the outputs one after the other (JSON: one
    /// object, by host).
    Lab { json: bool },
    /// Run on every host until each ends; lines as they come, with their
    /// host.
    Stream { json: bool },
    /// `inspect`: merged.
    Inspect { json: bool },
    /// `run-scenario`: played from here.
    Scenario { timeout: std::time::Duration },
}

/// `run-scenario LAB` of a spread lab: a line per step as it is done, then
/// the summary; exit 1 when a check failed or a step could not be done.
fn run_scenario(record: &Record, timeout: std::time::Duration) -> Outcome {
    if record.scenario.is_empty() {
        return Err((EXIT_INVALID, format!("lab {} has no scenario", record.lab)));
    }
    let started = std::time::Instant::now();
    let steps = match spread::scenario::run(record, timeout, |step| println!("{}", step.line())) {
        Ok(steps) => steps,
        Err((_, e)) => return Err((EXIT_FAILED, format!("a step could not be done: {e}"))),
    };
    let checks: Vec<bool> = steps
        .iter()
        .filter_map(|s| s.check.as_ref().map(Result::is_ok))
        .collect();
    let failed = checks.iter().filter(|p| !**p).count();
    println!(
        "scenario {}: {} step(s) in {:.3}s; {} check(s), {} failed: {}",
        record.lab,
        steps.len(),
        started.elapsed().as_secs_f64(),
        checks.len(),
        failed,
        if failed == 0 { "PASS" } else { "FAIL" }
    );
    Ok(if failed == 0 { 0 } else { EXIT_FAILED })
}

/// A verb on one node, run by its host's nslab with this terminal.
fn on_node(record: &Record, target: &str, mut args: Vec<String>) -> Outcome {
    let node = target.split_once('/').map_or("", |(_, rest)| rest);
    let node = node.split_once(':').map_or(node, |(node, _)| node);
    // A capture file is written here: the host sends the packets.
    let file = capture_file(&mut args);
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal() && file.is_none();
    let (host, mut command) = on_node_host(record, node, &args, tty).map_err(spread_failure)?;
    if let Some(path) = file {
        let out = std::fs::File::create(&path).map_err(|e| failed(format_args!("{path}: {e}")))?;
        command.stdout(Stdio::from(out));
    }
    let status = command
        .status()
        .map_err(|e| failed(format_args!("host {host}: ssh could not start: {e}")))?;
    Ok(status.code().unwrap_or(EXIT_FAILED))
}

/// `capture -w FILE` (not `-`) becomes `-w -` with FILE returned, to be
/// written on this machine.
fn capture_file(args: &mut [String]) -> Option<String> {
    if args.first().map(String::as_str) != Some("capture") {
        return None;
    }
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].clone();
        if arg == "--" {
            break;
        }
        if (arg == "-w" || arg == "--write") && i + 1 < args.len() && args[i + 1] != "-" {
            return Some(std::mem::replace(&mut args[i + 1], "-".into()));
        }
        for prefix in ["--write=", "-w"] {
            if let Some(path) = arg
                .strip_prefix(prefix)
                .filter(|p| !p.is_empty() && *p != "-")
            {
                let path = path.to_owned();
                args[i] = format!("{prefix}-");
                return Some(path);
            }
        }
        i += 1;
    }
    None
}

/// A verb on the lab, run by every host's nslab: each host's output under
/// its name (with `json`, one object: `{"lab": LAB, "hosts": {HOST:
/// OUTPUT}}`); the exit code is the worst.
fn on_lab(record: &Record, args: &[String], json: bool) -> Outcome {
    let mut worst = 0;
    let mut by_host = serde_json::Map::new();
    for (host, result) in on_every_host(record, args) {
        let output =
            result.map_err(|e| failed(format_args!("host {host}: ssh could not start: {e}")))?;
        // A host without nodes has no part: nothing to say.
        if !record.nodes.values().any(|h| *h == host) {
            continue;
        }
        worst = worst.max(output.status.code().unwrap_or(EXIT_FAILED));
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        if json {
            let value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&output.stdout).into_owned())
            });
            by_host.insert(host, value);
        } else {
            println!("host {host}:");
            print!("{}", String::from_utf8_lossy(&output.stdout));
        }
    }
    if json {
        let all = serde_json::json!({"lab": record.lab, "hosts": by_host});
        println!("{}", serde_json::to_string_pretty(&all).map_err(failed)?);
    }
    Ok(worst)
}

/// A verb that streams (`events`, `stats --watch`), run by every host's
/// nslab at once until each ends (the lab down, or Ctrl-C, which reaches
/// every ssh): each line printed as it comes, after its host's name, or
/// with `json` a JSON object line given a `"host"` member.
fn stream(record: &Record, args: &[String], json: bool) -> Outcome {
    use std::io::{BufRead, Write};
    let hosts: Vec<&String> = (record.hosts.keys())
        .filter(|h| record.nodes.values().any(|n| n == *h))
        .collect();
    let mut children = Vec::new();
    for host in hosts {
        let (_, mut command) = on_node_host(record, first_node_on(record, host), args, false)
            .map_err(spread_failure)?;
        command.stdout(Stdio::piped());
        // ssh ends with this process, however it ends (Ctrl-C reaches
        // both, a kill only this one): nothing keeps streaming for no one.
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of
        // the parent; it runs in the forked child before exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                match libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
        }
        let child = command
            .spawn()
            .map_err(|e| failed(format_args!("host {host}: ssh could not start: {e}")))?;
        children.push((host.clone(), child));
    }
    let out = std::sync::Mutex::new(std::io::stdout());
    let readers: Vec<(String, Option<std::process::ChildStdout>)> = (children.iter_mut())
        .map(|(host, child)| (host.clone(), child.stdout.take()))
        .collect();
    std::thread::scope(|scope| {
        for (host, stdout) in readers {
            let out = &out;
            scope.spawn(move || {
                let lines = stdout
                    .map(std::io::BufReader::new)
                    .into_iter()
                    .flat_map(|r| r.lines());
                for line in lines {
                    let Ok(line) = line else { break };
                    let line = match serde_json::from_str::<serde_json::Value>(&line) {
                        Ok(serde_json::Value::Object(mut object)) if json => {
                            object.insert("host".into(), host.as_str().into());
                            serde_json::Value::Object(object).to_string()
                        }
                        _ => format!("{host}: {line}"),
                    };
                    let mut out = out
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let codes: Vec<i32> = (children.iter_mut())
        .map(|(_, child)| {
            child
                .wait()
                .ok()
                .and_then(|s| s.code())
                .unwrap_or(EXIT_FAILED)
        })
        .collect();
    Ok(codes.into_iter().max().unwrap_or(0))
}

/// A node of `host`, to reach that host by.
fn first_node_on<'a>(record: &'a Record, host: &str) -> &'a str {
    (record.nodes.iter())
        .find(|(_, h)| *h == host)
        .map_or("", |(node, _)| node.as_str())
}

/// `inspect LAB`: every host's view of its part, merged into one lab with
/// each node's host.
fn inspect(record: &Record, json: bool) -> Outcome {
    let args = ["inspect", &record.lab, "--json"].map(String::from);
    let mut merged: Option<LabView> = None;
    let mut problems = Vec::new();
    for (host, result) in on_every_host(record, &args) {
        if !record.nodes.values().any(|h| *h == host) {
            continue;
        }
        let output = match result {
            Ok(output) if output.status.success() => output,
            Ok(output) => {
                problems.push(format!("host {host}: {}", failure(&output)));
                continue;
            }
            Err(e) => {
                problems.push(format!("host {host}: ssh could not start: {e}"));
                continue;
            }
        };
        let views: Vec<LabView> = serde_json::from_slice(&output.stdout)
            .map_err(|e| failed(format_args!("host {host}: its inspect output: {e}")))?;
        for mut view in views {
            for node in &mut view.nodes {
                node.host = Some(host.clone());
            }
            match &mut merged {
                None => merged = Some(view),
                Some(all) => {
                    if view.status != "running" {
                        all.status = view.status;
                    }
                    all.nodes.extend(view.nodes);
                }
            }
        }
    }
    let Some(mut view) = merged else {
        return Err(failed(format_args!(
            "no host has a part of lab {}:\n  {}",
            record.lab,
            problems.join("\n  ")
        )));
    };
    if !problems.is_empty() {
        view.status = "degraded".into();
    }
    // The file's order, whatever host answered first.
    view.nodes
        .sort_by_key(|n| record.nodes.get_index_of(&n.name).unwrap_or(usize::MAX));
    if json {
        let text = serde_json::to_string_pretty(&[&view]).map_err(failed)?;
        println!("{text}");
    } else {
        super::inspect::print_views(std::slice::from_ref(&view));
        for tunnel in &record.tunnels {
            println!("  tunnel {tunnel}");
        }
    }
    for problem in &problems {
        eprintln!("nslab: {problem}");
    }
    Ok(if problems.is_empty() { 0 } else { EXIT_FAILED })
}
