//! `nslab schema`: the JSON Schema of topology files, nslab's form and
//! containerlab's, for editors to complete and check them with (the same
//! as `docs/schema.json`).

use clap::Args;

use super::{Outcome, write_out};

/// The schema, as checked in.
pub(crate) const SCHEMA: &str = include_str!("../../docs/schema.json");

#[derive(Debug, Args)]
pub(super) struct SchemaArgs {
    /// Write to this file instead of standard output
    #[arg(long, short)]
    output: Option<std::path::PathBuf>,
}

pub(super) fn run(args: SchemaArgs) -> Outcome {
    write_out(SCHEMA.as_bytes(), args.output.as_deref())?;
    Ok(0)
}
