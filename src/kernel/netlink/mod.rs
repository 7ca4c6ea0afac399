//! rtnetlink requests, one small file per request, grouped by object kind
//! (as rtnetlink itself is). A socket stays bound to the net namespace it
//! was opened in, so [`open_sockets`] opens one per node.

pub(crate) mod address;
pub(crate) mod link;
pub(crate) mod qdisc;
pub(crate) mod route;
pub(crate) mod watch;

use std::os::fd::{AsFd, BorrowedFd};

/// The net namespace a socket is opened in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Netns<'a> {
    /// The calling process's own.
    Own,
    /// The namespace behind an open fd.
    Fd(BorrowedFd<'a>),
    /// The namespace of a process: its /proc/PID/ns/net is opened only for
    /// the moment the socket is made, so a big lab holds one fd per node.
    Pid(i32),
}

use rtnetlink::Handle;
use rtnetlink::sys::AsyncSocket;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("open a netlink socket in {netns}: {reason}")]
    Open { netns: String, reason: String },
    #[error("{0}: not found in the kernel after it was created")]
    Missing(String),
    #[error(
        "{what}: the kernel has no {module}: it knows no qdisc {kind:?} (load the module, or use a kernel built with it)"
    )]
    MissingQdisc {
        what: String,
        kind: &'static str,
        module: &'static str,
    },
    #[error(
        "{what}: the kernel has no {kind} interfaces (\"Unknown device type\"): load the module {kind}, or use a kernel built with {config}"
    )]
    MissingLinkKind {
        what: String,
        kind: &'static str,
        config: &'static str,
    },
    #[error("{what}: {source}")]
    Request {
        what: String,
        source: rtnetlink::Error,
    },
    /// A change refused halfway, and what was there before put back.
    #[error("{cause}; {restored}")]
    Restored {
        cause: Box<NetlinkError>,
        restored: String,
    },
    /// A change refused halfway, and putting back what was there
    /// (`previous`) refused too.
    #[error("{cause}; putting back what it had ({previous}) failed too: {undo}")]
    NotRestored {
        cause: Box<NetlinkError>,
        previous: String,
        undo: Box<NetlinkError>,
    },
}

impl NetlinkError {
    /// Wraps a failed request with the object it was about.
    pub fn request(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Self {
        let what = what.into();
        move |source| NetlinkError::Request { what, source }
    }
}

/// The errno behind a netlink error, if the kernel sent one.
pub(crate) fn errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}

/// `NLMSGERR_ATTR_MSG`: the kernel's message about a refused request.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// What the kernel said about a refused request in its own words (its
/// extended ack, e.g. "Specified qdisc kind is unknown"), when it said
/// anything: the sockets of [`open_sockets`] ask for it.
fn kernel_message(error: &rtnetlink::Error) -> Option<String> {
    match error {
        rtnetlink::Error::NetlinkError(msg) => extack_message(&msg.header),
        _ => None,
    }
}

/// The NLMSGERR_ATTR_MSG of an NLMSG_ERROR's payload after its error
/// code: the request whole (the sockets do not set NETLINK_CAP_ACK), then
/// the extended ack's attributes.
fn extack_message(payload: &[u8]) -> Option<String> {
    let request_len = u32::from_ne_bytes(payload.get(..4)?.try_into().ok()?) as usize;
    let mut rest = payload.get(request_len.next_multiple_of(4)..)?;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3FFF;
        let value = rest.get(4..len)?;
        if kind == NLMSGERR_ATTR_MSG {
            let text = value.split(|&b| b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned()).filter(|t| !t.is_empty());
        }
        rest = rest
            .get(len.next_multiple_of(4).max(4)..)
            .unwrap_or_default();
    }
    None
}

