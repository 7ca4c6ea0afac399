//! Running a command inside every namespace of a node.
//!
//! setns(CLONE_NEWNS) fails in a multi-threaded process and a pid namespace
//! only applies to children, so: fork a helper, enter the namespaces there
//! in [`ENTER_ORDER`](super::namespace::ENTER_ORDER), fork the command, and
//! let the helper pass the command's exit status on. Failures to enter or to
//! exec come back through a close-on-exec pipe, never as a guessed exit code.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::namespace::{NamespaceFds, NsKind};

#[derive(Debug, thiserror::Error)]
pub enum EnterError {
    #[error("prepare the command: {0}")]
    Prepare(String),
    #[error("fork: {0}")]
    Fork(nix::Error),
    #[error("enter the {kind} namespace: {source}")]
    Setns {
        kind: &'static str,
        source: nix::Error,
    },
    #[error("{program}: {}", exec_reason(*.errno))]
    Exec { program: String, errno: nix::Error },
    #[error("wait for the command: {0}")]
    Wait(nix::Error),
    #[error("the helper that starts the command ended before starting it")]
    HelperLost,
    #[error("signal the command: {0}")]
    Signal(nix::Error),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct NodeCommand {
    pub argv: Vec<String>,
    /// The complete environment of the command.
    pub env: Vec<(String, String)>,
    /// Working directory; `/` when it does not exist inside the node.
    pub cwd: Option<PathBuf>,
    /// Make the command the foreground job of the terminal on stdin (as a
    /// shell does). Needed for interactive programs: the caller's process
    /// group lives outside the node's pid namespace, where a shell cannot
    /// hand the terminal back to it.
    pub foreground: bool,
    /// Put the command in a process group of its own, so that it can be
    /// signalled with the processes it starts (and a terminal's Ctrl-C is
    /// not for it). Implied by `foreground`.
    pub own_group: bool,
}

/// Where a standard stream of the command goes.
#[derive(Debug)]
pub enum Stdio {
    Inherit,
    Fd(OwnedFd),
}

/// A command started in a node.
#[derive(Debug)]
pub struct Running {
    helper: Pid,
    foreground: bool,
    own_group: bool,
    errors: File,
    /// What the helper and the command reported, once read to its end.
    report: Option<Vec<u8>>,
    program: String,
    /// Set once the helper has been reaped: its pid may then be reused.
    exited: Option<i32>,
}

/// Records on the report pipe: stage (u32), value (i32), extra byte.
const RECORD: usize = 9;
const STAGE_SETNS: u32 = 1;
const STAGE_EXEC: u32 = 2;
/// The command was forked; the value is its pid (in our pid namespace).
const STAGE_STARTED: u32 = 3;

/// Starts `command` inside the namespaces in `ns` with the given stdin,
/// stdout and stderr.
pub fn spawn(
    ns: &NamespaceFds,
    command: &NodeCommand,
    stdio: [Stdio; 3],
) -> Result<Running, EnterError> {
    let prepare = |e: std::ffi::NulError| EnterError::Prepare(e.to_string());
    let program = command
        .argv
        .first()
        .ok_or_else(|| EnterError::Prepare("empty command".into()))?;
    // Built before fork: the children make only async-signal-safe calls.
    let candidates = exec_candidates(program, &command.env)
        .into_iter()
        .map(CString::new)
        .collect::<Result<Vec<_>, _>>()
        .map_err(prepare)?;
    let args = command
        .argv
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(prepare)?;
    let env = command
        .env
        .iter()
        .map(|(k, v)| CString::new(format!("{k}={v}")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(prepare)?;
    let argv = null_terminated(&args);
    let envp = null_terminated(&env);
    let cwd = CString::new(
        command
            .cwd
            .as_deref()
            .unwrap_or(Path::new("/"))
            .as_os_str()
            .as_encoded_bytes(),
    )
    .map_err(prepare)?;
    let namespaces = ns.raw();
    let foreground = command.foreground;
    let own_group = command.own_group || foreground;
    let stdio_fds: [Option<RawFd>; 3] = [0, 1, 2].map(|i| match &stdio[i] {
        Stdio::Inherit => None,
        Stdio::Fd(fd) => Some(fd.as_raw_fd()),
    });
    let (err_read, err_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(EnterError::Fork)?;
    let err_fd = err_write.as_raw_fd();

    // SAFETY: fork(2); the child runs `helper`, which only makes
    // async-signal-safe calls on the data prepared above and never returns.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            helper(
                &namespaces,
                &cwd,
                &candidates,
                &argv,
                &envp,
                stdio_fds,
                err_fd,
                foreground,
                own_group,
            )
        }
    }
    if pid < 0 {
        return Err(EnterError::Fork(nix::Error::last()));
    }
    drop(err_write);
    drop(stdio);
    Ok(Running {
        helper: Pid::from_raw(pid),
        foreground,
        own_group,
        errors: File::from(err_read),
        report: None,
        program: program.clone(),
        exited: None,
    })
}

impl Running {
    /// Waits until the command has been exec'd (the report pipe closes on
    /// exec) and returns its pid, as the caller's pid namespace sees it. When
    /// entering or exec failed, reaps the helper and returns why.
    pub fn started(&mut self) -> Result<i32, EnterError> {
        match self.read_report() {
            Ok(Some(pid)) => Ok(pid),
            Ok(None) => {
                let _ = self.reap(None);
                Err(EnterError::HelperLost)
            }
            Err(e) => {
                let _ = self.reap(None);
                Err(e)
            }
        }
    }

