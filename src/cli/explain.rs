//! `nslab explain FILE`: the shell script that builds the lab by hand.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{Outcome, invalid, load};

#[derive(Debug, Args)]
pub(super) struct ExplainArgs {
    file: PathBuf,
}

pub(super) fn run(args: ExplainArgs) -> Outcome {
    print_script(&args.file)
}

/// Prints the script of `explain` (and `up --dry-run`); needs no privileges.
pub(super) fn print_script(file: &Path) -> Outcome {
    let plan = load(file)?;
    let script = crate::explain::script(&plan).map_err(invalid)?;
    print!("{script}");
    Ok(0)
}
