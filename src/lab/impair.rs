//! `impair`: set, show or clear the impairment of one interface of a
//! running node (`LAB/NODE:IFACE`), over a netlink socket opened in the
//! node's net namespace.

use std::os::fd::AsFd;

use rtnetlink::Handle;
use serde::Serialize;

use super::running::RunningNode;
use super::{LabError, runtime};
use crate::kernel::namespace::NsKind;
use crate::kernel::netlink::link::dump_links;
use crate::kernel::netlink::qdisc::{
    ClearRoot, Previous, Psched, QdiscInfo, ReplaceRoot, RootQdisc, dump_qdiscs, root, root_qdisc,
};
use crate::kernel::netlink::{NetlinkError, Netns, open_sockets};
use crate::spec::Impair;

/// What an interface's egress suffers, as read from the kernel.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "state", content = "impair")]
pub enum Impairment {
    /// The kernel's default qdisc: nothing.
    None,
    /// netem and/or tbf, as `nslab impair` and `up` set them.
    Set(Impair),
    /// A root qdisc of a kind nslab does not set, by kind.
    Other(String),
}

impl std::fmt::Display for Impairment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Impairment::None => f.write_str("no impairment"),
            Impairment::Set(plan) => write!(f, "{plan}"),
            Impairment::Other(kind) => {
                write!(f, "root qdisc {kind} (not an impairment nslab sets)")
            }
        }
    }
}

impl From<RootQdisc> for Impairment {
    fn from(root: RootQdisc) -> Self {
        match root {
            RootQdisc::Default => Impairment::None,
            RootQdisc::Impaired { plan, .. } => Impairment::Set(plan),
            RootQdisc::Other(kind) => Impairment::Other(kind),
        }
    }
}

/// Replaces the impairment of the interface `iface` of a running node with
/// `plan`, and returns what the kernel then has. An empty plan (all its
/// values zero) removes the impairment, as [`impair_clear`] does. A root
/// qdisc of a kind nslab does not set is left in place, and is an error
/// ([`LabError::ForeignQdisc`]).
pub(crate) fn impair_set(
    node: &RunningNode,
    iface: &str,
    plan: &Impair,
) -> Result<Impairment, LabError> {
    with_interface(node, iface, async |target: Target| {
        let clock = Psched::read();
        let qdiscs = dump_qdiscs(&target.socket, Some(target.index), &target.label).await?;
        target.own_root(&qdiscs)?;
        match ReplaceRoot::for_plan(
            target.index,
            plan,
            target.mtu,
            qdiscs.iter().map(|q| q.major()).collect(),
            Previous::read(&qdiscs, &clock),
            target.label.clone(),
        ) {
            Some(replace) => replace.execute(&target.socket, &clock).await?,
            // An empty plan: no qdisc to set.
            None => drop(target.clear(&qdiscs).await?),
        }
        target.read(&clock).await
    })
}

/// What the interface has now, decoded from the kernel's qdisc dump.
pub(crate) fn impair_show(node: &RunningNode, iface: &str) -> Result<Impairment, LabError> {
    with_interface(node, iface, async |target: Target| {
        target.read(&Psched::read()).await
    })
}

/// Removes the impairment of the interface; false when it had none. A
/// root qdisc of a kind nslab does not set is left in place, and is an
/// error ([`LabError::ForeignQdisc`]).
pub(crate) fn impair_clear(node: &RunningNode, iface: &str) -> Result<bool, LabError> {
    with_interface(node, iface, async |target: Target| {
        let qdiscs = dump_qdiscs(&target.socket, Some(target.index), &target.label).await?;
        target.clear(&qdiscs).await
    })
}

/// One interface of a running node, with a socket in its namespace.
pub(super) struct Target {
    pub(super) socket: Handle,
    pub(super) index: u32,
    mtu: u32,
    /// `LAB/NODE`.
    node: String,
    iface: String,
    /// `LAB/NODE:IFACE`.
    pub(super) label: String,
}

impl Target {
    async fn read(&self, clock: &Psched) -> Result<Impairment, LabError> {
        let qdiscs = dump_qdiscs(&self.socket, Some(self.index), &self.label).await?;
        let root = root_qdisc(&qdiscs, clock).map_err(|why| LabError::UnreadableQdisc {
            target: self.label.clone(),
            why,
        })?;
        Ok(root.into())
    }

    /// The root qdisc (`qdiscs`: the interface's, as dumped) when it is
    /// netem or tbf, the kinds nslab sets; none for the kernel's default.
    /// Any other kind is an error: nslab neither replaces nor deletes a
    /// root qdisc someone else set, with whatever classes and filters hang
    /// on it.
    fn own_root<'a>(&self, qdiscs: &'a [QdiscInfo]) -> Result<Option<&'a QdiscInfo>, LabError> {
        match root(qdiscs) {
            Some(root) if root.kind != "netem" && root.kind != "tbf" => {
                Err(LabError::ForeignQdisc {
                    node: self.node.clone(),
                    iface: self.iface.clone(),
                    kind: root.kind.clone(),
                })
            }
            root => Ok(root),
        }
    }

    /// Deletes the root qdisc when nslab set it (see [`Self::own_root`]);
    /// false when the interface has the kernel's default.
    async fn clear(&self, qdiscs: &[QdiscInfo]) -> Result<bool, LabError> {
        if self.own_root(qdiscs)?.is_none() {
            return Ok(false);
        }
        Ok(ClearRoot {
            index: self.index,
            label: self.label.clone(),
        }
        .execute(&self.socket)
        .await?)
    }
}

/// Opens a socket in the node's net namespace (through a namespace fd of
/// the pinned init), finds the interface and runs `work` with it.
pub(super) fn with_interface<T: Send>(
    node: &RunningNode,
    iface: &str,
    work: impl AsyncFnOnce(Target) -> Result<T, LabError> + Send,
) -> Result<T, LabError> {
    let iface = iface.to_string();
    let namespaces = node.open_namespaces(&[NsKind::Net])?;
    let netns = namespaces.get(NsKind::Net).ok_or_else(|| LabError::Io {
        what: format!("open the net namespace of {}", node.label()),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    let label = format!("{}:{iface}", node.label());
    let runtime = runtime()?;
    runtime.block_on(|| async {
        let socket = open_sockets(
            runtime.handle(),
            &[(node.label(), Netns::Fd(netns.as_fd()))],
        )?
        .pop()
        .ok_or_else(|| NetlinkError::Open {
            netns: node.label(),
            reason: "no socket came back".into(),
        })?;
        let link = find_link(&socket, node, &iface).await?;
        work(Target {
            socket,
            index: link.0,
            mtu: link.1,
            node: node.label(),
            iface,
            label,
        })
        .await
    })
}

/// The index and MTU of the node's interface `iface`.
async fn find_link(
    socket: &Handle,
    node: &RunningNode,
    iface: &str,
) -> Result<(u32, u32), LabError> {
    let links = dump_links(socket, &node.label()).await?;
    let Some(link) = links.iter().find(|l| l.name == iface) else {
        let mut names: Vec<&str> = links
            .iter()
            .map(|l| l.name.as_str())
            .filter(|n| *n != "lo")
            .collect();
        names.sort_unstable();
        return Err(LabError::NoInterface {
            node: node.label(),
            iface: iface.to_string(),
            has: names.into_iter().map(String::from).collect(),
        });
    };
    Ok((link.index, link.mtu.unwrap_or(1500)))
}
