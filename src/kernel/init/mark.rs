//! The namespace's own mark, written by its init: `lo`'s alias, set with
//! one RTM_SETLINK on a netlink socket of the init's own (the init has no
//! async runtime and needs none for one request). Not through
//! /sys/class/net/lo/ifalias: in a user-namespaced node, `lo` was
//! registered before the node's ids were mapped, so its sysfs files belong
//! to host root and the node's root may not write them; netlink asks for
//! CAP_NET_ADMIN over the namespace, which it has.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};

/// `lo` is the first interface of every net namespace.
const LO_INDEX: u32 = 1;

/// Sets the alias of this net namespace's `lo` to `mark`.
pub(super) fn mark_loopback(mark: &str) -> io::Result<()> {
    let mut link = LinkMessage::default();
    link.header.index = LO_INDEX;
    link.attributes
        .push(LinkAttribute::IfAlias(mark.to_string()));
    let mut request = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::SetLink(link)),
    );
    request.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    request.header.sequence_number = 1;
    request.finalize();
    let mut buf = vec![0u8; request.buffer_len()];
    request.serialize(&mut buf);

    // SAFETY: plain socket(2) call; the fd is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh socket nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: send(2) of our buffer; the kernel is the default destination
    // of an unbound netlink socket.
    if unsafe { libc::send(socket.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut answer = vec![0u8; 8192];
    // SAFETY: recv(2) into our buffer, with its length.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            answer.as_mut_ptr().cast(),
            answer.len(),
            0,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&answer[..n as usize])
        .map_err(|e| io::Error::other(format!("unreadable netlink answer: {e}")))?;
    match reply.payload {
        NetlinkPayload::Error(error) => match error.code {
            None => Ok(()),
            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
        },
        other => Err(io::Error::other(format!(
            "unexpected netlink answer: {other:?}"
        ))),
    }
}
