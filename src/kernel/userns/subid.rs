//! The host ids nslab lends to nodes: an `/etc/subuid` and `/etc/subgid`
//! entry of user `nslab` (read, or made once and kept), or a range given
//! with `--userns-range`. Either way it may not hold an id of a real user
//! or group, nor overlap another owner's entry.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{BLOCK, IdRange, UsernsError};

/// The owner of nslab's entries.
pub(crate) const OWNER: &str = "nslab";
/// Where nslab's range starts when it makes its entry: above useradd's
/// automatic ranges (which end at 600100000 by default) and below 2^31,
/// where some programs start to take ids for negative numbers.
const DEFAULT_START: u64 = 1 << 30;
/// 4096 blocks: as many user-namespaced nodes at once.
const DEFAULT_COUNT: u64 = 4096 * BLOCK as u64;
/// The highest valid id plus one ((uid_t)-1 means "none").
const ID_END: u64 = u32::MAX as u64;

/// The files the range is read from and checked against.
#[derive(Debug, Clone)]
pub(crate) struct SubidFiles {
    pub subuid: PathBuf,
    pub subgid: PathBuf,
    pub passwd: PathBuf,
    pub group: PathBuf,
}

impl SubidFiles {
    /// The host's own.
    pub(crate) fn host() -> Self {
        Self {
            subuid: "/etc/subuid".into(),
            subgid: "/etc/subgid".into(),
            passwd: "/etc/passwd".into(),
            group: "/etc/group".into(),
        }
    }
}

/// One `owner:start:count` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    owner: String,
    start: u64,
    count: u64,
}

/// The range nodes take their ids from: `given` (start, count) when set,
/// else nslab's entries. With `create`, entries that are missing are made
/// (under shadow's lock files); without, the range they would get is only
/// computed (for `explain`).
pub(crate) fn nslab_range(
    files: &SubidFiles,
    given: Option<(u32, u32)>,
    create: bool,
) -> Result<IdRange, UsernsError> {
    if let Some((start, count)) = given {
        let range = IdRange {
            uid: start,
            gid: start,
            count,
        };
        check(files, &range)?;
        return Ok(range);
    }
    let find = |path: &Path| -> Result<Option<Entry>, UsernsError> {
        Ok(read_entries(path)?.into_iter().find(|e| e.owner == OWNER))
    };
    let (uid, gid) = match (find(&files.subuid)?, find(&files.subgid)?) {
        (Some(uid), Some(gid)) => (uid, gid),
        _ if !create => {
            let start = free_start(files)?;
            (owned(start), owned(start))
        }
        _ => {
            let _locks = [Lock::take(&files.subuid)?, Lock::take(&files.subgid)?];
            // Read again under the locks: another nslab may have been first.
            match (find(&files.subuid)?, find(&files.subgid)?) {
                (Some(uid), Some(gid)) => (uid, gid),
                (uid, gid) => {
                    let start = free_start(files)?;
                    let uid = uid.map_or_else(|| append(&files.subuid, start), Ok)?;
                    let gid = gid.map_or_else(|| append(&files.subgid, start), Ok)?;
                    (uid, gid)
                }
            }
        }
    };
    let range = IdRange {
        uid: narrow(uid.start),
        gid: narrow(gid.start),
        count: narrow(uid.count.min(gid.count)),
    };
    check(files, &range)?;
    Ok(range)
}

fn owned(start: u64) -> Entry {
    Entry {
        owner: OWNER.into(),
        start,
        count: DEFAULT_COUNT,
    }
}

fn narrow(n: u64) -> u32 {
    n.min(ID_END) as u32
}

