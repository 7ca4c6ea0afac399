//! The frames of a capture and the events that end it: the packet socket
//! and the node's init, waited on together.
//!
//! The socket holds the node's net namespace (and `lo` in it) for as long
//! as it is open, so the lab going down is seen on the init's pidfd, not on
//! the socket. When the init has exited, or the interface went down or
//! away (ENETDOWN), the frames already queued are still read, for at most
//! [`DRAIN`], before the capture ends.

use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use super::EndedBy;
use crate::kernel::packet::{CaptureSocket, Frame, PacketError};
use crate::kernel::process::PinnedProcess;

/// The longest the frames queued at the end are read for.
const DRAIN: Duration = Duration::from_millis(100);

/// What one step of the capture brings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A frame, read into the caller's buffer.
    Frame(Frame),
    /// Nothing came within the wait.
    Idle,
    /// The lab or the interface is gone, and the queue is read.
    End(EndedBy),
}

#[derive(Debug)]
pub struct Source<'a> {
    socket: &'a CaptureSocket,
    init: &'a PinnedProcess,
    /// Since when the queue is being read out, and why.
    ending: Option<(Instant, EndedBy)>,
}

impl<'a> Source<'a> {
    pub fn new(socket: &'a CaptureSocket, init: &'a PinnedProcess) -> Self {
        Self {
            socket,
            init,
            ending: None,
        }
    }

    /// Waits up to `wait` for a frame, or for the end.
    pub fn next(&mut self, buf: &mut [u8], wait: Duration) -> Result<Event, PacketError> {
        if let Some((since, ended_by)) = self.ending {
            if since.elapsed() >= DRAIN {
                return Ok(Event::End(ended_by));
            }
            return match self.socket.try_recv(buf) {
                Ok(Some(frame)) => Ok(Event::Frame(frame)),
                Ok(None) | Err(PacketError::Down(_)) => Ok(Event::End(ended_by)),
                Err(e) => Err(e),
            };
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
        self.ending = Some((Instant::now(), ended_by));
        self.next(buf, Duration::ZERO)
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
