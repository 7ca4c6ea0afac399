//! `nslab man`: the manual page, from the same definitions that parse the
//! command line.

use std::path::PathBuf;

use clap::Args;

use super::{Outcome, definition, failed, write_out};

#[derive(Debug, Args)]
pub(super) struct ManArgs {
    /// Write nslab.1 and one nslab-COMMAND.1 per command into DIR instead
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub(super) fn run(args: ManArgs) -> Outcome {
    // No `help` command: it has no page of its own.
    let command = definition().disable_help_subcommand(true);
    match args.dir {
        Some(dir) => clap_mangen::generate_to(command, &dir)
            .map_err(|e| failed(format_args!("{}: {e}", dir.display())))?,
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .map_err(|e| failed(format_args!("render the manual page: {e}")))?;
            return write_out(&page, None);
        }
    }
    Ok(0)
}
