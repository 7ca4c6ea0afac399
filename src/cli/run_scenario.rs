//! `nslab run-scenario LAB`: play the topology's `scenario:` on the running
//! lab, one line per step.

use std::time::Duration;

use clap::Args;

use crate::scenario::{self, ScenarioError};

use super::{EXIT_FAILED, EXIT_INVALID, Outcome, lab_name, parse_seconds};

#[derive(Debug, Args)]
pub(super) struct RunScenarioArgs {
    /// The lab's name
    lab: String,
    /// How long each probe of a check step waits for an answer, in seconds
    #[arg(long, default_value = "2", value_parser = parse_seconds)]
    timeout: Duration,
}

pub(super) fn run(args: RunScenarioArgs) -> Outcome {
    let lab = lab_name(&args.lab)?;
    super::need_privileges(EXIT_INVALID)?;
    let report = scenario::run(&lab, args.timeout, None, |step| println!("{}", step.line()))
        .map_err(|e: ScenarioError| {
            let code = if e.is_bad_input() {
                EXIT_INVALID
            } else {
                EXIT_FAILED
            };
            (code, e.to_string())
        })?;
    println!("{}", report.summary());
    Ok(if report.passed { 0 } else { EXIT_FAILED })
}

impl RunScenarioArgs {
    /// The lab, and how long a check step's probes wait.
    pub(super) fn lab(&self) -> (&str, Duration) {
        (&self.lab, self.timeout)
    }
}
