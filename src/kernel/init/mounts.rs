//! The node's mount namespace: private propagation, its own /proc and /sys,
//! private tmpfs and binds. Nothing here can reach the host's mount table:
//! the first step makes every mount of the new namespace private.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::kernel::cgroup::{Cgroups, unescape};
use crate::kernel::mount_api::{MOUNT_ATTR_RDONLY, attach_tree, set_attributes};
use crate::kernel::namespace::NETNS_DIR;
use crate::spec::Bind;

/// The zygote's own mount namespace, which every init's is a copy of: a
/// private copy of the host's, without the host's nsfs mounts (see
/// [`detach_namespace_files`]). Done once per zygote, not once per node,
/// and before any user namespace: in a mount namespace that a user
/// namespace owns, inherited mounts are locked and cannot be unmounted.
pub(super) fn isolate() -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare the mount namespace: {e}"))?;
    mount_flags(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)
        .map_err(|e| format!("make / private: {e}"))?;
    detach_namespace_files()
}

/// `cgroups`: mount the node's own view of nslab's cgroup hierarchies
/// (a node, not a bridge). `trees`: in a user-namespaced node, one
/// idmapped tree per bind, made by the zygote (see `userns::idmapped`).
pub(super) fn setup(
    tmpfs: &[PathBuf],
    binds: &[Bind],
    cgroups: bool,
    trees: Option<Vec<OwnedFd>>,
) -> Result<(), String> {
    mount_flags(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)
        .map_err(|e| format!("make / private: {e}"))?;
    // Bind sources are host paths: hold them open before the node's own
    // tmpfs can hide them (a source under the host's /tmp, say).
    let sources = match trees {
        Some(trees) => trees.into_iter().map(BindSource::Tree).collect(),
        None => binds
            .iter()
            .map(|b| {
                open_path(&b.source)
                    .map(BindSource::Path)
                    .map_err(|e| format!("open bind source {}: {e}", b.source.display()))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let host_has_cgroup2 = is_cgroup2(Path::new("/sys/fs/cgroup"));
    // Read while the host's mounts are still in view.
    let hierarchies = match cgroups && !host_has_cgroup2 {
        true => Cgroups::detect().map_err(|e| e.to_string())?.mounts(),
        false => Vec::new(),
    };
    remount_fresh("proc", "/proc")?;
    remount_fresh("sysfs", "/sys")?;
    if host_has_cgroup2 {
        mount_flags(
            Some("cgroup2"),
            "/sys/fs/cgroup",
            Some("cgroup2"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        )
        .map_err(|e| format!("mount cgroup2 on /sys/fs/cgroup: {e}"))?;
    }
    mount_hierarchies(&hierarchies)?;
    for path in tmpfs {
        let mode = if path == Path::new("/tmp") || path == Path::new("/var/tmp") {
            "mode=1777"
        } else {
            "mode=755"
        };
        mount_flags(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(mode),
        )
        .map_err(|e| format!("mount tmpfs on {}: {e}", path.display()))?;
    }
    if sources.len() != binds.len() {
        return Err(format!(
            "{} bind(s) but {} idmapped tree(s) from the zygote",
            binds.len(),
            sources.len()
        ));
    }
    for (bind, source) in binds.iter().zip(sources) {
        bind_mount(bind, source, tmpfs)?;
    }
    Ok(())
}

/// What a bind mounts: a host path held open, or (in a user-namespaced
/// node) a detached idmapped copy of it, read-only already if asked.
enum BindSource {
    Path(fs::File),
    Tree(OwnedFd),
}

fn open_path(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
}

fn mount_flags(
    source: Option<&str>,
    target: impl AsRef<Path>,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    mount(source, target.as_ref(), fstype, flags, data)
}

/// Replaces the host's /proc or /sys with one of this node's pid or net
/// namespace.
fn remount_fresh(fstype: &str, target: &str) -> Result<(), String> {
    // Detach the inherited one (and its submounts); not a mount point is fine.
    let _ = umount2(target, MntFlags::MNT_DETACH);
    mount_flags(
        Some(fstype),
        target,
        Some(fstype),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )
    .map_err(|e| format!("mount {fstype} on {target}: {e}"))
}

/// A copied mount namespace also copies every nsfs bind (`/run/netns/*` of
/// other labs, `ip netns add`...), and each copy would keep that namespace
/// alive after its owner removed it. Detach them all in this node.
fn detach_namespace_files() -> Result<(), String> {
    let info = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("read /proc/self/mountinfo: {e}"))?;
    let mut targets = nsfs_mount_points(&info);
    // /run/netns is a mount of its own where iproute2 or nslab made it
    // one: detaching it takes every name under it in one call, instead of
    // one call per name (a 1000-node lab has 1000).
    let names = Path::new(NETNS_DIR);
    if is_mount_point(&info, names) && targets.iter().any(|t| t.parent() == Some(names)) {
        detach(names)?;
        targets.retain(|t| !t.starts_with(names));
    }
    for target in targets.iter().rev() {
        detach(target)?;
    }
    Ok(())
}

/// A lazy unmount; one already gone is fine.
fn detach(target: &Path) -> Result<(), String> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(format!("detach {}: {e}", target.display())),
    }
}

/// Whether `path` is a mount point in a mountinfo text.
fn is_mount_point(mountinfo: &str, path: &Path) -> bool {
    mountinfo.lines().any(|line| {
        line.split(' ')
            .nth(4)
            .is_some_and(|m| Path::new(&unescape(m)) == path)
    })
}

/// Mount points of nsfs mounts in a mountinfo text.
fn nsfs_mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let mount_point = left.split(' ').nth(4)?;
            (fstype == "nsfs").then(|| PathBuf::from(unescape(mount_point)))
        })
        .collect()
}

