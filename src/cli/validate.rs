//! `nslab validate FILE`: check a topology file, touching nothing.

use std::path::PathBuf;

use clap::Args;

use super::{Outcome, load, refuse_notes};

#[derive(Debug, Args)]
pub(super) struct ValidateArgs {
    file: PathBuf,
    /// Refuse a containerlab file whose `image`s nslab would not use
    #[arg(long)]
    strict: bool,
}

pub(super) fn run(args: ValidateArgs) -> Outcome {
    let plan = load(&args.file)?;
    refuse_notes(&plan, args.strict)?;
    let devices = match plan.devices.len() {
        0 => String::new(),
        n => format!(", {n} device(s)"),
    };
    let hosts = match &plan.spread {
        Some(spread) => format!(" over {} host(s)", spread.hosts.len()),
        None => String::new(),
    };
    println!(
        "{}: lab {} is valid: {} node(s), {} link(s){devices}{hosts}",
        args.file.display(),
        plan.lab,
        plan.nodes.len(),
        plan.links.len()
    );
    Ok(0)
}
