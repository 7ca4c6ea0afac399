//! `apply`: change a running lab to what its edited file says, live, making
//! only the difference ([`PlanDiff`]). What did not change is not touched.
//!
//! Everything is checked before the first change: the file (as `up` does),
//! that its name is the lab's, that every change can be made live (else
//! the node and key are named, with `--recreate` as the way), and that the
//! nodes it touches are running. Then the new plan is saved as pending, and
//! the changes are made: removals first (links, nodes, routes, addresses,
//! sysctls), then additions (nodes, links, addresses, routes, impairments,
//! states, sysctls, `exec` steps of new nodes), each object journaled as
//! `up` journals it. Renaming the pending plan to the lab's plan ends it.
//!
//! A killed `apply` leaves a lab `down` removes whole (its journal and
//! marks cover every object), and a pending plan: the next `apply` diffs
//! from both plans, so it rebuilds what the killed one may have left half
//! made.

mod add;
mod early;
mod remove;

pub(crate) use early::EarlyStart;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{LabError, Progress, UpOptions, UpReport, fault, up};
use crate::kernel::init::Zygote;
use crate::kernel::netlink::link::{LinkInfo, dump_links};
use crate::kernel::netlink::{NetlinkError, Netns, open_sockets};
use crate::kernel::process::is_init_of;
use crate::plan::{Place, Plan, PlanDiff};
use crate::spec::{HOST, MGMT_BRIDGE};
use crate::state::{self, Entry, LabLock, PlanBytes, Recorded, STATE_ROOT, StateDir};

/// How `apply` runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct ApplyOptions {
    /// Change nothing: only say what would change.
    pub dry_run: bool,
    /// Nodes to stop and build again (their links made again), whether
    /// they changed or not; the way to change what cannot change live.
    pub recreate: Vec<String>,
    /// The running lab the file is meant for; `None`: the file's name.
    pub lab: Option<String>,
    /// Told how `up` advances, when the lab is not running.
    pub progress: Progress,
    /// The nslab binary for new nodes' inits (see `UpOptions::init_exe`).
    pub init_exe: Option<PathBuf>,
    /// See `UpOptions::userns_range`.
    pub userns_range: Option<(u32, u32)>,
}

/// What `apply` changed (or, with `dry_run`, would change).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ApplyReport {
    pub lab: String,
    /// One line per change: `+ node r4`, `- link r1:eth2 <-> r3:eth0`,
    /// `~ h1: route default via 10.0.1.1 -> default via 10.0.9.1`.
    pub changes: Vec<String>,
    /// The lab was not running, so `apply` brought it up.
    pub up: Option<UpReport>,
    pub dry_run: bool,
    pub total: Duration,
}

/// Applies `plan` to the running lab of its name, or brings it up.
pub(crate) fn apply(plan: &Plan, options: &ApplyOptions) -> Result<ApplyReport, LabError> {
    apply_with(plan, options, EarlyStart::default())
}

