//! UDP port probes. UDP has no handshake, so the answer is read from what
//! comes back to a connected socket: a datagram in reply means reached; an
//! ICMP port unreachable (ECONNREFUSED) or another ICMP error means not;
//! silence is [`Outcome::Silent`], which the caller weighs (see
//! `crate::check`: reached when the address answers echo).
//!
//! Silence is only worth something when the target was free to refuse.
//! The kernel rate-limits the ICMP errors it sends to one peer: a burst of
//! six, then one per interval, `net.ipv4.icmp_ratelimit` for IPv4 and
//! `net.ipv6.icmp.ratelimit` for IPv6 (milliseconds, of the target's net
//! namespace; the defaults differ between kernels: 1000 ms for IPv4, and
//! for IPv6 100 ms on recent kernels, 1000 ms before). For IPv6 some
//! kernels shorten the interval by the prefix length of the route back to
//! the peer (halved per 32 bits short of /128: a /64 a quarter, a default
//! route a sixteenth), never lengthen it, so the sysctl is an upper bound
//! and pacing by it is safe. Past the burst a closed port is as silent as an open one. So
//! every probe is sent at once (a refusal or a reply decides it), and a
//! probe still undecided is sent once more, paced: per target host and
//! family, sends are spaced so that the host's budget for us has refilled
//! by at least one error for each, whatever it held when the run began (a
//! lower bound that starts at zero, grows one error per interval plus a
//! margin, and drops by one per datagram sent). Only silence after that
//! paced send, for the timeout, is [`Outcome::Silent`].
//!
//! The intervals come from the caller ([`super::Pacing`]): `nslab check`
//! reads both sysctls live from each target node's net namespace when it
//! starts (`crate::check::run`), and paces a host it could not read, or
//! one outside the lab, at one error a second
//! ([`super::UNREAD_RATELIMIT`]).

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::icmp::is_transient;
use super::{Outcome, Start};

/// What is sent: enough for a human reading a capture to know who sent it.
const PAYLOAD: &[u8] = b"nslab check\n";

/// The kernel's burst: `XRLIM_BURST_FACTOR` errors.
const BURST: u32 = 6;

/// The ICMP errors a target host can still send us, at least: a lower
/// bound on its per-peer token bucket, kept as the kernel keeps it, in time
/// (one error costs one interval).
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    /// One error per this long (margin included); zero: no limit.
    interval: Duration,
    credit: Duration,
    at: Instant,
}

impl Budget {
    /// A host that sends one error per `interval` after a burst. The
    /// budget starts empty: another run may just have spent it.
    pub(crate) fn new(interval: Duration, now: Instant) -> Budget {
        // Jiffies, a send that waited in a queue, a little jitter.
        let margin = (interval / 10).max(Duration::from_millis(10));
        Budget {
            interval: if interval.is_zero() {
                Duration::ZERO
            } else {
                interval + margin
            },
            credit: Duration::ZERO,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        if now > self.at {
            self.credit = (self.credit + (now - self.at)).min(self.interval * BURST);
            self.at = now;
        }
    }

    /// True when a datagram sent now is sure to be answered by an error if
    /// the port is closed.
    pub(crate) fn ready(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.credit >= self.interval
    }

    /// Counts a datagram sent (it may have used up one error).
    pub(crate) fn spend(&mut self, now: Instant) {
        self.refill(now);
        self.credit = self.credit.saturating_sub(self.interval);
    }

    /// When the budget next holds one error.
    pub(crate) fn ready_at(&self) -> Instant {
        self.at + self.interval.saturating_sub(self.credit)
    }
}

/// A UDP probe: its socket and its sends so far.
#[derive(Debug)]
pub(crate) struct Datagram {
    socket: Socket,
    /// Which [`Budget`] of the run its target draws on.
    pub(crate) budget: usize,
    /// Since when sends have found the send buffer full, if they have.
    pub(crate) blocked: Option<Instant>,
    /// The first send (or `None` before it).
    pub(crate) first: Option<Instant>,
    /// The latest send: a reply is timed from it.
    last: Option<Instant>,
    /// The paced send, and so the deadline (it plus the timeout).
    pub(crate) paced: Option<Instant>,
}

/// Opens a socket connected to `address` from the calling thread's net
/// namespace; nothing is sent yet. An error is a socket that could not be
/// made (the probe could not run); a refused connect is a verdict.
pub(crate) fn open(address: SocketAddr, budget: usize) -> io::Result<Start<Datagram>> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_nonblocking(true)?;
    if let Err(e) = socket.connect(&SockAddr::from(address)) {
        return Ok(Start::Done(Outcome::failed(&e)));
    }
    Ok(Start::Pending(Datagram {
        socket,
        budget,
        blocked: None,
        first: None,
        last: None,
        paced: None,
    }))
}

