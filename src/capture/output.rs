//! Where the pcap stream goes, written so that a reader that stops reading
//! never holds the capture past its end.
//!
//! A blocking write to a full pipe waits for the reader, and `write_all`
//! retries the EINTR a signal brings: a capture into a stalled pipe could
//! not be stopped. So a write to anything but a regular file first polls
//! for room (POLLOUT: at least [`libc::PIPE_BUF`] bytes free in a pipe) and
//! then writes at most that much, which never blocks. While it waits, it
//! looks at the stop flag, the deadline, [`Output::finish`] and the node's
//! init ([`Output::ending_with`]); once one says the capture is over, the reader has [`GRACE`] to make room, then
//! the write fails with [`GaveUp`] (the stream may then end inside a
//! packet: the reader was not reading it).

use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a stalled reader may hold a capture that should end.
pub(super) const GRACE: Duration = Duration::from_secs(1);
/// How often a wait for room looks at the flag and the clock.
const TICK: Duration = Duration::from_millis(100);

/// The error of a write given up because the capture was over and the
/// reader took nothing for [`GRACE`].
#[derive(Debug)]
pub(super) struct GaveUp;

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the reader took nothing after the capture ended")
    }
}

impl std::error::Error for GaveUp {}

/// Whether `e` is a [`GaveUp`].
pub(super) fn gave_up(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<GaveUp>())
}

/// A file or pipe, written without blocking past the end of the capture.
#[derive(Debug)]
pub(super) struct Output<'a, F> {
    file: F,
    stop: &'a AtomicBool,
    deadline: Option<Instant>,
    /// Not a regular file: a write may block, so poll first.
    may_block: bool,
    /// Told by [`finish`](Self::finish) that the capture is over.
    finished: bool,
    /// A pidfd whose process's exit also ends the capture (the node's
    /// init: the lab went down).
    end_watch: Option<BorrowedFd<'a>>,
    /// When the end was first seen while waiting for room.
    ending_since: Option<Instant>,
}

impl<'a, F: Write + AsFd> Output<'a, F> {
    /// `file`, to be written until `stop` is raised or `deadline` passes.
    pub(super) fn new(file: F, stop: &'a AtomicBool, deadline: Option<Instant>) -> Self {
        let regular = nix::sys::stat::fstat(file.as_fd()).is_ok_and(|s| {
            nix::sys::stat::SFlag::from_bits_truncate(s.st_mode) & nix::sys::stat::SFlag::S_IFMT
                == nix::sys::stat::SFlag::S_IFREG
        });
        Self {
            file,
            stop,
            deadline,
            may_block: !regular,
            finished: false,
            end_watch: None,
            ending_since: None,
        }
    }

    /// The capture is also over once the process of `pidfd` exits, even
    /// while a write waits for a stalled reader.
    pub(super) fn ending_with(mut self, pidfd: BorrowedFd<'a>) -> Self {
        self.end_watch = Some(pidfd);
        self
    }

    /// The capture is over for another reason (a count, the lab gone): a
    /// stalled reader has [`GRACE`] from now, as after a stop.
    pub(super) fn finish(&mut self) {
        self.finished = true;
    }

    fn is_over(&self) -> bool {
        self.finished
            || self.stop.load(Ordering::Relaxed)
            || self.deadline.is_some_and(|d| Instant::now() >= d)
            || self
                .end_watch
                .is_some_and(|fd| crate::kernel::process::exited_within(fd, Duration::ZERO))
    }

    /// Waits until the file takes a write of [`libc::PIPE_BUF`] bytes
    /// without blocking, or fails with [`GaveUp`].
    fn wait_for_room(&mut self) -> io::Result<()> {
        let mut wait = Duration::ZERO;
        loop {
            let mut poll = libc::pollfd {
                fd: self.file.as_fd().as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut poll, 1, wait.as_millis() as libc::c_int) };
            if ready > 0 {
                // Room, or an error (POLLERR, POLLHUP) the write reports.
                return Ok(());
            }
            if ready < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            if self.is_over() {
                let since = *self.ending_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= GRACE {
                    return Err(io::Error::other(GaveUp));
                }
            }
            wait = match self.deadline {
                Some(d) if self.ending_since.is_none() => {
                    TICK.min(d.saturating_duration_since(Instant::now()))
                }
                _ => TICK,
            };
        }
    }
}

