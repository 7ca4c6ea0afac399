//! TCP port probes: non-blocking connects. Connected means reached; a
//! refusal (RST), an ICMP error or no answer before the timeout means not.
//!
//! A SYN lost right after `up` (a link still being activated) would only be
//! sent again by the kernel after a second, so a probe connects again on a
//! fresh socket every `retry`, up to [`MAX_ATTEMPTS`] sockets, and keeps the
//! earlier ones open (an answer to a slow first SYN still counts). Each
//! attempt is timed from its own connect.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{Outcome, Start};

/// Most sockets one TCP probe opens (its file descriptors count against the
/// open-file limit, see `crate::check::run`).
pub(crate) const MAX_ATTEMPTS: usize = 4;

/// One connect on its own socket.
#[derive(Debug)]
struct Attempt {
    socket: Socket,
    started: Instant,
}

/// A TCP probe in flight: its attempts so far.
#[derive(Debug)]
pub(crate) struct Connect {
    address: SocketAddr,
    attempts: Vec<Attempt>,
    retry: Duration,
    /// The first attempt plus the timeout.
    deadline: Instant,
    next_attempt: Option<Instant>,
}

/// What came of one `connect`.
enum Begun {
    InFlight(Attempt),
    Done(Outcome),
}

/// Connects a fresh non-blocking socket to `address`.
fn attempt(address: SocketAddr) -> io::Result<Begun> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    let started = Instant::now();
    Ok(match socket.connect(&SockAddr::from(address)) {
        Ok(()) => Begun::Done(Outcome::Answered(started.elapsed())),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            Begun::InFlight(Attempt { socket, started })
        }
        Err(e) => Begun::Done(Outcome::failed(&e)),
    })
}

/// Starts connecting to `address` from the calling thread's net namespace.
/// An error is a socket that could not be made (the probe could not run).
pub(crate) fn start(
    address: SocketAddr,
    retry: Duration,
    timeout: Duration,
) -> io::Result<Start<Connect>> {
    Ok(match attempt(address)? {
        Begun::Done(outcome) => Start::Done(outcome),
        Begun::InFlight(first) => {
            let deadline = first.started + timeout;
            let next = first.started + retry;
            Start::Pending(Connect {
                address,
                attempts: vec![first],
                retry,
                deadline,
                next_attempt: (MAX_ATTEMPTS > 1 && next < deadline).then_some(next),
            })
        }
    })
}

impl Connect {
    /// The attempts' sockets, to poll for writability.
    pub(crate) fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.attempts.iter().map(|a| a.socket.as_fd())
    }

    pub(crate) fn attempts(&self) -> usize {
        self.attempts.len()
    }

    /// Connects again when due, or gives up once the deadline has passed
    /// (after a last look at each attempt). Returns when something is next
    /// due, or the verdict.
    pub(crate) fn due(&mut self, now: Instant) -> Result<Instant, Outcome> {
        if now >= self.deadline {
            return Err(self
                .attempts
                .iter()
                .find_map(|a| settled(a, now))
                .unwrap_or(Outcome::TimedOut));
        }
        if let Some(at) = self.next_attempt.filter(|at| *at <= now) {
            self.next_attempt = None;
            // A socket that cannot be made now (no file left) only means
            // no further attempt: the earlier ones still count.
            match attempt(self.address) {
                Ok(Begun::InFlight(a)) => {
                    self.attempts.push(a);
                    let next = at.max(now) + self.retry;
                    if self.attempts.len() < MAX_ATTEMPTS && next < self.deadline {
                        self.next_attempt = Some(next);
                    }
                }
                Ok(Begun::Done(outcome)) => return Err(outcome),
                Err(_) => {}
            }
        }
        Ok(self
            .next_attempt
            .map_or(self.deadline, |n| n.min(self.deadline)))
    }

    /// The verdict once poll reported the attempt `index` (in the order of
    /// [`Self::fds`]) writable or in error; `None` when it is still
    /// connecting.
    pub(crate) fn on_event(&self, index: usize, now: Instant) -> Option<Outcome> {
        self.attempts.get(index).and_then(|a| settled(a, now))
    }
}

/// An attempt's outcome when it has one: connected or failed.
fn settled(a: &Attempt, now: Instant) -> Option<Outcome> {
    match a.socket.take_error() {
        Ok(Some(e)) | Err(e) => Some(Outcome::failed(&e)),
        // Connected once the kernel knows the peer; ENOTCONN while the
        // handshake is still going on.
        Ok(None) => a
            .socket
            .peer_addr()
            .ok()
            .map(|_| Outcome::Answered(now.saturating_duration_since(a.started))),
    }
}
