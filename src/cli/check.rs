//! `nslab check LAB`: probe which node reaches which address and check
//! the topology's expectations.

use std::time::Duration;

use clap::Args;

use crate::check::{self, Conclusion};

use super::{Outcome, lab_name, parse_seconds};

/// An expectation failed (every probe ran).
const EXIT_CHECK_FAILED: i32 = 1;
/// The check could not run, or some probes could not (the result is
/// unknown), as for bad input.
const EXIT_CHECK_INCOMPLETE: i32 = 2;

#[derive(Debug, Args)]
pub(super) struct CheckArgs {
    /// The lab's name
    lab: String,
    /// Stable JSON output for scripts
    #[arg(long)]
    json: bool,
    /// How long each probe waits for an answer, in seconds (only pairs
    /// that do not answer wait that long)
    #[arg(long, default_value = "3", value_parser = parse_seconds)]
    timeout: Duration,
}

pub(super) fn run(args: CheckArgs) -> Outcome {
    super::need_privileges(EXIT_CHECK_INCOMPLETE)?;
    let lab = lab_name(&args.lab)?;
    let cannot = |e: &dyn std::fmt::Display| (EXIT_CHECK_INCOMPLETE, e.to_string());
    let report = check::check(&lab, args.timeout).map_err(|e| cannot(&e))?;
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| cannot(&e))?;
        println!("{text}");
    } else {
        print!("{}", check::render_text(&report));
    }
    Ok(match report.conclusion() {
        Conclusion::Passed => 0,
        Conclusion::Failed => EXIT_CHECK_FAILED,
        Conclusion::Incomplete => EXIT_CHECK_INCOMPLETE,
    })
}

impl CheckArgs {
    /// The lab.
    pub(super) fn lab(&self) -> &str {
        &self.lab
    }

    /// `--json`.
    pub(super) fn json(&self) -> bool {
        self.json
    }
}
