//! rtnetlink requests, one small file per request, grouped by object kind
//! (as rtnetlink itself is). A socket stays bound to the net namespace it
//! was opened in, so [`open_sockets`] opens one per node.

pub mod address;
pub mod link;
pub mod qdisc;
pub mod route;

use std::os::fd::{AsFd, BorrowedFd};

/// The net namespace a socket is opened in.
#[derive(Debug, Clone, Copy)]
pub enum Netns<'a> {
    /// The calling process's own.
    Own,
    /// The namespace behind an open fd.
    Fd(BorrowedFd<'a>),
    /// The namespace of a process: its /proc/PID/ns/net is opened only for
    /// the moment the socket is made, so a big lab holds one fd per node.
    Pid(i32),
}

use rtnetlink::Handle;

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
    #[error("{what}: {source}")]
    Request {
        what: String,
        source: rtnetlink::Error,
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
pub fn errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}

/// Opens one rtnetlink connection in each given net namespace (`None` is
/// the caller's own). Must be called inside a tokio runtime: the connections
/// are spawned on it. The sockets are opened on one short-lived thread that
/// hops from namespace to namespace and is then thrown away.
pub fn open_sockets(namespaces: &[(String, Netns<'_>)]) -> Result<Vec<Handle>, NetlinkError> {
    open_each_socket(namespaces).into_iter().collect()
}

/// Like [`open_sockets`], with one result per namespace, so that one
/// namespace that cannot be entered does not stop the others.
pub fn open_each_socket(namespaces: &[(String, Netns<'_>)]) -> Vec<Result<Handle, NetlinkError>> {
    let runtime = tokio::runtime::Handle::current();
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
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
                        let (connection, handle, _) =
                            rtnetlink::new_connection().map_err(|e| fail(e.to_string()))?;
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
