//! The zygote: one exec'd helper (per core) that forks every init of its
//! share of a lab.
//!
//! An init used to be an exec of the nslab binary, and the exec (dynamic
//! loading, libc and runtime start-up) cost more CPU than everything the
//! init then did. The zygote is a fresh, single-threaded process with a
//! small heap, so a fork of it is safe to run Rust code in (no lock can be
//! held by a thread that is not there) and shares next to no memory with
//! the lab.
//!
//! Protocol, one line each way per node: nslab writes an [`InitConfig`] as
//! JSON on the zygote's stdin; the zygote clones a child into six new
//! namespaces and answers `pid PID`. At end of input it answers, in the same
//! order, `ok PID` or `err PID MESSAGE` once each child has reported. The
//! zygote dies with the thread of nslab that started it (PDEATHSIG), so an
//! `up` killed halfway leaves no zygote cloning behind its back.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::unistd::Pid;

use super::{HANDOVER_GO, HANDOVER_TREE, InitConfig, InitError, mounts, run::serve};
use crate::kernel::fds::send_with_fd;
use crate::kernel::namespace::{
    all_clone_flags, fork_into, is_own_user_namespace, owning_user_namespace,
};
use crate::kernel::process::{INIT_ARGV0, INIT_MARKER, init_tag};
use crate::kernel::userns::{IdMap, idmapped_tree, write_id_maps};
use crate::spec::Bind;

/// `argv[1]` that makes the nslab binary run as a zygote.
pub(crate) const ZYGOTE_MARKER: &str = "__zygote";
/// Room in the zygote's argument area for a child's `nslab-init __init
/// LAB/NODE` (names are at most 40 bytes each).
const TITLE_ROOM: usize = 128;
/// Environment variable naming the nslab binary, for programs that use the
/// library but are not nslab themselves.
pub const EXE_ENV: &str = "NSLAB_EXE";

/// The program that runs as the zygote: the nslab binary. That is `exe`
/// when given, else this very process's executable, unless `NSLAB_EXE`
/// names another.
pub(crate) fn executable(exe: Option<&Path>) -> PathBuf {
    exe.map(Path::to_path_buf)
        .or_else(|| std::env::var_os(EXE_ENV).map(PathBuf::from))
        .unwrap_or_else(|| "/proc/self/exe".into())
}

/// nslab's end of a running zygote.
#[derive(Debug)]
pub(crate) struct Zygote {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    lab: String,
}

impl Zygote {
    /// Starts a zygote for `lab` (running `exe`, else `NSLAB_EXE`, else this
    /// executable). It dies when the calling thread exits.
    pub(crate) fn start(lab: &str, exe: Option<&Path>) -> Result<Self, InitError> {
        let fail = |source| InitError::Spawn {
            node: format!("(zygote of {lab})"),
            source,
        };
        // No `pre_exec`: without one the standard library spawns with
        // posix_spawn (a vfork), not a fork that copies this process's
        // page tables and makes every page it then writes (a topology
        // being parsed on another thread) a copy-on-write fault until the
        // exec. The zygote sets its parent-death signal itself.
        let parent = std::process::id().to_string();
        let mut child = Command::new(executable(exe))
            .arg0(INIT_ARGV0)
            .args([ZYGOTE_MARKER, lab, &parent, &" ".repeat(TITLE_ROOM)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(fail)?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| fail(io::Error::other("no stdout")))?;
        Ok(Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            lab: lab.to_string(),
        })
    }

    /// The input end, to be written on another thread while this one reads
    /// the answers (so neither pipe can fill up and stall the other).
    pub(crate) fn take_input(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// Writes the configs of all nodes, then closes the input.
    pub(crate) fn send_all(input: ChildStdin, configs: &[InitConfig]) -> io::Result<()> {
        let mut input = BufWriter::new(input);
        for config in configs {
            serde_json::to_writer(&mut input, config)?;
            input.write_all(b"\n")?;
        }
        input.flush()
    }

    /// The next answer line, without its newline.
    pub(crate) fn answer(&mut self) -> Result<String, InitError> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => Err(InitError::Setup {
                node: format!("(zygote of {})", self.lab),
                message: "the zygote exited early".into(),
            }),
            Ok(_) => Ok(line.trim_end().to_string()),
            Err(source) => Err(InitError::Spawn {
                node: format!("(zygote of {})", self.lab),
                source,
            }),
        }
    }

    /// Waits for the zygote to exit.
    pub(crate) fn finish(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Runs as a zygote (`nslab-init __zygote LAB ROOM`); never returns.
pub(crate) fn zygote_main() -> ! {
    let mut out = BufWriter::new(io::stdout().lock());
    if let Err(e) = die_with_parent() {
        fail(out, format_args!("{e}"));
    }
    // Every init's mount namespace is a copy of ours: clean it once here.
    if let Err(e) = mounts::isolate() {
        fail(out, format_args!("prepare the zygote's mounts: {e}"));
    }
    let mut children: Vec<(i32, File)> = Vec::new();
    let mut rejoined = false;
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let config = match serde_json::from_str::<InitConfig>(&line) {
            Ok(config) if rejoined => fail(
                out,
                format_args!(
                    "start node {}: this zygote is in another node's namespaces",
                    config.node
                ),
            ),
            Ok(config) => config,
            Err(e) => fail(out, format_args!("bad config: {e}")),
        };
        rejoined |= config.rejoin.is_some();
        match clone_init(&config) {
            Ok((pid, status)) => {
                children.push((pid, status));
                let _ = writeln!(out, "pid {pid}");
                let _ = out.flush();
            }
            Err(e) => fail(out, format_args!("start node {}: {e}", config.node)),
        }
    }
    let deadline = Instant::now() + READY_TIMEOUT;
    for (pid, status) in children {
        let report = read_report(status, deadline);
        let _ = match report.strip_prefix("ERR ") {
            _ if report == "OK" => writeln!(out, "ok {pid}"),
            Some(message) => writeln!(out, "err {pid} {message}"),
            None if report == "TIMEOUT" => writeln!(
                out,
                "err {pid} its init was not ready after {} s",
                READY_TIMEOUT.as_secs()
            ),
            None => writeln!(out, "err {pid} its init exited before it was ready"),
        };
        let _ = out.flush();
    }
    std::process::exit(0)
}

