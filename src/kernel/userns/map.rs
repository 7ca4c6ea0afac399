//! Id maps: a node's ids 0..count are host ids uid.. and gid.. .

use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};

/// The ids one node gets: 65536, like one `/etc/subuid` entry of
/// useradd, enough for every id a Debian system hands out.
pub(crate) const BLOCK: u32 = 65536;

/// A node's id map: its ids `0..count` are host uids `uid..uid+count` and
/// host gids `gid..gid+count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdMap {
    pub uid: u32,
    pub gid: u32,
    pub count: u32,
}

impl IdMap {
    /// The text of `/proc/PID/uid_map`.
    pub(crate) fn uid_line(&self) -> String {
        format!("0 {} {}\n", self.uid, self.count)
    }

    /// The text of `/proc/PID/gid_map`.
    pub(crate) fn gid_line(&self) -> String {
        format!("0 {} {}\n", self.gid, self.count)
    }

    /// Whether two maps share a host uid or a host gid.
    pub(crate) fn overlaps(&self, other: &IdMap) -> bool {
        let meet = |a: u32, b: u32| {
            let (a, b, n, m) = (a as u64, b as u64, self.count as u64, other.count as u64);
            a < b + m && b < a + n
        };
        meet(self.uid, other.uid) || meet(self.gid, other.gid)
    }
}

/// Host ids nslab lends to nodes, a [`BLOCK`] each: from `/etc/subuid` and
/// `/etc/subgid` (user `nslab`) or given with `--userns-range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdRange {
    pub uid: u32,
    pub gid: u32,
    pub count: u32,
}

impl IdRange {
    /// How many nodes the range holds at once.
    pub(crate) fn blocks(&self) -> u32 {
        self.count / BLOCK
    }

    /// The map of block `n`.
    pub(crate) fn block(&self, n: u32) -> IdMap {
        IdMap {
            uid: self.uid + n * BLOCK,
            gid: self.gid + n * BLOCK,
            count: BLOCK,
        }
    }
}

impl fmt::Display for IdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.uid == self.gid {
            write!(f, "{}:{}", self.uid, self.count)
        } else {
            write!(
                f,
                "uids {}:{}, gids {}:{}",
                self.uid, self.count, self.gid, self.count
            )
        }
    }
}

/// Writes the uid and gid maps of the process `pid`, which must be in a
/// user namespace that has none yet. The caller is root of the parent user
/// namespace, so any host ids may be mapped and no `setgroups` file needs
/// writing.
pub(crate) fn write_id_maps(pid: i32, map: &IdMap) -> io::Result<()> {
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/{pid}/{file}"), text)
            .map_err(|e| io::Error::new(e.kind(), format!("write /proc/{pid}/{file}: {e}")))
    };
    write("uid_map", map.uid_line())?;
    write("gid_map", map.gid_line())
}

/// Makes the calling process root of the user namespace it is in: no
/// supplementary groups, then gid 0, then uid 0 (in that order: after the
/// uid changes, the other two would need capabilities it may lack).
/// A process that entered or was born into a user namespace still has the
/// host ids it had (unmapped there); the capabilities it holds in the new
/// namespace let it take the node's ids. Async-signal-safe.
pub(crate) fn become_root() -> Result<(), i32> {
    // SAFETY: plain credential syscalls on this process.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setresgid(0, 0, 0) != 0
            || libc::setresuid(0, 0, 0) != 0
        {
            return Err(*libc::__errno_location());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_a_range_follow_each_other() {
        let range = IdRange {
            uid: 1 << 30,
            gid: (1 << 30) + 7,
            count: 3 * BLOCK + 5,
        };
        assert_eq!(range.blocks(), 3);
        let second = range.block(1);
        assert_eq!(second.uid, (1 << 30) + BLOCK);
        assert_eq!(second.gid, (1 << 30) + 7 + BLOCK);
        assert_eq!(
            second.uid_line(),
            format!("0 {} 65536\n", (1 << 30) + BLOCK)
        );
        assert!(!range.block(0).overlaps(&second));
        assert!(second.overlaps(&second));
    }

    #[test]
    fn maps_overlap_by_uid_or_by_gid() {
        let a = IdMap {
            uid: 100,
            gid: 500,
            count: 10,
        };
        assert!(a.overlaps(&IdMap {
            uid: 109,
            gid: 0,
            count: 1
        }));
        assert!(!a.overlaps(&IdMap {
            uid: 110,
            gid: 0,
            count: 1
        }));
        assert!(a.overlaps(&IdMap {
            uid: 0,
            gid: 495,
            count: 6
        }));
        assert!(!a.overlaps(&IdMap {
            uid: 0,
            gid: 490,
            count: 10
        }));
    }
}