/// Refuses a range that is too small, leaves the valid ids, or holds an id
/// of a user, a group, or another owner's entry.
fn check(files: &SubidFiles, range: &IdRange) -> Result<(), UsernsError> {
    let bad = |reason: String| UsernsError::BadRange {
        range: range.to_string(),
        reason,
    };
    if range.count < BLOCK {
        return Err(bad(format!(
            "holds fewer than {BLOCK} ids, the block one node takes"
        )));
    }
    for (start, what) in [(range.uid, "uid"), (range.gid, "gid")] {
        let (start, end) = (start as u64, start as u64 + range.count as u64);
        if start == 0 || end > ID_END {
            return Err(bad(format!(
                "must lie within {what}s 1..{ID_END} (it starts at 0 or ends past the last valid id)"
            )));
        }
        let (ids, subids) = match what {
            "uid" => (&files.passwd, &files.subuid),
            _ => (&files.group, &files.subgid),
        };
        if let Some((name, id)) = account_ids(ids)?
            .into_iter()
            .find(|(_, id)| (start..end).contains(id))
        {
            return Err(bad(format!(
                "holds {what} {id} of {name:?} ({})",
                ids.display()
            )));
        }
        if let Some(other) = read_entries(subids)?
            .into_iter()
            .find(|e| e.owner != OWNER && e.start < end && start < e.start + e.count)
        {
            return Err(bad(format!(
                "overlaps {}:{}:{} in {}",
                other.owner,
                other.start,
                other.count,
                subids.display()
            )));
        }
    }
    Ok(())
}

/// The first block-aligned start from [`DEFAULT_START`] on where
/// [`DEFAULT_COUNT`] ids are free in both files and of every account.
fn free_start(files: &SubidFiles) -> Result<u64, UsernsError> {
    let mut taken: Vec<(u64, u64)> = Vec::new();
    for path in [&files.subuid, &files.subgid] {
        taken.extend(
            read_entries(path)?
                .iter()
                .map(|e| (e.start, e.start + e.count)),
        );
    }
    for path in [&files.passwd, &files.group] {
        taken.extend(account_ids(path)?.iter().map(|(_, id)| (*id, id + 1)));
    }
    let mut start = DEFAULT_START;
    while let Some(&(_, end)) = taken
        .iter()
        .filter(|(a, b)| *a < start + DEFAULT_COUNT && start < *b)
        .max_by_key(|(_, end)| *end)
    {
        start = end.div_ceil(BLOCK as u64) * BLOCK as u64;
    }
    if start + DEFAULT_COUNT > ID_END {
        return Err(UsernsError::Unavailable(format!(
            "no {DEFAULT_COUNT} free ids for nslab's range above {DEFAULT_START}: give one with --userns-range START:COUNT"
        )));
    }
    Ok(start)
}

fn read_text(path: &Path) -> Result<String, UsernsError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(UsernsError::Io {
            path: path.into(),
            source,
        }),
    }
}

fn read_entries(path: &Path) -> Result<Vec<Entry>, UsernsError> {
    parse_entries(&read_text(path)?).map_err(|(line, reason)| UsernsError::BadEntry {
        path: path.into(),
        line,
        reason,
    })
}

/// `owner:start:count` lines; blank lines and `#` comments are skipped.
fn parse_entries(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(':').collect();
        let [owner, start, count] = fields[..] else {
            return Err((n + 1, "not owner:start:count".into()));
        };
        let number = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| (n + 1, format!("{s:?} is not a number")))
        };
        entries.push(Entry {
            owner: owner.to_string(),
            start: number(start)?,
            count: number(count)?,
        });
    }
    Ok(entries)
}

/// (name, id) of each line of a passwd or group file.
fn account_ids(path: &Path) -> Result<Vec<(String, u64)>, UsernsError> {
    Ok(read_text(path)?
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?.parse().ok()?;
            Some((name.to_string(), id))
        })
        .collect())
}

/// Appends nslab's entry at `start` to a subid file (made 0644 if missing).
fn append(path: &Path, start: u64) -> Result<Entry, UsernsError> {
    let entry = owned(start);
    let line = format!("{}:{}:{}\n", entry.owner, entry.start, entry.count);
    let io = |source| UsernsError::Io {
        path: path.into(),
        source,
    };
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .map_err(io)?;
    // One write of one short line: appended whole.
    file.write_all(line.as_bytes()).map_err(io)?;
    Ok(entry)
}

