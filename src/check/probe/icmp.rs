//! ICMP echo over raw sockets: building requests and recognising our
//! replies (pure), and a pinger that keeps one socket per family.
//!
//! Raw sockets rather than the kernel's ping sockets: those need the
//! caller's group in `net.ipv4.ping_group_range`, which is empty ("1 0") in
//! every new net namespace, root included. A raw ICMP socket would see every
//! ICMP packet its namespace receives; a filter (`ICMP_FILTER`,
//! `ICMP6_FILTER`) lets only echo replies through, and those are matched on
//! the sender, the identifier, the sequence number and a payload that
//! carries a per-pinger token.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::Outcome;
use super::checksum::{internet_checksum, verifies};
use crate::kernel::sockopt::{set_option, set_receive_buffer};

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
/// Length of the ICMP echo header (type, code, checksum, id, sequence).
const HEADER: usize = 8;
/// Our payload: token, target index, send time.
const PAYLOAD: usize = 16;
/// `ICMP_FILTER` (linux/icmp.h), an option of level `SOL_RAW`: a bit mask
/// of the ICMP types (below 32) the socket does not receive.
const ICMP_FILTER: libc::c_int = 1;
/// `ICMP6_FILTER` (linux/icmpv6.h), an option of level `IPPROTO_ICMPV6`.
const ICMP6_FILTER: libc::c_int = 1;
/// Bytes asked for as the receive buffer: room for a burst of replies from
/// many targets at once.
const RECEIVE_BUFFER: libc::c_int = 1 << 20;

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) fn of(address: IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// What an echo request carries, and what its reply brings back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Echo {
    pub id: u16,
    /// Identifies the pinger beyond the 16-bit id (another process may use
    /// the same id in the same namespace).
    pub token: u32,
    /// Index of the target in the pinger.
    pub index: u32,
    /// When the request was sent, in nanoseconds since the pinger started.
    pub sent_ns: u64,
}

