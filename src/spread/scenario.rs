//! `run-scenario` of a spread lab, played by the controller: each step at
//! its time (or as soon as the step above is done), a link or node step by
//! the node's host, a check step by every host at once (each checks the
//! expectations that start at its nodes; the step passes when all pass).
//! As on one host, a failed check does not stop the run; a step that
//! cannot be done does.

use std::time::{Duration, Instant};

use super::record::Record;
use super::{SpreadError, on_each, ssh};
use crate::spec::{NodeAction, StepAction};

/// One step done: when it started, what it was, and for a check step
/// whether it passed and what each failing host said.
#[derive(Debug, Clone)]
pub struct SpreadStep {
    pub index: usize,
    pub started: Duration,
    pub action: StepAction,
    pub check: Option<Result<(), Vec<(String, String)>>>,
}

impl SpreadStep {
    /// `+2.001s  [0] link r1:eth0 down`, a check with its result.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{:>9}  [{}] {}",
            format!("+{:.3}s", self.started.as_secs_f64()),
            self.index,
            self.action
        );
        match &self.check {
            Some(Ok(())) => line.push_str(": passed on every host"),
            Some(Err(failed)) => {
                let hosts: Vec<String> = failed
                    .iter()
                    .map(|(h, why)| format!("host {h}: {why}"))
                    .collect();
                line.push_str(&format!(": FAILED ({})", hosts.join("; ")));
            }
            None => {}
        }
        line
    }
}

/// Plays the record's scenario; every step done, or the step that could
/// not be done (with those before it). `timeout`: each probe's.
pub fn run(
    record: &Record,
    timeout: Duration,
    mut on_step: impl FnMut(&SpreadStep),
) -> Result<Vec<SpreadStep>, (Vec<SpreadStep>, SpreadError)> {
    let lab = &record.lab;
    let start = Instant::now();
    let mut done = Vec::new();
    for (index, step) in record.scenario.steps.iter().enumerate() {
        if let Some(left) = (start + step.at).checked_duration_since(Instant::now()) {
            std::thread::sleep(left);
        }
        let started = start.elapsed();
        let on_host = |node: &str, args: Vec<String>| -> Result<(), SpreadError> {
            let (host, machine) = record.host_of(node).ok_or_else(|| SpreadError::NoNode {
                lab: lab.clone(),
                node: node.into(),
            })?;
            let fail = |why| SpreadError::Hosts {
                failures: vec![(host.to_owned(), why)],
            };
            let output = ssh::run(machine, &args, None)
                .map_err(|e| fail(format!("ssh could not start: {e}")))?;
            match output.status.success() {
                true => Ok(()),
                false => Err(fail(ssh::failure(&output))),
            }
        };
        let result = match &step.action {
            StepAction::Link { node, iface, state } => on_host(
                node,
                vec![
                    "link".into(),
                    state.to_string(),
                    format!("{lab}/{node}:{iface}"),
                ],
            )
            .map(|()| None),
            StepAction::Node { node, action } => {
                let verb = match action {
                    NodeAction::Stop => "stop",
                    NodeAction::Start => "start",
                    NodeAction::Restart => "restart",
                };
                on_host(
                    node,
                    vec!["node".into(), verb.into(), format!("{lab}/{node}")],
                )
                .map(|()| None)
            }
            StepAction::Check => Ok(Some(check(record, timeout))),
        };
        match result {
            Ok(check) => {
                let report = SpreadStep {
                    index,
                    started,
                    action: step.action.clone(),
                    check,
                };
                on_step(&report);
                done.push(report);
            }
            Err(e) => return Err((done, e)),
        }
    }
    Ok(done)
}

/// `nslab check LAB` on every host with nodes: the hosts whose check did
/// not pass, with the last lines it said.
fn check(record: &Record, timeout: Duration) -> Result<(), Vec<(String, String)>> {
    let hosts: Vec<_> = (record.hosts.iter())
        .filter(|(h, _)| record.nodes.values().any(|n| n == *h))
        .collect();
    let args = [
        "check".to_owned(),
        record.lab.clone(),
        "--timeout".into(),
        format!("{}", timeout.as_secs_f64()),
    ];
    let failed: Vec<(String, String)> = on_each(&hosts, |(host, machine)| {
        match ssh::run(machine, &args, None) {
            Ok(output) if output.status.success() => None,
            Ok(output) => {
                let said = String::from_utf8_lossy(&output.stdout);
                let failing: Vec<&str> = said
                    .lines()
                    .filter(|l| l.starts_with("check: FAIL"))
                    .collect();
                let why = match failing.is_empty() {
                    true => ssh::failure(&output),
                    false => failing.join("; "),
                };
                Some(((*host).clone(), why))
            }
            Err(e) => Some(((*host).clone(), format!("ssh could not start: {e}"))),
        }
    })
    .into_iter()
    .flatten()
    .collect();
    match failed.is_empty() {
        true => Ok(()),
        false => Err(failed),
    }
}
