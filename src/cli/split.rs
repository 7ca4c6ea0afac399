//! `nslab split FILE --out DIR`: the parts of a lab spread over hosts,
//! one plan per host (`DIR/HOST.json`), each built there by `nslab up
//! --plan HOST.json`: what `up` sends over SSH, for hosts reached some
//! other way.

use std::path::PathBuf;

use clap::Args;

use super::{EXIT_INVALID, Outcome, failed, load_topology};
use crate::plan::spread::parts;

#[derive(Debug, Args)]
pub(super) struct SplitArgs {
    /// A topology file with `hosts:`
    file: PathBuf,
    /// The folder the parts are written to (made if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub(super) fn run(args: SplitArgs) -> Outcome {
    let topology = load_topology(&args.file)?;
    let Some(spread) = &topology.spread else {
        return Err((
            EXIT_INVALID,
            format!(
                "{}: no `hosts:`: the lab is one host's (nslab up builds it)",
                args.file.display()
            ),
        ));
    };
    let (parts, tunnels) = parts(&topology, spread);
    std::fs::create_dir_all(&args.out)
        .map_err(|e| failed(format_args!("{}: {e}", args.out.display())))?;
    for part in &parts {
        let plan = part.plan();
        let path = args.out.join(format!("{}.json", part.host));
        let text = serde_json::to_vec_pretty(&plan).map_err(failed)?;
        std::fs::write(&path, text).map_err(|e| failed(format_args!("{}: {e}", path.display())))?;
        println!(
            "{}: host {} ({}), {} node(s)",
            path.display(),
            part.host,
            part.machine.underlay,
            plan.nodes.len()
        );
    }
    for tunnel in &tunnels {
        println!("tunnel {tunnel}");
    }
    Ok(0)
}
