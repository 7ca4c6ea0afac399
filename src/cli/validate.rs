//! `nslab validate FILE`: check a topology file, touching nothing.

use std::path::PathBuf;

use clap::Args;

use super::{Outcome, load};

#[derive(Debug, Args)]
pub(super) struct ValidateArgs {
    file: PathBuf,
}

pub(super) fn run(args: ValidateArgs) -> Outcome {
    let plan = load(&args.file)?;
    println!(
        "{}: lab {} is valid: {} node(s), {} link(s)",
        args.file.display(),
        plan.lab,
        plan.nodes.len(),
        plan.links.len()
    );
    Ok(0)
}