impl<F: Write + AsFd> Write for Output<'_, F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.may_block {
            return self.file.write(buf);
        }
        self.wait_for_room()?;
        self.file.write(&buf[..buf.len().min(libc::PIPE_BUF)])
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;

    fn has_room(file: &std::fs::File) -> bool {
        let mut poll = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        unsafe { libc::poll(&mut poll, 1, 0) == 1 }
    }

    fn pipe() -> (std::fs::File, std::fs::File) {
        let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().expect("pipe");
        (read.into(), write.into())
    }

    /// Fills the pipe behind `out` until the next write would block;
    /// returns a chunk to write next.
    fn fill(out: &mut Output<'_, std::fs::File>) -> [u8; 1024] {
        let chunk = [0u8; 1024];
        let mut written = 0;
        while has_room(&out.file) {
            written += out.write(&chunk).expect("room");
        }
        assert!(written >= 4096, "{written}");
        chunk
    }

    #[test]
    fn a_stalled_reader_is_given_up_after_the_deadline_and_the_grace() {
        let (_reader, writer) = pipe();
        let stop = AtomicBool::new(false);
        let deadline = Instant::now() + Duration::from_millis(200);
        let mut out = Output::new(writer, &stop, Some(deadline));
        let started = Instant::now();
        let chunk = [0u8; 65_536];
        let err = loop {
            if let Err(e) = out.write_all(&chunk) {
                break e;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "never gave up");
        };
        assert!(gave_up(&err), "{err}");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(200) + GRACE, "{took:?}");
        assert!(took < Duration::from_millis(200) + GRACE * 2, "{took:?}");
    }

    #[test]
    fn the_stop_flag_gives_a_stalled_reader_up_too() {
        let (_reader, writer) = pipe();
        let stop = AtomicBool::new(false);
        let mut out = Output::new(writer, &stop, None);
        let chunk = fill(&mut out);
        stop.store(true, Ordering::Relaxed);
        let started = Instant::now();
        let err = out.write_all(&chunk).expect_err("stalled");
        assert!(gave_up(&err), "{err}");
        assert!(started.elapsed() >= GRACE);
    }

    #[test]
    fn finish_gives_a_stalled_reader_up_too() {
        let (_reader, writer) = pipe();
        let stop = AtomicBool::new(false);
        let mut out = Output::new(writer, &stop, None);
        let chunk = fill(&mut out);
        out.finish();
        let started = Instant::now();
        let err = out.write_all(&chunk).expect_err("stalled");
        assert!(gave_up(&err), "{err}");
        assert!(started.elapsed() >= GRACE);
    }

    #[test]
    fn the_end_of_the_watched_process_gives_a_stalled_reader_up_too() {
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pidfd = crate::kernel::process::pidfd_open(child.id() as i32).expect("pidfd");
        child.wait().expect("wait");
        let (_reader, writer) = pipe();
        let stop = AtomicBool::new(false);
        let mut out = Output::new(writer, &stop, None).ending_with(pidfd.as_fd());
        let chunk = [0u8; 1024];
        let started = Instant::now();
        let err = loop {
            if let Err(e) = out.write(&chunk) {
                break e;
            }
        };
        assert!(gave_up(&err), "{err}");
        assert!(started.elapsed() >= GRACE);
    }

    #[test]
    fn a_reader_that_reads_gets_everything_even_after_the_end() {
        use std::io::Read;
        let (mut reader, writer) = pipe();
        let stop = AtomicBool::new(true);
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let expected = data.clone();
        let reading = std::thread::spawn(move || {
            let mut got = Vec::new();
            reader.read_to_end(&mut got).expect("read");
            got
        });
        let mut out = Output::new(writer, &stop, None);
        out.write_all(&data)
            .expect("a reading reader is never given up");
        drop(out);
        assert_eq!(reading.join().expect("reader"), expected);
    }

    #[test]
    fn regular_files_are_written_directly() {
        let path = std::env::temp_dir().join(format!("nslab-output-{}", std::process::id()));
        let file = std::fs::File::create(&path).expect("create");
        let stop = AtomicBool::new(true);
        let mut out = Output::new(file, &stop, Some(Instant::now()));
        assert!(!out.may_block);
        let written = out.write_all(&[1; 100_000]);
        let _ = std::fs::remove_file(&path);
        written.expect("a file never stalls");
    }
}
