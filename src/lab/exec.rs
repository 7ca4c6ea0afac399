//! `exec`: run a command in a node, or in every node of a lab.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;

use super::running::{RunningNode, running_nodes};
use super::{LabError, resolve_node};
use crate::kernel::enter::{self, NodeCommand, Stdio};
use crate::kernel::namespace::ENTER_ORDER;
use crate::plan::Plan;
use crate::spec::{LabName, NodeRef};

/// The environment of a command in a node: nslab's own, with the node's
/// `env` on top.
pub(crate) fn node_environment(node_env: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| !node_env.iter().any(|(nk, _)| nk == k))
        .collect();
    env.extend(node_env.iter().cloned());
    env
}

pub(crate) fn node_env<'a>(plan: Option<&'a Plan>, node: &str) -> &'a [(String, String)] {
    plan.and_then(|p| p.nodes.iter().find(|n| n.name == node))
        .map_or(&[], |n| n.env.as_slice())
}

/// The command to run: `argv`, or an interactive shell when it is empty.
fn command_line(argv: &[String]) -> Vec<String> {
    if argv.is_empty() {
        vec![std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())]
    } else {
        argv.to_vec()
    }
}

pub(crate) fn enter_error(node: &RunningNode) -> impl FnOnce(enter::EnterError) -> LabError + '_ {
    move |source| LabError::Enter {
        node: node.label(),
        source,
    }
}

/// How a command is started in a node.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SpawnMode {
    /// Give it the terminal on stdin (see [`NodeCommand::foreground`]).
    pub foreground: bool,
    /// A process group of its own (see [`NodeCommand::own_group`]).
    pub own_group: bool,
}

/// Starts `argv` in every namespace of `node`, with the node's `env` (from
/// `plan`) over the caller's environment and the caller's working folder.
pub(crate) fn spawn_in(
    node: &RunningNode,
    plan: Option<&Plan>,
    argv: Vec<String>,
    stdio: [Stdio; 3],
    mode: SpawnMode,
) -> Result<enter::Running, LabError> {
    let namespaces = node.open_namespaces(&ENTER_ORDER)?;
    let command = NodeCommand {
        argv,
        env: node_environment(node_env(plan, &node.node)),
        cwd: std::env::current_dir().ok(),
        foreground: mode.foreground,
        own_group: mode.own_group,
    };
    enter::spawn(&namespaces, &command, stdio).map_err(enter_error(node))
}

/// A close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), LabError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| LabError::Io {
        what: "pipe".into(),
        source: e.into(),
    })
}

/// `/dev/null`, for a command's stdin.
pub(crate) fn dev_null() -> Result<OwnedFd, LabError> {
    std::fs::File::open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|source| LabError::Io {
            what: "/dev/null".into(),
            source,
        })
}

/// Runs `argv` (or a shell) in the node with the caller's terminal;
/// returns the command's exit code.
pub(crate) fn exec(target: &NodeRef, argv: &[String]) -> Result<i32, LabError> {
    let (node, plan) = resolve_node(target)?;
    let foreground = owns_terminal();
    let mode = SpawnMode {
        foreground,
        own_group: false,
    };
    let _quiet = IgnoreInterrupts::new();
    let stdio = [Stdio::Inherit, Stdio::Inherit, Stdio::Inherit];
    let result = spawn_in(&node, plan.as_ref(), command_line(argv), stdio, mode)
        .and_then(|running| running.wait().map_err(enter_error(&node)));
    if foreground {
        take_terminal_back();
    }
    result
}

/// Is stdin a terminal whose foreground job we are?
fn owns_terminal() -> bool {
    // SAFETY: isatty, tcgetpgrp and getpgrp only read process state.
    unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() }
}

/// Makes our process group the terminal's foreground job again.
fn take_terminal_back() {
    // SAFETY: as a shell does after a foreground job: ignore SIGTTOU (we
    // are in the background now), take the terminal, restore SIGTTOU.
    unsafe {
        let previous = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        libc::tcsetpgrp(0, libc::getpgrp());
        libc::signal(libc::SIGTTOU, previous);
    }
}

/// Runs `argv` on every running node of `lab` at once, each output line
/// prefixed by its node's name. Returns 0 when all succeeded, else the
/// first non-zero exit code in node order.
pub(crate) fn exec_all(lab: &LabName, argv: &[String]) -> Result<i32, LabError> {
    let lab = lab.as_str();
    if argv.is_empty() {
        return Err(LabError::NoCommand(format!("exec --all {lab}")));
    }
    let nodes = running_nodes(lab)?;
    if nodes.is_empty() {
        return Err(LabError::NoRunningNode {
            lab: lab.to_string(),
        });
    }
    let plan = crate::state::read(lab)?.and_then(|r| r.plan);
    let width = nodes.iter().map(|n| n.node.len()).max().unwrap_or(0);
    let _quiet = IgnoreInterrupts::new();
    std::thread::scope(|scope| {
        let workers: Vec<_> = nodes
            .iter()
            .map(|node| {
                let plan = plan.as_ref();
                scope.spawn(move || run_prefixed(node, plan, argv, width))
            })
            .collect();
        let mut first_failure = 0;
        for (node, worker) in nodes.iter().zip(workers) {
            let code = match worker.join() {
                Ok(Ok(code)) => code,
                Ok(Err(e)) => {
                    eprintln!("{:width$} | nslab: {e}", node.node);
                    1
                }
                Err(_) => 1,
            };
            if first_failure == 0 {
                first_failure = code;
            }
        }
        Ok(first_failure)
    })
}

fn run_prefixed(
    node: &RunningNode,
    plan: Option<&Plan>,
    argv: &[String],
    width: usize,
) -> Result<i32, LabError> {
    let (out_read, out_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    let running = spawn_in(
        node,
        plan,
        argv.to_vec(),
        [
            Stdio::Fd(dev_null()?),
            Stdio::Fd(out_write),
            Stdio::Fd(err_write),
        ],
        SpawnMode::default(),
    )?;
    std::thread::scope(|scope| {
        scope.spawn(|| copy_prefixed(out_read, &node.node, width, false));
        scope.spawn(|| copy_prefixed(err_read, &node.node, width, true));
    });
    running.wait().map_err(enter_error(node))
}

fn copy_prefixed(from: OwnedFd, node: &str, width: usize, to_stderr: bool) {
    for line in BufReader::new(std::fs::File::from(from))
        .split(b'\n')
        .map_while(Result::ok)
    {
        let line = String::from_utf8_lossy(&line);
        let text = format!("{node:width$} | {line}\n");
        let _ = if to_stderr {
            std::io::stderr().lock().write_all(text.as_bytes())
        } else {
            std::io::stdout().lock().write_all(text.as_bytes())
        };
    }
}

/// While a command runs in the foreground, Ctrl-C is for it, not for us.
struct IgnoreInterrupts;

impl IgnoreInterrupts {
    fn new() -> Self {
        set_interrupt_disposition(libc::SIG_IGN);
        IgnoreInterrupts
    }
}

impl Drop for IgnoreInterrupts {
    fn drop(&mut self) {
        set_interrupt_disposition(libc::SIG_DFL);
    }
}

fn set_interrupt_disposition(disposition: libc::sighandler_t) {
    for signal in [libc::SIGINT, libc::SIGQUIT] {
        // SAFETY: installs SIG_IGN or SIG_DFL, no handler code runs.
        unsafe { libc::signal(signal, disposition) };
    }
}
