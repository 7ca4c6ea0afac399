//! Labs: bring up, tear down, run commands in, and inspect. This layer
//! drives plan → kernel → state; the CLI is a thin shell around it.

mod down;
mod exec;
mod fault;
mod handle;
mod impair;
mod inspect;
mod marks;
mod progress;
mod running;
mod seam;
mod up;

pub use down::{DownReport, down, down_all, down_with, find_labs};
pub use exec::{exec, exec_all};
pub use handle::{ApiError, Lab, LabOptions, Output, Process};
pub use impair::{Impairment, impair_clear, impair_set, impair_show};
pub use inspect::{InterfaceView, LabView, NodeView, inspect};
pub use progress::{Progress, ProgressFn};
pub use running::{RunningNode, resolve_interface, resolve_node, running_nodes};
pub use up::{UpOptions, UpReport, up};

use crate::kernel::enter::EnterError;
use crate::kernel::init::InitError;
use crate::kernel::namespace::NetnsNameError;
use crate::kernel::netlink::NetlinkError;
use crate::kernel::sysctl::SysctlError;
use crate::state::StateError;

pub use marks::host_link_alias;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Init(#[from] InitError),
    #[error(transparent)]
    NetnsName(#[from] NetnsNameError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    #[error("node {node}: exec {command:?} exited with code {code}{}", stderr_suffix(.stderr))]
    ExecStep {
        node: String,
        command: String,
        code: i32,
        stderr: String,
    },
    #[error("node {node}: {source}")]
    Enter { node: String, source: EnterError },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(
        "lab {lab} has leftovers of an earlier run ({what}); remove them with `nslab down --lab {lab}`"
    )]
    Leftovers { lab: String, what: String },
    #[error("{cause}\nrolled back: {rollback}")]
    RolledBack {
        cause: Box<LabError>,
        rollback: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{target}: cannot read its root qdisc: {why}")]
    UnreadableQdisc { target: String, why: String },
    #[error(
        "{node}:{iface}: its root qdisc is {kind}, not an impairment nslab sets (netem, tbf): left in place; remove it yourself first (nslab exec {node} -- tc qdisc del dev {iface} root)"
    )]
    ForeignQdisc {
        node: String,
        iface: String,
        kind: String,
    },
    #[error("teardown of lab {lab} left errors:\n  {}", .errors.join("\n  "))]
    Teardown { lab: String, errors: Vec<String> },
}

impl LabError {
    /// The process exit code for this error (a command's own when it could
    /// not run in a node, as shells do).
    pub fn exit_code(&self) -> i32 {
        match self {
            LabError::Enter { source, .. } => source.exit_code(),
            _ => 1,
        }
    }
}

fn stderr_suffix(stderr: &str) -> String {
    let trimmed = stderr.trim_end();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("; stderr:\n{trimmed}")
    }
}

/// A tokio runtime for one call. Netlink work is I/O-bound, so one thread
/// drives every socket; a worker pool per call would only add threads (and
/// malloc arenas that a long-running library user never gets back).
fn runtime() -> Result<tokio::runtime::Runtime, LabError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LabError::Runtime)
}
