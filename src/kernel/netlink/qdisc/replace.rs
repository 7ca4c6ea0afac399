//! Setting an interface's impairment: its root qdisc is replaced by netem
//! (delay, jitter, loss, corruption, duplication), tbf (rate), or netem
//! with a tbf child.
//!
//! Both at once is netem at the root with tbf on its class 1 (`tc qdisc
//! add dev X root handle 1: netem ...; tc qdisc add dev X parent 1:1 handle
//! 2: tbf ...`, the rate-control recipe of netem's own documentation):
//! every packet is delayed (or dropped, corrupted, duplicated) first and
//! the rate is then enforced on what netem lets out, so a delay does not
//! eat into the rate and the shaper's queue is not inflated by the delay
//! line. (With tbf at the root and netem as its child, tbf's queue would
//! hold the netem's packets.)
//!
//! The new root takes a handle the interface does not use, with
//! NLM_F_CREATE | NLM_F_REPLACE: the kernel then makes it and swaps it in
//! for the old root in one step, so the interface is never without its
//! impairment and a refused request (no sch_netem) leaves the old one.
//! With both netem and tbf the tbf child is a second request, made once
//! the new netem is in: when it is refused, the old root is put back (see
//! [`Previous`]) and the error says so.

use rtnetlink::Handle;
use rtnetlink::packet_core::DefaultNla;
use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::tc::{TcAttribute, TcHandle, TcMessage};

use super::clear::{delete_root, deleted};
use super::{
    Netem, Psched, QdiscInfo, RootQdisc, TC_H_ROOT, TCA_OPTIONS, Tbf, acknowledged, root,
    root_qdisc,
};
use crate::kernel::netlink::{NetlinkError, errno, kernel_message};
use crate::plan::qdisc::{free_majors, qdiscs_for};
use crate::spec::Impair;

/// What the kernel says (extended ack) when it knows no qdisc of a kind,
/// after trying to load its module.
const UNKNOWN_KIND: &str = "Specified qdisc kind is unknown";

/// The qdiscs of a root that nslab sets: netem (with a tbf child for a
/// rate) or tbf alone. There is always at least one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NewRoot {
    Netem(Netem, Option<Tbf>),
    Tbf(Tbf),
}

impl NewRoot {
    /// None with neither qdisc: nothing to set.
    fn of(netem: Option<Netem>, tbf: Option<Tbf>) -> Option<NewRoot> {
        match (netem, tbf) {
            (Some(netem), tbf) => Some(NewRoot::Netem(netem, tbf)),
            (None, Some(tbf)) => Some(NewRoot::Tbf(tbf)),
            (None, None) => None,
        }
    }
}

/// An interface's root qdisc before it is replaced: what is put back when
/// the replacement fails halfway.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Previous {
    /// The kernel's default: deleting the new root brings it back.
    Default,
    /// netem and/or tbf, as nslab sets them: set again.
    Impaired { plan: Impair, root: NewRoot },
    /// Any other root qdisc (or one that cannot be read): made again from
    /// its kind and its options as the kernel dumped them.
    Other {
        kind: String,
        options: Option<Vec<u8>>,
    },
}