/// [`apply`], with what `early` started before the plan was made.
pub(crate) fn apply_with(
    plan: &Plan,
    options: &ApplyOptions,
    early: EarlyStart,
) -> Result<ApplyReport, LabError> {
    let started = Instant::now();
    let (read_early, cgroups, early_zygote) = early.take(&plan.lab)?;
    if let Some(lab) = &options.lab
        && *lab != plan.lab
    {
        return Err(LabError::NameMismatch {
            file: plan.lab.clone(),
            running: lab.clone(),
        });
    }
    let report = |changes, up| ApplyReport {
        lab: plan.lab.clone(),
        changes,
        up,
        dry_run: options.dry_run,
        total: started.elapsed(),
    };
    if read_early.is_none() && !state::exists(&plan.lab)? {
        refuse_a_renamed_lab(plan)?;
        if options.dry_run {
            return Ok(report(
                vec![format!(
                    "+ lab {} ({} node(s), {} link(s)): it is not running, so apply brings it up",
                    plan.lab,
                    plan.nodes.len(),
                    plan.links.len()
                )],
                None,
            ));
        }
        let up_options = UpOptions {
            reconfigure: false,
            progress: options.progress.clone(),
            init_exe: options.init_exe.clone(),
            userns_range: options.userns_range,
            host_names: false,
        };
        let built = up(plan, &up_options)?;
        return Ok(report(Vec::new(), Some(built)));
    }
    let lab = plan.lab.as_str();
    let (_lock, recorded) = match read_early {
        Some(read) => read,
        None => (
            LabLock::acquire(lab, || {
                eprintln!("nslab: waiting for another nslab working on lab {lab}")
            })?,
            state::read(lab)?,
        ),
    };
    let recorded = recorded.ok_or_else(|| LabError::NoLab { lab: lab.into() })?;
    if !recorded.is_ready() {
        return Err(LabError::NotReady { lab: lab.into() });
    }
    let old = recorded
        .plan
        .as_ref()
        .ok_or_else(|| LabError::NoPlan { lab: lab.into() })?;
    for node in &options.recreate {
        if plan.node_id(node).is_none() {
            return Err(LabError::NoNode {
                lab: lab.into(),
                node: node.clone(),
            });
        }
    }
    let mut before = vec![old];
    before.extend(recorded.pending.as_ref());
    // The new plan is encoded for the state folder on a thread of its own
    // while the difference is made.
    let (diff, encoded) = std::thread::scope(|scope| {
        let encoding = (!options.dry_run).then(|| scope.spawn(|| PlanBytes::of(plan)));
        let diff = PlanDiff::between(&before, plan, &options.recreate);
        let encoded = encoding.map(|thread| thread.join());
        (diff, encoded)
    });
    if !diff.refused.is_empty() {
        return Err(LabError::NotLive(
            diff.refused.iter().map(ToString::to_string).collect(),
        ));
    }
    let host_impairments: Vec<String> = (diff.ends.iter())
        .filter(|((node, _), changes)| node == HOST && changes.impair.is_some())
        .map(|((_, iface), _)| format!("host:{iface}: `impair` of a host end changes only with its link made again (give that link a new interface name)"))
        .collect();
    if !host_impairments.is_empty() {
        return Err(LabError::NotLive(host_impairments));
    }
    // The relays of forwarded ports are started by `up` alone.
    let ports = |p: &Plan| p.mgmt.as_ref().map(|m| m.ports.clone()).unwrap_or_default();
    if before.iter().any(|p| ports(p) != ports(plan)) {
        return Err(LabError::NotLive(vec![
            "the forwarded ports (`ports`, and the management addresses they reach) of a running lab change only with `down` and `up`".into(),
        ]));
    }
    // The relays live in the bridge's pid namespace: rebuilding it would
    // end them.
    let has_ports = |p: &Plan| p.mgmt.as_ref().is_some_and(|m| !m.ports.is_empty());
    if has_ports(old) && diff.remove_nodes.iter().any(|n| n == MGMT_BRIDGE) {
        return Err(LabError::NotLive(vec![format!(
            "{MGMT_BRIDGE}: the relays of the forwarded ports run in it; it is rebuilt only with `down` and `up`"
        )]));
    }
    // What the additions need of the host is checked before the first
    // change: a host bridge or a device's parent that is not there, a
    // management subnet the host has.
    let host_addresses = |p: &Plan| p.mgmt.as_ref().map(|m| (m.ipv4, m.ipv6));
    let mgmt_moved = plan.mgmt.is_some()
        && before
            .iter()
            .any(|p| host_addresses(p) != host_addresses(plan));
    super::host_side::check_host(
        plan,
        diff.add_links.iter().map(|&l| &plan.links[l]),
        mgmt_moved,
    )?;
    super::devices::check_parents(plan, diff.add_devices.iter().map(|&d| &plan.devices[d]))?;
    let pids = touched_nodes_running(&recorded, old, plan, &diff)?;
    if options.dry_run || (diff.is_empty() && recorded.pending.is_none()) {
        return Ok(report(diff.lines, None));
    }

    // New nodes' zygote starts now: its exec and mount set-up overlap the
    // work below.
    let zygote = match (diff.add_nodes.is_empty(), early_zygote) {
        (true, _) => None,
        (false, Some(zygote)) => Some(zygote),
        (false, None) => Some(Zygote::start(lab, options.init_exe.as_deref())?),
    };
    let mut journal = StateDir::open_in(Path::new(STATE_ROOT), lab)?;
    let encoded = match encoded {
        Some(done) => done.map_err(|_| LabError::Panicked("the thread encoding the plan"))??,
        None => PlanBytes::of(plan)?,
    };
    journal.save_pending(&encoded)?;
    // Before any new node starts and binds it.
    journal.write_hosts(&plan.hosts_file())?;
    journal.record(&[Entry::step(format!(
        "apply: {} change(s)",
        diff.lines.len()
    ))])?;
    let mut work = remove::Removal {
        plan,
        diff: &diff,
        recorded: &recorded,
        pids: &pids,
        journal: &mut journal,
    };
    work.run()?;
    let removed: Vec<Entry> = (diff.lines.iter())
        .filter(|l| l.starts_with("- "))
        .map(|text| Entry::step(text.as_str()))
        .collect();
    journal.record(&removed)?;
    let mut work = add::Addition {
        plan,
        diff: &diff,
        pids,
        journal: &mut journal,
        options,
        zygote,
        cgroups,
    };
    work.run()?;
    let added: Vec<Entry> = (diff.lines.iter())
        .filter(|l| !l.starts_with("- "))
        .map(|text| Entry::step(text.as_str()))
        .collect();
    journal.record(&added)?;
    journal.commit_pending()?;
    // The host's /etc/hosts block, when `up --hosts` made one.
    let hosts = std::path::Path::new(super::host_names::HOSTS);
    super::host_names::refresh_block(hosts, &plan.lab, &plan.host_entries())?;
    journal.record(&[Entry::step("apply: done")])?;
    if let Some(steps) = fault::report() {
        eprintln!("nslab: fault injection armed: {steps} kernel-changing steps taken");
    }
    Ok(report(diff.lines, None))
}