/// shadow's lock of a file it edits, `FILE.lock` made exclusively, so that
/// nslab never appends while useradd or usermod rewrites the file.
struct Lock(PathBuf);

impl Lock {
    const WAIT: Duration = Duration::from_secs(10);

    fn take(path: &Path) -> Result<Self, UsernsError> {
        let mut lock = path.as_os_str().to_owned();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        let started = Instant::now();
        loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&lock)
            {
                Ok(mut file) => {
                    let _ = write!(file, "{}", std::process::id());
                    return Ok(Self(lock));
                }
                Err(e)
                    if e.kind() == io::ErrorKind::AlreadyExists
                        && started.elapsed() < Self::WAIT =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(source) => {
                    return Err(UsernsError::Io { path: lock, source });
                }
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("nslab-subid-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            fs::write(
                dir.join("passwd"),
                "root:x:0:0::/root:/bin/sh\nbig:x:1073800000:1::/:/bin/sh\n",
            )
            .unwrap();
            fs::write(dir.join("group"), "root:x:0:\n").unwrap();
            Self(dir)
        }

        fn files(&self) -> SubidFiles {
            SubidFiles {
                subuid: self.0.join("subuid"),
                subgid: self.0.join("subgid"),
                passwd: self.0.join("passwd"),
                group: self.0.join("group"),
            }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn parses_entries_and_names_a_bad_line() {
        let entries = parse_entries("# comment\n\nalice:100000:65536\n").unwrap();
        assert_eq!(
            entries,
            [Entry {
                owner: "alice".into(),
                start: 100000,
                count: 65536
            }]
        );
        assert_eq!(parse_entries("a:1:2\nb:x:3\n").unwrap_err().0, 2);
        assert_eq!(parse_entries("a:1\n").unwrap_err().0, 1);
    }

    #[test]
    fn makes_its_entry_once_past_users_and_other_entries() {
        let scratch = Scratch::new("make");
        let files = scratch.files();
        fs::write(&files.subuid, "alice:1073741824:100\n").unwrap();
        // Computing only writes nothing.
        let dry = nslab_range(&files, None, false).unwrap();
        assert_eq!(
            fs::read_to_string(&files.subuid).unwrap(),
            "alice:1073741824:100\n"
        );
        assert!(!files.subgid.exists());
        let range = nslab_range(&files, None, true).unwrap();
        assert_eq!(range, dry);
        // Past alice's entry and past uid 1073800000 of user "big".
        assert_eq!(range.uid as u64, 1073800000u64.div_ceil(65536) * 65536);
        assert_eq!(range.count as u64, DEFAULT_COUNT);
        let line = format!("nslab:{}:{}\n", range.uid, range.count);
        assert!(fs::read_to_string(&files.subuid).unwrap().ends_with(&line));
        assert_eq!(fs::read_to_string(&files.subgid).unwrap(), line);
        // Read, not made again.
        assert_eq!(nslab_range(&files, None, true).unwrap(), range);
        assert_eq!(fs::read_to_string(&files.subgid).unwrap(), line);
        assert!(!files.subuid.with_extension("lock").exists());
    }

    #[test]
    fn a_given_range_may_not_hold_accounts_or_others_entries() {
        let scratch = Scratch::new("given");
        let files = scratch.files();
        fs::write(&files.subuid, "alice:200000:65536\n").unwrap();
        assert!(nslab_range(&files, Some((300000, 65536 * 2)), true).is_ok());
        let err = |given| {
            nslab_range(&files, Some(given), true)
                .unwrap_err()
                .to_string()
        };
        assert!(err((150000, 65536 * 2)).contains("overlaps alice:200000:65536"));
        assert!(err((1073741824, 65536 * 2)).contains("uid 1073800000 of \"big\""));
        assert!(err((0, 65536)).contains("starts at 0"));
        assert!(err((300000, 100)).contains("fewer than 65536"));
        assert!(err((u32::MAX - 1000, 65536)).contains("past the last valid id"));
        // A given range writes nothing.
        assert!(!files.subgid.exists());
    }
}
