//! Topology → plan.

use std::path::Path;

use super::{EndpointPlan, LinkPlan, Place, Plan};
use crate::spec::{Endpoint, HOST, Topology};
use crate::topology::TopologyError;

impl Plan {
    /// Loads and validates a topology file and builds its plan, with the
    /// file's path made absolute: the lab's state outlives the caller's
    /// working directory.
    pub fn from_file(path: &Path) -> Result<Plan, TopologyError> {
        let mut plan = Plan::from_owned(crate::topology::load(path)?);
        plan.source = plan.source.and_then(|p| std::path::absolute(p).ok());
        Ok(plan)
    }

    /// Builds the plan of a validated topology. Infallible: every rule was
    /// checked by [`crate::topology::load`] / [`crate::topology::parse_str`].
    pub fn from_topology(t: &Topology) -> Plan {
        Plan {
            lab: t.name.clone(),
            source: Some(t.source.clone()),
            nodes: t.nodes.values().cloned().collect(),
            links: links_of(t),
            devices: super::devices::devices_of(t),
            expect: t.expect.clone(),
            scenario: t.scenario.clone(),
            lab_dir: t.lab_dir.clone(),
            lab_files: t.lab_files.clone(),
            notes: t.notes.clone(),
            mgmt: t.mgmt.clone(),
            container_prefix: t.container_prefix.clone(),
            remote_names: Vec::new(),
            spread: t.spread.clone(),
        }
    }

    /// [`Plan::from_topology`], taking the topology's parts rather than
    /// copying them (a 1000-node file's nodes cost a millisecond to copy).
    fn from_owned(t: Topology) -> Plan {
        let links = links_of(&t);
        let devices = super::devices::devices_of(&t);
        Plan {
            spread: t.spread,
            lab: t.name,
            source: Some(t.source),
            nodes: t.nodes.into_values().collect(),
            links,
            devices,
            expect: t.expect,
            scenario: t.scenario,
            lab_dir: t.lab_dir,
            lab_files: t.lab_files,
            notes: t.notes,
            mgmt: t.mgmt,
            container_prefix: t.container_prefix,
            remote_names: Vec::new(),
        }
    }
}

/// The links of a validated topology, their ends placed by node id.
fn links_of(t: &Topology) -> Vec<LinkPlan> {
    let endpoint = |e: &Endpoint| EndpointPlan {
        place: if e.node == HOST {
            Place::Host
        } else {
            // Validation guarantees the node exists; fall back to the host
            // would be wrong, so an unknown node is a bug upstream.
            Place::Node(t.nodes.get_index_of(&e.node).unwrap_or(usize::MAX))
        },
        ifname: e.iface.clone(),
        addresses: e.ipv4.iter().chain(e.ipv6.iter()).copied().collect(),
        mac: e.mac,
        impair: e.impair,
        state: e.state,
        master: e.master.clone(),
    };
    t.links
        .iter()
        .map(|l| LinkPlan {
            endpoints: [endpoint(&l.endpoints[0]), endpoint(&l.endpoints[1])],
            mtu: l.mtu,
        })
        .collect()
}
