//! The new mount API (Linux 5.2 to 5.12) where nix has none: a detached
//! copy of a mount tree, attributes changed on a whole tree at once
//! (read-only, idmapped), and attaching a detached tree.

use std::ffi::{CString, c_uint};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// `MOUNT_ATTR_RDONLY` of mount_setattr(2).
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
/// `MOUNT_ATTR_IDMAP` of mount_setattr(2).
pub(crate) const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Sets `attr_set` on the mount at `path` (relative to `dirfd`; with an
/// empty path, the mount of `dirfd` itself) and on every mount below it.
/// `userns`: the user namespace of `MOUNT_ATTR_IDMAP`.
pub(crate) fn set_attributes(
    dirfd: RawFd,
    path: &Path,
    attr_set: u64,
    userns: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let c = c_path(path)?;
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.map_or(0, |fd| fd.as_raw_fd() as u64),
    };
    let flags = libc::AT_RECURSIVE
        | if path.as_os_str().is_empty() {
            libc::AT_EMPTY_PATH
        } else {
            0
        };
    // SAFETY: mount_setattr(2) reads the path and the attr struct we own,
    // with its size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            c.as_ptr(),
            flags,
            &attr as *const MountAttr,
            size_of::<MountAttr>(),
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// A detached copy of the mount tree at `source`, with the mounts below it.
pub(crate) fn clone_tree(source: &Path) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: c_uint = 1;
    let c = c_path(source)?;
    // SAFETY: open_tree(2) reads the path; the fd it returns is ours.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as c_uint | libc::AT_RECURSIVE as c_uint,
        )
    };
    if tree < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(tree as RawFd) })
}

/// Attaches a detached tree at `target` in the caller's mount namespace.
pub(crate) fn attach_tree(tree: BorrowedFd<'_>, target: &Path) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: c_uint = 0x4;
    let target = c_path(target)?;
    // SAFETY: move_mount(2) of a tree fd we hold onto a path we own.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}
