//! `nslab apply FILE`: change a running lab to what its edited file says,
//! live; `--dry-run` only lists the changes.

use std::path::PathBuf;

use clap::Args;

use crate::lab::{self, ApplyOptions, LabError};

use super::{
    EXIT_FAILED, Outcome, UsernsRange, clear_progress_line, failed, invalid, load, progress_line,
};

#[derive(Debug, Args)]
pub(super) struct ApplyArgs {
    #[arg(required_unless_present = "plan")]
    file: Option<PathBuf>,
    /// Apply a plan instead of a file (JSON, `-`: standard input): what
    /// the controller of a lab spread over hosts sends each host
    #[arg(long, value_name = "PLAN", conflicts_with = "file")]
    plan: Option<PathBuf>,
    /// Change nothing: print the changes, one per line (`+ node r4`,
    /// `- link r1:eth2 <-> r3:eth0`, `~ h1: route ...`)
    #[arg(long)]
    dry_run: bool,
    /// Stop this node and build it again, its links made again: the way to
    /// change what cannot change live (hostname, binds, userns, exec, ...).
    /// May be given more than once
    #[arg(long, value_name = "NODE")]
    recreate: Vec<String>,
    /// The running lab the file is for; refused unless the file names it
    #[arg(long)]
    lab: Option<String>,
    /// No progress line (when the lab is brought up) and no summary
    #[arg(long, short)]
    quiet: bool,
    /// Refuse a containerlab file whose `image`s nslab would not use
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    userns: UsernsRange,
}

pub(super) fn run(args: ApplyArgs) -> Outcome {
    // The file is parsed on a thread of its own while this one starts the
    // work that needs only the lab's name (its lock and state, a zygote:
    // see `EarlyStart`), so the two overlap.
    let (plan, early, file) = match (&args.plan, &args.file) {
        (Some(path), _) => (
            super::read_plan(path)?,
            lab::EarlyStart::default(),
            path.clone(),
        ),
        (None, Some(file)) => {
            let parsing = std::thread::spawn({
                let file = file.clone();
                move || load(&file)
            });
            // A lab spread over hosts is not this host's to start early
            // (a top-level `hosts:` line is enough to wait for the parse).
            let spread = std::fs::read_to_string(file)
                .is_ok_and(|text| text.lines().any(|l| l.starts_with("hosts:")));
            let early = match args.dry_run || spread {
                true => lab::EarlyStart::default(),
                false => lab::EarlyStart::start(file, None),
            };
            let plan = parsing
                .join()
                .map_err(|_| failed("the thread parsing the file panicked"))??;
            (plan, early, file.clone())
        }
        (None, None) => return Err(invalid("give a topology FILE")),
    };
    super::refuse_notes(&plan, args.strict)?;
    if plan.spread.is_some() {
        let topology = super::load_topology(&file)?;
        return super::spread::apply(&topology, args.dry_run, &args.recreate, args.quiet);
    }
    super::need_privileges(EXIT_FAILED)?;
    let options = ApplyOptions {
        dry_run: args.dry_run,
        recreate: args.recreate,
        lab: args.lab,
        progress: progress_line(args.quiet || args.dry_run),
        init_exe: None,
        userns_range: args.userns.range,
    };
    let result = lab::apply_with(&plan, &options, early);
    clear_progress_line(args.quiet || args.dry_run);
    let report = result.map_err(|e| match e {
        // Refused before anything changed: bad input, as for `up`.
        LabError::NameMismatch { .. } | LabError::NotLive(_) | LabError::NoNode { .. } => {
            invalid(e)
        }
        e => failed(e),
    })?;
    if args.dry_run {
        for line in &report.changes {
            println!("{line}");
        }
        if report.changes.is_empty() {
            println!(
                "no change: lab {} runs what {} says",
                report.lab,
                file.display()
            );
        }
        return Ok(0);
    }
    if args.quiet {
        return Ok(0);
    }
    match &report.up {
        Some(up) => println!(
            "lab {} was not running: brought it up, {} node(s), {} link(s) in {:.3} s",
            up.lab,
            up.nodes,
            up.links,
            up.total.as_secs_f64()
        ),
        None if report.changes.is_empty() => println!("lab {}: no change", report.lab),
        None => {
            for line in &report.changes {
                println!("{line}");
            }
            println!(
                "lab {}: {} change(s) applied in {:.3} s",
                report.lab,
                report.changes.len(),
                report.total.as_secs_f64()
            );
        }
    }
    Ok(0)
}
