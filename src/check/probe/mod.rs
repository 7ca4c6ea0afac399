//! Reachability probes, sent from the calling thread's net namespace (run
//! them through `RunningNode::in_netns`): ICMP echo over raw sockets, TCP
//! connect, UDP datagram. One poll loop drives all of a caller's probes at
//! once, so a node's whole list takes about one round trip when everything
//! answers and about the timeout when something does not (UDP probes to
//! one host can take longer: see `udp.rs`).

mod checksum;
mod icmp;
mod tcp;
mod udp;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use icmp::{Family, Pinger};
pub(crate) use tcp::MAX_ATTEMPTS as TCP_ATTEMPTS;

/// One thing to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Probe {
    /// An ICMP (or ICMPv6) echo request.
    Echo(IpAddr),
    /// A TCP connect.
    Tcp(SocketAddr),
    /// A UDP datagram.
    Udp(SocketAddr),
}

/// What came of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An echo reply, a completed connect or a UDP reply, after this long.
    Answered(Duration),
    /// UDP only: neither a reply nor an error for the timeout after a send
    /// the target was free to refuse (see `udp.rs`).
    Silent,
    /// No answer before the timeout (echo, TCP).
    TimedOut,
    /// The kernel reported an error: refused, unreachable, ...
    Failed(String),
    /// The probe could not be sent at all (no socket, node not running):
    /// nothing is known.
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
pub(crate) enum ProbeError {
    #[error("poll: {0}")]
    Poll(nix::Error),
}

/// How often a host that is not a node of the lab, or whose node's limits
/// could not be read, is taken to send ICMP errors to one peer, for both
/// families: once a second, the largest default any kernel has had
/// (`net.ipv4.icmp_ratelimit` has always been 1000 ms;
/// `net.ipv6.icmp.ratelimit` was 1000 ms before it became 100 ms).
pub(crate) const UNREAD_RATELIMIT: Duration = Duration::from_secs(1);

/// Which addresses belong to one host, and how that host rate-limits the
/// ICMP errors it sends to one peer (`net.ipv4.icmp_ratelimit`,
/// `net.ipv6.icmp.ratelimit`): UDP probes to a host are paced by them. An
/// address of no known host is a host of its own, paced by
/// [`UNREAD_RATELIMIT`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Pacing {
    hosts: HashMap<IpAddr, (usize, [Duration; 2])>,
    count: usize,
}

/// The budget a UDP probe draws on: a host (or lone address) and family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum BudgetKey {
    Host(usize, Family),
    Address(IpAddr),
}

impl Pacing {
    /// Adds a host with these addresses and per-family intervals (IPv4,
    /// IPv6; zero for no limit).
    pub(crate) fn host(
        &mut self,
        addresses: impl IntoIterator<Item = IpAddr>,
        interval: [Duration; 2],
    ) {
        let id = self.count;
        self.count += 1;
        for a in addresses {
            self.hosts.entry(a).or_insert((id, interval));
        }
    }

    /// The interval at which the host of `address` sends errors to one
    /// peer after its burst.
    #[cfg(test)]
    pub(crate) fn interval(&self, address: IpAddr) -> Duration {
        self.budget(address).1
    }

    fn budget(&self, address: IpAddr) -> (BudgetKey, Duration) {
        let family = Family::of(address);
        match self.hosts.get(&address) {
            Some((id, interval)) => (BudgetKey::Host(*id, family), interval[family as usize]),
            None => (BudgetKey::Address(address), UNREAD_RATELIMIT),
        }
    }
}

