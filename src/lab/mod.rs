//! Labs: bring up, tear down, run commands in, and inspect. This layer
//! drives plan → kernel → state; the CLI is a thin shell around it.

mod apply;
mod devices;
mod down;
pub mod events;
pub(crate) mod exec;
pub(crate) mod fault;
mod host_names;
mod host_side;
mod impair;
mod inspect;
mod lab_dir;
mod link;
mod marks;
mod node;
mod progress;
mod running;
mod seam;
mod stats;
mod steps;
mod up;

pub(crate) use apply::ApplyOptions;
pub use apply::ApplyReport;
pub(crate) use apply::{EarlyStart, apply, apply_with};
pub use down::{DownReport, down, find_labs};
pub(crate) use down::{down_all, down_with};
pub(crate) use exec::{exec, exec_all};
pub use impair::Impairment;
pub(crate) use impair::{impair_clear, impair_set, impair_show};
pub(crate) use inspect::{LabView, inspect};
pub(crate) use link::link_set;
pub use node::NodeChange;
pub(crate) use node::{restart_node, start_node, stop_node};
pub(crate) use progress::Progress;
pub use running::{RunningNode, resolve_node, running_nodes};
pub(crate) use stats::StatsSampler;
pub use stats::{InterfaceStats, NodeStats, StatsReport};
pub use up::{UpOptions, UpReport, up};

use crate::kernel::enter::EnterError;
use crate::kernel::init::InitError;
use crate::kernel::namespace::NetnsNameError;
use crate::kernel::netlink::NetlinkError;
use crate::kernel::sysctl::SysctlError;
use crate::state::StateError;

pub(crate) use marks::host_link_alias;

/// Why bringing up, tearing down or reaching into a lab failed. The
/// kernel-level causes (state files, the node init, netlink, sysctls,
/// entering a node) are carried as their sources, for their messages. More
/// variants may come.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    #[error(transparent)]
    Cgroup(#[from] crate::kernel::cgroup::CgroupError),
    #[error(transparent)]
    Userns(#[from] crate::kernel::userns::UsernsError),
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
    #[error("{0}")]
    HostConflict(String),
    #[error(
        "{device}: the host has no interface {parent}; a {kind}'s parent is a host interface that is there before the lab is built"
    )]
    MissingParent {
        device: String,
        parent: String,
        kind: &'static str,
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
    #[error(transparent)]
    Target(#[from] crate::spec::TargetError),
    #[error("no lab {lab} (`nslab inspect` lists the labs)")]
    NoLab { lab: String },
    #[error("lab {lab} is not up: its `up` has not finished")]
    NotReady { lab: String },
    #[error("lab {lab} has no saved plan; rebuild it with `nslab up`")]
    NoPlan { lab: String },
    #[error("lab {lab} has no node {node}")]
    NoNode { lab: String, node: String },
    #[error("lab {lab} has no running node")]
    NoRunningNode { lab: String },
    #[error("no running lab has a node {node}")]
    NoLabHasNode { node: String },
    #[error("node {node} is in several labs ({}); say LAB/{node}", .labs.join(", "))]
    NodeInSeveralLabs { node: String, labs: Vec<String> },
    /// `LAB/NODE`: its init is gone.
    #[error("node {node} cannot be stopped or started: {why}")]
    NotStoppable { node: String, why: String },
    #[error("node {node} is not running")]
    NotRunning { node: String },
    #[error(
        "node {node} is not running (its init has exited); `nslab up --reconfigure` rebuilds the lab"
    )]
    InitExited { node: String },
    #[error("node {node} has no interface {iface} (it has: {})", .has.join(", "))]
    NoInterface {
        node: String,
        iface: String,
        has: Vec<String>,
    },
    #[error("{0}: no command to run")]
    NoCommand(String),
    /// A worker thread of nslab's own panicked: a bug.
    #[error("{0} panicked")]
    Panicked(&'static str),
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
    #[error(
        "the file names lab {file}, but it is meant for lab {running}: put back `name: {running}`, or `nslab down --lab {running}` first"
    )]
    NameMismatch { file: String, running: String },
    /// Changes `apply` cannot make in a running lab, one line each.
    #[error("nothing was changed:\n  {}", .0.join("\n  "))]
    NotLive(Vec<String>),
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
fn runtime() -> Result<CallRuntime, LabError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LabError::Runtime)?;
    Ok(CallRuntime {
        runtime: Some(runtime),
    })
}

/// The runtime of one library call, usable from a caller's async code too.
///
/// tokio panics when a thread that is inside a runtime (a `#[tokio::test]`,
/// a task, `block_on`) blocks on another runtime or drops one. So when the
/// caller's thread is inside a runtime, this one is blocked on and dropped
/// on a scoped thread of its own while the caller's thread waits: a
/// blocking call stays blocking, and never panics.
#[derive(Debug)]
struct CallRuntime {
    /// `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl CallRuntime {
    fn inner(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("a runtime until dropped")
    }

    /// The runtime's handle, for spawning netlink connections on it.
    fn handle(&self) -> &tokio::runtime::Handle {
        self.inner().handle()
    }

    /// Runs the future that `make` returns to completion on this runtime.
    /// It is made on the thread that drives it, so it need not be `Send`
    /// (rtnetlink's request streams are not provably so).
    fn block_on<F: Future>(&self, make: impl FnOnce() -> F + Send) -> F::Output
    where
        F::Output: Send,
    {
        let runtime = self.inner();
        outside_async(|| runtime.block_on(make()))
    }
}

impl Drop for CallRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            outside_async(move || drop(runtime));
        }
    }
}

/// Runs `work` on this thread, or, when this thread is inside a tokio
/// runtime, on a scoped thread that is not (a panic there goes on here).
/// A blocking thread of `spawn_blocking` counts as inside: tokio offers no
/// finer test, and the extra thread costs little next to a lab call.
fn outside_async<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| match scope.spawn(work).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}
