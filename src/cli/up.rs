//! `nslab up FILE`: build a lab.

use std::path::PathBuf;

use clap::Args;

use crate::lab::{self, UpOptions, UpReport};
use crate::plan::Plan;
use crate::spec::NodeKind;

use super::{
    EXIT_FAILED, Outcome, UsernsRange, clear_progress_line, failed, load_topology, progress_line,
};

#[derive(Debug, Args)]
pub(super) struct UpArgs {
    #[arg(required_unless_present = "plan")]
    file: Option<PathBuf>,
    /// Build a plan instead of a file (JSON, `-`: standard input): what
    /// the controller of a lab spread over hosts sends each host
    #[arg(long, value_name = "PLAN", conflicts_with_all = ["file", "dry_run"])]
    plan: Option<PathBuf>,
    /// Tear down an existing lab of the same name first
    #[arg(long)]
    reconfigure: bool,
    /// No progress line and no summary
    #[arg(long, short)]
    quiet: bool,
    /// Build nothing: print the script `explain` prints
    #[arg(long)]
    dry_run: bool,
    /// Refuse a containerlab file whose `image`s nslab would not use
    #[arg(long)]
    strict: bool,
    /// Also list the nodes in the host's /etc/hosts (a block of the lab's,
    /// taken out by `down`)
    #[arg(long)]
    hosts: bool,
    #[command(flatten)]
    userns: UsernsRange,
}

pub(super) fn run(args: UpArgs) -> Outcome {
    let plan = match (&args.plan, &args.file) {
        (Some(path), _) => super::read_plan(path)?,
        (None, Some(file)) if args.dry_run => {
            return super::explain::print_script(file, args.userns.range);
        }
        (None, Some(file)) => {
            let topology = load_topology(file)?;
            if topology.spread.is_some() {
                super::refuse_notes(&Plan::from_topology(&topology), args.strict)?;
                return super::spread::up(&topology, args.reconfigure, args.quiet);
            }
            let mut plan = Plan::from_topology(&topology);
            plan.source = std::path::absolute(file).ok();
            plan
        }
        (None, None) => return Err(super::invalid("give a topology FILE")),
    };
    super::refuse_notes(&plan, args.strict)?;
    super::need_privileges(EXIT_FAILED)?;
    let options = UpOptions {
        reconfigure: args.reconfigure,
        progress: progress_line(args.quiet),
        init_exe: None,
        userns_range: args.userns.range,
        host_names: args.hosts,
    };
    let result = lab::up(&plan, &options);
    clear_progress_line(args.quiet);
    let report = result.map_err(failed)?;
    if !report.not_running.is_empty() {
        eprintln!(
            "nslab: warning: these link ends were still not operationally up after waiting: {}",
            report.not_running.join(", ")
        );
    }
    if !args.quiet {
        print_report(&plan, &report);
    }
    Ok(0)
}

fn print_report(plan: &Plan, report: &UpReport) {
    let devices = match report.devices {
        0 => String::new(),
        n => format!(", {n} device(s)"),
    };
    println!(
        "lab {} is up: {} node(s), {} link(s){devices} in {:.3} s",
        report.lab,
        report.nodes,
        report.links,
        report.total.as_secs_f64()
    );
    let phases: Vec<String> = report
        .phases
        .iter()
        .map(|(name, took)| format!("{name} {:.3}", took.as_secs_f64()))
        .collect();
    println!("  phases (s): {}", phases.join(", "));
    if let Some((before, after)) = report.raised_open_files {
        println!("  raised the open-file limit from {before} to {after} for this lab");
    }
    if let Some(node) = plan.nodes.iter().find(|n| n.kind == NodeKind::Node) {
        println!("  try: nslab exec {}/{} -- ip address", plan.lab, node.name);
    }
}
