//! Finding, signalling and awaiting node inits without races on PID reuse:
//! every signal goes through a pidfd opened before the process was checked.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::kernel::namespace::{is_own_user_namespace, is_root_made_child};
use crate::spec::{is_valid_name, is_valid_node_name};

/// `argv[0]` of every node init; `ps` and `down --all` find nodes by it.
pub(crate) const INIT_ARGV0: &str = "nslab-init";
/// `argv[1]` that makes the nslab binary run as a node init.
pub(crate) const INIT_MARKER: &str = "__init";

/// A node init found in /proc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundInit {
    pub pid: i32,
    pub lab: String,
    pub node: String,
}

/// The `LAB/NODE` argument of an init's command line.
pub(crate) fn init_tag(lab: &str, node: &str) -> String {
    format!("{lab}/{node}")
}

/// The alias of `lo` in a node's net namespace: `nslab:LAB/NODE`.
pub(crate) fn netns_mark(lab: &str, node: &str) -> String {
    format!("nslab:{}", init_tag(lab, node))
}

/// The lab and node of a `lo` alias, if it is a node's mark (with valid
/// names: anyone with CAP_NET_ADMIN in a namespace can set an alias).
pub(crate) fn parse_netns_mark(alias: &str) -> Option<(String, String)> {
    parse_tag(alias.strip_prefix("nslab:")?)
}

/// Reads `/proc/PID/cmdline` as its NUL-separated arguments.
pub(crate) fn cmdline(pid: i32) -> io::Result<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline"))?;
    Ok(raw
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}

/// The lab and node of an init's command line, if it is one. Anyone can
/// run a process with any command line, so the names are held to the
/// topology's rule: a spoofed `../x` never becomes a path.
pub(crate) fn parse_init_cmdline(args: &[String]) -> Option<(String, String)> {
    match args {
        [argv0, marker, tag] if argv0 == INIT_ARGV0 && marker == INIT_MARKER => parse_tag(tag),
        _ => None,
    }
}

/// `LAB/NODE` with both names valid.
fn parse_tag(tag: &str) -> Option<(String, String)> {
    let (lab, node) = tag.split_once('/')?;
    (is_valid_name(lab) && is_valid_node_name(node)).then(|| (lab.to_string(), node.to_string()))
}

/// Is `pid` a node init of `lab/node` that nslab could have started: the
/// right command line, root in our user namespace, and PID 1 of a pid
/// namespace of its own? (An unprivileged process can fake the first, not
/// the others.)
pub(crate) fn is_init_of(pid: i32, lab: &str, node: &str) -> bool {
    let named = cmdline(pid)
        .ok()
        .and_then(|args| parse_init_cmdline(&args))
        .is_some_and(|(l, n)| l == lab && n == node);
    named && is_privileged_pid_one(pid)
}

/// Whether `pid` is PID 1 of its pid namespace and root: host root in our
/// user namespace, or the root of a user namespace that host root made as
/// a child of ours (a user-namespaced node). A process of an unprivileged
/// user with an init's name passes neither: a user namespace it makes is
/// owned by that user.
fn is_privileged_pid_one(pid: i32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let uids = field("Uid:");
    let pid_one = field("NSpid:").len() >= 2 && field("NSpid:").last() == Some(&"1");
    let Ok(user_ns) = fs::File::open(format!("/proc/{pid}/ns/user")) else {
        return false;
    };
    let root = match is_own_user_namespace(&user_ns).ok() {
        Some(true) => uids.iter().take(2).all(|uid| *uid == "0"),
        // Host root's ids until the init takes the node root's (a `down`
        // racing a killed `up` may find it in between).
        Some(false) => {
            let node_root = fs::read_to_string(format!("/proc/{pid}/uid_map"))
                .ok()
                .and_then(|map| map.split_whitespace().nth(1).map(str::to_string));
            let is_root = |uid: &&str| *uid == "0" || node_root.as_deref() == Some(*uid);
            is_root_made_child(&user_ns) && uids.len() >= 2 && uids.iter().take(2).all(is_root)
        }
        None => false,
    };
    root && pid_one
}

/// Every node init on the host, optionally only those of one lab.
pub fn find_inits(lab: Option<&str>) -> io::Result<Vec<FoundInit>> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        // A process may exit between readdir and read: skip it.
        let Ok(args) = cmdline(pid) else { continue };
        if let Some((init_lab, node)) = parse_init_cmdline(&args)
            && lab.is_none_or(|l| l == init_lab)
        {
            found.push(FoundInit {
                pid,
                lab: init_lab,
                node,
            });
        }
    }
    found.sort_by_key(|f| f.pid);
    Ok(found)
}

/// A process pinned by a pidfd, so signals reach it and nothing that later
/// reuses its PID.
#[derive(Debug)]
pub struct PinnedProcess {
    pub pid: i32,
    fd: OwnedFd,
}

