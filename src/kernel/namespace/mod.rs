//! The namespaces a node is made of, in the one order they are entered.

mod name;

pub(crate) use name::{
    NETNS_DIR, NetnsNameError, bind_netns_name, netns_name_inode, remove_netns_name,
    reserve_netns_name,
};

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use nix::sched::CloneFlags;

/// One kind of namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsKind {
    User,
    Cgroup,
    Ipc,
    Uts,
    Net,
    Pid,
    Mnt,
}

/// The order in which a process enters a node: the user namespace first
/// (youki's order: it owns the others, and once in it, the process holds
/// the capabilities to enter them), the mount namespace last, because after
/// it the host's /proc is no longer visible. A node without a user
/// namespace of its own is in the host's, which is not entered.
pub const ENTER_ORDER: [NsKind; 7] = [
    NsKind::User,
    NsKind::Cgroup,
    NsKind::Ipc,
    NsKind::Uts,
    NsKind::Net,
    NsKind::Pid,
    NsKind::Mnt,
];

impl NsKind {
    /// The file name under /proc/PID/ns.
    pub fn proc_name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Cgroup => "cgroup",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::Net => "net",
            NsKind::Pid => "pid",
            NsKind::Mnt => "mnt",
        }
    }

    pub fn clone_flag(self) -> CloneFlags {
        match self {
            NsKind::User => CloneFlags::CLONE_NEWUSER,
            NsKind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            NsKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NsKind::Uts => CloneFlags::CLONE_NEWUTS,
            NsKind::Net => CloneFlags::CLONE_NEWNET,
            NsKind::Pid => CloneFlags::CLONE_NEWPID,
            NsKind::Mnt => CloneFlags::CLONE_NEWNS,
        }
    }
}

/// The clone flags that give a node every namespace of [`ENTER_ORDER`]
/// but the user namespace, which only some nodes have.
pub(crate) fn all_clone_flags() -> CloneFlags {
    ENTER_ORDER
        .iter()
        .filter(|&&kind| kind != NsKind::User)
        .fold(CloneFlags::empty(), |acc, kind| acc | kind.clone_flag())
}

