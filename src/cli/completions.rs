//! `nslab completions SHELL`: a completion script, from the same
//! definitions that parse the command line.

use clap::Args;
use clap_complete::Shell;

use super::{Outcome, definition, write_out};

#[derive(Debug, Args)]
pub(super) struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    shell: Shell,
}

pub(super) fn run(args: CompletionsArgs) -> Outcome {
    let mut command = definition();
    // Into a buffer first: clap_complete panics on a failed write (a
    // reader that closed the pipe), where `write_out` reports it.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "nslab", &mut script);
    write_out(&script, None)
}
