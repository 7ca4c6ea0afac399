//! `nslab graph FILE`: draw a topology.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::graph::Format;

use super::{Outcome, failed, load, write_out};

#[derive(Debug, Args)]
pub(super) struct GraphArgs {
    file: PathBuf,
    /// dot (Graphviz), mermaid, or svg (needs Graphviz's `dot`)
    #[arg(long, short, value_enum, default_value_t = FormatArg::Dot)]
    format: FormatArg,
    /// Write to this file instead of standard output
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Dot,
    Mermaid,
    Svg,
}

impl From<FormatArg> for Format {
    fn from(arg: FormatArg) -> Self {
        match arg {
            FormatArg::Dot => Format::Dot,
            FormatArg::Mermaid => Format::Mermaid,
            FormatArg::Svg => Format::Svg,
        }
    }
}

pub(super) fn run(args: GraphArgs) -> Outcome {
    let plan = load(&args.file)?;
    let format = Format::from(args.format);
    let picture = crate::graph::render(&plan, format).map_err(failed)?;
    let note = match format {
        Format::Mermaid => crate::graph::mermaid::edge_limit_note(&plan),
        Format::Dot | Format::Svg => None,
    };
    if let Some(note) = note {
        eprintln!("nslab: note: {note}");
    }
    write_out(&picture, args.output.as_deref())
}