impl Previous {
    /// Reads it from a dump of the interface's qdiscs.
    pub(crate) fn read(qdiscs: &[QdiscInfo], clock: &Psched) -> Previous {
        let raw = || {
            let root = root(qdiscs);
            Previous::Other {
                kind: root.map_or_else(String::new, |q| q.kind.clone()),
                options: root.and_then(|q| q.options.clone()),
            }
        };
        match root_qdisc(qdiscs, clock) {
            Ok(RootQdisc::Default) => Previous::Default,
            Ok(RootQdisc::Impaired { plan, netem, tbf }) => match NewRoot::of(netem, tbf) {
                Some(root) => Previous::Impaired { plan, root },
                None => Previous::Default,
            },
            Ok(RootQdisc::Other(_)) | Err(_) => raw(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Previous::Default => "no impairment".into(),
            Previous::Impaired { plan, .. } => plan.to_string(),
            Previous::Other { kind, .. } => format!("root qdisc {kind}"),
        }
    }
}

/// Replaces the root qdisc of one interface.
#[derive(Debug, Clone)]
pub(crate) struct ReplaceRoot {
    pub index: u32,
    /// What it becomes.
    root: NewRoot,
    /// Handle majors in use on the interface (see
    /// [`dump_qdiscs`](super::dump_qdiscs)); the new qdiscs take others.
    pub taken: Vec<u16>,
    /// What the interface has now, put back if the tbf below a new netem
    /// is refused.
    pub previous: Previous,
    /// How the interface is named in errors, e.g. `h1:eth0`.
    pub label: String,
}

/// One request of a replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// RTM_NEWQDISC of `kind`, handle `major:`, under `parent`.
    New {
        parent: u32,
        major: u16,
        kind: String,
        options: Option<Vec<u8>>,
        flags: u16,
    },
    /// RTM_DELQDISC of the root qdisc.
    DeleteRoot,
}

/// A failed [`ReplaceRoot::apply`]: `halfway` when the new root is in but
/// its child was refused.
struct Failed {
    error: NetlinkError,
    halfway: bool,
}

impl ReplaceRoot {
    /// The request that sets `plan` on a link of `mtu` bytes; None when the
    /// plan sets nothing (all its values zero: no qdisc to make).
    pub(crate) fn for_plan(
        index: u32,
        plan: &Impair,
        mtu: u32,
        taken: Vec<u16>,
        previous: Previous,
        label: String,
    ) -> Option<ReplaceRoot> {
        let (netem, tbf) = qdiscs_for(plan, mtu);
        Some(ReplaceRoot {
            index,
            root: NewRoot::of(netem, tbf)?,
            taken,
            previous,
            label,
        })
    }

    /// Sends the requests. With both netem and tbf, if the tbf child is
    /// refused the old root is put back (or the new one deleted, when there
    /// was none) and the error tells both what failed and whether the old
    /// one is back.
    pub(crate) async fn execute(self, handle: &Handle, clock: &Psched) -> Result<(), NetlinkError> {
        let index = self.index;
        self.run(clock, async |step: Step| step.send(handle, index).await)
            .await
    }

    /// [`execute`](Self::execute) with the requests sent by `send`.
    async fn run(
        self,
        clock: &Psched,
        mut send: impl AsyncFnMut(Step) -> Result<(), rtnetlink::Error>,
    ) -> Result<(), NetlinkError> {
        let (root, child) = free_majors(&self.taken);
        let Err(failed) = self.apply(self.root, (root, child), clock, &mut send).await else {
            return Ok(());
        };
        if !failed.halfway {
            return Err(failed.error);
        }
        // The new netem is in without its rate: put back what was there,
        // on handles neither the old nor the new qdiscs use.
        let mut taken = self.taken.clone();
        taken.extend([root, child]);
        let previous = self.previous.describe();
        let cause = Box::new(failed.error);
        match self.restore(&taken, clock, &mut send).await {
            Ok(restored) => Err(NetlinkError::Restored { cause, restored }),
            Err(undo) => Err(NetlinkError::NotRestored {
                cause,
                previous,
                undo: Box::new(undo),
            }),
        }
    }

    /// Sets `new` on the handle majors `(root, child)`.
    async fn apply(
        &self,
        new: NewRoot,
        (root, child): (u16, u16),
        clock: &Psched,
        send: &mut impl AsyncFnMut(Step) -> Result<(), rtnetlink::Error>,
    ) -> Result<(), Failed> {
        let (kind, options, child_tbf) = match new {
            NewRoot::Netem(netem, tbf) => ("netem", netem.encode(clock), tbf),
            NewRoot::Tbf(tbf) => ("tbf", tbf.encode(clock), None),
        };
        send(Step::New {
            parent: TC_H_ROOT,
            major: root,
            kind: kind.into(),
            options: Some(options),
            flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        })
        .await
        .map_err(|e| Failed {
            error: self.error(kind, e, true),
            halfway: false,
        })?;
        if let Some(tbf) = child_tbf {
            send(Step::New {
                parent: u32::from(root) << 16 | 1,
                major: child,
                kind: "tbf".into(),
                options: Some(tbf.encode(clock)),
                flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            })
            .await
            .map_err(|e| Failed {
                error: self.error("tbf", e, false),
                halfway: true,
            })?;
        }
        Ok(())
    }

