//! `nslab down`: remove a lab (or every lab) and everything it made.

use std::path::PathBuf;

use clap::Args;

use crate::lab::{self, DownReport};
use crate::spec::LabName;
use crate::topology;

use super::{EXIT_FAILED, Outcome, clear_progress_line, failed, invalid, lab_name, progress_line};

#[derive(Debug, Args)]
pub(super) struct DownArgs {
    #[command(flatten)]
    target: Which,
    /// With --all: only list the labs that would be removed
    #[arg(long, requires = "all")]
    dry_run: bool,
    /// No progress line and no report
    #[arg(long, short)]
    quiet: bool,
}

/// Which labs: exactly one of the three.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct Which {
    /// The topology file of the lab
    file: Option<PathBuf>,
    /// The lab's name
    #[arg(long)]
    lab: Option<String>,
    /// Every lab on this host
    #[arg(long)]
    all: bool,
}

impl Which {
    /// The one lab named, by name or by its topology file.
    fn lab(self) -> Result<LabName, (i32, String)> {
        let name = match (self.lab, self.file) {
            (Some(name), _) => name,
            (None, Some(file)) => topology::lab_name_of(&file).ok_or_else(|| {
                invalid(format_args!(
                    "{}: no lab name found (use --lab NAME)",
                    file.display()
                ))
            })?,
            (None, None) => return Err(invalid("give a topology FILE, --lab NAME or --all")),
        };
        lab_name(&name)
    }
}

pub(super) fn run(args: DownArgs) -> Outcome {
    super::need_privileges(EXIT_FAILED)?;
    if args.dry_run {
        for lab in lab::find_labs().map_err(failed)? {
            println!("{lab}");
        }
        if !super::spread::here() {
            for lab in crate::spread::record::list().map_err(failed)? {
                println!("{lab} (spread over hosts: its part on each)");
            }
        }
        return Ok(0);
    }
    let quiet = args.quiet;
    let all = args.target.all;
    let progress = progress_line(quiet);
    let reports: Vec<DownReport> = if all {
        super::spread::down_all(quiet)?;
        let result = lab::down_all(&progress);
        clear_progress_line(quiet);
        result.map_err(failed)?
    } else {
        let lab = args.target.lab()?;
        if let Some(outcome) = super::spread::down(lab.as_str(), quiet) {
            clear_progress_line(quiet);
            return outcome;
        }
        let result = lab::down_with(&lab, &progress);
        clear_progress_line(quiet);
        vec![result.map_err(failed)?]
    };
    if quiet {
        return Ok(0);
    }
    for report in &reports {
        if report.is_empty() {
            println!("lab {}: nothing to remove", report.lab);
        } else {
            println!("lab {}: {}", report.lab, report.summary());
        }
    }
    if all && reports.is_empty() {
        println!("no labs");
    }
    Ok(0)
}
