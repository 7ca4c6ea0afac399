//! Host ids lent to the user-namespaced nodes of running labs: one file
//! per node under /run/nslab/.ids/, named after the node's first host uid
//! and holding `LAB NODE UID GID COUNT`. Blocks are claimed under one lock
//! for every lab, so no two running nodes ever share an id, and released by
//! `down`, which finds them by the lab's name (also after a crash).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::{StateError, ensure_root_in, io_error};
use crate::kernel::userns::{IdMap, IdRange};

/// The folder of the claims under the state root (not a valid lab name).
const IDS_DIR: &str = ".ids";
const LOCK: &str = "lock";

/// One node's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claim {
    pub lab: String,
    pub node: String,
    pub map: IdMap,
}

fn dir_in(root: &Path) -> Result<PathBuf, StateError> {
    ensure_root_in(root)?;
    let dir = root.join(IDS_DIR);
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(dir),
        Err(e) => Err(io_error(&dir)(e)),
    }
}

/// Takes the lock of the claims folder, making the folder when `make`.
/// `None`: there is no folder (and `make` is false). The lock file is
/// removed with the folder by the last release, so a lock taken on a file
/// that is gone meanwhile is taken again.
fn lock_in(root: &Path, make: bool) -> Result<Option<(PathBuf, Flock<File>)>, StateError> {
    loop {
        let dir = match make {
            true => dir_in(root)?,
            false => root.join(IDS_DIR),
        };
        let path = dir.join(LOCK);
        let opened = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path);
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !make => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(&path)(e)),
        };
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| io_error(&path)(e.into()))?;
        let held = lock.metadata().map_err(io_error(&path))?;
        match fs::metadata(&path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                return Ok(Some((dir, lock)));
            }
            // Removed (and maybe made again) while we waited.
            _ => continue,
        }
    }
}

/// Claims a block of `range` for each of `nodes` of `lab`, none of them
/// holding an id of another claim; one map per node, in order.
pub(crate) fn claim_in(
    root: &Path,
    lab: &str,
    nodes: &[&str],
    range: IdRange,
) -> Result<Vec<IdMap>, StateError> {
    let (dir, _lock) = lock_in(root, true)?.ok_or_else(|| StateError::Io {
        path: root.join(IDS_DIR),
        source: io::ErrorKind::NotFound.into(),
    })?;
    let taken: Vec<IdMap> = claims_at(&dir)?.into_iter().map(|c| c.map).collect();
    let mut free = (0..range.blocks())
        .map(|n| range.block(n))
        .filter(|block| !taken.iter().any(|t| t.overlaps(block)));
    let mut maps = Vec::with_capacity(nodes.len());
    for node in nodes {
        let Some(map) = free.next() else {
            return Err(StateError::NoIds {
                range: range.to_string(),
                wanted: nodes.len(),
                free: maps.len(),
            });
        };
        let path = dir.join(map.uid.to_string());
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error(&path))?;
        writeln!(file, "{lab} {node} {} {} {}", map.uid, map.gid, map.count)
            .map_err(io_error(&path))?;
        maps.push(map);
    }
    Ok(maps)
}

/// Every claim, of every lab.
pub(crate) fn claims_in(root: &Path) -> Result<Vec<Claim>, StateError> {
    let dir = root.join(IDS_DIR);
    match dir.exists() {
        true => claims_at(&dir),
        false => Ok(Vec::new()),
    }
}

fn claims_at(dir: &Path) -> Result<Vec<Claim>, StateError> {
    let mut claims = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        if path.file_name().is_some_and(|n| n == LOCK) {
            continue;
        }
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            // Released meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(&path)(e)),
        };
        claims.push(parse(&text).ok_or_else(|| StateError::Corrupt {
            path: path.clone(),
            reason: format!("not LAB NODE UID GID COUNT: {text:?}"),
        })?);
    }
    Ok(claims)
}

fn parse(text: &str) -> Option<Claim> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [lab, node, uid, gid, count] = fields[..] else {
        return None;
    };
    Some(Claim {
        lab: lab.into(),
        node: node.into(),
        map: IdMap {
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
            count: count.parse().ok()?,
        },
    })
}

/// Releases the claims of the nodes `nodes` of `lab`; how many.
pub(crate) fn release_nodes_in(
    root: &Path,
    lab: &str,
    nodes: &[&str],
) -> Result<usize, StateError> {
    release_where(root, |claim| {
        claim.lab == lab && nodes.contains(&claim.node.as_str())
    })
}

/// Releases every claim of `lab`; how many. The folder goes with the last
/// claim of all.
pub(crate) fn release_in(root: &Path, lab: &str) -> Result<usize, StateError> {
    release_where(root, |claim| claim.lab == lab)
}

/// Releases the claims that `released` picks.
fn release_where(root: &Path, picked: impl Fn(&Claim) -> bool) -> Result<usize, StateError> {
    let Some((dir, lock)) = lock_in(root, false)? else {
        return Ok(0);
    };
    let mut released = 0;
    let mut left = 0;
    for claim in claims_at(&dir)? {
        if !picked(&claim) {
            left += 1;
            continue;
        }
        let path = dir.join(claim.map.uid.to_string());
        match fs::remove_file(&path) {
            Ok(()) => released += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&path)(e)),
        }
    }
    if left == 0 {
        // Another nslab waiting for the lock finds the folder gone and
        // makes it again.
        let _ = fs::remove_file(dir.join(LOCK));
        let _ = fs::remove_dir(&dir);
    }
    drop(lock);
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::userns::BLOCK;

    fn scratch(tag: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("nslab-ids-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        root
    }

    #[test]
    fn claims_never_overlap_and_go_with_their_lab() {
        let root = scratch("claims");
        let range = IdRange {
            uid: 1 << 30,
            gid: 1 << 30,
            count: 3 * BLOCK,
        };
        let a = claim_in(&root, "a", &["x", "y"], range).unwrap();
        assert_eq!(a, [range.block(0), range.block(1)]);
        // Another range overlapping block 1 skips it.
        let shifted = IdRange {
            uid: (1 << 30) + BLOCK + 5,
            gid: 7,
            count: 2 * BLOCK,
        };
        let err = claim_in(&root, "b", &["z", "w"], shifted).unwrap_err();
        assert!(err.to_string().contains("free for 1 of 2"), "{err}");
        // What a failed claim took is released with its lab, as `up`'s
        // rollback does.
        assert_eq!(release_in(&root, "b").unwrap(), 1);
        let b = claim_in(&root, "b", &["z"], range).unwrap();
        assert_eq!(b, [range.block(2)]);
        assert!(claim_in(&root, "c", &["v"], range).is_err());
        let claims = claims_in(&root).unwrap();
        assert!(
            claims
                .iter()
                .any(|c| c.lab == "a" && c.node == "y" && c.map == a[1])
        );
        assert_eq!(release_in(&root, "a").unwrap(), 2);
        assert_eq!(release_in(&root, "b").unwrap(), 1);
        assert!(!root.join(IDS_DIR).exists());
        assert_eq!(release_in(&root, "b").unwrap(), 0);
        let _ = fs::remove_dir_all(&root);
    }
}
