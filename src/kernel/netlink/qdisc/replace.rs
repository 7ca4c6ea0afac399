//! Setting an interface's impairment: its root qdisc is replaced by netem
//! (delay, jitter, loss, corruption, duplication), tbf (rate), or netem
//! with a tbf child.
//!
//! Both at once is netem at the root with tbf on its class 1 (`tc qdisc
//! add dev X root handle 1: netem ...; tc qdisc add dev X parent 1:1 tbf
//! ...`, the rate-control recipe of netem's own documentation): every
//! packet is delayed (or dropped, corrupted, duplicated) first and the rate
//! is then enforced on what netem lets out, so a delay does not eat into
//! the rate and the shaper's queue is not inflated by the delay line. (With
//! tbf at the root and netem as its child, tbf's queue would hold the
//! netem's packets.)
//!
//! The new root takes a handle the interface does not use, with
//! NLM_F_CREATE | NLM_F_REPLACE: the kernel then makes it and swaps it in
//! for the old root in one step, so the interface is never without its
//! impairment and a refused request (no sch_netem) leaves the old one.

use rtnetlink::Handle;
use rtnetlink::packet_core::DefaultNla;
use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::tc::{TcAttribute, TcHandle, TcMessage};

use super::{ClearRoot, Netem, Psched, TC_H_ROOT, TCA_OPTIONS, Tbf, acknowledged};
use crate::kernel::netlink::{NetlinkError, errno};

/// Replaces the root qdisc of one interface.
#[derive(Debug, Clone)]
pub struct ReplaceRoot {
    pub index: u32,
    pub netem: Option<Netem>,
    pub tbf: Option<Tbf>,
    /// Handle majors in use on the interface (see
    /// [`dump_qdiscs`](super::dump_qdiscs)); the new qdiscs take others.
    pub taken: Vec<u16>,
    /// How the interface is named in errors, e.g. `h1:eth0`.
    pub label: String,
}

impl ReplaceRoot {
    /// With both netem and tbf, the tbf child is a second request: if it
    /// fails, the interface keeps the new netem root without a rate (`up`
    /// then rolls the whole lab back).
    pub async fn execute(self, handle: &Handle, clock: &Psched) -> Result<(), NetlinkError> {
        let mut free = (1..=0x7FFF_u16).filter(|m| !self.taken.contains(m));
        let (root, child) = (free.next().unwrap_or(1), free.next().unwrap_or(2));
        let (kind, options, child_tbf) = match (&self.netem, &self.tbf) {
            (Some(netem), tbf) => ("netem", netem.encode(clock), *tbf),
            (None, Some(tbf)) => ("tbf", tbf.encode(clock), None),
            (None, None) => {
                return ClearRoot {
                    index: self.index,
                    label: self.label,
                }
                .execute(handle)
                .await
                .map(|_| ());
            }
        };
        let create_or_replace = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
        new_qdisc(self.index, TC_H_ROOT, root, kind, options)
            .send(handle, create_or_replace)
            .await
            .map_err(|e| self.error(kind, e))?;
        if let Some(tbf) = child_tbf {
            let parent = u32::from(root) << 16 | 1;
            new_qdisc(self.index, parent, child, "tbf", tbf.encode(clock))
                .send(
                    handle,
                    NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                )
                .await
                .map_err(|e| self.error("tbf", e))?;
        }
        Ok(())
    }

    fn error(&self, kind: &'static str, source: rtnetlink::Error) -> NetlinkError {
        let what = format!("impairment on {}", self.label);
        // The kernel answers ENOENT when it knows no qdisc of that kind
        // (after trying to load its module).
        if errno(&source) == Some(libc::ENOENT) {
            NetlinkError::MissingQdisc {
                what,
                kind,
                module: match kind {
                    "netem" => "sch_netem",
                    _ => "sch_tbf",
                },
            }
        } else {
            NetlinkError::Request {
                what: format!("{what} ({kind} qdisc)"),
                source,
            }
        }
    }
}

/// An RTM_NEWQDISC of `kind` with raw options.
struct NewQdisc(TcMessage);

fn new_qdisc(index: u32, parent: u32, major: u16, kind: &str, options: Vec<u8>) -> NewQdisc {
    let mut message = TcMessage::with_index(index as i32);
    message.header.parent = TcHandle::from(parent);
    message.header.handle = TcHandle { major, minor: 0 };
    message.attributes = vec![
        TcAttribute::Kind(kind.to_string()),
        // Not TcAttribute::Options: that would wrap the bytes in one more
        // attribute, and netem's options are not attributes at all.
        TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, options)),
    ];
    NewQdisc(message)
}

impl NewQdisc {
    async fn send(self, handle: &Handle, flags: u16) -> Result<(), rtnetlink::Error> {
        acknowledged(
            handle,
            RouteNetlinkMessage::NewQueueDiscipline(self.0),
            flags,
        )
        .await
    }
}
