//! The second half of `apply`: what comes. New nodes start as `up` starts
//! them (id blocks, cgroups, inits through a zygote, /run/netns names);
//! then, over one socket per namespace involved: bridges, veth pairs born
//! in place, devices, ports, addresses and up, MTUs, routes, impairments
//! and link states; then sysctls and the new nodes' `exec` steps. Nothing
//! of a node or link that did not change is touched.

mod devices;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{ApplyOptions, Sockets, place_name};
use crate::kernel::cgroup::Cgroups;
use crate::kernel::init::Zygote;
use crate::kernel::netlink::NetlinkError;
use crate::kernel::netlink::address::AddAddress;
use crate::kernel::netlink::link::{
    AttachPort, CreateBridge, CreateVeth, LinkInfo, MarkLink, SetLinkState, SetMtu, SetUp, VethEnd,
};
use crate::kernel::netlink::qdisc::{Previous, Psched, ReplaceRoot};
use crate::kernel::netlink::route::AddRoute;
use crate::kernel::userns::IdMap;
use crate::lab::link::{already_there, restore};
use crate::lab::seam::{Kernel, LateSysctls, RealKernel, run_exec_step, spawn_inits_on};
use crate::lab::steps::run_in_start_order;
use crate::lab::up::{name_namespaces, next_end_index};
use crate::lab::{
    LabError, RunningNode, fault, host_link_alias, impair_clear, impair_set, runtime,
};
use crate::plan::{DEFAULT_MTU, EndpointPlan, Place, Plan, PlanDiff};
use crate::spec::{HOST, LinkState, NodeKind, Sysctl};
use crate::state::{self, Entry, STATE_ROOT, StateDir};

/// How long `apply` waits for new links to be operationally up.
const RUNNING_WITHIN: Duration = Duration::from_secs(5);

pub(super) struct Addition<'a> {
    pub plan: &'a Plan,
    pub diff: &'a PlanDiff,
    /// Init pids of the nodes that stay and that the change touches; the
    /// new nodes' join them.
    pub pids: HashMap<String, i32>,
    pub journal: &'a mut StateDir,
    pub options: &'a ApplyOptions,
    /// Started as soon as `apply` knew it adds nodes, so that its start-up
    /// overlapped the removals.
    pub zygote: Option<Zygote>,
    /// The host's cgroup hierarchies, when found already.
    pub cgroups: Option<Cgroups>,
}

