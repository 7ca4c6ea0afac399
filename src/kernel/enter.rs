//! Running a command inside every namespace of a node.
//!
//! setns(CLONE_NEWNS) fails in a multi-threaded process and a pid namespace
//! only applies to children, so: fork a helper, enter the namespaces there
//! in [`ENTER_ORDER`](super::namespace::ENTER_ORDER), fork the command, and
//! let the helper pass the command's exit status on. Failures to enter or to
//! exec come back through a close-on-exec socket, never as a guessed exit
//! code.
//!
//! With the report that the command started comes a pidfd of it, opened by
//! the helper while the command is its child and not yet reaped, so the pid
//! is certainly the command's. Every signal goes through that pidfd: it
//! reaches the command, or its process group, and never a process that
//! reused its pid. On Linux 6.9 and later the group is signalled through
//! the pidfd too; before, by its id, with a narrow race left (see
//! `Running::signal_group_by_id`).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::namespace::{NamespaceFds, NsKind};
use super::process::{exited_within, pidfd_send_signal};

#[derive(Debug, thiserror::Error)]
pub enum EnterError {
    #[error("prepare the command: {0}")]
    Prepare(String),
    #[error("fork: {0}")]
    Fork(nix::Error),
    #[error("join the node's cgroups: {0}")]
    Cgroup(nix::Error),
    #[error("become root of the node's user namespace: {0}")]
    Credentials(nix::Error),
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
    #[error(
        "the helper could not open a pidfd of the command (out of file descriptors or memory?), so nothing could end it safely later: it was ended at once"
    )]
    NoPidfd,
}

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct NodeCommand {
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
pub(crate) enum Stdio {
    Inherit,
    Fd(OwnedFd),
}

/// A command started in a node.
#[derive(Debug)]
pub(crate) struct Running {
    helper: Pid,
    foreground: bool,
    own_group: bool,
    /// Our end of the report socket.
    reports: OwnedFd,
    /// What the helper and the command reported, once read to its end.
    report: Option<Vec<u8>>,
    /// The command's pidfd, sent by the helper with its report.
    pidfd: Option<OwnedFd>,
    program: String,
    /// Set once the helper has been reaped: its pid may then be reused.
    exited: Option<i32>,
}

/// Records on the report socket, one message each: stage (u32), value
/// (i32), extra byte.
const RECORD: usize = 9;
const STAGE_SETNS: u32 = 1;
const STAGE_EXEC: u32 = 2;
const STAGE_CGROUP: u32 = 4;
/// Taking root's ids in the node's user namespace failed.
const STAGE_CREDENTIALS: u32 = 5;
/// The command was forked; the value is its pid (in our pid namespace). The
/// message carries the command's pidfd (SCM_RIGHTS) when the helper could
/// open one.
const STAGE_STARTED: u32 = 3;

/// How long [`Running::terminate`] waits for the command (or its group) to
/// go after SIGKILL.
const AFTER_KILL: Duration = Duration::from_secs(1);

/// Starts `command` inside the namespaces in `ns` with the given stdin,
/// stdout and stderr.
pub(crate) fn spawn(
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
    let cgroups = ns.raw_cgroups();
    let foreground = command.foreground;
    let own_group = command.own_group || foreground;
    let stdio_fds: [Option<RawFd>; 3] = [0, 1, 2].map(|i| match &stdio[i] {
        Stdio::Inherit => None,
        Stdio::Fd(fd) => Some(fd.as_raw_fd()),
    });
    let (err_read, err_write) = report_socket().map_err(EnterError::Fork)?;
    let err_fd = err_write.as_raw_fd();

    // SAFETY: fork(2); the child runs `helper`, which only makes
    // async-signal-safe calls on the data prepared above and never returns.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            helper(
                &namespaces,
                &cgroups,
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
        reports: err_read,
        report: None,
        pidfd: None,
        program: program.clone(),
        exited: None,
    })
}

