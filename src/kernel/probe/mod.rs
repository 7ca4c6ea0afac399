//! Reachability probes, sent from the calling thread's net namespace (run
//! them through `RunningNode::in_netns`): ICMP echo over raw sockets, TCP
//! connect, UDP datagram. One poll loop drives all of a caller's probes at
//! once, so a node's whole list takes about one round trip when everything
//! answers and at most the timeout when something does not.

mod checksum;
mod icmp;
mod tcp;
mod udp;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use icmp::{Family, Pinger};

/// One thing to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    /// An ICMP (or ICMPv6) echo request.
    Echo(IpAddr),
    /// A TCP connect.
    Tcp(SocketAddr),
    /// A UDP datagram.
    Udp(SocketAddr),
}

/// What came of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An echo reply, a completed connect or a UDP reply, after this long.
    Answered(Duration),
    /// UDP only: neither a reply nor an error before the timeout.
    Silent,
    /// No answer before the timeout (echo, TCP).
    TimedOut,
    /// The kernel reported an error: refused, unreachable, ...
    Failed(String),
    /// The probe could not be sent at all (node not running): nothing is
    /// known.
    NotProbed(String),
}

impl Outcome {
    pub(crate) fn failed(e: &io::Error) -> Outcome {
        Outcome::Failed(describe(e))
    }
}

/// `connection refused`, `network is unreachable`: the errno's text
/// without the `(os error N)` that io::Error adds.
fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
        None => e.to_string(),
    }
}

/// A probe started: still waiting, or already decided.
#[derive(Debug)]
pub(crate) enum Start<T> {
    Pending(T),
    Done(Outcome),
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("open a raw {family} socket: {source}")]
    Raw {
        family: &'static str,
        source: io::Error,
    },
    #[error("open a {protocol} socket: {source}")]
    Socket {
        protocol: &'static str,
        source: io::Error,
    },
    #[error("poll: {0}")]
    Poll(nix::Error),
}

/// Runs every probe from the calling thread's net namespace, all at once,
/// and returns their outcomes in order. Echo requests are sent again every
/// quarter of the timeout (at most every 250 ms) until answered; a UDP
/// datagram once more halfway. Give each echo address once: replies are
/// matched per target.
pub fn run(probes: &[Probe], timeout: Duration) -> Result<Vec<Outcome>, ProbeError> {
    let start = Instant::now();
    let deadline = start + timeout;
    let retry = (timeout / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
    let mut outcomes: Vec<Option<Outcome>> = vec![None; probes.len()];
    // Per family: the pinger and, by its target index, the probe index.
    let mut pingers: [Option<(Pinger, Vec<usize>)>; 2] = [None, None];
    let mut connects = Vec::new();
    let mut datagrams = Vec::new();

    for (i, probe) in probes.iter().enumerate() {
        match *probe {
            Probe::Echo(address) => {
                let family = Family::of(address);
                let slot = &mut pingers[family as usize];
                if slot.is_none() {
                    let pinger =
                        Pinger::open(family, start, retry).map_err(|source| ProbeError::Raw {
                            family: match family {
                                Family::V4 => "ICMP",
                                Family::V6 => "ICMPv6",
                            },
                            source,
                        })?;
                    *slot = Some((pinger, Vec::new()));
                }
                if let Some((pinger, map)) = slot {
                    pinger.add(address);
                    map.push(i);
                }
            }
            Probe::Tcp(address) => {
                match tcp::start(address, start).map_err(|source| ProbeError::Socket {
                    protocol: "TCP",
                    source,
                })? {
                    Start::Pending(c) => connects.push((i, c)),
                    Start::Done(o) => outcomes[i] = Some(o),
                }
            }
            Probe::Udp(address) => {
                match udp::start(address, start, timeout / 2).map_err(|source| {
                    ProbeError::Socket {
                        protocol: "UDP",
                        source,
                    }
                })? {
                    Start::Pending(d) => datagrams.push((i, d)),
                    Start::Done(o) => outcomes[i] = Some(o),
                }
            }
        }
    }

    loop {
        let now = Instant::now();
        // Past the deadline: no more sends, one last look at what has
        // already arrived (a long burst of sends can outlast the timeout
        // while its replies wait in the socket).
        let last = now >= deadline;
        let mut wake = deadline;
        if !last {
            for (pinger, map) in pingers.iter_mut().flatten() {
                if let Some(at) = pinger.send_due(now, |k, o| outcomes[map[k]] = Some(o)) {
                    wake = wake.min(at);
                }
            }
            datagrams.retain_mut(|(i, d)| match d.resend_due(now) {
                Ok(at) => {
                    if let Some(at) = at {
                        wake = wake.min(at);
                    }
                    true
                }
                Err(o) => {
                    outcomes[*i] = Some(o);
                    false
                }
            });
        }
        let echo_pending = pingers.iter().flatten().any(|(p, _)| !p.finished());
        if !echo_pending && connects.is_empty() && datagrams.is_empty() {
            break;
        }

        let mut fds: Vec<PollFd> = Vec::new();
        for (pinger, _) in pingers.iter().flatten() {
            fds.push(PollFd::new(pinger.fd(), PollFlags::POLLIN));
        }
        for (_, c) in &connects {
            fds.push(PollFd::new(c.fd(), PollFlags::POLLOUT));
        }
        for (_, d) in &datagrams {
            fds.push(PollFd::new(d.fd(), PollFlags::POLLIN));
        }
        // Rounded up, so a wait shorter than a millisecond does not spin.
        let wait = wake.saturating_duration_since(now);
        let millis = wait.as_micros().div_ceil(1000);
        let wait = if last {
            PollTimeout::ZERO
        } else {
            PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
        };
        match poll(&mut fds, wait) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(ProbeError::Poll(e)),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);

        let now = Instant::now();
        let mut ready = ready.into_iter();
        for (pinger, map) in pingers.iter_mut().flatten() {
            if ready.next() == Some(true) {
                pinger.receive(|k, o| outcomes[map[k]] = Some(o));
            }
        }
        connects.retain(|(i, c)| {
            if ready.next() != Some(true) {
                return true;
            }
            outcomes[*i] = Some(c.verdict(now));
            false
        });
        datagrams.retain(|(i, d)| {
            if ready.next() != Some(true) {
                return true;
            }
            match d.on_event(now) {
                Some(o) => {
                    outcomes[*i] = Some(o);
                    false
                }
                None => true,
            }
        });
        if last {
            break;
        }
    }

    Ok(outcomes
        .into_iter()
        .zip(probes)
        .map(|(outcome, probe)| {
            outcome.unwrap_or(match probe {
                Probe::Udp(_) => Outcome::Silent,
                Probe::Echo(_) | Probe::Tcp(_) => Outcome::TimedOut,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_words() {
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(describe(&e), "connection refused");
        let e = io::Error::from_raw_os_error(libc::ENETUNREACH);
        assert_eq!(describe(&e), "network is unreachable");
    }

    #[test]
    fn nothing_to_probe_returns_at_once() {
        let started = Instant::now();
        let outcomes = run(&[], Duration::from_secs(5)).expect("no sockets needed");
        assert!(outcomes.is_empty());
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
