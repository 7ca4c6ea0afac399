//! Names under /run/netns, so that `ip netns`, `ip -n` and `lsns` see a node.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// Where iproute2 looks for named network namespaces.
pub(crate) const NETNS_DIR: &str = "/run/netns";

#[derive(Debug, thiserror::Error)]
pub enum NetnsNameError {
    #[error("create {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("bind {from} on {path}: {source}")]
    Bind {
        from: String,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("unmount {path}: {source}")]
    Unmount { path: PathBuf, source: nix::Error },
    #[error("remove {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
}

fn path_of(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Creates the mount point /run/netns/NAME. It must not exist yet: an
/// existing name belongs to someone else and is never taken over.
///
/// With a `placeholder` (an empty file of the caller's on the same
/// filesystem) the name is a hard link to it: as exclusive as creating a
/// file, but without allocating an inode per name, which on a disk-backed
/// /run costs far more than the link. Without one, or across filesystems,
/// an empty file is created.
pub(crate) fn reserve_netns_name(
    name: &str,
    placeholder: Option<&Path>,
) -> Result<(), NetnsNameError> {
    let path = path_of(name);
    fs::create_dir_all(NETNS_DIR).map_err(|source| NetnsNameError::Create {
        path: NETNS_DIR.into(),
        source,
    })?;
    if let Some(placeholder) = placeholder {
        match fs::hard_link(placeholder, &path) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
            Err(source) => return Err(NetnsNameError::Create { path, source }),
        }
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(&path)
        .map(drop)
        .map_err(|source| NetnsNameError::Create { path, source })
}

/// Bind-mounts the net namespace of `pid` on the reserved /run/netns/NAME,
/// as `ip netns attach` does.
pub(crate) fn bind_netns_name(name: &str, pid: i32) -> Result<(), NetnsNameError> {
    let path = path_of(name);
    let from = super::ns_path(pid, super::NsKind::Net);
    mount(
        Some(from.as_str()),
        &path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|source| NetnsNameError::Bind { from, path, source })
}

/// The inode of the namespace bound at /run/netns/NAME, if one is.
pub(crate) fn netns_name_inode(name: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path_of(name)).ok()?;
    // An unbound reservation is a plain file on /run's filesystem; a bound
    // one reports the nsfs inode.
    (meta.dev() != fs::metadata(NETNS_DIR).ok()?.dev()).then_some(meta.ino())
}

/// Detaches and removes /run/netns/NAME. A name that is already gone is not
/// an error, so teardown can run any number of times.
pub(crate) fn remove_netns_name(name: &str) -> Result<bool, NetnsNameError> {
    let path = path_of(name);
    if !path.exists() {
        return Ok(false);
    }
    match umount2(&path, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (a crash between create and bind).
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(source) => return Err(NetnsNameError::Unmount { path, source }),
    }
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(NetnsNameError::Remove { path, source }),
    }
}
