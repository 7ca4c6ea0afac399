//! Removing an interface's impairment: its root qdisc is deleted and the
//! kernel puts its default back (noqueue on a veth).

use rtnetlink::Handle;
use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_REQUEST};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::tc::{TcHandle, TcMessage};

use super::acknowledged;
use crate::kernel::netlink::{NetlinkError, errno};

#[derive(Debug, Clone)]
pub struct ClearRoot {
    pub index: u32,
    /// How the interface is named in errors, e.g. `h1:eth0`.
    pub label: String,
}

impl ClearRoot {
    /// Returns false when there was nothing to remove (the kernel's default
    /// qdisc cannot be deleted: ENOENT).
    pub async fn execute(self, handle: &Handle) -> Result<bool, NetlinkError> {
        let mut message = TcMessage::with_index(self.index as i32);
        message.header.parent = TcHandle::ROOT;
        match acknowledged(
            handle,
            RouteNetlinkMessage::DelQueueDiscipline(message),
            NLM_F_REQUEST | NLM_F_ACK,
        )
        .await
        {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(NetlinkError::request(format!(
                "remove the impairment on {}",
                self.label
            ))(e)),
        }
    }
}
