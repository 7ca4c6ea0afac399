//! Parent side: clone into new namespaces, exec the init, await its report.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::{CONFIG_ENV, EXE_ENV, InitConfig, InitError, STATUS_FD};
use crate::kernel::namespace::all_clone_flags;
use crate::kernel::process::{INIT_ARGV0, INIT_MARKER, init_tag};

/// `struct clone_args` of clone3(2), version 0 (64 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// An init that was started and has not reported yet.
#[derive(Debug)]
pub struct StartingInit {
    pub pid: i32,
    node: String,
    status: File,
    go: Option<File>,
}

/// Starts the init of one node. Returns as soon as the child exists, so many
/// inits set themselves up in parallel; call [`StartingInit::wait_ready`].
pub fn spawn(config: &InitConfig) -> Result<StartingInit, InitError> {
    let fail = |source: io::Error| InitError::Spawn {
        node: config.node.clone(),
        source,
    };
    let json = serde_json::to_string(config).map_err(|e| fail(io::Error::other(e)))?;
    let cstring = |s: String| CString::new(s).map_err(|e| fail(io::Error::other(e)));
    // Everything the child touches is built before the clone: between clone
    // and exec it may only make async-signal-safe calls.
    let exe = cstring(init_executable())?;
    let args = [
        cstring(INIT_ARGV0.into())?,
        cstring(INIT_MARKER.into())?,
        cstring(init_tag(&config.lab, &config.node))?,
    ];
    let env = [cstring(format!("{CONFIG_ENV}={json}"))?];
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let envp: Vec<*const libc::c_char> = env
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();

    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail(e.into()))?;
    let write_fd = write_end.as_raw_fd();
    // The child waits on this pipe before it executes: until the caller has
    // recorded its pid (see `release`), it is not yet an init anyone could
    // find, and if the caller dies first it exits instead.
    let (go_read, go_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail(e.into()))?;
    let go_read_fd = go_read.as_raw_fd();
    let args = CloneArgs {
        flags: all_clone_flags().bits() as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork:
    // the child gets a copy of this thread on a copy of its stack. The child
    // branch below only calls async-signal-safe functions (close_range, read,
    // dup2, fcntl, execve, _exit) on data prepared above, then never returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        // SAFETY: see above; only async-signal-safe calls, then exec or exit.
        unsafe {
            // Keep only our two pipes: a sibling cloned by another thread
            // must not hold our go pipe open (nor we its), or a dead
            // caller would leave both waiting forever.
            crate::kernel::fds::close_all_except([go_read_fd, write_fd, -1, -1]);
            let mut go = 0u8;
            if libc::read(go_read_fd, (&raw mut go).cast(), 1) != 1 {
                libc::_exit(1);
            }
            if write_fd == STATUS_FD {
                libc::fcntl(STATUS_FD, libc::F_SETFD, 0);
            } else {
                libc::dup2(write_fd, STATUS_FD);
            }
            libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    if pid < 0 {
        return Err(fail(io::Error::last_os_error()));
    }
    drop(write_end);
    drop(go_read);
    Ok(StartingInit {
        pid: pid as i32,
        node: config.node.clone(),
        status: File::from(read_end),
        go: Some(File::from(go_write)),
    })
}

/// The program that runs as a node init: the nslab binary. That is this
/// very process's executable, unless `NSLAB_EXE` names another (a program
/// that uses the library without being nslab sets it).
fn init_executable() -> String {
    std::env::var(EXE_ENV).unwrap_or_else(|_| "/proc/self/exe".into())
}

impl StartingInit {
    /// Lets the child execute and become the init. Call it once its pid is
    /// recorded.
    pub fn release(&mut self) -> Result<(), InitError> {
        use std::io::Write;
        match self.go.take() {
            Some(mut go) => go.write_all(b"g").map_err(|source| InitError::Spawn {
                node: self.node.clone(),
                source,
            }),
            None => Ok(()),
        }
    }

    /// Waits until the init reports, for at most `timeout` (an init can
    /// hang, on a bind source on a dead network filesystem say); returns
    /// its pid once it is ready.
    pub fn wait_ready(mut self, timeout: Duration) -> Result<i32, InitError> {
        self.release()?;
        let deadline = Instant::now() + timeout;
        let mut report = Vec::new();
        let mut chunk = [0u8; 512];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut pollfd = libc::pollfd {
                fd: self.status.as_raw_fd(),
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
                return Err(InitError::Timeout {
                    node: self.node,
                    seconds: timeout.as_secs(),
                });
            }
            match self.status.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => report.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(InitError::Spawn {
                        node: self.node,
                        source,
                    });
                }
            }
        }
        let report = String::from_utf8_lossy(&report);
        match report.trim_end().split_once(' ') {
            _ if report.trim_end() == "OK" => Ok(self.pid),
            Some(("ERR", message)) => Err(InitError::Setup {
                node: self.node,
                message: message.to_string(),
            }),
            _ => Err(InitError::DiedEarly { node: self.node }),
        }
    }
}
