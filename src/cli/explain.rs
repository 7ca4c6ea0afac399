//! `nslab explain FILE`: the shell script that builds the lab by hand.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{Outcome, UsernsRange, invalid, load_topology};
use crate::plan::Plan;

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
/// A lab spread over hosts: one script per host, each its part.
pub(super) fn print_script(file: &Path, userns_range: Option<(u32, u32)>) -> Outcome {
    let topology = load_topology(file)?;
    let Some(spread) = &topology.spread else {
        let plan = Plan::from_topology(&topology);
        let script = crate::explain::script(&plan, userns_range).map_err(invalid)?;
        print!("{script}");
        return Ok(0);
    };
    let (parts, _) = crate::plan::spread::parts(&topology, spread);
    for part in parts {
        let script = crate::explain::script(&part.plan(), userns_range).map_err(invalid)?;
        println!(
            "########## host {} ({}): its part, run there ##########",
            part.host, part.machine.underlay
        );
        print!("{script}");
        println!();
    }
    Ok(0)
}
