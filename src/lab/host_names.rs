//! `up --hosts`: the lab's nodes in the host's own `/etc/hosts`, in a
//! block between two marker lines naming the lab (as containerlab marks
//! its own), so that the host reaches nodes by name. Nothing else of the
//! file is changed: the block is replaced whole by `apply` and taken out
//! by `down`, which looks for it whether or not `up` finished.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use super::LabError;

/// The host's file.
pub(crate) const HOSTS: &str = "/etc/hosts";

fn start_marker(lab: &str) -> String {
    format!("###### NSLAB-{lab}-START ######")
}

fn end_marker(lab: &str) -> String {
    format!("###### NSLAB-{lab}-END ######")
}

/// `text` with the block of `lab` replaced by `entries` (`None`: taken
/// out). A block is added at the end, after a newline if the text lacks
/// its last one. Only a whole block is taken: a start marker without its
/// end (the file edited by hand) is an error, and the file is left alone.
pub(crate) fn with_block(text: &str, lab: &str, entries: Option<&str>) -> Result<String, String> {
    let (start, end) = (start_marker(lab), end_marker(lab));
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        if !inside && bare == start {
            inside = true;
        } else if inside && bare == end {
            inside = false;
        } else if !inside {
            out.push_str(line);
        }
    }
    if inside {
        return Err(format!(
            "{start} has no {end} after it: the block was edited; take it out by hand"
        ));
    }
    if let Some(entries) = entries {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&start);
        out.push('\n');
        out.push_str(entries);
        out.push_str(&end);
        out.push('\n');
    }
    Ok(out)
}

/// Sets the block of `lab` in the file at `path` (`None`: takes it out),
/// under a lock shared by every nslab; true when the file changed.
pub(crate) fn set_block(path: &Path, lab: &str, entries: Option<&str>) -> Result<bool, LabError> {
    let io = |what: String| move |source| LabError::Io { what, source };
    let _lock = lock().map_err(io("lock /run/nslab/.hosts.lock".into()))?;
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound && entries.is_none() => return Ok(false),
        Err(e) => return Err(io(format!("read {}", path.display()))(e)),
    };
    let new = with_block(&text, lab, entries)
        .map_err(|why| LabError::HostConflict(format!("{}: {why}", path.display())))?;
    if new == text {
        return Ok(false);
    }
    replace(path, &new).map_err(io(format!("write {}", path.display())))?;
    Ok(true)
}

/// Refreshes the block of `lab` if the file has one (`apply`).
pub(crate) fn refresh_block(path: &Path, lab: &str, entries: &str) -> Result<bool, LabError> {
    let has_block = fs::read_to_string(path)
        .map(|t| t.lines().any(|l| l == start_marker(lab)))
        .unwrap_or(false);
    match has_block {
        true => set_block(path, lab, Some(entries)),
        false => Ok(false),
    }
}

/// Rewrites the file in place, never by a rename: a node's own
/// `/etc/hosts` is a mount on that path in the node's mount namespace, and
/// the kernel takes such mounts away, in every namespace, when the file
/// under them is replaced. The new text is written over the old and the
/// file cut to its length, so a reader sees no empty file.
fn replace(path: &Path, text: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    crate::state::rewrite_in_place(&mut file, text)
}

/// An exclusive lock on `/run/nslab/.hosts.lock`, held until dropped.
fn lock() -> io::Result<Flock<File>> {
    let root = Path::new(crate::state::STATE_ROOT);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)?;
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(root.join(".hosts.lock"))?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_added_replaced_and_taken_out_leaving_the_rest() {
        let host = "127.0.0.1 localhost\n10.1.1.1 printer";
        let added = with_block(host, "lab1", Some("10.0.0.2\tlab1-a\n")).unwrap();
        assert_eq!(
            added,
            "127.0.0.1 localhost\n10.1.1.1 printer\n###### NSLAB-lab1-START ######\n10.0.0.2\tlab1-a\n###### NSLAB-lab1-END ######\n"
        );
        let other = with_block(&added, "lab2", Some("10.0.1.2\tlab2-b\n")).unwrap();
        let replaced = with_block(&other, "lab1", Some("10.0.0.3\tlab1-c\n")).unwrap();
        assert!(replaced.contains("10.0.0.3\tlab1-c\n") && !replaced.contains("lab1-a"));
        assert!(replaced.contains("10.0.1.2\tlab2-b\n"));
        let removed =
            with_block(&with_block(&replaced, "lab1", None).unwrap(), "lab2", None).unwrap();
        // The file's own last newline was added with the first block.
        assert_eq!(removed, format!("{host}\n"));
        assert_eq!(with_block("a\n", "lab1", None).unwrap(), "a\n");
        // A block whose end marker was edited away is not guessed at.
        let torn = "a\n###### NSLAB-lab1-START ######\n10.0.0.2\tx\nb\n";
        assert!(with_block(torn, "lab1", None).is_err());
    }

    #[test]
    fn the_file_keeps_its_inode_and_mode_through_set_and_removal() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = std::env::temp_dir().join(format!("nslab-hosts-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts");
        fs::write(&path, "127.0.0.1 localhost\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let inode = fs::metadata(&path).unwrap().ino();
        if lock().is_err() {
            // Not root: /run/nslab is not ours to make.
            return;
        }
        assert!(set_block(&path, "t", Some("10.0.0.2\tt-a\n")).unwrap());
        assert!(!set_block(&path, "t", Some("10.0.0.2\tt-a\n")).unwrap());
        assert!(refresh_block(&path, "t", "10.0.0.9\tt-a\n").unwrap());
        assert!(!refresh_block(&path, "u", "10.0.0.9\tu-a\n").unwrap());
        assert!(fs::read_to_string(&path).unwrap().contains("10.0.0.9\tt-a"));
        assert!(set_block(&path, "t", None).unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "127.0.0.1 localhost\n");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(meta.ino(), inode, "replaced, not rewritten");
        fs::remove_dir_all(&dir).unwrap();
    }
}