/// An echo request. The ICMPv4 checksum is computed here; for ICMPv6 the
/// kernel fills it in (RFC 3542), so it is left zero.
pub(crate) fn echo_request(family: Family, echo: &Echo) -> Vec<u8> {
    let kind = match family {
        Family::V4 => ECHO_REQUEST_V4,
        Family::V6 => ECHO_REQUEST_V6,
    };
    let mut packet = Vec::with_capacity(HEADER + PAYLOAD);
    packet.extend_from_slice(&[kind, 0, 0, 0]);
    packet.extend_from_slice(&echo.id.to_be_bytes());
    // The sequence number is the index's low half; the full index is in the
    // payload.
    packet.extend_from_slice(&(echo.index as u16).to_be_bytes());
    packet.extend_from_slice(&echo.token.to_be_bytes());
    packet.extend_from_slice(&echo.index.to_be_bytes());
    packet.extend_from_slice(&echo.sent_ns.to_be_bytes());
    if family == Family::V4 {
        let sum = internet_checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// Recognises an echo reply to one of our requests. An IPv4 raw socket
/// hands over the IP header too (its length is in the first byte); an IPv6
/// one only the ICMPv6 message, whose checksum the kernel has checked.
pub(crate) fn parse_reply(family: Family, packet: &[u8], id: u16, token: u32) -> Option<Echo> {
    let icmp = match family {
        Family::V4 => {
            let first = *packet.first()?;
            if first >> 4 != 4 {
                return None;
            }
            let header = usize::from(first & 0x0f) * 4;
            let icmp = packet.get(header..)?;
            // The kernel does not check ICMP checksums before raw delivery.
            if !verifies(icmp) {
                return None;
            }
            icmp
        }
        Family::V6 => packet,
    };
    let reply = match family {
        Family::V4 => ECHO_REPLY_V4,
        Family::V6 => ECHO_REPLY_V6,
    };
    if icmp.len() < HEADER + PAYLOAD || icmp[0] != reply || icmp[1] != 0 {
        return None;
    }
    let u16_at = |at: usize| u16::from_be_bytes([icmp[at], icmp[at + 1]]);
    let u32_at =
        |at: usize| u32::from_be_bytes([icmp[at], icmp[at + 1], icmp[at + 2], icmp[at + 3]]);
    let echo = Echo {
        id: u16_at(4),
        token: u32_at(HEADER),
        index: u32_at(HEADER + 4),
        sent_ns: (u64::from(u32_at(HEADER + 8)) << 32) | u64::from(u32_at(HEADER + 12)),
    };
    let sequence = u16_at(6);
    (echo.id == id && echo.token == token && sequence == echo.index as u16).then_some(echo)
}

/// A fresh identifier per pinger, starting from the process id so that two
/// nslab processes rarely share one.
fn next_id() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    (std::process::id() as u16).wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A token that differs between pingers and processes (not a secret: it
/// only keeps other processes' replies apart from ours).
fn token(id: u16, start: Instant) -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let spread = start.elapsed().subsec_nanos();
    now ^ (u32::from(id) << 16) ^ spread.rotate_left(7) ^ std::process::id().rotate_left(13)
}

/// One target of a pinger.
#[derive(Debug)]
struct Target {
    address: SocketAddr,
    next_send: Instant,
    /// When the first request was sent (or tried): the target's timeout
    /// runs from there, not from the start of a long burst.
    first_send: Option<Instant>,
    done: bool,
}

/// Echo requests to many addresses of one family over one raw socket.
#[derive(Debug)]
pub(crate) struct Pinger {
    socket: Socket,
    family: Family,
    id: u16,
    token: u32,
    start: Instant,
    retry: Duration,
    timeout: Duration,
    targets: Vec<Target>,
}

/// The `ICMP_FILTER` mask that lets only echo replies through.
pub(crate) fn v4_filter() -> u32 {
    !(1u32 << ECHO_REPLY_V4)
}

/// The `ICMP6_FILTER` bitmap (a set bit blocks that type, as
/// `ICMP6_FILTER_SETBLOCKALL` and `ICMP6_FILTER_SETPASS` build it) that lets
/// only echo replies through.
pub(crate) fn v6_filter() -> [u32; 8] {
    let mut data = [u32::MAX; 8];
    let kind = usize::from(ECHO_REPLY_V6);
    data[kind >> 5] &= !(1u32 << (kind & 31));
    data
}

impl Pinger {
    /// Opens a raw ICMP socket of `family` in the calling thread's net
    /// namespace that receives only echo replies. Each target is sent a
    /// request every `retry` until answered, for `timeout` from its first.
    pub(crate) fn open(
        family: Family,
        start: Instant,
        retry: Duration,
        timeout: Duration,
    ) -> io::Result<Pinger> {
        let socket = match family {
            Family::V4 => Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?,
            Family::V6 => Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?,
        };
        socket.set_nonblocking(true)?;
        // Only echo replies: other ICMP (errors, neighbour discovery, other
        // hosts' requests) would fill the buffer and cost reads.
        match family {
            Family::V4 => set_option(&socket, libc::SOL_RAW, ICMP_FILTER, &v4_filter())?,
            Family::V6 => set_option(&socket, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &v6_filter())?,
        }
        set_receive_buffer(&socket, RECEIVE_BUFFER)?;
        socket.set_send_buffer_size(1 << 20)?;
        let id = next_id();
        Ok(Pinger {
            socket,
            family,
            id,
            token: token(id, start),
            start,
            retry,
            timeout,
            targets: Vec::new(),
        })
    }

    /// The receive buffer the kernel granted, in bytes.
    #[cfg(test)]
    pub(crate) fn receive_buffer(&self) -> io::Result<usize> {
        self.socket.recv_buffer_size()
    }

    /// Adds a target; returns its index.
    pub(crate) fn add(&mut self, address: IpAddr) -> usize {
        self.targets.push(Target {
            address: SocketAddr::new(address, 0),
            next_send: self.start,
            first_send: None,
            done: false,
        });
        self.targets.len() - 1
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// True when every target has an answer or failed.
    pub(crate) fn finished(&self) -> bool {
        self.targets.iter().all(|t| t.done)
    }

    /// Sends to every target that is due (first time, or no reply within
    /// `retry`: the first packet may wait for ARP or neighbour discovery, or
    /// be lost), and gives up on targets whose timeout has passed since
    /// their first request, after a last look at what has arrived. Calls
    /// `result` for targets decided here. Returns when something is next
    /// due: a send or a target's deadline.
    pub(crate) fn send_due(
        &mut self,
        now: Instant,
        mut result: impl FnMut(usize, Outcome),
    ) -> Option<Instant> {
        let timeout = self.timeout;
        let expired = |t: &Target| !t.done && t.first_send.is_some_and(|f| f + timeout <= now);
        if self.targets.iter().any(expired) {
            // A reply may be waiting in the socket.
            self.receive(&mut result);
            for (index, target) in self.targets.iter_mut().enumerate() {
                if expired(target) {
                    target.done = true;
                    result(index, Outcome::TimedOut);
                }
            }
        }
        let mut next: Option<Instant> = None;
        for (index, target) in self.targets.iter_mut().enumerate() {
            if target.done {
                continue;
            }
            if target.next_send <= now {
                // The time of this very send: a burst to many targets takes
                // a while, and neither the round trip nor the target's
                // timeout may include it.
                let sent = Instant::now();
                target.first_send.get_or_insert(sent);
                let echo = Echo {
                    id: self.id,
                    token: self.token,
                    index: index as u32,
                    sent_ns: sent.duration_since(self.start).as_nanos() as u64,
                };
                let packet = echo_request(self.family, &echo);
                match self
                    .socket
                    .send_to(&packet, &SockAddr::from(target.address))
                {
                    Ok(_) => target.next_send = sent + self.retry,
                    // A full send buffer: try again shortly.
                    Err(e) if is_transient(&e) => {
                        target.next_send = sent + Duration::from_millis(5);
                    }
                    Err(e) => {
                        target.done = true;
                        result(index, Outcome::failed(&e));
                        continue;
                    }
                }
            }
            let deadline = target.first_send.map(|f| f + timeout);
            let due = deadline.map_or(target.next_send, |d| d.min(target.next_send));
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        next
    }

    /// Reads every packet waiting on the socket and reports the replies
    /// from the targets themselves, each timed as it is read.
    pub(crate) fn receive(&mut self, mut result: impl FnMut(usize, Outcome)) {
        let mut buffer = [MaybeUninit::<u8>::uninit(); 2048];
        // Bounded, so a flood of other echo replies cannot keep us here.
        for _ in 0..4096 {
            let (n, from) = match self.socket.recv_from(&mut buffer) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // A pending socket error is reported once; keep reading.
                Err(_) => continue,
            };
            // SAFETY: recv_from initialised the first n bytes of the buffer
            // (n is at most its length).
            let packet = unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), n) };
            let Some(echo) = parse_reply(self.family, packet, self.id, self.token) else {
                continue;
            };
            let Some(target) = self.targets.get_mut(echo.index as usize) else {
                continue;
            };
            // Only the target answers for itself: a reply from another
            // address (a copy of the token's packet bounced by a router, a
            // forged one) proves nothing about the target.
            if target.done || from.as_socket().map(|a| a.ip()) != Some(target.address.ip()) {
                continue;
            }
            target.done = true;
            let sent = self.start + Duration::from_nanos(echo.sent_ns);
            result(echo.index as usize, Outcome::Answered(sent.elapsed()));
        }
    }
}

