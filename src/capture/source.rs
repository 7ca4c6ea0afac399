//! The frames of a capture and the events that end it: the packet socket
//! and the node's init, waited on together.
//!
//! The socket holds the node's net namespace (and `lo` in it) for as long
//! as it is open, so the lab going down is seen on the init's pidfd, not on
//! the socket. When the init has exited, or the interface went down or
//! away (ENETDOWN), the frames already queued are still read, until the
//! queue is empty (or [`DRAIN_MAX`] have been), before the capture ends.

use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use super::EndedBy;
use crate::capture::packet::{CaptureSocket, Frame, PacketError};
use crate::kernel::process::PinnedProcess;

/// The most frames read once the end is seen: more than the socket's
/// buffer holds (4 MiB, twice that with the kernel's bookkeeping, and
/// several hundred bytes a frame), so it only cuts short a queue that
/// keeps filling (on `lo`, from processes still sending in the node's net
/// namespace).
const DRAIN_MAX: u64 = 100_000;

/// What one step of the capture brings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Event {
    /// A frame, read into the caller's buffer.
    Frame(Frame),
    /// Nothing came within the wait.
    Idle,
    /// The lab or the interface is gone, and the queue is read.
    End(EndedBy),
}

#[derive(Debug)]
pub(super) struct Source<'a> {
    socket: &'a CaptureSocket,
    init: &'a PinnedProcess,
    /// Why the capture ends, once the queue is read out.
    ending: Option<EndedBy>,
    /// Frames read since the end was seen.
    drained: u64,
}

impl<'a> Source<'a> {
    pub(super) fn new(socket: &'a CaptureSocket, init: &'a PinnedProcess) -> Self {
        Self {
            socket,
            init,
            ending: None,
            drained: 0,
        }
    }

    /// Waits up to `wait` for a frame, or for the end.
    pub(super) fn next(&mut self, buf: &mut [u8], wait: Duration) -> Result<Event, PacketError> {
        if let Some(ended_by) = self.ending {
            return self.drain(buf, ended_by);
        }
        let (frame_waiting, init_gone) = self.wait(wait)?;
        if init_gone {
            return self.end(buf, EndedBy::LabGone);
        }
        if !frame_waiting {
            return Ok(Event::Idle);
        }
        match self.socket.try_recv(buf) {
            Ok(Some(frame)) => Ok(Event::Frame(frame)),
            Ok(None) => Ok(Event::Idle),
            // The lab going down takes its links away too: say which.
            Err(PacketError::Down(_)) if !self.init.is_alive() => self.end(buf, EndedBy::LabGone),
            Err(PacketError::Down(_)) => self.end(buf, EndedBy::InterfaceDown),
            Err(e) => Err(e),
        }
    }

    /// Starts reading the queue out before ending with `ended_by`.
    fn end(&mut self, buf: &mut [u8], ended_by: EndedBy) -> Result<Event, PacketError> {
        self.ending = Some(ended_by);
        self.drain(buf, ended_by)
    }

    /// The next frame still queued, or the end once the queue is empty.
    fn drain(&mut self, buf: &mut [u8], ended_by: EndedBy) -> Result<Event, PacketError> {
        if self.drained >= DRAIN_MAX {
            return Ok(Event::End(ended_by));
        }
        // The socket's pending ENETDOWN comes before the frames queued
        // (a read reports it once, and clears it): read past it, once.
        for _ in 0..2 {
            match self.socket.try_recv(buf) {
                Ok(Some(frame)) => {
                    self.drained += 1;
                    return Ok(Event::Frame(frame));
                }
                Ok(None) => break,
                Err(PacketError::Down(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(Event::End(ended_by))
    }

    /// Polls the socket and the init's pidfd: (a frame or an error waits,
    /// the init has exited). A signal ends the wait with neither.
    fn wait(&self, wait: Duration) -> Result<(bool, bool), PacketError> {
        let mut fds = [self.socket.as_fd(), self.init.as_fd()].map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        let millis = wait.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `fds` is an array of two valid pollfds.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
        if ready < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok((false, false));
            }
            return Err(PacketError::Io {
                what: "wait for packets",
                source: e,
            });
        }
        Ok((fds[0].revents != 0, fds[1].revents != 0))
    }
}