impl Addition<'_> {
    pub(super) fn run(&mut self) -> Result<(), LabError> {
        self.start_nodes()?;
        let runtime = runtime()?;
        let host = self.involves_host();
        if !self.pids.is_empty() || host {
            let sockets = Sockets::open(runtime.handle(), &self.pids, host)?;
            runtime.block_on(|| self.wire(&sockets))?;
        }
        drop(runtime);
        self.change_impairments()?;
        self.write_sysctls()?;
        // In start order; a wait on a node that stays is met already.
        let (plan, pids) = (self.plan, &self.pids);
        run_in_start_order(plan, &self.diff.add_nodes, |id, command| {
            let node = &plan.nodes[id];
            run_exec_step(node, pids[&node.name], command)
        })
    }

    fn involves_host(&self) -> bool {
        let new_ends = (self.diff.add_links.iter()).flat_map(|&l| &self.plan.links[l].endpoints);
        let mtu_ends = (self.diff.mtus.iter()).flat_map(|&(l, _)| &self.plan.links[l].endpoints);
        new_ends.chain(mtu_ends).any(|e| e.place == Place::Host)
            || self.diff.ends.keys().any(|(node, _)| node == HOST)
            || (self.diff.add_devices.iter()).any(|&d| self.plan.devices[d].kind.uses_host())
    }

    /// Inits of the new nodes, as `up` starts them, and their names.
    fn start_nodes(&mut self) -> Result<(), LabError> {
        let (plan, ids) = (self.plan, &self.diff.add_nodes);
        if ids.is_empty() {
            return Ok(());
        }
        crate::lab::lab_dir::make(plan, ids)?;
        crate::lab::lab_dir::rewrite_files(plan)?;
        let root = Path::new(STATE_ROOT);
        let mut maps: Vec<Option<IdMap>> = vec![None; plan.nodes.len()];
        let userns: Vec<usize> = ids
            .iter()
            .copied()
            .filter(|&id| plan.nodes[id].userns)
            .collect();
        if !userns.is_empty() {
            let range = RealKernel.userns_range(plan, self.options.userns_range)?;
            let names: Vec<&str> = userns
                .iter()
                .map(|&id| plan.nodes[id].name.as_str())
                .collect();
            let claimed = state::claim_in(root, &plan.lab, &names, range)?;
            fault::step();
            for (&id, map) in userns.iter().zip(claimed) {
                maps[id] = Some(map);
            }
        }
        let cgrouped: Vec<(&str, &crate::spec::Limits)> = (ids.iter())
            .map(|&id| &plan.nodes[id])
            .filter(|n| n.kind == NodeKind::Node)
            .map(|n| (n.name.as_str(), &n.limits))
            .collect();
        let cgroups = match self.cgroups.take() {
            Some(cgroups) => cgroups,
            None => Cgroups::detect()?,
        };
        cgroups.create_lab(&plan.lab, &cgrouped)?;
        fault::step();
        let journal = &mut *self.journal;
        let zygote = match self.zygote.take() {
            Some(zygote) => zygote,
            None => Zygote::start(&plan.lab, self.options.init_exe.as_deref())?,
        };
        let pids = spawn_inits_on(zygote, plan, ids, &maps, &cgroups, &mut |id, pid| {
            journal.record(&[Entry::Init {
                node: plan.nodes[id].name.clone(),
                pid,
            }])?;
            fault::step();
            Ok(())
        })?;
        let named: Vec<(usize, i32)> = ids.iter().copied().zip(pids.iter().copied()).collect();
        name_namespaces(&RealKernel, plan, &named, journal, &self.options.progress)?;
        for (&id, pid) in ids.iter().zip(pids) {
            self.pids.insert(plan.nodes[id].name.clone(), pid);
        }
        Ok(())
    }

    async fn wire(&self, sockets: &Sockets) -> Result<(), LabError> {
        let (plan, diff) = (self.plan, self.diff);
        let lab = &plan.lab;
        for &id in &diff.add_nodes {
            let node = &plan.nodes[id];
            if node.kind == NodeKind::Bridge {
                let create = CreateBridge {
                    name: node.name.clone(),
                };
                create.execute(sockets.get(&node.name)?).await?;
                fault::step();
            }
        }
        let indexes = self.veth_indexes(sockets).await?;
        let alias = host_link_alias(lab);
        for (&link, pair) in diff.add_links.iter().zip(&indexes) {
            let ends = &plan.links[link].endpoints;
            let host_ends: Vec<Entry> = (ends.iter().filter(|e| e.place == Place::Host))
                .map(|e| Entry::HostLink {
                    name: e.ifname.clone(),
                })
                .collect();
            self.journal_entries(&host_ends)?;
            let end = |i: usize| VethEnd {
                name: ends[i].ifname.clone(),
                netns_pid: self.netns_pid(ends[i].place),
                mac: ends[i].mac,
                index: pair[i],
            };
            let create = CreateVeth {
                ends: [end(0), end(1)],
                mtu: plan.links[link].mtu,
                label: format!("link {}", plan.link_label(&plan.links[link])),
            };
            let made = create
                .execute(sockets.get(place_name(plan, ends[0].place))?)
                .await;
            if let Err(e) = made {
                // Not made: a host end of that name is someone else's.
                let retracted: Vec<Entry> = (host_ends.into_iter())
                    .map(|e| Entry::Retracted(Box::new(e)))
                    .collect();
                self.journal_entries(&retracted)?;
                return Err(e.into());
            }
            fault::step();
            for end in ends.iter().filter(|e| e.place == Place::Host) {
                let mark = MarkLink {
                    name: end.ifname.clone(),
                    alias: alias.clone(),
                };
                mark.execute(sockets.get(HOST)?).await?;
                fault::step();
            }
        }
        self.create_devices(sockets).await?;
        // One dump per namespace now that every link is there.
        let mut links: Links = HashMap::new();
        for place in sockets.places() {
            let dumped = sockets.links(&place).await?;
            links.insert(place, dumped);
        }
        self.configure_new_ends(sockets, &links).await?;
        self.change_ends(sockets, &links).await?;
        self.add_routes(sockets, &links).await?;
        self.wait_until_running(sockets).await?;
        Ok(())
    }

    /// `up` records entries from its own handle; `apply` has one journal.
    fn journal_entries(&self, entries: &[Entry]) -> Result<(), LabError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut journal = self.journal.try_clone()?;
        Ok(journal.record(entries)?)
    }

    /// A process in the place's net namespace.
    fn netns_pid(&self, place: Place) -> u32 {
        match place {
            Place::Host => std::process::id(),
            Place::Node(id) => self.pids[&self.plan.nodes[id].name] as u32,
        }
    }

    /// An ifindex for each end of each new link, the two of a pair never
    /// equal (see `up`'s `veth_indexes`: the kernel puts off the link
    /// events of such a pair by up to a second): above every index the
    /// node has now. Host ends are left to the kernel (0).
    async fn veth_indexes(&self, sockets: &Sockets) -> Result<Vec<[u32; 2]>, NetlinkError> {
        let plan = self.plan;
        let mut next: HashMap<&str, u32> = HashMap::new();
        for &link in &self.diff.add_links {
            for end in &plan.links[link].endpoints {
                let place = place_name(plan, end.place);
                if end.place == Place::Host || next.contains_key(place) {
                    continue;
                }
                let links = sockets.links(place).await?;
                let top = links.values().map(|l| l.index).max().unwrap_or(1);
                next.insert(place, top + 1);
            }
        }
        Ok(self
            .diff
            .add_links
            .iter()
            .map(|&link| {
                let mut pick = |i: usize| {
                    let end = &plan.links[link].endpoints[i];
                    if end.place == Place::Host {
                        return 0;
                    }
                    let counter = next.get_mut(place_name(plan, end.place)).expect("dumped");
                    next_end_index(counter, i)
                };
                [pick(0), pick(1)]
            })
            .collect())
    }

    /// Ports join their bridge; other new ends (of links and devices) get
    /// their addresses and come up, or stay down (`state: down`);
    /// impairments of new ends are set.
    async fn configure_new_ends(&self, sockets: &Sockets, links: &Links) -> Result<(), LabError> {
        let plan = self.plan;
        let clock = Psched::read();
        let link_ends = (self.diff.add_links.iter()).flat_map(|&link| {
            let mtu = plan.links[link].mtu_or_default();
            plan.links[link].endpoints.iter().map(move |end| (end, mtu))
        });
        let device_ends = (self.diff.add_devices.iter()).map(|&d| {
            let device = &plan.devices[d];
            (&device.end, device.mtu.unwrap_or(DEFAULT_MTU))
        });
        for (end, mtu) in link_ends.chain(device_ends) {
            self.configure_end(sockets, links, end, mtu, &clock).await?;
        }
        Ok(())
    }

    /// One new end: a port joins its bridge; another end gets its
    /// addresses and comes up; then its impairment and state.
    async fn configure_end(
        &self,
        sockets: &Sockets,
        links: &Links,
        end: &EndpointPlan,
        mtu: u32,
        clock: &Psched,
    ) -> Result<(), LabError> {
        let plan = self.plan;
        let place = place_name(plan, end.place);
        let socket = sockets.get(place)?;
        let links = &links[place];
        let label = plan.endpoint_label(end);
        let index = index_of(links, &end.ifname, &label)?;
        let bridge = match (end.place, &end.master) {
            (Place::Node(id), _) if plan.nodes[id].kind == NodeKind::Bridge => {
                Some(index_of(links, &plan.nodes[id].name, &label)?)
            }
            // A port of one of the host's own bridges.
            (Place::Host, Some(master)) => Some(index_of(links, master, &label)?),
            _ => None,
        };
        if let Some(bridge) = bridge {
            let attach = AttachPort {
                port: index,
                bridge,
                label: format!("bridge port {label}"),
            };
            attach.execute(socket).await?;
        } else {
            for address in &end.addresses {
                let add = AddAddress {
                    index,
                    address: *address,
                    label: label.clone(),
                };
                add.execute(socket).await?;
            }
            SetUp {
                index,
                label: label.clone(),
            }
            .execute(socket)
            .await?;
        }
        fault::step();
        if let Some(impair) = &end.impair
            && let Some(replace) = ReplaceRoot::for_plan(
                index,
                impair,
                mtu,
                Vec::new(),
                Previous::Default,
                label.clone(),
            )
        {
            replace.execute(socket, clock).await?;
            fault::step();
        }
        if end.state == LinkState::Down {
            let down = SetLinkState {
                index,
                state: LinkState::Down,
                label,
            };
            down.execute(socket).await?;
            fault::step();
        }
        Ok(())
    }

    /// Addresses, MTUs and states of ends that stay.
    async fn change_ends(&self, sockets: &Sockets, links: &Links) -> Result<(), LabError> {
        let plan = self.plan;
        for ((node, iface), changes) in &self.diff.ends {
            let socket = sockets.get(node)?;
            let links = &links[node.as_str()];
            let label = format!("{node}:{iface}");
            let index = index_of(links, iface, &label)?;
            for address in &changes.add_addresses {
                let add = AddAddress {
                    index,
                    address: *address,
                    label: label.clone(),
                };
                already_there(add.execute(socket).await)?;
                fault::step();
            }
            if let Some(state) = changes.state {
                let set = SetLinkState {
                    index,
                    state,
                    label: label.clone(),
                };
                set.execute(socket).await?;
                fault::step();
                if state == LinkState::Up {
                    restore(socket, index, &label, plan, node, iface).await?;
                }
            }
        }
        for &(link, mtu) in &self.diff.mtus {
            for end in &plan.links[link].endpoints {
                let place = place_name(plan, end.place);
                let label = plan.endpoint_label(end);
                let set = SetMtu {
                    index: index_of(&links[place], &end.ifname, &label)?,
                    mtu,
                    label,
                };
                set.execute(sockets.get(place)?).await?;
                fault::step();
            }
        }
        Ok(())
    }

    /// Every route of a new node; the added routes of a node that stays
    /// (one already there, after an `apply` that was killed, counts).
    async fn add_routes(&self, sockets: &Sockets, links: &Links) -> Result<(), LabError> {
        let plan = self.plan;
        let new =
            (self.diff.add_nodes.iter()).map(|&id| (&plan.nodes[id].name, &plan.nodes[id].routes));
        let changed = (self.diff.nodes.iter()).map(|(node, changes)| (node, &changes.add_routes));
        for (node, routes) in new.chain(changed) {
            if routes.is_empty() {
                continue;
            }
            let links = &links[node.as_str()];
            for route in routes {
                let label = format!("node {node}: route {}", route.text);
                let output_index = match &route.device {
                    Some(device) => Some(index_of(links, device, &label)?),
                    None => None,
                };
                let add = AddRoute::of(node, route, output_index);
                already_there(add.execute(sockets.get(node)?).await)?;
                fault::step();
            }
        }
        Ok(())
    }

    /// Waits until the new links' ends are operationally up (see `up`);
    /// a link with an end kept down never is.
    async fn wait_until_running(&self, sockets: &Sockets) -> Result<(), LabError> {
        let plan = self.plan;
        let devices = (self.diff.add_devices.iter()).map(|&d| &plan.devices[d].end);
        let mut pending: Vec<&EndpointPlan> = (self.diff.add_links.iter())
            .map(|&l| &plan.links[l])
            .filter(|l| l.endpoints.iter().all(|e| e.state == LinkState::Up))
            .flat_map(|l| &l.endpoints)
            .chain(devices.filter(|e| e.state == LinkState::Up))
            .collect();
        let deadline = Instant::now() + RUNNING_WITHIN;
        while !pending.is_empty() && Instant::now() < deadline {
            let mut still = Vec::new();
            for end in pending {
                let links = sockets.links(place_name(plan, end.place)).await?;
                if !links.get(&end.ifname).is_some_and(|l| l.passes()) {
                    still.push(end);
                }
            }
            pending = still;
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Ok(())
    }

    /// Impairments of node ends that stay, as `nslab impair` sets them.
    fn change_impairments(&self) -> Result<(), LabError> {
        for ((node, iface), changes) in &self.diff.ends {
            let Some(impair) = &changes.impair else {
                continue;
            };
            let running = RunningNode {
                lab: self.plan.lab.clone(),
                node: node.clone(),
                pid: self.pids[node.as_str()],
            };
            match impair {
                Some(impair) => drop(impair_set(&running, iface, impair)?),
                None => drop(impair_clear(&running, iface)?),
            }
            fault::step();
        }
        Ok(())
    }

    /// The sysctls of new nodes that name an interface (their inits wrote
    /// the others), and the changed ones of nodes that stay.
    fn write_sysctls(&self) -> Result<(), LabError> {
        let plan = self.plan;
        let interfaces = plan.interfaces_by_node();
        let late: Vec<(&str, Vec<Sysctl>)> = (self.diff.add_nodes.iter())
            .map(|&id| {
                (
                    plan.nodes[id].name.as_str(),
                    plan.sysctl_stages(id, &interfaces[id]).1,
                )
            })
            .collect();
        let changed = (self.diff.nodes.iter()).map(|(node, c)| (node.as_str(), &c.set_sysctls[..]));
        let work: Vec<LateSysctls<'_>> = (late.iter().map(|(node, s)| (*node, &s[..])))
            .chain(changed)
            .filter(|(_, sysctls)| !sysctls.is_empty())
            .map(|(node, sysctls)| LateSysctls {
                node,
                pid: self.pids[node],
                sysctls,
            })
            .collect();
        if work.is_empty() {
            return Ok(());
        }
        RealKernel.write_sysctls(work)?;
        fault::step();
        Ok(())
    }
}

/// The links of each namespace by name, per place (as [`Sockets`]).
type Links = HashMap<String, HashMap<String, LinkInfo>>;

fn index_of(
    links: &HashMap<String, LinkInfo>,
    name: &str,
    label: &str,
) -> Result<u32, NetlinkError> {
    links
        .get(name)
        .map(|l| l.index)
        .ok_or_else(|| NetlinkError::Missing(label.to_string()))
}