/// Opens one rtnetlink connection in each given net namespace, its
/// connection task spawned on `runtime` (which must be driven for requests
/// to be answered). The sockets are opened on one short-lived thread that
/// hops from namespace to namespace and is then thrown away.
pub(crate) fn open_sockets(
    runtime: &tokio::runtime::Handle,
    namespaces: &[(String, Netns<'_>)],
) -> Result<Vec<Handle>, NetlinkError> {
    open_each_socket(runtime, namespaces).into_iter().collect()
}

/// Like [`open_sockets`], with one result per namespace, so that one
/// namespace that cannot be entered does not stop the others.
pub(crate) fn open_each_socket(
    runtime: &tokio::runtime::Handle,
    namespaces: &[(String, Netns<'_>)],
) -> Vec<Result<Handle, NetlinkError>> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // The sockets register with the runtime's I/O driver.
                let _guard = runtime.enter();
                namespaces
                    .iter()
                    .map(|(name, fd)| {
                        let fail = |reason: String| NetlinkError::Open {
                            netns: name.clone(),
                            reason,
                        };
                        let net = nix::sched::CloneFlags::CLONE_NEWNET;
                        match fd {
                            Netns::Fd(fd) => nix::sched::setns(fd.as_fd(), net),
                            Netns::Own => enter_own_netns(),
                            Netns::Pid(pid) => std::fs::File::open(format!("/proc/{pid}/ns/net"))
                                .map_err(|_| nix::Error::ESRCH)
                                .and_then(|f| nix::sched::setns(f.as_fd(), net)),
                        }
                        .map_err(|e| fail(format!("setns: {e}")))?;
                        let (mut connection, handle, _) =
                            rtnetlink::new_connection().map_err(|e| fail(e.to_string()))?;
                        // The kernel's own words on a refused request
                        // (extended ack, see kernel_message); without
                        // them errors only lose some detail.
                        let _ = connection.socket_mut().socket_ref().set_ext_ack(true);
                        runtime.spawn(connection);
                        Ok(handle)
                    })
                    .collect()
            })
            .join()
            .unwrap_or_else(|_| {
                vec![Err(NetlinkError::Open {
                    netns: "?".into(),
                    reason: "socket thread panicked".into(),
                })]
            })
    })
}

/// Returns the thread to the process's own net namespace.
fn enter_own_netns() -> nix::Result<()> {
    let own = std::fs::File::open("/proc/self/ns/net").map_err(|_| nix::Error::ENOENT)?;
    nix::sched::setns(own.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An NLMSG_ERROR payload after the code: a 20-byte request, then
    /// the extended ack's attributes.
    fn payload(attributes: &[(u16, &[u8])]) -> Vec<u8> {
        let mut out = 20u32.to_ne_bytes().to_vec();
        out.resize(20, 0);
        for (kind, value) in attributes {
            let len = u16::try_from(4 + value.len()).expect("short");
            out.extend_from_slice(&len.to_ne_bytes());
            out.extend_from_slice(&kind.to_ne_bytes());
            out.extend_from_slice(value);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        out
    }

    #[test]
    fn reads_the_kernels_extended_ack() {
        // NLMSGERR_ATTR_OFFS (2) first, then the message.
        let bytes = payload(&[
            (2, &24u32.to_ne_bytes()),
            (1, b"Specified qdisc kind is unknown\0"),
        ]);
        assert_eq!(
            extack_message(&bytes).as_deref(),
            Some("Specified qdisc kind is unknown")
        );
        let mut error = rtnetlink::packet_core::ErrorMessage::default();
        error.code = std::num::NonZeroI32::new(-libc::ENOENT);
        error.header = bytes;
        let error = rtnetlink::Error::NetlinkError(error);
        assert_eq!(errno(&error), Some(libc::ENOENT));
        assert_eq!(
            kernel_message(&error).as_deref(),
            Some("Specified qdisc kind is unknown")
        );
        // No extended ack, a request cut short, a broken attribute.
        assert_eq!(extack_message(&payload(&[])), None);
        assert_eq!(extack_message(&[20, 0, 0, 0, 1, 2]), None);
        assert_eq!(extack_message(&payload(&[(2, &[0; 4])])), None);
        let mut broken = payload(&[(1, b"x\0")]);
        broken[20] = 200;
        assert_eq!(extack_message(&broken), None);
        assert_eq!(kernel_message(&rtnetlink::Error::RequestFailed), None);
    }
}