impl PinnedProcess {
    /// Pins `pid` and checks, after pinning, that it is still the init of
    /// `lab/node` (see [`is_init_of`]). Returns `Ok(None)` when there is no
    /// such init.
    pub fn pin_init(pid: i32, lab: &str, node: &str) -> io::Result<Option<Self>> {
        let fd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(is_init_of(pid, lab, node).then_some(Self { pid, fd }))
    }

    /// Whether the pinned process is still running. Anything read through
    /// /proc/PID between pinning and a `true` here was read from it, not
    /// from a process that reused its pid.
    pub fn is_alive(&self) -> bool {
        !exited_within(self.fd.as_fd(), Duration::ZERO)
    }

    pub fn signal(&self, signal: i32) -> io::Result<()> {
        match pidfd_send_signal(self.fd.as_fd(), signal, 0) {
            Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Reaps the process if it is our child (a no-op otherwise).
    fn reap(&self) {
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(self.pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
    }
}

/// The pidfd: readable (POLLIN) once the process has exited.
impl AsFd for PinnedProcess {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Has the process of `pidfd` exited (a zombie or reaped), or does it
/// within `limit`? A pidfd polls readable from then on, so this sleeps in
/// poll(2) until then.
pub(crate) fn exited_within(pidfd: BorrowedFd<'_>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let mut pollfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pollfd, 1, ms) };
        if rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if rc != 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

/// pidfd_send_signal(2) with a null siginfo (as kill(2) sends). `flags`
/// chooses the scope, e.g. `libc::PIDFD_SIGNAL_PROCESS_GROUP` (Linux 6.9).
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32, flags: u32) -> nix::Result<()> {
    // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, a null
    // siginfo and flags, as documented in pidfd_send_signal(2).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            flags,
        )
    };
    nix::Error::result(rc).map(drop)
}

pub(crate) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until every process has exited or `timeout` passes; returns those
/// still alive. Exited children of ours are reaped.
pub(crate) fn wait_exited(mut procs: Vec<PinnedProcess>, timeout: Duration) -> Vec<PinnedProcess> {
    let deadline = Instant::now() + timeout;
    loop {
        if procs.is_empty() {
            return procs;
        }
        let mut pollfds: Vec<libc::pollfd> = procs
            .iter()
            .map(|p| libc::pollfd {
                fd: p.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let left = deadline.saturating_duration_since(Instant::now());
        // SAFETY: pollfds is a valid array of pollfd of the given length.
        let rc = unsafe {
            libc::poll(
                pollfds.as_mut_ptr(),
                pollfds.len() as libc::nfds_t,
                left.as_millis().min(i32::MAX as u128) as i32,
            )
        };
        if rc < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return procs;
        }
        let mut alive = Vec::with_capacity(procs.len());
        for (proc, pfd) in procs.into_iter().zip(&pollfds) {
            if pfd.revents != 0 {
                proc.reap();
            } else {
                alive.push(proc);
            }
        }
        procs = alive;
        if Instant::now() >= deadline {
            return procs;
        }
    }
}

/// Ends inits: SIGTERM (the init exits and the kernel ends its pid
/// namespace), then SIGKILL for any still there after `grace`. Returns how
/// many were ended and the errors met on the way (one failure does not
/// stop the others from being ended).
pub(crate) fn terminate(procs: Vec<PinnedProcess>, grace: Duration) -> (usize, Vec<String>) {
    let count = procs.len();
    let mut errors = Vec::new();
    let mut signal_all = |procs: &[PinnedProcess], signal: i32| {
        for p in procs {
            if let Err(e) = p.signal(signal) {
                errors.push(format!("signal {signal} to pid {}: {e}", p.pid));
            }
        }
    };
    signal_all(&procs, libc::SIGTERM);
    let stubborn = wait_exited(procs, grace);
    signal_all(&stubborn, libc::SIGKILL);
    // The kernel tears each pid namespace down as its init exits: with
    // thousands of nodes that takes a while (measured: 78 s for 10,011).
    let allowance = Duration::from_secs(5) + Duration::from_millis(10) * count as u32;
    for p in wait_exited(stubborn, allowance) {
        errors.push(format!("process {} did not exit after SIGKILL", p.pid));
    }
    (count, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_init_command_lines() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_init_cmdline(&args(&["nslab-init", "__init", "lab1/h1"])),
            Some(("lab1".into(), "h1".into()))
        );
        assert_eq!(parse_init_cmdline(&args(&["nslab", "up", "x"])), None);
        assert_eq!(
            parse_init_cmdline(&args(&["nslab-init", "__init", "nolab"])),
            None
        );
        assert_eq!(parse_init_cmdline(&args(&["bash"])), None);
    }
}
