//! `nslab exec TARGET -- COMMAND`: run a command inside a node, or in
//! every node of a lab.

use clap::Args;

use crate::lab::{self, LabError};

use super::{EXIT_FAILED, Outcome};

#[derive(Debug, Args)]
pub(super) struct ExecArgs {
    /// LAB/NODE, or NODE when one running lab has it; with --all, a LAB
    target: String,
    /// Run on every node of the lab, output prefixed by node name
    #[arg(long)]
    all: bool,
    /// The command and its arguments (after --)
    #[arg(last = true)]
    command: Vec<String>,
}

pub(super) fn run(args: ExecArgs) -> Outcome {
    super::need_privileges(EXIT_FAILED)?;
    // A target that does not parse fails as one that names no node (exit 1).
    let result = if args.all {
        args.target
            .parse()
            .map_err(LabError::from)
            .and_then(|lab| lab::exec_all(&lab, &args.command))
    } else {
        args.target
            .parse()
            .map_err(LabError::from)
            .and_then(|node| lab::exec(&node, &args.command))
    };
    // The command's own exit code, or the reason it could not run.
    result.map_err(|e| (e.exit_code(), e.to_string()))
}

impl ExecArgs {
    /// The target as given (`LAB/NODE`, or `LAB` with `--all`), and `--all`.
    pub(super) fn target(&self) -> (&str, bool) {
        (&self.target, self.all)
    }
}
