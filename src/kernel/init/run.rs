//! Init side: the PID 1 of a node.

use std::fs::File;
use std::io::Write;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use std::os::fd::OwnedFd;

use super::mark::mark_loopback;
use super::{HANDOVER_GO, HANDOVER_TREE, InitConfig, mounts};
use crate::kernel::fds::recv_with_fd;
use crate::kernel::userns::become_root;

/// Becomes the init of a node: called in a child the zygote just cloned
/// into new namespaces. Reports `OK` or `ERR message` on `status`, then
/// only reaps; never returns.
/// `handover`: in a user-namespaced node, the socket on which the zygote
/// says the node's ids are mapped, with its idmapped bind trees.
pub(super) fn serve(config: &InitConfig, mut status: File, handover: Option<OwnedFd>) -> ! {
    // The zygote's stdin and stdout are its pipes to nslab: let go of them
    // at once, or nslab would wait for them to close.
    detach_stdio();
    // Terminal signals must never end a node: leave the caller's session.
    let _ = nix::unistd::setsid();
    // Block the signals we wait for before anything else, so that a SIGTERM
    // sent right after we report ready is queued, not lost. (A pid
    // namespace's init ignores unhandled signals unless they are blocked.)
    let mut waited = SigSet::empty();
    for signal in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        waited.add(signal);
    }
    let _ = waited.thread_block();
    set_process_name(c"nslab-init");
    match setup(config, handover) {
        Ok(()) => {
            let _ = status.write_all(b"OK\n");
        }
        Err(message) => {
            let _ = writeln!(status, "ERR {message}");
            std::process::exit(1);
        }
    }
    drop(status);
    wait_forever(&waited)
}

fn setup(config: &InitConfig, handover: Option<OwnedFd>) -> Result<(), String> {
    if std::process::id() != 1 {
        return Err("the init must be PID 1 of a new pid namespace".into());
    }
    // A user-namespaced init has no ids until the zygote maps them: wait.
    let trees = handover.map(|socket| receive_trees(&socket)).transpose()?;
    // Into the node's cgroups, then a cgroup namespace rooted there (the
    // zygote left CLONE_NEWCGROUP out for this): inside the node
    // /proc/self/cgroup shows `/`. Before the mounts, which hide the host's
    // cgroup file systems. Still with the host ids the init was cloned
    // with, which own the cgroup files.
    crate::kernel::cgroup::join_self(&config.cgroups).map_err(|e| format!("join: {e}"))?;
    if trees.is_some() {
        become_root().map_err(|e| {
            format!(
                "become root of the user namespace: {}",
                nix::Error::from_raw(e)
            )
        })?;
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
        .map_err(|e| format!("unshare the cgroup namespace: {e}"))?;
    mounts::setup(
        &config.tmpfs,
        &config.binds,
        !config.cgroups.is_empty() || config.into_cgroup.is_some(),
        trees,
    )?;
    nix::unistd::sethostname(&config.hostname)
        .map_err(|e| format!("set hostname {}: {e}", config.hostname))?;
    bring_loopback_up().map_err(|e| format!("bring lo up: {e}"))?;
    // The namespace's own mark: `down` can tell a /run/netns name is this
    // node's even when the state and the init are gone.
    let mark = crate::kernel::process::netns_mark(&config.lab, &config.node);
    mark_loopback(&mark).map_err(|e| format!("mark lo with {mark:?}: {e}"))?;
    skip_ipv6_dad()?;
    for sysctl in &config.sysctls {
        std::fs::write(
            std::path::Path::new("/proc/sys").join(&sysctl.path),
            &sysctl.value,
        )
        .map_err(|e| format!("sysctl {}={}: {e}", sysctl.key, sysctl.value))?;
    }
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))?;
    Ok(())
}

/// The zygote's handover: one message per bind carrying its idmapped tree,
/// then `g` once the node's ids are mapped.
fn receive_trees(socket: &OwnedFd) -> Result<Vec<OwnedFd>, String> {
    use std::os::fd::AsFd;
    let mut trees = Vec::new();
    loop {
        let mut kind = [0u8; 1];
        match recv_with_fd(socket.as_fd(), &mut kind) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("wait for the zygote: {e}")),
            Ok((0, _)) => return Err("the zygote went away before mapping the node's ids".into()),
            Ok((_, Some(tree))) if kind[0] == HANDOVER_TREE => trees.push(tree),
            Ok(_) if kind[0] == HANDOVER_GO => return Ok(trees),
            Ok(_) => return Err(format!("unexpected handover message {:?}", kind[0] as char)),
        }
    }
}

/// A lab's addresses are planned, so duplicate address detection only
/// delays it: while a link-local address is tentative, neighbour discovery
/// waits, and the first IPv6 packets across a fresh lab take seconds. Every
/// interface made later in this namespace inherits `default`. (A kernel
/// without IPv6 has no such files: nothing to do.)
fn skip_ipv6_dad() -> Result<(), String> {
    for (key, value) in crate::kernel::sysctl::NODE_DEFAULTS {
        let path = format!("/proc/sys/{key}");
        match std::fs::write(&path, value) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("write {path}: {e}")),
        }
    }
    Ok(())
}

fn set_process_name(name: &std::ffi::CStr) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

fn detach_stdio() {
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard fds of this process.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

/// Sets IFF_UP on `lo` with SIOCSIFFLAGS: the init has no netlink socket and
/// needs none for this one flag.
fn bring_loopback_up() -> std::io::Result<()> {
    // SAFETY: plain socket(2) call; the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket nobody else owns.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    use std::os::fd::AsRawFd;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Reaps every child that ends up with us, until SIGTERM.
fn wait_forever(waited: &SigSet) -> ! {
    loop {
        match waited.wait() {
            Ok(Signal::SIGTERM) => std::process::exit(0),
            Ok(Signal::SIGCHLD) => reap_all(),
            _ => {}
        }
    }
}

fn reap_all() {
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}