/// A file whose `name` was edited would otherwise bring up a second lab
/// beside the one running from it.
fn refuse_a_renamed_lab(plan: &Plan) -> Result<(), LabError> {
    let Some(source) = &plan.source else {
        return Ok(());
    };
    for lab in state::list_labs()? {
        let Ok(Some(recorded)) = state::read(&lab) else {
            continue;
        };
        if recorded
            .plan
            .is_some_and(|p| p.source.as_ref() == Some(source))
        {
            return Err(LabError::NameMismatch {
                file: plan.lab.clone(),
                running: lab,
            });
        }
    }
    Ok(())
}

/// The init pid of every node that stays and that the change touches,
/// each checked to be that node's running init: a node that is stopped,
/// or whose init is gone, cannot change live.
fn touched_nodes_running(
    recorded: &Recorded,
    old: &Plan,
    plan: &Plan,
    diff: &PlanDiff,
) -> Result<HashMap<String, i32>, LabError> {
    let lab = &old.lab;
    let mut touched: Vec<&str> = diff.nodes.keys().map(String::as_str).collect();
    touched.extend(diff.ends.keys().map(|(node, _)| node.as_str()));
    for key in &diff.remove_links {
        touched.extend([key.0.0.as_str(), key.1.0.as_str()]);
    }
    let links = (diff.mtus.iter().map(|(link, _)| link)).chain(&diff.add_links);
    for end in links.flat_map(|&link| &plan.links[link].endpoints) {
        if let Place::Node(id) = end.place {
            touched.push(&plan.nodes[id].name);
        }
    }
    touched.extend(diff.remove_devices.iter().map(|(node, _)| node.as_str()));
    for end in diff.add_devices.iter().map(|&d| &plan.devices[d].end) {
        if let Place::Node(id) = end.place {
            touched.push(&plan.nodes[id].name);
        }
    }
    // Nodes that stay: not new, not rebuilt, not removed.
    touched.retain(|n| old.node_id(n).is_some() && !diff.remove_nodes.iter().any(|r| r == n));
    touched.sort_unstable();
    touched.dedup();
    let stopped = recorded.stopped_nodes();
    let recorded_pids: HashMap<String, i32> = recorded.init_pids().into_iter().collect();
    let mut pids = HashMap::new();
    for node in touched {
        if stopped.iter().any(|s| s == node) {
            return Err(LabError::NotLive(vec![format!(
                "node {node} is stopped: start it first (`nslab node start {lab}/{node}`), or rebuild it with `--recreate {node}`"
            )]));
        }
        match recorded_pids.get(node) {
            Some(&pid) if is_init_of(pid, lab, node) => {
                pids.insert(node.to_string(), pid);
            }
            _ => {
                return Err(LabError::NotLive(vec![format!(
                    "node {node} is not running (its init has exited): rebuild it with `--recreate {node}`"
                )]));
            }
        }
    }
    Ok(pids)
}

/// One netlink socket per namespace `apply` works in, by node name
/// ([`HOST`] for the host's).
struct Sockets {
    by_place: HashMap<String, rtnetlink::Handle>,
}

impl Sockets {
    /// Opens a socket in each running node of `pids` (by name), and in the
    /// host's namespace when `host`.
    fn open(
        runtime: &tokio::runtime::Handle,
        pids: &HashMap<String, i32>,
        host: bool,
    ) -> Result<Self, LabError> {
        let mut places: Vec<(String, Netns<'_>)> = pids
            .iter()
            .map(|(node, &pid)| (node.clone(), Netns::Pid(pid)))
            .collect();
        if host {
            places.push((HOST.to_string(), Netns::Own));
        }
        let sockets = open_sockets(runtime, &places)?;
        Ok(Sockets {
            by_place: places.into_iter().map(|(p, _)| p).zip(sockets).collect(),
        })
    }

    /// Every place with a socket.
    fn places(&self) -> Vec<String> {
        self.by_place.keys().cloned().collect()
    }

    fn get(&self, place: &str) -> Result<&rtnetlink::Handle, NetlinkError> {
        self.by_place
            .get(place)
            .ok_or_else(|| NetlinkError::Missing(format!("a netlink socket in {place}")))
    }

    /// The links of a place, by name.
    async fn links(&self, place: &str) -> Result<HashMap<String, LinkInfo>, NetlinkError> {
        let links = dump_links(self.get(place)?, place).await?;
        Ok(links.into_iter().map(|l| (l.name.clone(), l)).collect())
    }
}

/// The node name of a link end's place ([`HOST`] for the host).
fn place_name(plan: &Plan, place: Place) -> &str {
    match place {
        Place::Host => HOST,
        Place::Node(id) => &plan.nodes[id].name,
    }
}