    /// Waits for the command; returns its exit code (128 + N when killed by
    /// signal N, as shells do).
    pub fn wait(mut self) -> Result<i32, EnterError> {
        // Read to the end first: the report pipe closes when the command
        // execs or fails to, and a failure beats any exit code.
        let report = self.read_report();
        let code = self.reap(self.foreground.then_some(WaitPidFlag::WUNTRACED))?;
        report?;
        Ok(code.unwrap_or(1))
    }

    /// The command's exit code if it has ended, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<i32>, EnterError> {
        self.reap(Some(WaitPidFlag::WNOHANG))
    }

    /// Sends `signal` to the command (to its whole process group when it has
    /// its own), unless it has already been reaped: after that its pid
    /// could belong to someone else.
    pub fn signal(&mut self, signal: nix::sys::signal::Signal) -> Result<(), EnterError> {
        if self.try_wait()?.is_some() {
            return Ok(());
        }
        // The helper reaps the command and exits right after, so while the
        // helper is unreaped the command's pid (and group) is still its own.
        let Some(pid) = self.read_report()? else {
            return Ok(());
        };
        let target = if self.own_group { -pid } else { pid };
        match nix::sys::signal::kill(Pid::from_raw(target), signal) {
            Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
            Err(e) => Err(EnterError::Signal(e)),
        }
    }

    /// Reads the report pipe to its end (once) and parses it: the command's
    /// pid, or why it could not start.
    fn read_report(&mut self) -> Result<Option<i32>, EnterError> {
        let report = self.report.get_or_insert_with(|| {
            let mut bytes = Vec::new();
            let _ = self.errors.read_to_end(&mut bytes);
            bytes
        });
        let mut pid = None;
        for record in report.chunks_exact(RECORD) {
            let stage = u32::from_ne_bytes([record[0], record[1], record[2], record[3]]);
            let value = i32::from_ne_bytes([record[4], record[5], record[6], record[7]]);
            match stage {
                STAGE_STARTED => pid = Some(value),
                STAGE_SETNS => {
                    return Err(EnterError::Setns {
                        kind: ENTER_KINDS
                            .get(record[8] as usize)
                            .map_or("?", |k| k.proc_name()),
                        source: nix::Error::from_raw(value),
                    });
                }
                _ => {
                    return Err(EnterError::Exec {
                        program: self.program.clone(),
                        errno: nix::Error::from_raw(value),
                    });
                }
            }
        }
        Ok(pid)
    }

    /// Waits for the helper (once), which passes the command's status on.
    fn reap(&mut self, flags: Option<WaitPidFlag>) -> Result<Option<i32>, EnterError> {
        if let Some(code) = self.exited {
            return Ok(Some(code));
        }
        let status = loop {
            match waitpid(self.helper, flags) {
                Err(nix::Error::EINTR) => continue,
                // The helper stopped for a Ctrl-Z of the command: stop with
                // it, so the caller's shell sees the job stopped.
                Ok(WaitStatus::Stopped(..)) => {
                    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
                }
                Ok(WaitStatus::StillAlive) => return Ok(None),
                other => break other.map_err(EnterError::Wait)?,
            }
        };
        let code = exit_code(status);
        self.exited = Some(code);
        Ok(Some(code))
    }
}

fn exec_reason(errno: nix::Error) -> String {
    match errno {
        nix::Error::ENOENT => "command not found".into(),
        e => e.desc().into(),
    }
}

impl EnterError {
    /// The exit code a shell would give: 127 for a command not found, 126
    /// for one that cannot run, 1 for anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            EnterError::Exec {
                errno: nix::Error::ENOENT,
                ..
            } => 127,
            EnterError::Exec { .. } => 126,
            _ => 1,
        }
    }
}

const ENTER_KINDS: [NsKind; 6] = super::namespace::ENTER_ORDER;

fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        _ => 1,
    }
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain([std::ptr::null()])
        .collect()
}

/// The paths execve will try, in order: the program itself when it has a
/// slash, else each PATH entry (the command's PATH, or the usual default).
pub fn exec_candidates(program: &str, env: &[(String, String)]) -> Vec<String> {
    if program.contains('/') {
        return vec![program.to_string()];
    }
    let path = env.iter().rev().find(|(k, _)| k == "PATH").map_or(
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        |(_, v)| v.as_str(),
    );
    path.split(':')
        .map(|dir| if dir.is_empty() { "." } else { dir })
        .map(|dir| format!("{}/{program}", dir.trim_end_matches('/')))
        .collect()
}