/// Answers `fail MESSAGE` (flushed: exit skips destructors) and exits.
/// Dies (SIGKILL) when the thread of nslab that started this zygote
/// exits; if nslab is gone already (its pid, `argv[3]`, is no longer the
/// parent), exits at once.
fn die_with_parent() -> Result<(), String> {
    let parent: Option<u32> = std::env::args().nth(3).and_then(|p| p.parse().ok());
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets this process's own
    // parent-death signal.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(format!(
            "set the parent-death signal: {}",
            io::Error::last_os_error()
        ));
    }
    match parent {
        Some(pid) if pid == std::os::unix::process::parent_id() => Ok(()),
        _ => Err("nslab, which started this zygote, is gone".into()),
    }
}

fn fail(mut out: impl Write, message: std::fmt::Arguments<'_>) -> ! {
    let _ = writeln!(out, "fail {message}");
    let _ = out.flush();
    std::process::exit(1)
}

/// How long the inits of one zygote may take to report, together.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads one child's report, or `TIMEOUT` once the deadline passes.
fn read_report(mut status: File, deadline: Instant) -> String {
    let mut report = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pollfd = libc::pollfd {
            fd: status.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd on a pipe we own.
        let ready = unsafe {
            libc::poll(
                &mut pollfd,
                1,
                left.as_millis().min(i32::MAX as u128) as i32,
            )
        };
        if ready == 0 {
            return "TIMEOUT".into();
        }
        match status.read(&mut chunk) {
            Ok(0) => return String::from_utf8_lossy(&report).trim_end().to_string(),
            Ok(n) => report.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return String::new(),
        }
    }
}