/// On a host with v1 hierarchies (or a hybrid): a tmpfs on
/// /sys/fs/cgroup holding a mount of each hierarchy nslab uses. Mounted in
/// the node's cgroup namespace, each shows the node's own cgroup as its
/// root. Hierarchies nslab does not use are left out.
fn mount_hierarchies(
    hierarchies: &[(PathBuf, &'static str, Option<String>)],
) -> Result<(), String> {
    let base = Path::new("/sys/fs/cgroup");
    let ours: Vec<_> = hierarchies
        .iter()
        .filter(|(at, _, _)| at.parent() == Some(base))
        .collect();
    if ours.is_empty() {
        return Ok(());
    }
    mount_flags(
        Some("tmpfs"),
        base,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .map_err(|e| format!("mount tmpfs on /sys/fs/cgroup: {e}"))?;
    for (at, fstype, data) in ours {
        fs::create_dir_all(at).map_err(|e| format!("mkdir {}: {e}", at.display()))?;
        mount_flags(
            Some(fstype),
            at,
            Some(fstype),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            data.as_deref(),
        )
        .map_err(|e| format!("mount {fstype} on {}: {e}", at.display()))?;
    }
    Ok(())
}

fn is_cgroup2(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// Bind-mounts a host path into the node. A missing target is created only
/// inside one of the node's own tmpfs mounts, never on a host filesystem.
fn bind_mount(bind: &Bind, source: BindSource, tmpfs: &[PathBuf]) -> Result<(), String> {
    use std::os::fd::{AsFd, AsRawFd};
    let what = || {
        format!(
            "bind {} on {}",
            bind.source.display(),
            bind.target.display()
        )
    };
    if fs::symlink_metadata(&bind.target).is_err() {
        let fd = match &source {
            BindSource::Path(file) => file.as_fd(),
            BindSource::Tree(tree) => tree.as_fd(),
        };
        let is_dir =
            nix::sys::stat::fstat(fd).is_ok_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR);
        create_mount_point(is_dir, &bind.target, tmpfs).map_err(|e| format!("{}: {e}", what()))?;
    }
    match source {
        BindSource::Tree(tree) => {
            attach_tree(tree.as_fd(), &bind.target)
                .map_err(|e| format!("{} (idmapped): {e}", what()))?;
        }
        BindSource::Path(file) => {
            mount_flags(
                Some(format!("/proc/self/fd/{}", file.as_raw_fd()).as_str()),
                &bind.target,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(|e| format!("{}: {e}", what()))?;
            if bind.read_only {
                make_read_only(&bind.target).map_err(|e| format!("{} read-only: {e}", what()))?;
            }
        }
    }
    Ok(())
}

/// Read-only for the bind and every mount below it, keeping their other
/// flags (nosuid, nodev...). Kernels before 5.12 lack mount_setattr: there
/// the top mount is remounted read-only.
fn make_read_only(target: &Path) -> nix::Result<()> {
    match set_attributes(libc::AT_FDCWD, target, MOUNT_ATTR_RDONLY, None) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => mount_flags(
            None,
            target,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        ),
        Err(e) => Err(nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
    }
}

/// The tmpfs of the node that `path` lies strictly inside, if any.
fn enclosing_tmpfs<'a>(path: &Path, roots: &'a [PathBuf]) -> Option<&'a PathBuf> {
    roots
        .iter()
        .filter(|root| path.starts_with(root) && path != root.as_path())
        .max_by_key(|root| root.components().count())
}

/// Creates a missing mount point below one of the node's tmpfs, walking
/// one component at a time: every existing step must be a real directory
/// on that tmpfs (no symlink, no other mount such as an earlier bind), so
/// nothing is ever created on a host filesystem.
fn create_mount_point(is_dir: bool, target: &Path, tmpfs: &[PathBuf]) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let refuse = |why: String| std::io::Error::other(why);
    let root = enclosing_tmpfs(target, tmpfs).ok_or_else(|| {
        refuse("the target does not exist in the node (nslab creates missing targets only inside the node's tmpfs)".into())
    })?;
    let device = fs::metadata(root)?.dev();
    let relative = target
        .strip_prefix(root)
        .map_err(|e| refuse(e.to_string()))?;
    let mut at = root.clone();
    let steps: Vec<_> = relative.components().collect();
    for (i, step) in steps.iter().enumerate() {
        at.push(step);
        let last = i + 1 == steps.len();
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refuse(format!("{} is a symbolic link", at.display())));
            }
            Ok(meta) if meta.dev() != device => {
                return Err(refuse(format!(
                    "{} is not on the node's tmpfs {}",
                    at.display(),
                    root.display()
                )));
            }
            Ok(meta) if !last && !meta.is_dir() => {
                return Err(refuse(format!("{} is not a directory", at.display())));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !last || is_dir {
                    fs::create_dir(&at)?;
                } else {
                    fs::File::options().write(true).create_new(true).open(&at)?;
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nsfs_mounts_and_unescapes_them() {
        let info = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
612 25 0:4 net:[4026532290] /run/netns/lab-h1 rw shared:5 - nsfs nsfs rw
613 25 0:4 net:[4026532291] /run/netns/with\\040space rw - nsfs nsfs rw
";
        assert_eq!(
            nsfs_mount_points(info),
            vec![
                PathBuf::from("/run/netns/lab-h1"),
                PathBuf::from("/run/netns/with space")
            ]
        );
    }

    #[test]
    fn creates_targets_only_below_tmpfs() {
        let tmpfs = [
            PathBuf::from("/tmp"),
            PathBuf::from("/tmp/deep"),
            PathBuf::from("/run"),
        ];
        assert_eq!(
            enclosing_tmpfs(Path::new("/tmp/a/b"), &tmpfs),
            Some(&tmpfs[0])
        );
        assert_eq!(
            enclosing_tmpfs(Path::new("/tmp/deep/x"), &tmpfs),
            Some(&tmpfs[1])
        );
        assert_eq!(enclosing_tmpfs(Path::new("/tmp"), &tmpfs), None);
        assert_eq!(enclosing_tmpfs(Path::new("/etc/hosts"), &tmpfs), None);
        assert_eq!(enclosing_tmpfs(Path::new("/tmpx/y"), &tmpfs), None);
    }

    #[test]
    fn mount_points_never_follow_links_or_leave_the_tmpfs() {
        // The walk itself, on a scratch folder standing in for a tmpfs.
        let root = std::env::temp_dir().join(format!("nslab-mp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        let roots = [root.clone()];
        assert!(create_mount_point(false, &root.join("real/a/b/file"), &roots).is_ok());
        assert!(root.join("real/a/b/file").is_file());
        let escaped = create_mount_point(false, &root.join("link/nslab-should-not-exist"), &roots);
        assert!(escaped.is_err());
        assert!(!Path::new("/etc/nslab-should-not-exist").exists());
        fs::remove_dir_all(&root).unwrap();
    }
}