impl Datagram {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Sends the datagram; `Ok(false)` when the send buffer was full (try
    /// again shortly, see [`Self::blocked`]), an outcome when the kernel
    /// refused at once.
    pub(crate) fn send(&mut self, now: Instant) -> Result<bool, Outcome> {
        match self.socket.send(PAYLOAD) {
            Ok(_) => {
                self.first.get_or_insert(now);
                self.last = Some(now);
                self.blocked = None;
                Ok(true)
            }
            Err(e) if is_transient(&e) => {
                self.blocked.get_or_insert(now);
                Ok(false)
            }
            Err(e) => Err(Outcome::failed(&e)),
        }
    }

    /// Marks the send just made as the paced one.
    pub(crate) fn paced_at(&mut self, now: Instant) {
        self.paced = Some(now);
    }

    /// After poll reported the socket readable or in error (or for a last
    /// look): a verdict, or `None` when there was nothing after all.
    pub(crate) fn on_event(&self, now: Instant) -> Option<Outcome> {
        let mut buffer = [0u8; 1];
        match (&self.socket).read(&mut buffer) {
            // Even a truncated reply is an answer.
            Ok(_) => Some(Outcome::Answered(
                now.saturating_duration_since(self.last.unwrap_or(now)),
            )),
            Err(e) if is_transient(&e) => None,
            Err(e) => Some(Outcome::failed(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_budget_starts_empty_and_refills_one_error_per_interval() {
        let t0 = Instant::now();
        let mut b = Budget::new(1000 * MS, t0);
        assert!(!b.ready(t0), "another run may have spent it");
        // 1000 ms plus a 100 ms margin per error.
        assert_eq!(b.ready_at(), t0 + 1100 * MS);
        assert!(!b.ready(t0 + 1099 * MS));
        assert!(b.ready(t0 + 1100 * MS));
        b.spend(t0 + 1100 * MS);
        assert!(!b.ready(t0 + 1100 * MS));
        assert_eq!(b.ready_at(), t0 + 2200 * MS);
        // Never more than the kernel's burst.
        assert!(b.ready(t0 + 100_000 * MS));
        for _ in 0..6 {
            assert!(b.ready(t0 + 100_000 * MS));
            b.spend(t0 + 100_000 * MS);
        }
        assert!(!b.ready(t0 + 100_000 * MS));
    }

    #[test]
    fn sends_the_host_may_have_ignored_do_not_go_below_zero() {
        let t0 = Instant::now();
        let mut b = Budget::new(100 * MS, t0);
        for _ in 0..20 {
            b.spend(t0);
        }
        // 100 ms plus the 10 ms floor of the margin.
        assert_eq!(b.ready_at(), t0 + 110 * MS);
        assert!(b.ready(t0 + 110 * MS));
    }

    #[test]
    fn no_limit_means_always_ready() {
        let t0 = Instant::now();
        let mut b = Budget::new(Duration::ZERO, t0);
        for _ in 0..100 {
            assert!(b.ready(t0));
            b.spend(t0);
        }
        assert_eq!(b.ready_at(), t0);
    }
}
