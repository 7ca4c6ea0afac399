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
    file: PathBuf,
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
    let file = args.file.clone();
    let parsing = std::thread::spawn(move || load(&file));
    let early = match args.dry_run {
        true => lab::EarlyStart::default(),
        false => lab::EarlyStart::start(&args.file, None),
    };
    let plan = parsing
        .join()
        .map_err(|_| failed("the thread parsing the file panicked"))??;
    super::refuse_notes(&plan, args.strict)?;
    if plan.spread.is_some() {
        return Err(invalid(format_args!(
            "{}: lab {} is spread over hosts (`hosts:`): it changes with `nslab down` and `nslab up`, not `apply` (one host's)",
            args.file.display(),
            plan.lab
        )));
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
                args.file.display()
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
