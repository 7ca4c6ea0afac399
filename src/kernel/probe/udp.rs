//! UDP port probes. UDP has no handshake, so the answer is read from what
//! comes back to a connected socket: a datagram in reply means reached; an
//! ICMP port unreachable (ECONNREFUSED) or another ICMP error means not;
//! silence until the timeout is [`Outcome::Silent`], which the caller
//! weighs (see `crate::check`: reached when the address answers echo).

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::icmp::is_transient;
use super::{Outcome, Start};

/// What is sent: enough for a human reading a capture to know who sent it.
const PAYLOAD: &[u8] = b"nslab check\n";

/// A datagram sent, waiting for an answer or an error.
#[derive(Debug)]
pub(crate) struct Datagram {
    socket: Socket,
    started: Instant,
    /// When to send once more (one resend, in case the first datagram or
    /// its ICMP error was lost); `None` once resent.
    resend_at: Option<Instant>,
}

/// Sends one datagram to `address` from the calling thread's net namespace.
pub(crate) fn start(
    address: SocketAddr,
    now: Instant,
    resend_after: Duration,
) -> io::Result<Start<Datagram>> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_nonblocking(true)?;
    if let Err(e) = socket.connect(&SockAddr::from(address)) {
        return Ok(Start::Done(Outcome::failed(&e)));
    }
    match socket.send(PAYLOAD) {
        Ok(_) => {}
        Err(e) if is_transient(&e) => {}
        Err(e) => return Ok(Start::Done(Outcome::failed(&e))),
    }
    Ok(Start::Pending(Datagram {
        socket,
        started: now,
        resend_at: Some(now + resend_after),
    }))
}

impl Datagram {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Resends when due; returns when the resend is due, if still ahead,
    /// or a verdict when sending failed.
    pub(crate) fn resend_due(&mut self, now: Instant) -> Result<Option<Instant>, Outcome> {
        match self.resend_at {
            Some(at) if at <= now => {
                self.resend_at = None;
                match self.socket.send(PAYLOAD) {
                    Ok(_) => Ok(None),
                    Err(e) if is_transient(&e) => Ok(None),
                    Err(e) => Err(Outcome::failed(&e)),
                }
            }
            other => Ok(other),
        }
    }

    /// After poll reported the socket readable or in error: a verdict, or
    /// `None` when there was nothing after all.
    pub(crate) fn on_event(&self, now: Instant) -> Option<Outcome> {
        let mut buffer = [0u8; 1];
        match (&self.socket).read(&mut buffer) {
            // Even a truncated reply is an answer.
            Ok(_) => Some(Outcome::Answered(
                now.saturating_duration_since(self.started),
            )),
            Err(e) if is_transient(&e) => None,
            Err(e) => Some(Outcome::failed(&e)),
        }
    }
}
