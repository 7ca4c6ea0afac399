//! The first half of `apply`: what goes. Links of nodes that stay are
//! deleted from an end whose node stays (so their names are free at once),
//! and so are their devices; removed and rebuilt nodes end with their
//! inits and /run/netns names, which takes their namespaces and every
//! interface in them; then routes, addresses and sysctls of nodes that
//! stay. Whatever is already gone (after an `apply` that was killed) is
//! passed over.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::Sockets;
use crate::kernel::cgroup::Cgroups;
use crate::kernel::namespace::{NamespaceFds, remove_netns_name};
use crate::kernel::netlink::NetlinkError;
use crate::kernel::netlink::address::DeleteAddress;
use crate::kernel::netlink::link::DeleteLink;
use crate::kernel::netlink::route::{AddRoute, DeleteRoute};
use crate::kernel::process::{self, PinnedProcess, find_inits};
use crate::kernel::sysctl::{self, NodeSysctls, SYSCTL_NAMESPACES};
use crate::lab::{LabError, fault, host_link_alias, runtime};
use crate::plan::{LinkKey, Plan, netns_name};
use crate::spec::HOST;
use crate::state::{self, Entry, Recorded, STATE_ROOT, StateDir};

/// How long a removed node's init gets to exit on SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
/// How long a removed node's processes get to leave its cgroups.
const CGROUP_WAIT: Duration = Duration::from_secs(5);

pub(super) struct Removal<'a> {
    /// The plan being applied.
    pub plan: &'a Plan,
    pub diff: &'a crate::plan::PlanDiff,
    pub recorded: &'a Recorded,
    /// Init pids of the running nodes the change touches.
    pub pids: &'a HashMap<String, i32>,
    pub journal: &'a mut StateDir,
}