/// Writes one record on the report pipe (one write of under PIPE_BUF
/// bytes, so records of the helper and the command never interleave).
/// Async-signal-safe.
unsafe fn report(err_fd: RawFd, stage: u32, value: i32, extra: u8) {
    let mut buf = [0u8; RECORD];
    buf[..4].copy_from_slice(&stage.to_ne_bytes());
    buf[4..8].copy_from_slice(&value.to_ne_bytes());
    buf[8] = extra;
    // SAFETY: write(2) is async-signal-safe; buf is ours.
    unsafe { libc::write(err_fd, buf.as_ptr().cast(), buf.len()) };
}

/// Writes a failure report on the error pipe and exits. Async-signal-safe.
unsafe fn report_and_exit(err_fd: RawFd, stage: u32, value: i32, extra: u8) -> ! {
    // SAFETY: report and _exit(2) are async-signal-safe.
    unsafe {
        report(err_fd, stage, value, extra);
        libc::_exit(127)
    }
}

/// The forked helper: enter, fork the command, pass its status on.
#[allow(clippy::too_many_arguments)]
///
/// # Safety
/// Must run in a freshly forked child; makes only async-signal-safe calls.
unsafe fn helper(
    namespaces: &[(NsKind, RawFd)],
    cwd: &CString,
    candidates: &[CString],
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    stdio: [Option<RawFd>; 3],
    err_fd: RawFd,
    foreground: bool,
    own_group: bool,
) -> ! {
    // SAFETY: all calls below are async-signal-safe syscalls on fds and
    // buffers that were prepared before the fork and stay valid.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
        for (kind, fd) in namespaces {
            if libc::setns(*fd, kind.clone_flag().bits()) != 0 {
                let index = ENTER_KINDS.iter().position(|k| k == kind).unwrap_or(255);
                report_and_exit(err_fd, STAGE_SETNS, errno(), index as u8);
            }
        }
        if libc::chdir(cwd.as_ptr()) != 0 {
            libc::chdir(c"/".as_ptr());
        }
        // A fork of a multi-threaded caller inherits every fd, including the
        // error pipes of other commands being started at the same time; keep
        // only ours, or their readers would wait for this helper to exit.
        let [a, b, c] = stdio.map(|fd| fd.unwrap_or(-1));
        super::fds::close_all_except([err_fd, a, b, c]);
        let pid = libc::fork();
        if pid == 0 {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            for (target, fd) in stdio.iter().enumerate() {
                if let Some(fd) = fd {
                    libc::dup2(*fd, target as i32);
                }
            }
            if own_group {
                libc::setpgid(0, 0);
            }
            if foreground {
                // Our own process group is given the terminal; SIGTTOU is
                // ignored meanwhile because we start in the background.
                libc::signal(libc::SIGTTOU, libc::SIG_IGN);
                libc::tcsetpgrp(0, libc::getpid());
                libc::signal(libc::SIGTTOU, libc::SIG_DFL);
            }
            let mut failure = libc::ENOENT;
            for path in candidates {
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                let e = errno();
                // Like execvp: remember a real failure over "not here".
                if e != libc::ENOENT && e != libc::ENOTDIR {
                    failure = e;
                }
            }
            report_and_exit(err_fd, STAGE_EXEC, failure, 0);
        }
        if pid < 0 {
            report_and_exit(err_fd, STAGE_EXEC, errno(), 0);
        }
        report(err_fd, STAGE_STARTED, pid, 0);
        libc::close(err_fd);
        let mut status = 0;
        loop {
            let flags = if foreground { libc::WUNTRACED } else { 0 };
            if libc::waitpid(pid, &mut status, flags) < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                libc::_exit(1);
            }
            if !libc::WIFSTOPPED(status) {
                break;
            }
            // Ctrl-Z, as a shell handles it: take the terminal back, stop
            // (the caller, waiting on us, stops too), and on `fg` hand the
            // terminal back to the command and continue it.
            libc::signal(libc::SIGTTOU, libc::SIG_IGN);
            libc::tcsetpgrp(0, libc::getpgrp());
            libc::raise(libc::SIGSTOP);
            libc::tcsetpgrp(0, pid);
            libc::signal(libc::SIGTTOU, libc::SIG_DFL);
            libc::kill(-pid, libc::SIGCONT);
        }
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        };
        libc::_exit(code)
    }
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_with_slash_is_used_as_is() {
        assert_eq!(exec_candidates("./run.sh", &[]), vec!["./run.sh"]);
    }

    #[test]
    fn path_lookup_uses_the_commands_path() {
        let env = vec![("PATH".to_string(), "/opt/bin:/usr/bin/".to_string())];
        assert_eq!(
            exec_candidates("ping", &env),
            vec!["/opt/bin/ping", "/usr/bin/ping"]
        );
    }
}
