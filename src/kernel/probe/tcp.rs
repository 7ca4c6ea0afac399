//! TCP port probes: a non-blocking connect. Connected means reached; a
//! refusal (RST), an ICMP error or no answer before the timeout means not.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{Outcome, Start};

/// A connect in flight.
#[derive(Debug)]
pub(crate) struct Connect {
    socket: Socket,
    started: Instant,
}

/// Starts connecting to `address` from the calling thread's net namespace.
pub(crate) fn start(address: SocketAddr, now: Instant) -> io::Result<Start<Connect>> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    Ok(match socket.connect(&SockAddr::from(address)) {
        Ok(()) => Start::Done(Outcome::Answered(now.elapsed())),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Start::Pending(Connect {
            socket,
            started: now,
        }),
        Err(e) => Start::Done(Outcome::failed(&e)),
    })
}

impl Connect {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// The verdict once poll reported the socket writable or in error.
    pub(crate) fn verdict(&self, now: Instant) -> Outcome {
        match self.socket.take_error() {
            Ok(None) => Outcome::Answered(now.saturating_duration_since(self.started)),
            Ok(Some(e)) | Err(e) => Outcome::failed(&e),
        }
    }
}
