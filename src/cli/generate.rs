//! `nslab generate SHAPE`: write a topology of any size.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::generate::Shape;

use super::{Outcome, invalid, lab_name, write_out};

#[derive(Debug, Args)]
pub(super) struct GenerateArgs {
    #[command(subcommand)]
    shape: ShapeArg,
    /// The lab name (default: the shape, e.g. linear-200)
    #[arg(long, global = true)]
    name: Option<String>,
    /// Write to this file instead of standard output
    #[arg(short, long, global = true)]
    output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ShapeArg {
    /// A chain of N routers with routes so that every address is reachable
    Linear { n: usize },
    /// N hosts on a bridge (sharded over bridges past 1023 ports)
    Star { n: usize },
    /// Bridges DEPTH levels deep with FANOUT children each, hosts at the leaves
    Tree { depth: usize, fanout: usize },
    /// ROWS x COLS routers, each linked to its right and lower neighbour, XY-routed
    Grid { rows: usize, cols: usize },
}

impl From<ShapeArg> for Shape {
    fn from(arg: ShapeArg) -> Self {
        match arg {
            ShapeArg::Linear { n } => Shape::Linear(n),
            ShapeArg::Star { n } => Shape::Star(n),
            ShapeArg::Tree { depth, fanout } => Shape::Tree { depth, fanout },
            ShapeArg::Grid { rows, cols } => Shape::Grid { rows, cols },
        }
    }
}

pub(super) fn run(args: GenerateArgs) -> Outcome {
    let shape = Shape::from(args.shape);
    let name = lab_name(&args.name.unwrap_or_else(|| shape.default_name()))?;
    let yaml = crate::generate::generate(shape, name.as_str()).map_err(invalid)?;
    write_out(yaml.as_bytes(), args.output.as_deref())?;
    if let (Some(path), Some((node, address))) = (&args.output, shape.far_ends()) {
        eprintln!(
            "wrote {}; after `nslab up {}`, try: nslab exec {name}/{node} -- ping -c 1 -t 255 {address}",
            path.display(),
            path.display()
        );
    }
    Ok(0)
}
