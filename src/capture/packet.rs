//! AF_PACKET capture sockets: every frame an interface receives or sends.
//!
//! A socket belongs to the net namespace it was opened in, whatever thread
//! later reads it, so [`CaptureSocket::open`] runs on a thread inside a
//! node's net namespace and the capture loop anywhere.

use std::ffi::{CStr, CString};
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::kernel::sockopt::{set_option, set_receive_buffer};

#[derive(Debug, thiserror::Error)]
pub(crate) enum PacketError {
    #[error("no interface {0:?}")]
    NoInterface(String),
    #[error(
        "interface {iface} has hardware type {hatype}; only Ethernet and loopback interfaces are captured"
    )]
    LinkType { iface: String, hatype: u16 },
    /// The interface is down (at open), or went down or was deleted.
    #[error("interface {0} is down")]
    Down(String),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

fn last_error(what: &'static str) -> PacketError {
    io_error(what)(io::Error::last_os_error())
}

fn io_error(what: &'static str) -> impl FnOnce(io::Error) -> PacketError {
    move |source| PacketError::Io { what, source }
}

/// Which way a frame went through the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    In,
    Out,
}

/// One frame read into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Bytes placed in the buffer (at most its length).
    pub captured: usize,
    /// The frame's length on the wire.
    pub length: usize,
    /// When the kernel saw it, since the Unix epoch.
    pub timestamp: Duration,
    pub direction: Direction,
}

/// Counters of the kernel since the last call (reading resets them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CaptureStats {
    /// Frames that reached the socket, dropped ones included.
    pub received: u32,
    /// Frames dropped because the socket's buffer was full.
    pub dropped: u32,
}

/// A packet socket bound to one interface.
#[derive(Debug)]
pub(crate) struct CaptureSocket {
    fd: OwnedFd,
    iface: String,
}

/// Bytes asked for as the socket's receive buffer: room for bursts while
/// the writer is slow (see [`set_receive_buffer`]).
const RECEIVE_BUFFER: libc::c_int = 4 << 20;

/// The hardware type (`ARPHRD_*`) of the interface `name`.
fn hardware_type(fd: &OwnedFd, name: &CStr) -> Result<u16, PacketError> {
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { zeroed() };
    let bytes = name.to_bytes();
    // Room for the terminating NUL (the zeroed array's last byte).
    if bytes.len() >= request.ifr_name.len() {
        return Err(PacketError::NoInterface(name.to_string_lossy().into()));
    }
    for (to, from) in request.ifr_name.iter_mut().zip(bytes) {
        *to = *from as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR reads the name and writes the address into
    // `request`, a live ifreq.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut request) };
    if rc != 0 {
        return Err(last_error("read the interface's hardware type"));
    }
    // SAFETY: SIOCGIFHWADDR filled the union's hardware address.
    Ok(unsafe { request.ifr_ifru.ifru_hwaddr.sa_family })
}

/// Binds `fd` to the interface, for frames of every protocol.
fn bind(fd: &OwnedFd, ifindex: libc::c_uint) -> Result<(), PacketError> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut address: libc::sockaddr_ll = unsafe { zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    address.sll_ifindex = ifindex as i32;
    // SAFETY: `address` is a sockaddr_ll of the length given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&address as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(last_error("bind the packet socket to the interface"));
    }
    Ok(())
}