/// Errors after which a later send may succeed.
pub(crate) fn is_transient(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
        || e.kind() == io::ErrorKind::Interrupted
        || e.raw_os_error() == Some(libc::ENOBUFS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn echo(index: u32) -> Echo {
        Echo {
            id: 0xbeef,
            token: 0x0102_0304,
            index,
            sent_ns: 0x1122_3344_5566_7788,
        }
    }

    /// What the kernel sends back: the request turned into a reply (type
    /// changed, checksum fixed), behind an IPv4 header for IPv4.
    fn reply_to(family: Family, request: &[u8]) -> Vec<u8> {
        let mut icmp = request.to_vec();
        match family {
            Family::V4 => {
                icmp[0] = ECHO_REPLY_V4;
                icmp[2..4].copy_from_slice(&[0, 0]);
                let sum = internet_checksum(&icmp);
                icmp[2..4].copy_from_slice(&sum.to_be_bytes());
                // A 24-byte header (with options) to check the IHL is read.
                let mut packet = vec![0x46, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
                packet.extend_from_slice(&[10, 0, 0, 2, 10, 0, 0, 1, 1, 1, 1, 1]);
                packet.extend_from_slice(&icmp);
                packet
            }
            Family::V6 => {
                icmp[0] = ECHO_REPLY_V6;
                icmp
            }
        }
    }

    #[test]
    fn v4_request_has_a_valid_checksum_and_our_fields() {
        let packet = echo_request(Family::V4, &echo(0x0001_0203));
        assert_eq!(packet.len(), HEADER + PAYLOAD);
        assert_eq!(&packet[..2], &[ECHO_REQUEST_V4, 0]);
        assert!(verifies(&packet));
        assert_eq!(&packet[4..6], &[0xbe, 0xef]);
        assert_eq!(
            &packet[6..8],
            &[0x02, 0x03],
            "sequence: low half of the index"
        );
    }

    #[test]
    fn filters_pass_only_echo_replies() {
        let v4 = v4_filter();
        assert_eq!(v4 & 1, 0, "type 0, echo reply, passes");
        assert_eq!(v4 | 1, u32::MAX, "every other type is blocked");
        let v6 = v6_filter();
        // Type 129 is bit 1 of word 4.
        assert_eq!(v6[4], !(1 << 1));
        assert!(v6.iter().enumerate().all(|(i, w)| i == 4 || *w == u32::MAX));
    }

    /// Reads an option back (the kernel's view of what was set).
    fn get_option<T: Default>(socket: &Socket, level: libc::c_int, name: libc::c_int) -> T {
        let mut value = T::default();
        let mut len = size_of::<T>() as libc::socklen_t;
        // SAFETY: `value` is a live T and `len` its size; the fd is open.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                level,
                name,
                (&mut value as *mut T).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        value
    }

    /// Opens real raw sockets (in the test's own namespace; nothing is
    /// changed there), so it needs CAP_NET_RAW.
    #[test]
    fn a_pinger_socket_has_its_filter_and_buffer() {
        for family in [Family::V4, Family::V6] {
            let start = Instant::now();
            let pinger = match Pinger::open(
                family,
                start,
                Duration::from_millis(20),
                Duration::from_secs(1),
            ) {
                Ok(p) => p,
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                    eprintln!(
                        "SKIPPED a_pinger_socket_has_its_filter_and_buffer: no CAP_NET_RAW: {e}"
                    );
                    return;
                }
                Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => continue,
                Err(e) => panic!("open a {family:?} pinger: {e}"),
            };
            match family {
                Family::V4 => assert_eq!(
                    get_option::<u32>(&pinger.socket, libc::SOL_RAW, ICMP_FILTER),
                    v4_filter()
                ),
                Family::V6 => assert_eq!(
                    get_option::<[u32; 8]>(&pinger.socket, libc::IPPROTO_ICMPV6, ICMP6_FILTER),
                    v6_filter()
                ),
            }
            // The kernel doubles what it grants, for its bookkeeping.
            let granted = pinger.receive_buffer().expect("SO_RCVBUF");
            assert!(granted >= RECEIVE_BUFFER as usize, "{family:?}: {granted}");
        }
    }

    #[test]
    fn v6_request_leaves_the_checksum_to_the_kernel() {
        let packet = echo_request(Family::V6, &echo(7));
        assert_eq!(&packet[..4], &[ECHO_REQUEST_V6, 0, 0, 0]);
    }

    #[test]
    fn replies_round_trip() {
        for family in [Family::V4, Family::V6] {
            let sent = echo(70_000);
            let packet = reply_to(family, &echo_request(family, &sent));
            assert_eq!(
                parse_reply(family, &packet, sent.id, sent.token),
                Some(sent),
                "{family:?}"
            );
        }
    }

    #[test]
    fn other_packets_are_not_ours() {
        let sent = echo(3);
        let v4 = reply_to(Family::V4, &echo_request(Family::V4, &sent));
        // Another pinger's id or token.
        assert_eq!(parse_reply(Family::V4, &v4, 0xbeee, sent.token), None);
        assert_eq!(parse_reply(Family::V4, &v4, sent.id, 9), None);
        // A request (someone pinging us), not a reply.
        let mut request = v4.clone();
        request[24] = ECHO_REQUEST_V4;
        assert_eq!(parse_reply(Family::V4, &request, sent.id, sent.token), None);
        // A corrupted reply fails the checksum.
        let mut corrupt = v4.clone();
        corrupt[30] ^= 0x40;
        assert_eq!(parse_reply(Family::V4, &corrupt, sent.id, sent.token), None);
        // Truncated, empty, or not IPv4.
        assert_eq!(
            parse_reply(Family::V4, &v4[..30], sent.id, sent.token),
            None
        );
        assert_eq!(parse_reply(Family::V4, &[], sent.id, sent.token), None);
        let mut not_v4 = v4.clone();
        not_v4[0] = 0x66;
        assert_eq!(parse_reply(Family::V4, &not_v4, sent.id, sent.token), None);
        // A sequence number that does not match the payload's index.
        let mut v6 = reply_to(Family::V6, &echo_request(Family::V6, &sent));
        v6[7] = 4;
        assert_eq!(parse_reply(Family::V6, &v6, sent.id, sent.token), None);
        // A neighbour solicitation is not a reply.
        let mut ns = reply_to(Family::V6, &echo_request(Family::V6, &sent));
        ns[0] = 135;
        assert_eq!(parse_reply(Family::V6, &ns, sent.id, sent.token), None);
    }
}