    /// Puts [`previous`](Self::previous) back; says what is there then.
    async fn restore(
        &self,
        taken: &[u16],
        clock: &Psched,
        send: &mut impl AsyncFnMut(Step) -> Result<(), rtnetlink::Error>,
    ) -> Result<String, NetlinkError> {
        let majors = free_majors(taken);
        match &self.previous {
            Previous::Default => {
                // Deleting the new root brings the kernel's default back.
                deleted(send(Step::DeleteRoot).await, &self.label)?;
                Ok("the interface has no impairment, as before".into())
            }
            Previous::Impaired { plan, root } => {
                self.apply(*root, majors, clock, send)
                    .await
                    .map_err(|f| f.error)?;
                Ok(format!("its old impairment ({plan}) is back"))
            }
            Previous::Other { kind, options } => {
                send(Step::New {
                    parent: TC_H_ROOT,
                    major: majors.0,
                    kind: kind.clone(),
                    options: options.clone(),
                    flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
                })
                .await
                .map_err(NetlinkError::request(format!(
                    "put back root qdisc {kind} on {}",
                    self.label
                )))?;
                Ok(format!(
                    "its old root qdisc {kind} is made again from its options (not its classes or filters, if it had any)"
                ))
            }
        }
    }

    /// The error of a refused request for a qdisc of `kind`; `first` for
    /// the request of the root qdisc.
    fn error(&self, kind: &'static str, source: rtnetlink::Error, first: bool) -> NetlinkError {
        let what = format!("impairment on {}", self.label);
        let said = kernel_message(&source);
        // ENOENT is the kernel's answer both for a kind it does not know
        // and for a parent it cannot find (the child's, netem's class 1:).
        // Its own words tell them apart; without them, only the root's
        // request (whose parent is always there) means the kind.
        let unknown_kind = errno(&source) == Some(libc::ENOENT)
            && said.as_deref().map_or(first, |s| s.contains(UNKNOWN_KIND));
        if unknown_kind {
            return NetlinkError::MissingQdisc {
                what,
                kind,
                module: match kind {
                    "netem" => "sch_netem",
                    _ => "sch_tbf",
                },
            };
        }
        let below = if first { "" } else { " below netem" };
        let said = said.map_or_else(String::new, |s| format!(", the kernel says {s:?}"));
        NetlinkError::Request {
            what: format!("{what} ({kind} qdisc{below}{said})"),
            source,
        }
    }
}

impl Step {
    async fn send(self, handle: &Handle, index: u32) -> Result<(), rtnetlink::Error> {
        match self {
            Step::New {
                parent,
                major,
                kind,
                options,
                flags,
            } => {
                let mut message = TcMessage::with_index(index as i32);
                message.header.parent = TcHandle::from(parent);
                message.header.handle = TcHandle { major, minor: 0 };
                message.attributes.push(TcAttribute::Kind(kind));
                if let Some(options) = options {
                    // Not TcAttribute::Options: that would wrap the bytes
                    // in one more attribute, and netem's options are not
                    // attributes at all.
                    message
                        .attributes
                        .push(TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, options)));
                }
                acknowledged(
                    handle,
                    RouteNetlinkMessage::NewQueueDiscipline(message),
                    flags,
                )
                .await
            }
            Step::DeleteRoot => delete_root(handle, index).await,
        }
    }
}

#[cfg(test)]
#[path = "replace_tests.rs"]
mod tests;
