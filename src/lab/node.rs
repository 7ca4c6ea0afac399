//! A node's lifecycle in a running lab, as a powered-off and rebooted
//! router would have it.
//!
//! `node stop` sets the node's interfaces down (its peers lose carrier),
//! then ends its init: the kernel ends every process of its pid namespace
//! with it. Its net namespace stays, held by its /run/netns name, with its
//! interfaces (and, for a user-namespaced node, the user namespace that
//! owns it, which the net namespace holds).
//!
//! `node start` starts a new init that joins the kept net namespace (and
//! user namespace) with fresh mount, pid, uts, ipc and cgroup namespaces,
//! then does what `up` does for that node alone: its interfaces' addresses
//! (IPv6 ones went with the link), up, its routes (the kernel removed those
//! through a link that went down), its late sysctls, its `exec` steps.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::link::{put_back_addresses, put_back_route};
use super::running::the_lab_with;
use super::seam::{Kernel, LateSysctls, RealKernel, init_config, run_exec_step, spawn_configs};
use super::{LabError, resolve_node, runtime};
use crate::kernel::cgroup::Cgroups;
use crate::kernel::namespace::{NETNS_DIR, netns_name_inode};
use crate::kernel::netlink::link::{SetLinkState, SetUp, dump_links};
use crate::kernel::netlink::{NetlinkError, Netns, open_sockets};
use crate::kernel::process::{self, is_init_of};
use crate::plan::{Place, Plan};
use crate::spec::{LabName, LinkState, NodeKind, NodeRef};
use crate::state::{self, Entry, LabLock, STATE_ROOT, StateDir};

/// How long a stopped node's init gets to exit on SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// What `node stop` or `node start` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NodeChange {
    pub lab: String,
    pub node: String,
    /// The init that ended (stop) or started (start).
    pub pid: i32,
    /// The node's interfaces set down (stop) or configured and up (start).
    pub interfaces: usize,
}

/// Stops a running node, keeping its net namespace and its links.
pub(crate) fn stop_node(target: &NodeRef) -> Result<NodeChange, LabError> {
    let (running, plan) = resolve_node(target)?;
    let lab = running.lab.clone();
    let plan = plan.ok_or_else(|| LabError::NoPlan { lab: lab.clone() })?;
    let id = lifecycle_node(&plan, &running.node)?;
    let _lock = LabLock::acquire(&lab, || waiting(&lab))?;
    let pinned = running.pin()?;
    // Links down first: its peers lose carrier as the node goes.
    let runtime = runtime()?;
    let label = running.label();
    let socket = open_sockets(
        runtime.handle(),
        &[(label.clone(), Netns::Pid(running.pid))],
    )?
    .remove(0);
    let down = runtime.block_on(|| async {
        let links = dump_links(&socket, &label).await?;
        let mut down = 0;
        for link in links.into_iter().filter(|l| l.name != "lo") {
            let request = SetLinkState {
                index: link.index,
                state: LinkState::Down,
                label: format!("{label}:{}", link.name),
            };
            request.execute(&socket).await?;
            down += 1;
        }
        Ok::<_, NetlinkError>(down)
    })?;
    drop(runtime);
    StateDir::open_in(Path::new(STATE_ROOT), &lab)?.record(&[Entry::Stopped {
        node: plan.nodes[id].name.clone(),
    }])?;
    let (ended, errors) = process::terminate(vec![pinned], GRACE);
    if ended != 1 {
        return Err(LabError::Teardown { lab: label, errors });
    }
    Ok(NodeChange {
        lab,
        node: running.node,
        pid: running.pid,
        interfaces: down,
    })
}