/// A close-on-exec `SOCK_SEQPACKET` pair for the report (a socket rather
/// than a pipe, to carry the command's pidfd): (our end, the children's).
fn report_socket() -> nix::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: socketpair(2) writes two new fds into the array it is given.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    nix::Error::result(rc)?;
    // SAFETY: the kernel just made both fds for us; nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl Running {
    /// Waits until the command has been exec'd (the report socket ends on
    /// exec) and returns its pid, as the caller's pid namespace sees it. When
    /// entering or exec failed, reaps the helper and returns why. A command
    /// that came without a pidfd could never be signalled safely: it is
    /// ended at once (see `end_without_pidfd`) and is an error
    /// ([`EnterError::NoPidfd`]), so every command that starts can be ended.
    pub(crate) fn started(&mut self) -> Result<i32, EnterError> {
        match self.read_report() {
            Ok(Some(pid)) if self.pidfd.is_some() => Ok(pid),
            Ok(Some(pid)) => {
                self.end_without_pidfd(pid);
                Err(EnterError::NoPidfd)
            }
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
    pub(crate) fn wait(mut self) -> Result<i32, EnterError> {
        // Read to the end first: the report socket ends when the command
        // execs or fails to, and a failure beats any exit code.
        let report = self.read_report();
        let code = self.reap(self.foreground.then_some(WaitPidFlag::WUNTRACED))?;
        report?;
        Ok(code.unwrap_or(1))
    }

    /// The command's exit code if it has ended, without blocking.
    pub(crate) fn try_wait(&mut self) -> Result<Option<i32>, EnterError> {
        self.reap(Some(WaitPidFlag::WNOHANG))
    }

    /// Ends the command (and, with a group of its own, every process of the
    /// group, also when the command itself has already exited): SIGTERM
    /// and SIGCONT (so that a stopped process acts on it), then SIGKILL to
    /// whatever is left after `grace`. Returns once nothing is left, or at
    /// most a second after SIGKILL. Does not reap: [`Self::wait`] does.
    pub(crate) fn terminate(&mut self, grace: Duration) -> Result<(), EnterError> {
        if self.started().is_err() {
            // It never started (`wait` says why), or it came without a
            // pidfd and `started` has ended it.
            return Ok(());
        }
        self.send(Some(Signal::SIGTERM))?;
        self.send(Some(Signal::SIGCONT))?;
        if self.gone_within(grace)? {
            return Ok(());
        }
        self.send(Some(Signal::SIGKILL))?;
        self.gone_within(AFTER_KILL)?;
        Ok(())
    }

    /// Ends the helper (SIGKILL) and reaps it, for when the command could
    /// not be ended and waiting for it might never return. The helper is
    /// our child and not yet reaped, so its pid is still its own.
    pub(crate) fn abandon(mut self) {
        if self.exited.is_none() {
            let _ = nix::sys::signal::kill(self.helper, Signal::SIGKILL);
            let _ = self.reap(None);
        }
    }

    /// Ends a command the helper sent no pidfd of, and reaps the helper.
    /// The helper (our child, not yet reaped, so its pid is its own) is
    /// stopped first: while it is stopped it can neither reap nor fork. If
    /// `pid` is then still the helper's child, it is the command, unreaped,
    /// so its pid, and with a group of its own the group's id, belong to it
    /// and kill(2) by number reaches it and nothing else. (The helper may
    /// have reaped the command just before the stop took hold: then `pid`
    /// is no child of the helper's and nothing is sent.) Then the helper is
    /// killed and reaped; the node's init reaps the command. When the
    /// helper has exited instead of stopping, it had reaped the command:
    /// there is nothing left to end.
    fn end_without_pidfd(&mut self, pid: i32) {
        if self.exited.is_some() {
            return;
        }
        let _ = nix::sys::signal::kill(self.helper, Signal::SIGSTOP);
        let stopped = loop {
            match waitpid(self.helper, Some(WaitPidFlag::WUNTRACED)) {
                Err(nix::Error::EINTR) => continue,
                Ok(WaitStatus::Stopped(..)) => break true,
                Ok(status) => {
                    self.exited = Some(exit_code(status));
                    break false;
                }
                Err(_) => break false,
            }
        };
        if stopped && parent_of(pid) == Some(self.helper.as_raw()) {
            let target = if self.own_group { -pid } else { pid };
            // SAFETY: kill(2) of the command (or its group, whose id is the
            // command's pid): still the stopped helper's child, so unreaped.
            unsafe { libc::kill(target, libc::SIGKILL) };
        }
        let _ = nix::sys::signal::kill(self.helper, Signal::SIGKILL);
        let _ = self.reap(None);
    }

    /// Has everything [`Self::send`] reaches gone within `limit`? The
    /// command alone has once its pidfd polls readable (it has exited). A
    /// group has no fd to wait on: it is checked with signal 0 every 10 ms.
    fn gone_within(&mut self, limit: Duration) -> Result<bool, EnterError> {
        if !self.own_group {
            return Ok(self
                .pidfd
                .as_ref()
                .is_none_or(|pidfd| exited_within(pidfd.as_fd(), limit)));
        }
        let deadline = Instant::now() + limit;
        loop {
            if !self.send(None)? {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` (`None`: signal 0, only checking) to the command,
    /// or, when it has a process group of its own, to every process in
    /// that group: also once the command itself has exited, to what it left
    /// in its group. Ok(false) when there was no one to send it to. Zombies
    /// count until reaped (the helper reaps the command, the node's init
    /// what the command left behind).
    ///
    /// It goes through the command's pidfd, so it never reaches a process
    /// that reused the command's pid. For the group, pidfd_send_signal with
    /// `PIDFD_SIGNAL_PROCESS_GROUP` (Linux 6.9) reaches the processes whose
    /// group is the command's own `struct pid`, not whatever group bears its
    /// number: the number stays allocated while any process is in the group
    /// (as pid, group or session id), and once the group is empty a new
    /// group that reuses the number has a new `struct pid` the pidfd does
    /// not refer to. Older kernels: see [`Self::signal_group_by_id`].
    fn send(&mut self, signal: Option<Signal>) -> Result<bool, EnterError> {
        let Some(pid) = self.read_report()? else {
            // The helper ended without starting the command.
            return Ok(false);
        };
        let Some(pidfd) = self.pidfd.as_ref() else {
            // `started` (which `terminate` checks first) ends a command
            // that came without a pidfd: nothing is left to signal.
            return Ok(false);
        };
        let number = signal.map_or(0, |s| s as i32);
        let flags = if self.own_group {
            libc::PIDFD_SIGNAL_PROCESS_GROUP
        } else {
            0
        };
        match pidfd_send_signal(pidfd.as_fd(), number, flags) {
            Ok(()) => Ok(true),
            Err(nix::Error::ESRCH) => Ok(false),
            // The flag is unknown before Linux 6.9.
            Err(nix::Error::EINVAL) if flags != 0 => Self::signal_group_by_id(pidfd, pid, number),
            Err(e) => Err(EnterError::Signal(e)),
        }
    }

    /// The group, before Linux 6.9: kill(-pid) while the command (whose
    /// pid is the group id) has not been reaped, since until then the id is
    /// its own. The pidfd tells: signal 0 through it fails with ESRCH only
    /// once the command has been reaped. One race is left: the helper may
    /// reap the command between that check and kill(2), and the id then
    /// belongs to another group only if its group emptied and a new process
    /// got that pid in the same instant. Once the command has been reaped,
    /// what it left in its group is not signalled: it could not be told
    /// from a group that reused the id.
    fn signal_group_by_id(pidfd: &OwnedFd, pid: i32, number: i32) -> Result<bool, EnterError> {
        match pidfd_send_signal(pidfd.as_fd(), 0, 0) {
            Ok(()) => {}
            Err(nix::Error::ESRCH) => return Ok(false),
            Err(e) => return Err(EnterError::Signal(e)),
        }
        // SAFETY: kill(2) with a negative pid signals that process group;
        // `number` is 0 or a valid signal.
        let rc = unsafe { libc::kill(-pid, number) };
        match nix::Error::result(rc) {
            Ok(_) => Ok(true),
            Err(nix::Error::ESRCH) => Ok(false),
            Err(e) => Err(EnterError::Signal(e)),
        }
    }

    /// Reads the report socket to its end (once) and parses it: the
    /// command's pid, or why it could not start. Keeps the pidfd that came
    /// with it.
    fn read_report(&mut self) -> Result<Option<i32>, EnterError> {
        if self.report.is_none() {
            let (bytes, pidfd) = read_records(self.reports.as_fd());
            self.report = Some(bytes);
            self.pidfd = pidfd;
        }
        let report = self.report.as_deref().unwrap_or_default();
        let mut pid = None;
        for record in report.chunks_exact(RECORD) {
            let stage = u32::from_ne_bytes([record[0], record[1], record[2], record[3]]);
            let value = i32::from_ne_bytes([record[4], record[5], record[6], record[7]]);
            match stage {
                STAGE_STARTED => pid = Some(value),
                STAGE_CGROUP => return Err(EnterError::Cgroup(nix::Error::from_raw(value))),
                STAGE_CREDENTIALS => {
                    return Err(EnterError::Credentials(nix::Error::from_raw(value)));
                }
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

/// The parent pid of `pid` (field 4 of /proc/PID/stat, after the command
/// name, which may hold spaces and parentheses).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
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

const ENTER_KINDS: [NsKind; 7] = super::namespace::ENTER_ORDER;

/// Reads every record on the report socket until its end (all writers gone:
/// the helper has exited or closed it, the command has exec'd or exited).
/// Returns the records' bytes and the first fd that came with them.
fn read_records(socket: BorrowedFd<'_>) -> (Vec<u8>, Option<OwnedFd>) {
    let mut bytes = Vec::new();
    let mut pidfd = None;
    loop {
        let mut buf = [0u8; RECORD];
        match super::fds::recv_with_fd(socket, &mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) | Ok((0, _)) => break,
            Ok((n, fd)) => {
                if pidfd.is_none() {
                    pidfd = fd;
                }
                bytes.extend_from_slice(&buf[..n]);
            }
        }
    }
    (bytes, pidfd)
}

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
pub(crate) fn exec_candidates(program: &str, env: &[(String, String)]) -> Vec<String> {
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

fn record(stage: u32, value: i32, extra: u8) -> [u8; RECORD] {
    let mut buf = [0u8; RECORD];
    buf[..4].copy_from_slice(&stage.to_ne_bytes());
    buf[4..8].copy_from_slice(&value.to_ne_bytes());
    buf[8] = extra;
    buf
}

/// Sends one record on the report socket (one message, so records of the
/// helper and the command never mix). Async-signal-safe: no allocation,
/// one send(2), which never raises SIGPIPE.
fn report(socket: BorrowedFd<'_>, stage: u32, value: i32, extra: u8) {
    let buf = record(stage, value, extra);
    // SAFETY: send(2) of a buffer of ours on an fd we borrow.
    unsafe {
        libc::send(
            socket.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    };
}

/// Sends a failure report and exits with 127, skipping destructors and
/// atexit handlers (what a forked child must do). Async-signal-safe.
fn report_and_exit(socket: BorrowedFd<'_>, stage: u32, value: i32, extra: u8) -> ! {
    report(socket, stage, value, extra);
    // SAFETY: _exit(2) ends the process at once; nothing of ours is left
    // half done (the report is one complete message).
    unsafe { libc::_exit(127) }
}

/// Sends the STARTED record, with `pidfd` attached when there is one.
/// Async-signal-safe: no allocation, one sendmsg(2), never SIGPIPE.
fn report_started(socket: BorrowedFd<'_>, pid: i32, pidfd: Option<BorrowedFd<'_>>) {
    let _ = super::fds::send_with_fd(socket, &record(STAGE_STARTED, pid, 0), pidfd);
}

/// The forked helper: enter, fork the command, pass its status on.
#[allow(clippy::too_many_arguments)]
///
/// # Safety
/// Must run in a freshly forked child; makes only async-signal-safe calls.
unsafe fn helper(
    namespaces: &[(NsKind, RawFd)],
    cgroups: &[RawFd],
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
    // buffers that were prepared before the fork and stay valid; `err` is
    // not used after err_fd is closed.
    unsafe {
        let err = BorrowedFd::borrow_raw(err_fd);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
        // Into the node's cgroups before its cgroup namespace: from inside
        // it, v2 refuses a move from a cgroup outside the namespace. The
        // command forked below inherits them.
        for fd in cgroups {
            if libc::write(*fd, c"0".as_ptr().cast(), 1) != 1 {
                report_and_exit(err, STAGE_CGROUP, errno(), 0);
            }
        }
        for (kind, fd) in namespaces {
            if libc::setns(*fd, kind.clone_flag().bits()) != 0 {
                let index = ENTER_KINDS.iter().position(|k| k == kind).unwrap_or(255);
                report_and_exit(err, STAGE_SETNS, errno(), index as u8);
            }
        }
        // In a node's user namespace we still have host root's ids, which
        // mean nothing there: take the node root's, as its init did.
        if namespaces.iter().any(|(kind, _)| *kind == NsKind::User)
            && let Err(e) = crate::kernel::userns::become_root()
        {
            report_and_exit(err, STAGE_CREDENTIALS, e, 0);
        }
        if libc::chdir(cwd.as_ptr()) != 0 {
            libc::chdir(c"/".as_ptr());
        }
        // A fork of a multi-threaded caller inherits every fd, including the
        // report sockets of other commands being started at the same time; keep
        // only ours, or their readers would wait for this helper to exit.
        let [a, b, c] = stdio.map(|fd| fd.unwrap_or(-1));
        super::fds::close_all_except([err_fd, a, b, c]);
        let pid = libc::fork();
        if pid == 0 {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            // Rust ignores SIGPIPE, and an ignored signal stays ignored
            // across exec: `yes | head -1` would loop on EPIPE errors.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
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
            report_and_exit(err, STAGE_EXEC, failure, 0);
        }
        if pid < 0 {
            report_and_exit(err, STAGE_EXEC, errno(), 0);
        }
        // The command is our child and we have not reaped it, so `pid` is
        // certainly its pid here: the pidfd refers to it for good.
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as RawFd;
        report_started(
            err,
            pid,
            (pidfd >= 0).then(|| BorrowedFd::borrow_raw(pidfd)),
        );
        if pidfd >= 0 {
            libc::close(pidfd);
        }
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
    use std::io::{BufRead, BufReader};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// No namespaces to enter: the command runs in ours, so its pids are
    /// ours too.
    fn here() -> NamespaceFds {
        NamespaceFds::open(std::process::id() as i32, &[]).expect("no namespaces")
    }

    fn command(argv: &[&str], own_group: bool) -> NodeCommand {
        NodeCommand {
            argv: argv.iter().map(|a| a.to_string()).collect(),
            env: std::env::vars().collect(),
            cwd: None,
            foreground: false,
            own_group,
        }
    }

    /// Starts `argv` with stdout on a pipe; returns it with the pipe's
    /// read end.
    fn start(argv: &[&str], own_group: bool) -> (Running, BufReader<std::fs::File>) {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
        let null = || OwnedFd::from(std::fs::File::open("/dev/null").expect("/dev/null"));
        let stdio = [Stdio::Fd(null()), Stdio::Fd(write), Stdio::Fd(null())];
        let running = spawn(&here(), &command(argv, own_group), stdio).expect("spawn");
        (running, BufReader::new(read.into()))
    }

    /// A sleep argument no other test uses, to find the process by.
    fn unique_sleep() -> String {
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        format!("1000.{}{serial:03}", std::process::id())
    }

    /// A process a test started, killed when the test ends, failed or not.
    struct Leftover(OwnedFd);

    impl Leftover {
        /// Pins `pid` and checks, once pinned, that it is (or soon becomes:
        /// a shell's `$!` may not have exec'd yet) `sleep ARG`. The pid is that of a child the command started and has not
        /// waited for, so it is still that child's when pinned; the guard
        /// exists before the check, which may fail.
        fn pin(pid: i32, arg: &str) -> Self {
            let pinned = Self(super::super::process::pidfd_open(pid).expect("pidfd"));
            assert!(
                until(Duration::from_secs(2), || sleeping(pid, arg)),
                "{pid} is the sleep"
            );
            pinned
        }
    }

    impl Drop for Leftover {
        fn drop(&mut self) {
            let _ = pidfd_send_signal(self.0.as_fd(), libc::SIGKILL, 0);
        }
    }

    /// Is `pid` a live (not zombie) `sleep ARG`?
    fn sleeping(pid: i32, arg: &str) -> bool {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
        cmdline == format!("sleep\0{arg}\0").into_bytes()
            && !matches!(state, Some("Z" | "X") | None)
    }

    fn first_line(out: &mut BufReader<std::fs::File>) -> String {
        let mut line = String::new();
        out.read_line(&mut line).expect("read");
        line.trim().to_string()
    }

    fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while !done() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    #[test]
    fn the_group_is_ended_after_its_leader_was_reaped() {
        let arg = unique_sleep();
        let script = format!("sleep {arg} & echo $!; exit 0");
        let (mut running, mut out) = start(&["sh", "-c", &script], true);
        running.started().expect("started");
        let member: i32 = first_line(&mut out).parse().expect("a pid");
        let _cleanup = Leftover::pin(member, &arg);
        assert!(
            until(Duration::from_secs(5), || running
                .try_wait()
                .ok()
                .flatten()
                .is_some()),
            "the shell exits"
        );
        assert!(sleeping(member, &arg), "its child outlives it");
        running
            .terminate(Duration::from_secs(2))
            .expect("terminate");
        assert!(
            until(Duration::from_secs(2), || !sleeping(member, &arg)),
            "the child in its group was ended too"
        );
        assert_eq!(running.wait().expect("wait"), 0);
    }

    #[test]
    fn what_ignores_sigterm_gets_sigkill_after_the_grace() {
        let arg = unique_sleep();
        let script = format!("trap '' TERM; sleep {arg} & echo $!; exit 0");
        let (mut running, mut out) = start(&["sh", "-c", &script], true);
        running.started().expect("started");
        let member: i32 = first_line(&mut out).parse().expect("a pid");
        let _cleanup = Leftover::pin(member, &arg);
        let begun = Instant::now();
        running
            .terminate(Duration::from_millis(300))
            .expect("terminate");
        assert!(
            begun.elapsed() >= Duration::from_millis(300),
            "it had its grace"
        );
        assert!(
            until(Duration::from_secs(2), || !sleeping(member, &arg)),
            "SIGKILL ended it"
        );
        running.wait().expect("wait");
    }

    #[test]
    fn parent_of_reads_the_parent_pid_from_proc() {
        assert_eq!(
            parent_of(std::process::id() as i32),
            Some(nix::unistd::getppid().as_raw())
        );
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        assert_eq!(
            parent_of(child.id() as i32),
            Some(std::process::id() as i32)
        );
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(parent_of(child.id() as i32), None);
    }

    #[test]
    fn commands_start_with_sigpipe_at_its_default() {
        // This test process ignores SIGPIPE, as every Rust program does.
        let (mut running, mut out) = start(&["grep", "^SigIgn:", "/proc/self/status"], false);
        running.started().expect("started");
        let line = first_line(&mut out);
        let mask = u64::from_str_radix(line.trim_start_matches("SigIgn:").trim(), 16)
            .unwrap_or_else(|_| panic!("a mask: {line}"));
        assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "{line}");
        assert_eq!(running.wait().expect("wait"), 0);
    }

    #[test]
    fn abandon_ends_and_reaps_the_helper() {
        let arg = unique_sleep();
        let (mut running, _out) = start(&["sleep", &arg], true);
        let pid = running.started().expect("started");
        let _cleanup = Leftover::pin(pid, &arg);
        let helper = running.helper;
        running.abandon();
        assert_eq!(
            waitpid(helper, Some(WaitPidFlag::WNOHANG)),
            Err(nix::Error::ECHILD),
            "the helper was reaped"
        );
    }

    #[test]
    fn a_command_alone_is_ended_through_its_pidfd_without_waiting_out_the_grace() {
        let arg = unique_sleep();
        let (mut running, _out) = start(&["sleep", &arg], false);
        let pid = running.started().expect("started");
        let _cleanup = Leftover::pin(pid, &arg);
        assert!(running.pidfd.is_some(), "the helper sent a pidfd");
        let begun = Instant::now();
        running
            .terminate(Duration::from_secs(10))
            .expect("terminate");
        // The pidfd polls readable as soon as it exits.
        assert!(
            begun.elapsed() < Duration::from_secs(5),
            "{:?}",
            begun.elapsed()
        );
        assert_eq!(running.wait().expect("wait"), 128 + 15);
    }

    #[test]
    fn a_command_alone_that_ignores_sigterm_gets_sigkill_after_the_grace() {
        let arg = unique_sleep();
        // An ignored signal stays ignored across exec.
        let script = format!("trap '' TERM; exec sleep {arg}");
        let (mut running, _out) = start(&["sh", "-c", &script], false);
        let pid = running.started().expect("started");
        let _cleanup = Leftover::pin(pid, &arg);
        let begun = Instant::now();
        running
            .terminate(Duration::from_millis(300))
            .expect("terminate");
        let took = begun.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(1),
            "it had its grace, and SIGKILL ended it at once: {took:?}"
        );
        assert_eq!(running.wait().expect("wait"), 128 + 9);
    }

    #[test]
    fn ending_what_has_ended_is_no_error() {
        for own_group in [true, false] {
            let (mut running, _out) = start(&["true"], own_group);
            running.started().expect("started");
            assert!(until(Duration::from_secs(5), || running
                .try_wait()
                .ok()
                .flatten()
                .is_some()));
            running
                .terminate(Duration::from_millis(100))
                .expect("nothing to end");
            assert_eq!(running.wait().expect("wait"), 0, "{own_group}");
        }
    }

    #[test]
    fn a_command_without_a_pidfd_is_ended_not_handed_out() {
        for own_group in [true, false] {
            let arg = unique_sleep();
            let (mut running, _out) = start(&["sleep", &arg], own_group);
            let pid = running
                .read_report()
                .expect("report")
                .expect("a STARTED report");
            let _cleanup = Leftover::pin(pid, &arg);
            // As when the helper's pidfd_open fails (out of fds or memory).
            running.pidfd = None;
            let helper = running.helper;
            let err = running.started().expect_err("no pidfd");
            assert!(matches!(err, EnterError::NoPidfd), "{own_group}: {err}");
            assert!(
                until(Duration::from_secs(2), || !sleeping(pid, &arg)),
                "{own_group}: the command was ended"
            );
            assert_eq!(
                waitpid(helper, Some(WaitPidFlag::WNOHANG)),
                Err(nix::Error::ECHILD),
                "{own_group}: the helper was reaped"
            );
            assert_eq!(running.wait().expect("wait"), 128 + 9, "{own_group}");
        }
    }

    #[test]
    fn a_failed_exec_still_comes_back_as_an_error() {
        let (mut running, _out) = start(&["/nonexistent/nslab-test"], true);
        let err = running.started().expect_err("cannot exec");
        assert!(matches!(err, EnterError::Exec { .. }), "{err}");
        assert_eq!(err.exit_code(), 127);
    }

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
