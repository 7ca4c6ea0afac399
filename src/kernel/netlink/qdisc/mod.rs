//! Queueing disciplines on an interface's egress, for link impairments:
//! netem (delay, jitter, loss, corruption, duplication) and tbf (rate),
//! laid out by `plan::qdisc` and encoded, set, read and cleared here.
//!
//! Messages are rtnetlink's `TcMessage`; the qdisc options, which
//! netlink-packet-route does not model for netem or tbf, are built and read
//! as bytes in `netem.rs` and `tbf.rs`, byte for byte as tc builds them (the
//! unit tests compare with tc's own messages).

mod clear;
mod dump;
mod netem;
mod psched;
mod replace;
mod tbf;

pub(crate) use clear::ClearRoot;
pub(crate) use dump::{QdiscInfo, RootQdisc, dump_qdiscs, root, root_qdisc};
pub(crate) use psched::Psched;
pub(crate) use replace::{Previous, ReplaceRoot};

use crate::plan::qdisc::{Netem, Tbf};

use futures::StreamExt;
use rtnetlink::Handle;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;

/// `TC_H_ROOT`: the parent of a root qdisc.
const TC_H_ROOT: u32 = 0xFFFF_FFFF;
/// `TCA_OPTIONS`.
const TCA_OPTIONS: u16 = 2;

/// Appends one netlink attribute (header, value, padding to 4 bytes).
fn attribute(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// The attributes in `bytes`, as (type without flags, value).
fn attributes(mut bytes: &[u8]) -> Result<Vec<(u16, &[u8])>, String> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & 0x3FFF;
        if len < 4 || len > bytes.len() {
            return Err(format!(
                "a netlink attribute claims {len} bytes of {}",
                bytes.len()
            ));
        }
        out.push((kind, &bytes[4..len]));
        bytes = &bytes[len.next_multiple_of(4).min(bytes.len())..];
    }
    Ok(out)
}

/// Sends one request and waits for its acknowledgement.
async fn acknowledged(
    handle: &Handle,
    message: RouteNetlinkMessage,
    flags: u16,
) -> Result<(), rtnetlink::Error> {
    let mut request = NetlinkMessage::from(message);
    request.header.flags = flags;
    let mut responses = handle.clone().request(request)?;
    while let Some(response) = responses.next().await {
        if let NetlinkPayload::Error(error) = response.payload {
            return Err(rtnetlink::Error::NetlinkError(error));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