/// Clones a child into six new namespaces (seven with a user namespace);
/// the child becomes the init.
fn clone_init(config: &InitConfig) -> io::Result<(i32, File)> {
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let title = format!(
        "{INIT_ARGV0}\0{INIT_MARKER}\0{}\0",
        init_tag(&config.lab, &config.node)
    );
    // Every namespace but the cgroup one. A cgroup namespace is rooted at
    // the cgroups of the process that makes it, and the zygote is in the
    // cgroups of whoever ran `up`: the init must be in its node's cgroups
    // first. So the child, still in the host's cgroup namespace and with a
    // copy of the host's mounts, writes itself into its node's
    // `cgroup.procs` files (made by `up` before the zygote started) and
    // only then unshares CLONE_NEWCGROUP (see `run::setup`). No round trip
    // to nslab, and nothing the child starts can run outside the node's
    // cgroups: it starts nothing before.
    let mut flags = all_clone_flags() - CloneFlags::CLONE_NEWCGROUP;
    // A node started again joins its kept net namespace (and the user
    // namespace owning it), so the child inherits them; its idmapped trees
    // are made first, while we are still host root.
    let rejoined = match &config.rejoin {
        Some(netns) => {
            flags -= CloneFlags::CLONE_NEWNET;
            join_kept(netns, &config.binds)?
        }
        None => None,
    };
    // With a new user namespace, made in the same clone so that it owns
    // the others.
    if config.userns.is_some() && config.rejoin.is_none() {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    // A user-namespaced child waits on `handover` until its ids are mapped
    // and its trees are sent.
    let handover = match config.userns.is_some() || rejoined.is_some() {
        true => Some(socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?),
        false => None,
    };
    // Born in its v2 cgroup where the kernel can (5.7 and later); else it
    // writes itself in, as into the v1 ones.
    let cgroup_dir = match &config.into_cgroup {
        Some(dir) => Some(File::open(dir)?),
        None => None,
    };
    // SAFETY: this process is single-threaded, so the child may run
    // ordinary Rust code: no lock can be held by another thread.
    let cloned = unsafe { fork_into(flags, cgroup_dir.as_ref().map(|d| d.as_fd())) };
    let (pid, cloned_into) = match (cloned, &config.into_cgroup) {
        (Ok(pid), into) => (pid, into.is_some()),
        (Err(e), Some(_)) if matches!(e.raw_os_error(), Some(libc::E2BIG | libc::EINVAL)) => {
            // SAFETY: as above.
            (unsafe { fork_into(flags, None)? }, false)
        }
        (Err(e), _) => return Err(e),
    };
    drop(cgroup_dir);
    if pid == 0 {
        let mut config = config.clone();
        if let (false, Some(dir)) = (cloned_into, config.into_cgroup.take()) {
            config.cgroups.push(dir.join(crate::kernel::cgroup::PROCS));
        }
        let config = &config;
        let status_fd = write_end.as_raw_fd();
        let handover = handover.map(|(_, child)| child);
        let handover_fd = handover.as_ref().map_or(-1, |fd| fd.as_raw_fd());
        // Keep only our status pipe and handover socket (not our siblings',
        // not the zygote's pipes to nslab, which serve() also lets go of).
        // SAFETY: a fresh child closing its own fds.
        unsafe { crate::kernel::fds::close_all_except([status_fd, handover_fd, -1, -1]) };
        set_title(title.as_bytes());
        serve(config, File::from(write_end), handover)
    }
    drop(write_end);
    if let Some((ours, child)) = handover {
        drop(child);
        let handed = match (rejoined, &config.userns) {
            (Some(trees), _) => send_trees(trees, ours.as_fd()),
            (None, Some(map)) => hand_over(pid, map, &config.binds, ours.as_fd()),
            (None, None) => Ok(()),
        };
        if let Err(e) = handed {
            // The child waits for us and has done nothing: end it.
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
            return Err(e);
        }
    }
    Ok((pid, File::from(read_end)))
}

/// Maps the ids of a user-namespaced child, makes its binds idmapped
/// through its user namespace (which needs host root, so it is done here),
/// and sends them, then `go`.
fn hand_over(pid: i32, map: &IdMap, binds: &[Bind], socket: BorrowedFd<'_>) -> io::Result<()> {
    write_id_maps(pid, map)?;
    let userns = File::open(format!("/proc/{pid}/ns/user"))?;
    send_trees(idmapped_trees(binds, userns.as_fd())?, socket)
}

fn idmapped_trees(binds: &[Bind], userns: BorrowedFd<'_>) -> io::Result<Vec<OwnedFd>> {
    binds
        .iter()
        .map(|bind| {
            idmapped_tree(&bind.source, userns, bind.read_only).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("idmapped bind of {}: {e}", bind.source.display()),
                )
            })
        })
        .collect()
}

fn send_trees(trees: Vec<OwnedFd>, socket: BorrowedFd<'_>) -> io::Result<()> {
    for tree in trees {
        send_with_fd(socket, &[HANDOVER_TREE], Some(tree.as_fd()))?;
    }
    send_with_fd(socket, &[HANDOVER_GO], None)
}

/// Moves this zygote into a stopped node's kept net namespace and, when a
/// user namespace of the node's owns it, into that one too (after making
/// the node's idmapped trees through it, which needs host root). The trees
/// for a user-namespaced node; `None` otherwise.
fn join_kept(netns: &Path, binds: &[Bind]) -> io::Result<Option<Vec<OwnedFd>>> {
    let netns = File::open(netns)?;
    let userns = owning_user_namespace(&netns)?;
    let trees = match is_own_user_namespace(&userns)? {
        true => None,
        false => Some(idmapped_trees(binds, userns.as_fd())?),
    };
    nix::sched::setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)?;
    if trees.is_some() {
        nix::sched::setns(userns.as_fd(), CloneFlags::CLONE_NEWUSER)?;
    }
    Ok(trees)
}

/// Rewrites this process's command line in place (the zygote left room for
/// it), so `ps` and nslab see `nslab-init __init LAB/NODE`.
fn set_title(title: &[u8]) {
    let Some((start, end)) = argument_area() else {
        return;
    };
    if title.len() > end - start {
        return;
    }
    // SAFETY: [start, end) is this process's own argument area (from
    // /proc/self/stat), writable memory that nothing else uses any more.
    unsafe {
        let area = std::slice::from_raw_parts_mut(start as *mut u8, end - start);
        area[..title.len()].copy_from_slice(title);
        area[title.len()..].fill(0);
    }
}

/// `arg_start` and `arg_end` of /proc/self/stat (fields 48 and 49).
fn argument_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command name, field 3 is at index 0.
    let start = fields.get(48 - 3)?.parse().ok()?;
    let end = fields.get(49 - 3)?.parse().ok()?;
    (end > start).then_some((start, end))
}
