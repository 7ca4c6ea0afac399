//! A containerlab file's lab directory (`clab-<name>` next to the file):
//! made by `up` (and by `apply` for the nodes it adds) with a folder per
//! node, as containerlab makes it, the files nslab writes there (a node's
//! `resolv.conf`, a `kind: frr` node's `daemons`), and the bind sources in
//! it that do not
//! exist yet made as folders (as Docker makes a missing bind source). Like
//! containerlab's, it stays after `down`: it holds the user's files.

use std::path::Path;

use super::LabError;
use crate::plan::Plan;

/// Makes the lab directory of `plan` (if it has one) and what is in it
/// for the nodes `ids`.
pub(crate) fn make(plan: &Plan, ids: &[usize]) -> Result<(), LabError> {
    let Some(dir) = &plan.lab_dir else {
        return Ok(());
    };
    let make_dir = |path: &Path| {
        std::fs::create_dir_all(path).map_err(|source| LabError::Io {
            what: format!("make {}", path.display()),
            source,
        })
    };
    // Made as root: a symbolic link planted in its place (in a folder
    // others may write) must not lead the folders elsewhere.
    if dir
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        return Err(LabError::Io {
            what: format!("use {} as the lab directory", dir.display()),
            source: std::io::Error::other("it is a symbolic link"),
        });
    }
    make_dir(dir)?;
    for &id in ids {
        make_dir(&dir.join(&plan.nodes[id].name))?;
    }
    // Missing ones only: a running lab of this name may have them bound
    // (see `rewrite_files`).
    for (path, contents) in &plan.lab_files {
        if let Some(folder) = path.parent() {
            make_dir(folder)?;
        }
        if !path.exists() {
            write_file(path, contents)?;
        }
    }
    for &id in ids {
        for bind in &plan.nodes[id].binds {
            if bind.source.starts_with(dir) && !bind.source.exists() {
                make_dir(&bind.source)?;
            }
        }
    }
    Ok(())
}

/// Writes the lab's files again, so that they say what its file says now:
/// under the lab's lock, once it is known whose they are.
pub(crate) fn rewrite_files(plan: &Plan) -> Result<(), LabError> {
    for (path, contents) in &plan.lab_files {
        write_file(path, contents)?;
    }
    Ok(())
}

fn write_file(path: &Path, contents: &str) -> Result<(), LabError> {
    std::fs::write(path, contents).map_err(|source| LabError::Io {
        what: format!("write {}", path.display()),
        source,
    })
}
