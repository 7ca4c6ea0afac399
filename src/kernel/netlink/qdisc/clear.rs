//! Removing an interface's impairment: its root qdisc is deleted and the
//! kernel puts its default back (noqueue on a veth).

use rtnetlink::Handle;
use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_REQUEST};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::tc::{TcHandle, TcMessage};

use super::acknowledged;
use crate::kernel::netlink::{NetlinkError, errno};

#[derive(Debug, Clone)]
pub(crate) struct ClearRoot {
    pub index: u32,
    /// How the interface is named in errors, e.g. `h1:eth0`.
    pub label: String,
}

impl ClearRoot {
    /// Returns false when there was nothing to remove (see `deleted`).
    pub(crate) async fn execute(self, handle: &Handle) -> Result<bool, NetlinkError> {
        deleted(delete_root(handle, self.index).await, &self.label)
    }
}

/// Sends RTM_DELQDISC for the root qdisc of the interface `index`.
pub(super) async fn delete_root(handle: &Handle, index: u32) -> Result<(), rtnetlink::Error> {
    let mut message = TcMessage::with_index(index as i32);
    message.header.parent = TcHandle::ROOT;
    acknowledged(
        handle,
        RouteNetlinkMessage::DelQueueDiscipline(message),
        NLM_F_REQUEST | NLM_F_ACK,
    )
    .await
}

/// What the kernel's answer to [`delete_root`] on `label` means: true when
/// a root qdisc was deleted, false when there was none to delete (the
/// kernel's default qdisc cannot be deleted: ENOENT).
pub(super) fn deleted(
    answer: Result<(), rtnetlink::Error>,
    label: &str,
) -> Result<bool, NetlinkError> {
    match answer {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(NetlinkError::request(format!(
            "remove the impairment on {label}"
        ))(e)),
    }
}
