//! `nslab run-scenario`: plays a lab's `scenario:` on the running lab.
//! Each step starts at its time from the start of the run (or as soon as
//! the step above is done, when that took longer): link ends set down or
//! up, nodes stopped, started or restarted, the expectations checked. A
//! failed check does not stop the run; a step that cannot be done does.
//!
//! This layer sits above `check` (a check step is `nslab check`) and
//! `lab` (the link and node steps), below the API and the command line.

use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::check::{CheckReport, Conclusion};
use crate::lab::{self, LabError};
use crate::spec::{LabName, NodeAction, NodeRef, Step, StepAction};
use crate::state;

/// What a run of a scenario did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ScenarioReport {
    pub lab: String,
    /// Every check step passed.
    pub passed: bool,
    /// The whole run.
    pub elapsed: Duration,
    /// Every step, in order.
    pub steps: Vec<StepReport>,
}

/// One step done.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StepReport {
    /// Its place in `scenario:`, from 0.
    pub index: usize,
    pub step: Step,
    /// When it started, from the start of the run (its `at`, or later when
    /// the step above took longer).
    pub started: Duration,
    /// A check step's report.
    pub check: Option<CheckReport>,
}

impl StepReport {
    /// Whether a check step passed (`None` for other steps).
    pub fn passed(&self) -> Option<bool> {
        self.check.as_ref().map(|c| c.passed)
    }

    /// One line, as `nslab run-scenario` prints it: `+2.001s link
    /// r1:eth0 down`, `+8.013s check: passed (1 expectation(s), 0 ms)`, or which
    /// expectations failed and why.
    pub fn line(&self) -> String {
        let mut out = format!(
            "{:>9}  [{}] {}",
            format!("+{:.3}s", self.started.as_secs_f64()),
            self.index,
            self.step.action
        );
        if let Some(check) = &self.check {
            let _ = write!(out, ": {}", check_summary(check));
        }
        out
    }
}

impl ScenarioReport {
    /// The last line of `nslab run-scenario`: steps, time, checks.
    pub fn summary(&self) -> String {
        let checks: Vec<bool> = self.steps.iter().filter_map(StepReport::passed).collect();
        let failed = checks.iter().filter(|p| !**p).count();
        format!(
            "scenario {}: {} step(s) in {:.3}s; {} check(s), {} failed: {}",
            self.lab,
            self.steps.len(),
            self.elapsed.as_secs_f64(),
            checks.len(),
            failed,
            if self.passed { "PASS" } else { "FAIL" }
        )
    }
}

/// `passed (2 expectations)`, or `FAILED: h1 -> h3 (10.3.0.2: timeout)`.
fn check_summary(check: &CheckReport) -> String {
    let total = check.expectations.len();
    match check.conclusion() {
        Conclusion::Passed => format!(
            "passed ({total} expectation(s), {:.0} ms)",
            check.elapsed_ms
        ),
        conclusion => {
            let mut why: Vec<String> = check
                .errors
                .iter()
                .map(|e| format!("node {} could not probe: {}", e.node, e.error))
                .collect();
            for e in check.expectations.iter().filter(|e| !e.passed) {
                let mut what = format!("{} -> {}", e.from, e.to);
                if let Some(port) = &e.port {
                    let _ = write!(what, " port {port}");
                }
                if !e.reach {
                    what.push_str(" (must not reach)");
                }
                // The first probe that went against the expectation.
                if let Some(p) = e.probes.iter().find(|p| p.reached != e.reach) {
                    let how = match (&p.error, p.reached) {
                        (Some(error), _) => error.clone(),
                        (None, true) => "reached".into(),
                        (None, false) => "not reached".into(),
                    };
                    let _ = write!(what, " ({}: {how})", p.address);
                }
                why.push(what);
            }
            let word = match conclusion {
                Conclusion::Incomplete => "INCOMPLETE",
                _ => "FAILED",
            };
            format!("{word}: {}", why.join("; "))
        }
    }
}

/// Why a scenario could not be played.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The lab is not there, not up, or has no plan.
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error(
        "lab {lab} has no scenario (add `scenario:` to its topology and `nslab up --reconfigure` it)"
    )]
    NoScenario { lab: String },
    /// A link or node step failed; the steps after it did not run.
    #[error("scenario step [{index}] {step} at +{:.3}s: {source}", .started.as_secs_f64())]
    Step {
        index: usize,
        step: String,
        started: Duration,
        source: Box<LabError>,
        /// The steps done before it.
        done: Vec<StepReport>,
    },
}

impl ScenarioError {
    /// The run could not start (no such lab, not up, no scenario): bad
    /// input, not a failure of the run.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, ScenarioError::Step { .. })
    }
}

/// Plays the scenario of the running lab `lab` from its saved plan:
/// `timeout` bounds each check step's probes, `exe` is the nslab binary
/// that nodes started again run as their init (`None`: this one), and
/// `on_step` sees each step as soon as it is done.
pub(crate) fn run(
    lab: &LabName,
    timeout: Duration,
    exe: Option<&Path>,
    mut on_step: impl FnMut(&StepReport),
) -> Result<ScenarioReport, ScenarioError> {
    let name = lab.as_str();
    let recorded = state::read(name)
        .map_err(LabError::from)?
        .ok_or_else(|| LabError::NoLab {
            lab: name.to_string(),
        })?;
    if !recorded.is_ready() {
        return Err(LabError::NotReady {
            lab: name.to_string(),
        }
        .into());
    }
    let plan = recorded.plan.ok_or_else(|| LabError::NoPlan {
        lab: name.to_string(),
    })?;
    if plan.scenario.is_empty() {
        return Err(ScenarioError::NoScenario {
            lab: name.to_string(),
        });
    }
    let start = Instant::now();
    let mut steps: Vec<StepReport> = Vec::new();
    for (index, step) in plan.scenario.steps.iter().enumerate() {
        if let Some(left) = (start + step.at).checked_duration_since(Instant::now()) {
            std::thread::sleep(left);
        }
        let started = start.elapsed();
        let node_ref = |node: &str| NodeRef::new(lab.clone(), node);
        let done: Result<Option<CheckReport>, LabError> = match &step.action {
            StepAction::Check => crate::check::check(lab, timeout).map(Some),
            StepAction::Link { node, iface, state } => node_ref(node)
                .map_err(LabError::from)
                .and_then(|target| lab::resolve_node(&target))
                .and_then(|(running, _)| lab::link_set(&running, Some(&plan), iface, *state))
                .map(|()| None),
            StepAction::Node { node, action } => node_ref(node)
                .map_err(LabError::from)
                .and_then(|target| match action {
                    NodeAction::Stop => lab::stop_node(&target),
                    NodeAction::Start => lab::start_node(&target, exe),
                    NodeAction::Restart => lab::restart_node(&target, exe),
                })
                .map(|_| None),
        };
        match done {
            Ok(check) => {
                let report = StepReport {
                    index,
                    step: step.clone(),
                    started,
                    check,
                };
                on_step(&report);
                steps.push(report);
            }
            Err(source) => {
                return Err(ScenarioError::Step {
                    index,
                    step: step.action.to_string(),
                    started,
                    source: Box::new(source),
                    done: steps,
                });
            }
        }
    }
    Ok(ScenarioReport {
        lab: name.to_string(),
        passed: steps.iter().all(|s| s.passed() != Some(false)),
        elapsed: start.elapsed(),
        steps,
    })
}
