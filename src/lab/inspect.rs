//! `inspect`: labs, nodes and interfaces, read live from the kernel.
//!
//! The JSON form is stable for scripts: the field names below are the
//! documented interface (see docs/cli.md, "inspect --json").

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};

use futures::future::try_join_all;
use serde::{Deserialize, Serialize};

use super::running::is_init_of;
use super::{LabError, runtime};
use crate::kernel::namespace::{self, ENTER_ORDER, NamespaceFds, NsKind};
use crate::kernel::netlink::address::dump_addresses;
use crate::kernel::netlink::link::{LinkInfo, dump_links};
use crate::kernel::netlink::qdisc::{Psched, QdiscInfo, RootQdisc, dump_qdiscs, root_qdisc};
use crate::kernel::netlink::{Netns, open_sockets};
use crate::plan::{Place, Plan};
use crate::spec::Impair;
use crate::spec::LabName;
use crate::state;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LabView {
    pub name: String,
    /// `running` (every node up, or stopped on purpose), `degraded` (some
    /// init gone) or `building`.
    pub status: String,
    pub topology: Option<String>,
    pub nodes: Vec<NodeView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NodeView {
    pub name: String,
    pub kind: String,
    pub running: bool,
    /// Stopped with `node stop` (not running, its net namespace kept).
    pub stopped: bool,
    pub pid: Option<i32>,
    pub hostname: Option<String>,
    /// Namespace inode numbers by kind (`net`, `mnt`, ...), as `lsns` shows.
    pub namespaces: BTreeMap<String, u64>,
    /// The name under /run/netns.
    pub netns: String,
    /// With a user namespace of its own: its uid and gid maps, each
    /// `INSIDE OUTSIDE COUNT` as /proc/PID/uid_map shows them (`0 HOST_ID
    /// 65536`).
    pub uid_map: Option<String>,
    pub gid_map: Option<String>,
    pub interfaces: Vec<InterfaceView>,
    /// The host of a spread lab the node runs on (set by the controller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InterfaceView {
    pub name: String,
    pub index: u32,
    pub kind: Option<String>,
    pub mtu: Option<u32>,
    pub mac: Option<String>,
    pub up: bool,
    /// The operational state, read from the kernel: `up`, `down`,
    /// `lowerlayerdown` (up, but its veth peer is down: no carrier),
    /// `unknown` (lo), ...
    pub operstate: String,
    pub addresses: Vec<String>,
    /// `node:iface` at the other end of a veth, verified against the kernel.
    pub peer: Option<String>,
    /// The bridge this interface is a port of.
    pub bridge: Option<String>,
    /// The impairment of its egress, read from the kernel (null for none).
    pub impair: Option<Impair>,
}

/// Inspects one lab, or every lab with state.
pub(crate) fn inspect(lab: Option<&LabName>) -> Result<Vec<LabView>, LabError> {
    let all = lab.is_none();
    let labs = match lab {
        Some(lab) => vec![lab.to_string()],
        None => state::list_labs()?,
    };
    let mut views = Vec::new();
    for lab in labs {
        let Some(recorded) = state::read(&lab)? else {
            if all {
                // Taken down between listing and reading.
                continue;
            }
            return Err(LabError::NoLab { lab });
        };
        let Some(plan) = recorded.plan.clone() else {
            continue;
        };
        let pids: BTreeMap<String, i32> = recorded
            .init_pids()
            .into_iter()
            .filter(|(node, pid)| is_init_of(*pid, &lab, node))
            .collect();
        let stopped = recorded.stopped_nodes();
        let mut view = inspect_lab(&plan, &pids)?;
        for node in &mut view.nodes {
            node.stopped = !node.running && stopped.contains(&node.name);
        }
        // Nodes stopped on purpose leave the lab running.
        let all_there = view.nodes.iter().all(|n| n.running || n.stopped);
        view.status = match (recorded.is_ready(), all_there) {
            (true, true) => "running",
            (true, false) => "degraded",
            (false, _) => "building",
        }
        .into();
        views.push(view);
    }
    Ok(views)
}

fn inspect_lab(plan: &Plan, pids: &BTreeMap<String, i32>) -> Result<LabView, LabError> {
    let running: Vec<(usize, i32)> = plan
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(id, n)| pids.get(&n.name).map(|pid| (id, *pid)))
        .collect();
    let hostnames = read_hostnames(&running);
    let live = read_interfaces(plan, &running)?;

    let nodes = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(id, node)| {
            let pid = pids.get(&node.name).copied();
            let namespaces = pid
                .map(|pid| {
                    ENTER_ORDER
                        .iter()
                        // A node without its own is in the host's.
                        .filter(|&&k| k != NsKind::User || node.userns)
                        .filter_map(|&k| {
                            Some((k.proc_name().to_string(), namespace::ns_inode(pid, k).ok()?))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let links = live
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, l)| l.as_slice())
                .unwrap_or(&[]);
            NodeView {
                name: node.name.clone(),
                kind: format!("{:?}", node.kind).to_lowercase(),
                running: pid.is_some(),
                stopped: false,
                pid,
                hostname: hostnames
                    .iter()
                    .find(|(i, _)| *i == id)
                    .map(|(_, h)| h.clone()),
                namespaces,
                netns: plan.netns_name(id),
                uid_map: pid
                    .filter(|_| node.userns)
                    .and_then(|pid| id_map(pid, "uid_map")),
                gid_map: pid
                    .filter(|_| node.userns)
                    .and_then(|pid| id_map(pid, "gid_map")),
                interfaces: links
                    .iter()
                    .map(|live_link| interface_view(plan, id, live_link, links, &live))
                    .collect(),
                host: None,
            }
        })
        .collect();
    Ok(LabView {
        name: plan.lab.clone(),
        status: String::new(),
        topology: plan.source.as_ref().map(|p| p.display().to_string()),
        nodes,
    })
}

/// `/proc/PID/FILE` (`uid_map` or `gid_map`), one line, single-spaced.
fn id_map(pid: i32, file: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A live interface: the link, its addresses and its impairment.
type LiveLink = (LinkInfo, Vec<String>, Option<Impair>);
type LiveLinks = Vec<(usize, Vec<LiveLink>)>;

/// Links with their addresses and impairments for every running node, over
/// one socket per node, all dumps in flight together.
fn read_interfaces(plan: &Plan, running: &[(usize, i32)]) -> Result<LiveLinks, LabError> {
    let fds: Vec<(usize, OwnedFd)> = running
        .iter()
        .filter_map(|&(id, pid)| {
            let fd = std::fs::File::open(namespace::ns_path(pid, NsKind::Net)).ok()?;
            Some((id, fd.into()))
        })
        .collect();
    let runtime = runtime()?;
    runtime.block_on(|| async {
        let targets: Vec<_> = fds
            .iter()
            .map(|(id, fd)| (plan.netns_name(*id), Netns::Fd(fd.as_fd())))
            .collect();
        let sockets = open_sockets(runtime.handle(), &targets)?;
        let clock = Psched::read();
        let reads = fds
            .iter()
            .zip(&sockets)
            .map(|((id, _), socket)| async move {
                let name = plan.netns_name(*id);
                let links = dump_links(socket, &name).await?;
                let addresses = dump_addresses(socket, &name).await?;
                let qdiscs = dump_qdiscs(socket, None, &name).await?;
                let links = links
                    .into_iter()
                    .map(|link| {
                        let own = addresses
                            .iter()
                            .filter(|a| a.index == link.index)
                            .map(|a| a.address.to_string())
                            .collect();
                        let impair = impairment(&qdiscs, link.index, &clock);
                        (link, own, impair)
                    })
                    .collect();
                Ok::<_, LabError>((*id, links))
            });
        try_join_all(reads).await
    })
}

/// The impairment of one interface, from its namespace's qdisc dump (none
/// when its root qdisc is not one nslab sets, or cannot be read).
fn impairment(qdiscs: &[QdiscInfo], index: u32, clock: &Psched) -> Option<Impair> {
    let own: Vec<QdiscInfo> = qdiscs
        .iter()
        .filter(|q| q.index == index)
        .cloned()
        .collect();
    match root_qdisc(&own, clock) {
        Ok(RootQdisc::Impaired { plan, .. }) => Some(plan),
        _ => None,
    }
}

fn interface_view(
    plan: &Plan,
    node: usize,
    (link, addresses, impair): &LiveLink,
    siblings: &[LiveLink],
    live: &LiveLinks,
) -> InterfaceView {
    InterfaceView {
        name: link.name.clone(),
        index: link.index,
        kind: link.kind.clone(),
        mtu: link.mtu,
        mac: link.mac.map(|m| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        }),
        up: link.up,
        operstate: link.operstate.clone(),
        addresses: addresses.to_vec(),
        peer: verified_peer(plan, node, link, live),
        bridge: link
            .controller
            .and_then(|c| siblings.iter().find(|(l, _, _)| l.index == c))
            .map(|(l, _, _)| l.name.clone()),
        impair: *impair,
    }
}

/// The planned peer of an interface, reported only when the kernel agrees:
/// the peer exists and the two point at each other's ifindex.
fn verified_peer(plan: &Plan, node: usize, link: &LinkInfo, live: &LiveLinks) -> Option<String> {
    let planned = plan.links.iter().find_map(|l| {
        let [a, b] = &l.endpoints;
        if a.place == Place::Node(node) && a.ifname == link.name {
            Some(b)
        } else if b.place == Place::Node(node) && b.ifname == link.name {
            Some(a)
        } else {
            None
        }
    })?;
    let label = plan.endpoint_label(planned);
    match planned.place {
        // The host's side is not read here; the planned name is reported.
        Place::Host => Some(label),
        Place::Node(peer_node) => {
            let (_, peer_links) = live.iter().find(|(id, _)| *id == peer_node)?;
            let (peer, _, _) = peer_links
                .iter()
                .find(|(l, _, _)| l.name == planned.ifname)?;
            (link.peer_index == Some(peer.index) && peer.peer_index == Some(link.index))
                .then_some(label)
        }
    }
}

/// Hostnames of running nodes: a thread enters each uts namespace in turn.
fn read_hostnames(running: &[(usize, i32)]) -> Vec<(usize, String)> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                running
                    .iter()
                    .filter_map(|&(id, pid)| {
                        let ns = NamespaceFds::open(pid, &[NsKind::Uts]).ok()?;
                        ns.enter().ok()?;
                        let name = nix::unistd::gethostname().ok()?;
                        Some((id, name.to_string_lossy().into_owned()))
                    })
                    .collect()
            })
            .join()
            .unwrap_or_default()
    })
}
