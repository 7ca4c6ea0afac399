//! `nslab explain`: a plan as a runnable POSIX shell script that builds the
//! same lab by hand with `unshare`, `nsenter`, `mount`, `hostname` and `ip`,
//! one commented step at a time, in the order of `up`'s phases
//! (see [`crate::lab::up`]): nodes with what their init does, /run/netns
//! names, bridges, veths, devices, ports and addresses, routes, late
//! sysctls, exec.
//!
//! Pure text: no syscall, nothing read from the host, so it is unit-tested.
//! The script takes its lab name from `$LAB` (default: the plan's), keeps
//! its own record under `/run/nslab-sh/$LAB`, and `sh SCRIPT down` removes
//! exactly what that record names.

mod devices;
mod node;
mod preamble;
mod quote;
mod wiring;

#[cfg(test)]
mod tests;

use crate::kernel::userns::{SubidFiles, nslab_range};
use crate::plan::Plan;

/// Where the script keeps its record of a lab (holder pids, netns names).
pub const RECORD_ROOT: &str = "/run/nslab-sh";

/// File descriptors a POSIX shell can name (`3<` up to `9<`): the most
/// bind sources of one node that its own mounts hide (see [`node`]).
const MAX_HIDDEN_SOURCES: usize = 7;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ExplainError {
    #[error(
        "node {node}: {count} bind sources lie under the node's own mounts; a POSIX shell can hold at most {MAX_HIDDEN_SOURCES} open for the script"
    )]
    TooManyHiddenSources { node: String, count: usize },
    #[error(transparent)]
    Userns(#[from] crate::kernel::userns::UsernsError),
}

/// The script for `plan`. User-namespaced nodes are shown with the first
/// blocks of `given` (start, count), else of nslab's id range (read, never
/// made, here).
pub(crate) fn script(plan: &Plan, given: Option<(u32, u32)>) -> Result<String, ExplainError> {
    let range = match plan.nodes.iter().any(|n| n.userns) {
        true => Some(nslab_range(&SubidFiles::host(), given, false)?),
        false => None,
    };
    let mut s = Script::default();
    // Shell variables holding each node's init pid, by node id.
    let pids = node::pid_vars(plan);
    preamble::header(&mut s, plan);
    node::nodes(&mut s, plan, &pids, range)?;
    wiring::names(&mut s, plan, &pids);
    wiring::bridges(&mut s, plan);
    wiring::veths(&mut s, plan);
    devices::devices(&mut s, plan);
    wiring::interfaces(&mut s, plan);
    wiring::routes(&mut s, plan);
    wiring::impairments(&mut s, plan);
    wiring::links_down(&mut s, plan);
    node::late_sysctls(&mut s, plan, &pids);
    node::exec(&mut s, plan, &pids);
    preamble::footer(&mut s, plan);
    Ok(s.text)
}

/// The script text as it grows.
#[derive(Debug, Default)]
struct Script {
    text: String,
    /// Sections so far, to number them.
    sections: usize,
}

impl Script {
    /// Raw lines, as given.
    fn raw(&mut self, lines: &str) {
        self.text.push_str(lines);
        if !lines.ends_with('\n') {
            self.text.push('\n');
        }
    }

    /// A numbered phase heading.
    fn section(&mut self, title: &str) {
        self.sections += 1;
        self.text
            .push_str(&format!("\n### {}. {title}\n", self.sections));
    }

    /// A `#` comment (made safe) and the commands that do what it says.
    fn step(&mut self, comment: &str, commands: &[String]) {
        self.text
            .push_str(&format!("# {}\n", quote::comment(comment)));
        for command in commands {
            self.text.push_str(command);
            self.text.push('\n');
        }
    }
}

/// The netns name of a node in the script: `"$LAB-NODE"` (node names are
/// plain words, so nothing else needs quoting).
fn netns(node: &str) -> String {
    format!("\"$LAB-{node}\"")
}