impl Removal<'_> {
    pub(super) fn run(&mut self) -> Result<(), LabError> {
        let diff = self.diff;
        let runtime = runtime()?;
        let host = (diff.remove_links.iter()).any(|(a, b)| a.0 == HOST || b.0 == HOST)
            || diff.ends.keys().any(|(node, _)| node == HOST);
        // One socket per namespace that stays, used before and after the
        // removed nodes end.
        let sockets = match !diff.remove_links.is_empty()
            || !diff.remove_devices.is_empty()
            || !diff.ends.is_empty()
            || !diff.nodes.is_empty()
        {
            true => Some(Sockets::open(runtime.handle(), self.pids, host)?),
            false => None,
        };
        if let Some(sockets) = &sockets {
            runtime.block_on(|| self.delete_links(sockets))?;
            runtime.block_on(|| self.delete_devices(sockets))?;
        }
        if !diff.remove_nodes.is_empty() {
            // One scan of /proc for every node to end.
            let found = find_inits(Some(&self.plan.lab)).map_err(|source| LabError::Io {
                what: "scan /proc".into(),
                source,
            })?;
            for node in &diff.remove_nodes {
                let pids = found.iter().filter(|i| &i.node == node).map(|i| i.pid);
                self.remove_node(node, pids.collect())?;
            }
        }
        if let Some(sockets) = &sockets {
            runtime.block_on(|| self.delete_routes_and_addresses(sockets))?;
        }
        self.reset_sysctls()
    }

    /// Deletes each link that goes from an end whose node stays (the pair
    /// goes at once, so its names are free). A host end is deleted only
    /// when it is the lab's: it carries the lab's mark, or the journal
    /// says the lab made it (an `apply` killed before marking it).
    async fn delete_links(&self, sockets: &Sockets) -> Result<(), NetlinkError> {
        let alias = host_link_alias(&self.plan.lab);
        let journaled: Vec<&String> = (self.recorded.standing().into_iter())
            .filter_map(|e| match e {
                Entry::HostLink { name } => Some(name),
                _ => None,
            })
            .collect();
        for key in &self.diff.remove_links {
            let Some((place, iface)) = self.staying_end(key) else {
                continue;
            };
            let links = sockets.links(place).await?;
            let Some(link) = links.get(iface.as_str()) else {
                continue;
            };
            let ours = link.alias.as_deref() == Some(alias.as_str()) || journaled.contains(&iface);
            if place == HOST && !ours {
                continue;
            }
            let delete = DeleteLink {
                index: link.index,
                label: format!("{place}:{iface}"),
            };
            delete.execute(sockets.get(place)?).await?;
            fault::step();
        }
        Ok(())
    }

    /// Deletes each device that goes from a node that stays (one already
    /// gone is passed over); a removed or rebuilt node's go with it.
    async fn delete_devices(&self, sockets: &Sockets) -> Result<(), NetlinkError> {
        for (node, iface) in &self.diff.remove_devices {
            if !self.pids.contains_key(node) {
                continue;
            }
            let links = sockets.links(node).await?;
            let Some(link) = links.get(iface) else {
                continue;
            };
            let delete = DeleteLink {
                index: link.index,
                label: format!("{node}:{iface}"),
            };
            delete.execute(sockets.get(node)?).await?;
            fault::step();
        }
        Ok(())
    }

    /// An end of `key` whose node is neither removed nor rebuilt; a
    /// node's end before the host's (a node's interfaces are all the
    /// lab's).
    fn staying_end<'k>(&self, key: &'k LinkKey) -> Option<(&'k str, &'k String)> {
        let ends = [&key.0, &key.1];
        let node = ends
            .into_iter()
            .find(|(node, _)| self.pids.contains_key(node.as_str()));
        node.or_else(|| ends.into_iter().find(|(node, _)| node == HOST))
            .map(|(node, iface)| (node.as_str(), iface))
    }

    /// Ends a node: its init (and with it its pid namespace), its
    /// /run/netns name (and with it its net namespace), its cgroups and
    /// its id block.
    /// `found`: its inits that /proc shows (for those the journal lost).
    fn remove_node(&mut self, node: &str, found: Vec<i32>) -> Result<(), LabError> {
        let lab = self.plan.lab.as_str();
        let mut pids: Vec<i32> = (self.recorded.init_pids().into_iter())
            .filter(|(n, _)| n == node)
            .map(|(_, pid)| pid)
            .collect();
        pids.extend(found);
        pids.sort_unstable();
        pids.dedup();
        let mut pinned = Vec::new();
        for pid in pids {
            let pin = PinnedProcess::pin_init(pid, lab, node).map_err(|source| LabError::Io {
                what: format!("pin the init of {lab}/{node}"),
                source,
            })?;
            pinned.extend(pin);
        }
        self.journal.record(&[Entry::Removed {
            node: node.to_string(),
        }])?;
        let count = pinned.len();
        let (ended, errors) = process::terminate(pinned, GRACE);
        if ended != count {
            return Err(LabError::Teardown {
                lab: lab.into(),
                errors,
            });
        }
        fault::step();
        remove_netns_name(&netns_name(lab, node))?;
        fault::step();
        Cgroups::detect()?.remove_node(lab, node, CGROUP_WAIT)?;
        state::release_nodes_in(Path::new(STATE_ROOT), lab, &[node])?;
        Ok(())
    }

    /// Routes and addresses the new plan no longer has, on nodes that
    /// stay. One the kernel already removed (with its link) is passed over.
    async fn delete_routes_and_addresses(&self, sockets: &Sockets) -> Result<(), NetlinkError> {
        for (node, changes) in &self.diff.nodes {
            if changes.remove_routes.is_empty() {
                continue;
            }
            let links = sockets.links(node).await?;
            for route in &changes.remove_routes {
                let output_index = match &route.device {
                    Some(device) => match links.get(device) {
                        Some(link) => Some(link.index),
                        // Gone with its device.
                        None => continue,
                    },
                    None => None,
                };
                let delete = DeleteRoute(AddRoute::of(node, route, output_index));
                delete.execute(sockets.get(node)?).await?;
                fault::step();
            }
        }
        for ((node, iface), changes) in &self.diff.ends {
            if changes.remove_addresses.is_empty() {
                continue;
            }
            let links = sockets.links(node).await?;
            let Some(link) = links.get(iface) else {
                continue;
            };
            for address in &changes.remove_addresses {
                let delete = DeleteAddress {
                    index: link.index,
                    address: *address,
                    label: format!("{node}:{iface}"),
                };
                delete.execute(sockets.get(node)?).await?;
                fault::step();
            }
        }
        Ok(())
    }

    /// Sysctls the new plan no longer sets go back to a new node's value.
    fn reset_sysctls(&self) -> Result<(), LabError> {
        let mut work = Vec::new();
        let mut values = Vec::new();
        for (node, changes) in &self.diff.nodes {
            if changes.reset_sysctls.is_empty() {
                continue;
            }
            values.push((node, sysctl::fresh_values(node, &changes.reset_sysctls)?));
        }
        for (node, fresh) in &values {
            let pid = self.pids[node.as_str()];
            let namespaces =
                NamespaceFds::open(pid, &SYSCTL_NAMESPACES).map_err(|source| LabError::Io {
                    what: format!("open the namespaces of node {node}"),
                    source,
                })?;
            work.push(NodeSysctls {
                node,
                namespaces,
                sysctls: fresh,
            });
        }
        if !work.is_empty() {
            sysctl::write_all(work)?;
            fault::step();
        }
        Ok(())
    }
}
