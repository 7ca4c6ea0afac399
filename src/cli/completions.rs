//! `nslab completions SHELL`: a completion script, from the same
//! definitions that parse the command line.

use clap::Args;
use clap_complete::Shell;

use super::{Outcome, definition};

#[derive(Debug, Args)]
pub(super) struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    shell: Shell,
}

pub(super) fn run(args: CompletionsArgs) -> Outcome {
    let mut command = definition();
    clap_complete::generate(args.shell, &mut command, "nslab", &mut std::io::stdout());
    Ok(0)
}
