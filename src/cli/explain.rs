//! `nslab explain FILE`: the shell script that builds the lab by hand.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{Outcome, UsernsRange, invalid, load};

#[derive(Debug, Args)]
pub(super) struct ExplainArgs {
    file: PathBuf,
    #[command(flatten)]
    userns: UsernsRange,
}

pub(super) fn run(args: ExplainArgs) -> Outcome {
    print_script(&args.file, args.userns.range)
}

/// Prints the script of `explain` (and `up --dry-run`); needs no privileges.
/// `userns_range`: the ids user-namespaced nodes are shown with.
pub(super) fn print_script(file: &Path, userns_range: Option<(u32, u32)>) -> Outcome {
    let plan = load(file)?;
    let script = crate::explain::script(&plan, userns_range).map_err(invalid)?;
    print!("{script}");
    Ok(0)
}