/// Starts a stopped node again; `exe` is the nslab binary for its init
/// (see `UpOptions::init_exe`).
pub(crate) fn start_node(target: &NodeRef, exe: Option<&Path>) -> Result<NodeChange, LabError> {
    let node = target.node();
    let lab = match target.lab() {
        Some(lab) => lab.to_string(),
        None => the_lab_with(node, |r| r.stopped_nodes().iter().any(|n| n == node))?,
    };
    let _lock = LabLock::acquire(&lab, || waiting(&lab))?;
    let recorded = state::read(&lab)?.ok_or_else(|| LabError::NoLab { lab: lab.clone() })?;
    let plan = recorded
        .plan
        .clone()
        .ok_or_else(|| LabError::NoPlan { lab: lab.clone() })?;
    let id = lifecycle_node(&plan, node)?;
    let label = format!("{lab}/{node}");
    let running = recorded
        .init_pids()
        .into_iter()
        .any(|(n, pid)| n == node && is_init_of(pid, &lab, node));
    if running || !recorded.stopped_nodes().iter().any(|n| n == node) {
        return Err(LabError::NotStoppable {
            node: label,
            why: match running {
                true => "it is running (`node restart` stops it first)".into(),
                false => "it was not stopped with `node stop`".into(),
            },
        });
    }
    let netns = plan.netns_name(id);
    if netns_name_inode(&netns).is_none() {
        return Err(LabError::NotStoppable {
            node: label,
            why: format!("its net namespace /run/netns/{netns} is gone"),
        });
    }
    let interfaces = plan.interfaces_by_node();
    let mut config = init_config(&plan, id, &interfaces[id], &Cgroups::detect()?, None);
    // The zygote's mount namespace has no /run/netns binds (see
    // `mounts::isolate`): it opens the namespace through our fd instead.
    let path = Path::new(NETNS_DIR).join(&netns);
    let kept = std::fs::File::open(&path).map_err(|source| LabError::Io {
        what: format!("open {}", path.display()),
        source,
    })?;
    config.rejoin = Some(format!("/proc/{}/fd/{}", std::process::id(), kept.as_raw_fd()).into());
    let mut journal = StateDir::open_in(Path::new(STATE_ROOT), &lab)?;
    let pids = spawn_configs(&plan, exe, &[id], &[config], &mut |_, pid| {
        journal.record(&[Entry::Init {
            node: node.to_string(),
            pid,
        }])?;
        Ok(())
    })?;
    drop(kept);
    let pid = pids[0];
    let configured = configure(&plan, id, pid)?;
    let late = plan.sysctl_stages(id, &interfaces[id]).1;
    if !late.is_empty() {
        RealKernel.write_sysctls(vec![LateSysctls {
            node,
            pid,
            sysctls: &late,
        }])?;
    }
    for command in &plan.nodes[id].exec {
        run_exec_step(&plan.nodes[id], pid, command)?;
    }
    Ok(NodeChange {
        lab,
        node: node.to_string(),
        pid,
        interfaces: configured,
    })
}

/// Stops a running node and starts it again.
pub(crate) fn restart_node(target: &NodeRef, exe: Option<&Path>) -> Result<NodeChange, LabError> {
    let stopped = stop_node(target)?;
    let full = NodeRef::new(LabName::new(stopped.lab)?, stopped.node)?;
    start_node(&full, exe)
}

fn waiting(lab: &str) {
    eprintln!("nslab: waiting for another nslab working on lab {lab}");
}

/// The id of a node that can be stopped and started (not a bridge).
fn lifecycle_node(plan: &Plan, node: &str) -> Result<usize, LabError> {
    let id = plan
        .nodes
        .iter()
        .position(|n| n.name == node)
        .ok_or_else(|| LabError::NoNode {
            lab: plan.lab.clone(),
            node: node.to_string(),
        })?;
    if plan.nodes[id].kind == NodeKind::Bridge {
        return Err(LabError::NotStoppable {
            node: format!("{}/{node}", plan.lab),
            why: "it is a bridge (its ports are other nodes' links)".into(),
        });
    }
    Ok(id)
}

/// Addresses, up and routes of node `id`, whose new init is `pid`; what
/// is still there (IPv4 addresses survive a link going down) is left.
/// How many interfaces came up.
fn configure(plan: &Plan, id: usize, pid: i32) -> Result<usize, LabError> {
    let runtime = runtime()?;
    let label = format!("{}/{}", plan.lab, plan.nodes[id].name);
    let socket = open_sockets(runtime.handle(), &[(label.clone(), Netns::Pid(pid))])?.remove(0);
    let done = runtime.block_on(|| async {
        let links = dump_links(&socket, &label).await?;
        let index = |name: &str| {
            links
                .iter()
                .find(|l| l.name == name)
                .map(|l| l.index)
                .ok_or_else(|| NetlinkError::Missing(format!("{label}:{name}")))
        };
        let mut up = 0;
        for end in plan.ends().filter(|e| e.place == Place::Node(id)) {
            let index = index(&end.ifname)?;
            let label = plan.endpoint_label(end);
            put_back_addresses(&socket, index, &label, &end.addresses).await?;
            // An end the topology keeps down (`state: down`) stays down.
            if end.state == LinkState::Up {
                SetUp { index, label }.execute(&socket).await?;
                up += 1;
            }
        }
        for route in &plan.nodes[id].routes {
            let output_index = route.device.as_deref().map(index).transpose()?;
            put_back_route(&socket, &plan.nodes[id].name, route, output_index).await?;
        }
        Ok::<_, NetlinkError>(up)
    })?;
    Ok(done)
}