/// Runs every probe from the calling thread's net namespace, all at once,
/// and returns their outcomes in order. Each probe has the timeout from its
/// own first send. Echo requests are sent again every quarter of the
/// timeout (at most every 250 ms) until answered; a TCP probe connects
/// again as often on a fresh socket (up to [`TCP_ATTEMPTS`]); an undecided
/// UDP probe is sent once more when its host's ICMP budget allows (see
/// `udp.rs`). Give each echo address once: replies are matched per target.
/// A probe that cannot be sent (no socket) is [`Outcome::NotProbed`]; only
/// a failing poll fails the whole run.
pub(crate) fn run(
    probes: &[Probe],
    timeout: Duration,
    pacing: &Pacing,
) -> Result<Vec<Outcome>, ProbeError> {
    let start = Instant::now();
    let retry = (timeout / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
    let mut outcomes: Vec<Option<Outcome>> = vec![None; probes.len()];
    // Per family: the pinger and, by its target index, the probe index; or
    // why it could not be opened.
    let mut pingers: [Option<(Pinger, Vec<usize>)>; 2] = [None, None];
    let mut no_pinger: [Option<String>; 2] = [None, None];
    let mut connects: Vec<(usize, tcp::Connect)> = Vec::new();
    let mut datagrams: Vec<(usize, udp::Datagram)> = Vec::new();
    let mut budgets: Vec<udp::Budget> = Vec::new();
    let mut budget_of: HashMap<BudgetKey, usize> = HashMap::new();

    for (i, probe) in probes.iter().enumerate() {
        match *probe {
            Probe::Echo(address) => {
                let family = Family::of(address);
                let slot = &mut pingers[family as usize];
                if slot.is_none() && no_pinger[family as usize].is_none() {
                    match Pinger::open(family, start, retry, timeout) {
                        Ok(pinger) => *slot = Some((pinger, Vec::new())),
                        Err(e) => {
                            no_pinger[family as usize] = Some(format!(
                                "could not open a raw {} socket: {}",
                                match family {
                                    Family::V4 => "ICMP",
                                    Family::V6 => "ICMPv6",
                                },
                                describe(&e)
                            ));
                        }
                    }
                }
                match slot {
                    Some((pinger, map)) => {
                        pinger.add(address);
                        map.push(i);
                    }
                    None => {
                        outcomes[i] = no_pinger[family as usize].clone().map(Outcome::NotProbed);
                    }
                }
            }
            Probe::Tcp(address) => match tcp::start(address, retry, timeout) {
                Ok(Start::Pending(c)) => connects.push((i, c)),
                Ok(Start::Done(o)) => outcomes[i] = Some(o),
                Err(e) => outcomes[i] = Some(not_probed("TCP", &e)),
            },
            Probe::Udp(address) => {
                let (key, interval) = pacing.budget(address.ip());
                let budget = *budget_of.entry(key).or_insert_with(|| {
                    budgets.push(udp::Budget::new(interval, start));
                    budgets.len() - 1
                });
                match udp::open(address, budget) {
                    Ok(Start::Pending(d)) => datagrams.push((i, d)),
                    Ok(Start::Done(o)) => outcomes[i] = Some(o),
                    Err(e) => outcomes[i] = Some(not_probed("UDP", &e)),
                }
            }
        }
    }

    loop {
        let now = Instant::now();
        let mut wake: Option<Instant> = None;
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        for (pinger, map) in pingers.iter_mut().flatten() {
            if let Some(t) = pinger.send_due(now, |k, o| outcomes[map[k]] = Some(o)) {
                at(t);
            }
        }
        connects.retain_mut(|(i, c)| match c.due(now) {
            Ok(t) => {
                at(t);
                true
            }
            Err(o) => {
                outcomes[*i] = Some(o);
                false
            }
        });
        datagrams.retain_mut(
            |(i, d)| match udp_due(d, &mut budgets, now, timeout, retry) {
                Ok(t) => {
                    at(t);
                    true
                }
                Err(o) => {
                    outcomes[*i] = Some(o);
                    false
                }
            },
        );
        let echo_pending = pingers.iter().flatten().any(|(p, _)| !p.finished());
        if !echo_pending && connects.is_empty() && datagrams.is_empty() {
            break;
        }

        let mut fds: Vec<PollFd> = Vec::new();
        for (pinger, _) in pingers.iter().flatten() {
            fds.push(PollFd::new(pinger.fd(), PollFlags::POLLIN));
        }
        for (_, c) in &connects {
            fds.extend(c.fds().map(|fd| PollFd::new(fd, PollFlags::POLLOUT)));
        }
        for (_, d) in &datagrams {
            fds.push(PollFd::new(d.fd(), PollFlags::POLLIN));
        }
        // Rounded up, so a wait shorter than a millisecond does not spin.
        let wait = wake.map_or(Duration::ZERO, |w| w.saturating_duration_since(now));
        let millis = wait.as_micros().div_ceil(1000);
        let wait = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
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
            let mut verdict = None;
            for k in 0..c.attempts() {
                if ready.next() == Some(true) && verdict.is_none() {
                    verdict = c.on_event(k, now);
                }
            }
            match verdict {
                Some(o) => {
                    outcomes[*i] = Some(o);
                    false
                }
                None => true,
            }
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
    }

    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or(Outcome::NotProbed("no outcome".into())))
        .collect())
}

/// A socket that could not be made: the probe did not run.
fn not_probed(protocol: &str, e: &io::Error) -> Outcome {
    Outcome::NotProbed(format!(
        "could not open a {protocol} socket: {}",
        describe(e)
    ))
}