/// `struct clone_args` of clone3(2), version 2 (88 bytes: with `set_tid`
/// and `cgroup`).
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
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// clone3's flag to start the child in the cgroup (v2) of `cgroup`.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// fork(2) into new namespaces: clone3 with `flags`, without CLONE_VM and
/// without a stack; with `cgroup` (a v2 cgroup directory), the child
/// starts in that cgroup instead of its parent's (CLONE_INTO_CGROUP: no
/// migration afterwards, which takes a lock over every thread group).
/// Returns 0 in the child and its pid in the parent.
///
/// # Safety
/// As for fork: in a multi-threaded caller the child may only make
/// async-signal-safe calls until it execs or exits.
pub(crate) unsafe fn fork_into(
    flags: CloneFlags,
    cgroup: Option<BorrowedFd<'_>>,
) -> io::Result<i32> {
    let into = cgroup.map_or(0, |_| CLONE_INTO_CGROUP);
    let args = CloneArgs {
        flags: flags.bits() as u64 | into,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.map_or(0, |fd| fd.as_raw_fd() as u64),
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like
    // fork; the caller keeps the child to what is safe after a fork.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            size_of::<CloneArgs>(),
        )
    };
    match pid {
        pid if pid >= 0 => Ok(pid as i32),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Open namespace files of one process, in [`ENTER_ORDER`]; with the
/// cgroup namespace, the `cgroup.procs` files of the process's node
/// cgroups, open for writing.
#[derive(Debug)]
pub struct NamespaceFds {
    fds: Vec<(NsKind, OwnedFd)>,
    /// Entering a cgroup namespace moves no process: a command started in
    /// the node joins these first (see `enter::spawn`).
    cgroups: Vec<OwnedFd>,
}

impl NamespaceFds {
    /// Opens the given namespaces of `pid`; its user namespace only when
    /// it is not the caller's own (entering one's own fails).
    pub fn open(pid: i32, kinds: &[NsKind]) -> io::Result<Self> {
        let mut fds = Vec::with_capacity(kinds.len());
        for &kind in kinds {
            let file = File::open(ns_path(pid, kind))?;
            if kind == NsKind::User && is_own_user_namespace(&file)? {
                continue;
            }
            fds.push((kind, OwnedFd::from(file)));
        }
        let cgroups = if kinds.contains(&NsKind::Cgroup) {
            crate::kernel::cgroup::join_files_of(pid)?
                .into_iter()
                .map(OwnedFd::from)
                .collect()
        } else {
            Vec::new()
        };
        Ok(Self { fds, cgroups })
    }

    /// Opens all namespaces of `pid`.
    pub fn open_all(pid: i32) -> io::Result<Self> {
        Self::open(pid, &ENTER_ORDER)
    }

    pub fn get(&self, kind: NsKind) -> Option<&OwnedFd> {
        self.fds.iter().find(|(k, _)| *k == kind).map(|(_, fd)| fd)
    }

    /// Moves the calling thread (or, for mnt and pid, process) into every
    /// namespace held, in order. Entering the mount namespace fails with
    /// EINVAL in a multi-threaded process: call this in a forked child or,
    /// without mnt and pid, on a dedicated thread.
    pub fn enter(&self) -> nix::Result<()> {
        for (kind, fd) in &self.fds {
            nix::sched::setns(fd.as_fd(), kind.clone_flag())?;
        }
        Ok(())
    }

    /// The node's `cgroup.procs` files, for code that must not allocate.
    pub(crate) fn raw_cgroups(&self) -> Vec<i32> {
        self.cgroups.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// Raw fds with their kinds, for code that must not allocate (after fork).
    pub fn raw(&self) -> Vec<(NsKind, i32)> {
        self.fds
            .iter()
            .map(|(kind, fd)| (*kind, fd.as_raw_fd()))
            .collect()
    }
}

/// Whether an open user namespace file is the calling process's own.
pub(crate) fn is_own_user_namespace(file: &File) -> io::Result<bool> {
    let own = std::fs::metadata("/proc/self/ns/user")?;
    let theirs = file.metadata()?;
    Ok(own.ino() == theirs.ino() && own.dev() == theirs.dev())
}

/// ioctl_ns(2) requests: _IO(0xb7, N).
const NS_GET_USERNS: libc::c_ulong = 0xb701;
const NS_GET_PARENT: libc::c_ulong = 0xb702;
const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;

/// A namespace related to the open namespace `ns` by `request`.
fn related_namespace(ns: &File, request: libc::c_ulong) -> io::Result<File> {
    // SAFETY: NS_GET_USERNS and NS_GET_PARENT return a new fd (or -1),
    // owned below.
    let fd = unsafe { libc::ioctl(ns.as_raw_fd(), request) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd nobody else owns.
    Ok(File::from(unsafe {
        <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
    }))
}

/// The user namespace that owns the namespace `ns`.
pub(crate) fn owning_user_namespace(ns: &File) -> io::Result<File> {
    related_namespace(ns, NS_GET_USERNS)
}

/// Whether a user namespace is a child of ours that host root made (a
/// user-namespaced node's; an unprivileged user's is owned by that user).
pub(crate) fn is_root_made_child(user_ns: &File) -> bool {
    let mut owner: libc::uid_t = u32::MAX;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t into `owner`.
    if unsafe { libc::ioctl(user_ns.as_raw_fd(), NS_GET_OWNER_UID, &mut owner) } != 0 || owner != 0
    {
        return false;
    }
    related_namespace(user_ns, NS_GET_PARENT)
        .and_then(|parent| is_own_user_namespace(&parent))
        .unwrap_or(false)
}

/// `/proc/PID/ns/KIND`.
pub(crate) fn ns_path(pid: i32, kind: NsKind) -> String {
    format!("/proc/{pid}/ns/{}", kind.proc_name())
}

/// The inode number that identifies a namespace of `pid` (as `lsns` shows).
pub fn ns_inode(pid: i32, kind: NsKind) -> io::Result<u64> {
    Ok(std::fs::metadata(ns_path(pid, kind))?.ino())
}

/// Runs `work` on a short-lived thread that first enters the net namespace
/// `netns`. A thread may switch net namespace in a multi-threaded process,
/// and the caller's threads are left alone.
pub(crate) fn in_netns<T: Send>(
    netns: BorrowedFd<'_>,
    work: impl FnOnce() -> T + Send,
) -> io::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(netns, CloneFlags::CLONE_NEWNET)?;
                Ok(work())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
