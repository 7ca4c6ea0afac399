//! One lock per lab, so two nslab processes never build or tear down the
//! same lab at once while different labs proceed side by side.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::{STATE_ROOT, StateError, ensure_root_in};

/// A held lab lock; released on drop.
#[derive(Debug)]
pub(crate) struct LabLock {
    path: PathBuf,
    lock: Option<Flock<File>>,
}

impl LabLock {
    /// Takes the lock of `lab`, waiting for another nslab if needed (and
    /// calling `on_wait` once before waiting).
    pub(crate) fn acquire(lab: &str, on_wait: impl FnOnce()) -> Result<Self, StateError> {
        Self::acquire_in(Path::new(STATE_ROOT), lab, on_wait)
    }

    /// [`acquire`](Self::acquire) with the lock files under another root.
    pub(crate) fn acquire_in(
        root: &Path,
        lab: &str,
        on_wait: impl FnOnce(),
    ) -> Result<Self, StateError> {
        ensure_root_in(root)?;
        // Validates the name: it becomes a path.
        super::lab_dir_in(root, lab)?;
        let path = root.join(format!("{lab}.lock"));
        let fail = |source: io::Error| StateError::Io {
            path: path.clone(),
            source,
        };
        let mut on_wait = Some(on_wait);
        loop {
            let opened = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(&path);
            let file = match opened {
                Ok(file) => file,
                // Another nslab removed the empty /run/nslab just now.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    ensure_root_in(root)?;
                    continue;
                }
                Err(e) => return Err(fail(e)),
            };
            let locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => locked,
                Err((file, nix::Error::EWOULDBLOCK)) => {
                    if let Some(f) = on_wait.take() {
                        f();
                    }
                    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| fail(e.into()))?
                }
                Err((_, e)) => return Err(fail(e.into())),
            };
            // The holder before us may have removed the lock file (see
            // `release_and_remove`): only a lock on the file that is still at
            // the path counts.
            let same = fs::metadata(&path)
                .ok()
                .zip(locked.metadata().ok())
                .is_some_and(|(at_path, ours)| at_path.ino() == ours.ino());
            if same {
                return Ok(Self {
                    path,
                    lock: Some(locked),
                });
            }
        }
    }

    /// Removes the lock file while still holding the lock (when the lab is
    /// gone), then releases it. Waiters notice and retry on a fresh file.
    pub(crate) fn release_and_remove(mut self) {
        let _ = fs::remove_file(&self.path);
        self.lock = None;
    }
}