/// A UDP probe's sends and deadline: the first send at once; once `retry`
/// has passed without a verdict, one paced send when the target's budget
/// allows; silence for the timeout after that is [`Outcome::Silent`].
/// Returns when the probe is next due, or its verdict.
fn udp_due(
    d: &mut udp::Datagram,
    budgets: &mut [udp::Budget],
    now: Instant,
    timeout: Duration,
    retry: Duration,
) -> Result<Instant, Outcome> {
    // A full send buffer: try again shortly, for a while.
    let blocked = |d: &udp::Datagram| match d.blocked {
        Some(since) if now >= since + timeout => Err(Outcome::NotProbed(
            "could not send a UDP datagram: the send buffer stayed full".into(),
        )),
        _ => Ok(now + Duration::from_millis(5)),
    };
    let budget = &mut budgets[d.budget];
    let Some(first) = d.first else {
        return match d.send(now)? {
            true => {
                budget.spend(now);
                Ok(now + retry)
            }
            false => blocked(d),
        };
    };
    if let Some(paced) = d.paced {
        let deadline = paced + timeout;
        if now < deadline {
            return Ok(deadline);
        }
        // A last look before calling it silence.
        return Err(d.on_event(now).unwrap_or(Outcome::Silent));
    }
    let eligible = first + retry;
    if now < eligible {
        return Ok(eligible);
    }
    if !budget.ready(now) {
        return Ok(budget.ready_at().max(eligible));
    }
    match d.send(now)? {
        true => {
            budget.spend(now);
            d.paced_at(now);
            Ok(now + timeout)
        }
        false => blocked(d),
    }
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

    /// Real probes over the test's own loopback (nothing leaves it, nothing
    /// is changed): needs CAP_NET_RAW for the echo.
    #[test]
    fn loopback_probes_get_their_answers() {
        let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let listener = std::net::TcpListener::bind(local(0)).expect("listen");
        let silent = std::net::UdpSocket::bind(local(0)).expect("bind");
        // Ports that were just free: nothing listens there now.
        let closed_tcp = std::net::TcpListener::bind(local(0))
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let closed_udp = std::net::UdpSocket::bind(local(0))
            .and_then(|s| s.local_addr())
            .expect("a free port");
        let probes = [
            Probe::Echo(IpAddr::from([127, 0, 0, 1])),
            Probe::Tcp(listener.local_addr().expect("addr")),
            Probe::Tcp(closed_tcp),
            Probe::Udp(closed_udp),
            Probe::Udp(silent.local_addr().expect("addr")),
        ];
        let mut pacing = Pacing::default();
        pacing.host([IpAddr::from([127, 0, 0, 1])], [Duration::ZERO; 2]);
        let timeout = Duration::from_millis(300);
        let started = Instant::now();
        let outcomes = run(&probes, timeout, &pacing).expect("poll");
        let took = started.elapsed();
        match &outcomes[0] {
            Outcome::Answered(rtt) => assert!(*rtt < timeout, "{rtt:?}"),
            Outcome::NotProbed(why) if why.contains("not permitted") => {
                eprintln!("SKIPPED the echo part of loopback_probes_get_their_answers: {why}");
            }
            other => panic!("echo to 127.0.0.1: {other:?}"),
        }
        assert!(
            matches!(outcomes[1], Outcome::Answered(rtt) if rtt < timeout),
            "{:?}",
            outcomes[1]
        );
        let refused = Outcome::Failed("connection refused".into());
        assert_eq!(outcomes[2], refused);
        assert_eq!(outcomes[3], refused);
        // Silence only after the paced send (at `retry`, 75 ms) and the
        // timeout from it.
        assert_eq!(outcomes[4], Outcome::Silent);
        assert!(took >= timeout + timeout / 4, "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn a_host_shares_one_budget_per_family() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let mut pacing = Pacing::default();
        let second = Duration::from_secs(1);
        pacing.host(
            [ip("10.0.1.1"), ip("10.0.2.1"), ip("2001:db8::1")],
            [second, Duration::ZERO],
        );
        pacing.host([ip("10.0.3.1")], [second, second / 10]);
        let key = |s: &str| pacing.budget(ip(s)).0;
        assert_eq!(key("10.0.1.1"), key("10.0.2.1"), "one host, one budget");
        assert_ne!(key("10.0.1.1"), key("2001:db8::1"), "one per family");
        assert_ne!(key("10.0.1.1"), key("10.0.3.1"));
        assert_ne!(
            key("203.0.113.1"),
            key("203.0.113.2"),
            "unknown: each alone"
        );
        assert_eq!(pacing.interval(ip("10.0.2.1")), second);
        assert_eq!(pacing.interval(ip("2001:db8::1")), Duration::ZERO);
        assert_eq!(pacing.interval(ip("2001:db8::9")), UNREAD_RATELIMIT);
        assert_eq!(pacing.interval(ip("203.0.113.1")), UNREAD_RATELIMIT);
    }

    #[test]
    fn nothing_to_probe_returns_at_once() {
        let started = Instant::now();
        let outcomes =
            run(&[], Duration::from_secs(5), &Pacing::default()).expect("no sockets needed");
        assert!(outcomes.is_empty());
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