impl CaptureSocket {
    /// Opens a capture socket on `iface` of the calling thread's net
    /// namespace, for frames in both directions (on `lo`, each frame once);
    /// with `promiscuous`, the interface also passes frames addressed to
    /// other hosts while the socket is open. The interface must be up.
    pub(crate) fn open(iface: &str, promiscuous: bool) -> Result<Self, PacketError> {
        let name = CString::new(iface).map_err(|_| PacketError::NoInterface(iface.into()))?;
        // SAFETY: `name` is a valid C string; if_nametoindex only reads it.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(PacketError::NoInterface(iface.into()));
        }
        // Protocol 0: the socket queues nothing until it is bound below,
        // once its options are set, so no frame of another interface, and
        // no outgoing copy on `lo`, slips in.
        // SAFETY: socket(2) with constant arguments.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(last_error("open a packet socket"));
        }
        // SAFETY: `raw` is a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let on: libc::c_int = 1;
        set_option(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &on)
            .map_err(io_error("ask for timestamps"))?;
        // Best effort: a smaller buffer only means drops sooner, and the
        // summary counts them.
        let _ = set_receive_buffer(&fd, RECEIVE_BUFFER);
        match hardware_type(&fd, &name)? {
            libc::ARPHRD_ETHER => {}
            // On `lo` each frame passes twice, going out and coming in;
            // like libpcap we keep the incoming copy. The kernel skips the
            // outgoing ones before they reach the socket, so they are not
            // counted either.
            libc::ARPHRD_LOOPBACK => {
                set_option(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &on)
                    .map_err(io_error("leave out the outgoing copies on loopback"))?
            }
            hatype => {
                return Err(PacketError::LinkType {
                    iface: iface.into(),
                    hatype,
                });
            }
        }
        bind(&fd, ifindex)?;
        // Bound to an interface that is down, the socket holds ENETDOWN.
        if socket_error(&fd)? == Some(libc::ENETDOWN) {
            return Err(PacketError::Down(iface.into()));
        }
        if promiscuous {
            // SAFETY: packet_mreq is plain data; all-zero is a valid value.
            let mut membership: libc::packet_mreq = unsafe { zeroed() };
            membership.mr_ifindex = ifindex as i32;
            membership.mr_type = libc::PACKET_MR_PROMISC as u16;
            set_option(
                &fd,
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                &membership,
            )
            .map_err(io_error("set promiscuous mode"))?;
        }
        Ok(Self {
            fd,
            iface: iface.into(),
        })
    }

    /// Reads a waiting frame into `buf` (cut at its length), without
    /// waiting: `None` when none is queued (or a signal interrupted the
    /// read). Poll [`as_fd`](AsFd::as_fd) for POLLIN to wait for one.
    /// [`PacketError::Down`] once the interface has gone down or been
    /// deleted; frames queued before that are still read afterwards.
    pub(crate) fn try_recv(&self, buf: &mut [u8]) -> Result<Option<Frame>, PacketError> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: plain data; all-zero is a valid value.
        let mut from: libc::sockaddr_ll = unsafe { zeroed() };
        // u64s keep the control buffer aligned for cmsghdr.
        let mut control = [0u64; 16];
        // SAFETY: plain data; all-zero is a valid value.
        let mut message: libc::msghdr = unsafe { zeroed() };
        message.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
        message.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = size_of::<[u64; 16]>();
        // MSG_TRUNC: return the frame's real length even when `buf` is shorter.
        // SAFETY: every pointer in `message` refers to a live buffer of the
        // length given.
        let n = unsafe {
            libc::recvmsg(
                self.fd.as_raw_fd(),
                &mut message,
                libc::MSG_TRUNC | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) {
                return Ok(None);
            }
            if e.raw_os_error() == Some(libc::ENETDOWN) {
                return Err(PacketError::Down(self.iface.clone()));
            }
            return Err(PacketError::Io {
                what: "read a packet",
                source: e,
            });
        }
        let direction = if from.sll_pkttype == libc::PACKET_OUTGOING {
            Direction::Out
        } else {
            Direction::In
        };
        let length = n as usize;
        Ok(Some(Frame {
            captured: length.min(buf.len()),
            length,
            timestamp: timestamp(&message).unwrap_or_else(now),
            direction,
        }))
    }

    /// The kernel's counters since the last call.
    pub(crate) fn stats(&self) -> Result<CaptureStats, PacketError> {
        // SAFETY: plain data; all-zero is a valid value.
        let mut stats: libc::tpacket_stats = unsafe { zeroed() };
        let mut length = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `length` bytes into `stats`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut length,
            )
        };
        if rc != 0 {
            return Err(last_error("read the capture counters"));
        }
        Ok(CaptureStats {
            received: stats.tp_packets,
            dropped: stats.tp_drops,
        })
    }
}

impl AsFd for CaptureSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The socket's pending error (SO_ERROR, which also clears it).
fn socket_error(fd: &OwnedFd) -> Result<Option<i32>, PacketError> {
    let mut error: libc::c_int = 0;
    let mut length = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `length` bytes into `error`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut error as *mut libc::c_int).cast(),
            &mut length,
        )
    };
    if rc != 0 {
        return Err(last_error("read the packet socket's error"));
    }
    Ok((error != 0).then_some(error))
}

/// The SCM_TIMESTAMPNS control message of a received frame.
fn timestamp(message: &libc::msghdr) -> Option<Duration> {
    // SAFETY: `message` was filled by recvmsg; the CMSG macros walk its
    // control buffer within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(message);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                return Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            cmsg = libc::CMSG_NXTHDR(message, cmsg);
        }
    }
    None
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens an unbound packet socket in the test's own namespace (it
    /// queues nothing and changes nothing there), so it needs CAP_NET_RAW.
    #[test]
    fn the_hardware_type_of_lo_is_loopback() {
        // SAFETY: socket(2) with constant arguments.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            eprintln!(
                "SKIPPED the_hardware_type_of_lo_is_loopback: no packet socket: {}",
                io::Error::last_os_error()
            );
            return;
        }
        // SAFETY: `raw` is a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let lo = CString::new("lo").expect("no NUL");
        assert_eq!(hardware_type(&fd, &lo).expect("lo"), libc::ARPHRD_LOOPBACK);
        let long = CString::new("sixteen-bytes-xx").expect("no NUL");
        assert!(matches!(
            hardware_type(&fd, &long),
            Err(PacketError::NoInterface(_))
        ));
    }
}
