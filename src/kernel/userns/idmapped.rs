//! Idmapped bind mounts (Linux 5.12+): a copy of a host path's mount tree
//! whose file owners are seen through a node's user namespace, so files
//! host root owns appear owned by the node's root (and any other id by the
//! same id inside the node).
//!
//! The copy is made by host root (idmapping needs CAP_SYS_ADMIN where the
//! filesystem was mounted), detached, and handed to the init as an fd; the
//! init attaches it with move_mount in its own mount namespace.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;

use super::UsernsError;
use crate::kernel::mount_api::{MOUNT_ATTR_IDMAP, MOUNT_ATTR_RDONLY, clone_tree, set_attributes};
use crate::kernel::namespace::fork_into;

/// A detached copy of the mount tree at `source` (with the mounts below
/// it), idmapped through the user namespace `userns`, read-only if asked.
pub(crate) fn idmapped_tree(
    source: &Path,
    userns: BorrowedFd<'_>,
    read_only: bool,
) -> io::Result<OwnedFd> {
    let tree = clone_tree(source)?;
    let read_only = if read_only { MOUNT_ATTR_RDONLY } else { 0 };
    set_attributes(
        tree.as_raw_fd(),
        Path::new(""),
        MOUNT_ATTR_IDMAP | read_only,
        Some(userns),
    )?;
    Ok(tree)
}

/// A throwaway user namespace to try idmapping with before anything is
/// built, held by a child that only waits; ended on drop.
#[derive(Debug)]
pub(crate) struct IdmapProbe {
    child: i32,
    /// Our end of the pipe the child waits on: closing it ends the child.
    hold: Option<OwnedFd>,
    userns: OwnedFd,
}

impl IdmapProbe {
    pub(crate) fn start() -> Result<Self, UsernsError> {
        let unavailable =
            |what: &str, e: io::Error| UsernsError::Unavailable(format!("{what}: {e}"));
        let (wait_end, hold) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| unavailable("pipe", e.into()))?;
        let wait_fd = wait_end.as_raw_fd();
        let hold_fd = hold.as_raw_fd();
        // SAFETY: the child makes only async-signal-safe calls (close,
        // read, _exit): the caller may have other threads.
        let pid = unsafe { fork_into(CloneFlags::CLONE_NEWUSER, None) }
            .map_err(|e| unavailable("create a user namespace", e))?;
        if pid == 0 {
            let mut byte = 0u8;
            // SAFETY: close(2) of our copy of the other end (so the read
            // ends when the parent closes its own), read(2) on an fd we
            // inherited, then _exit.
            unsafe {
                libc::close(hold_fd);
                libc::read(wait_fd, (&mut byte as *mut u8).cast(), 1);
                libc::_exit(0)
            }
        }
        drop(wait_end);
        match Self::open_mapped(pid) {
            Ok(userns) => Ok(Self {
                child: pid,
                hold: Some(hold),
                userns,
            }),
            Err(e) => {
                drop(hold);
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                Err(e)
            }
        }
    }

    /// Maps one id in the child's user namespace (idmapping needs a map)
    /// and opens the namespace.
    fn open_mapped(pid: i32) -> Result<OwnedFd, UsernsError> {
        let nobody = super::IdMap {
            uid: 65534,
            gid: 65534,
            count: 1,
        };
        super::write_id_maps(pid, &nobody)
            .map_err(|e| UsernsError::Unavailable(format!("map ids: {e}")))?;
        let userns = std::fs::File::open(format!("/proc/{pid}/ns/user"))
            .map_err(|e| UsernsError::Unavailable(format!("open a user namespace: {e}")))?;
        Ok(userns.into())
    }

    /// Whether `source` can be bound into a node as an idmapped mount.
    pub(crate) fn check(&self, source: &Path) -> Result<(), UsernsError> {
        use std::os::fd::AsFd;
        idmapped_tree(source, self.userns.as_fd(), false)
            .map(drop)
            .map_err(|e| UsernsError::NoIdmap {
                path: source.into(),
                reason: reason(source, &e),
            })
    }
}

impl Drop for IdmapProbe {
    fn drop(&mut self) {
        drop(self.hold.take());
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.child), None);
    }
}

/// Why idmapping `source` failed, in words.
fn reason(source: &Path, e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOSYS) => {
            "this kernel has no open_tree/mount_setattr (idmapped mounts need Linux 5.12 or later)"
                .into()
        }
        Some(libc::EINVAL) => format!(
            "its filesystem ({}) does not support idmapped mounts on this kernel",
            filesystem(source)
        ),
        _ => e.to_string(),
    }
}

/// A filesystem's name by its magic number, for messages.
fn filesystem(path: &Path) -> String {
    let Ok(stat) = nix::sys::statfs::statfs(path) else {
        return "unknown".into();
    };
    let magic = stat.filesystem_type().0 as u64;
    let name = match magic {
        0xEF53 => "ext4",
        0x0102_1994 => "tmpfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x794C_7630 => "overlayfs",
        0x6969 => "nfs",
        0x6573_5546 => "fuse",
        0x9FA0 => "proc",
        0x6265_6572 => "sysfs",
        0x2FC1_2FC1 => "zfs",
        0x0102_1997 => "9p",
        _ => return format!("magic {magic:#x}"),
    };
    name.into()
}
