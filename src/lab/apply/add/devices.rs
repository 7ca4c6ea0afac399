//! `apply`'s new devices (and those made again because they changed):
//! made after the new links, as `up` makes them, one request each; their
//! ends are then configured with the links' (`configure_new_ends`).

use std::collections::HashMap;

use super::{Addition, Sockets, place_name};
use crate::lab::LabError;
use crate::lab::devices::{asked_from, create_request, need_host_indexes};
use crate::lab::fault;
use crate::lab::seam::{Kernel, RealKernel};
use crate::plan::Place;
use crate::spec::HOST;

impl Addition<'_> {
    pub(super) async fn create_devices(&self, sockets: &Sockets) -> Result<(), LabError> {
        let plan = self.plan;
        let devices: Vec<_> = (self.diff.add_devices.iter())
            .map(|&d| &plan.devices[d])
            .collect();
        if devices.is_empty() {
            return Ok(());
        }
        let host: HashMap<String, u32> = match need_host_indexes(devices.iter().copied()) {
            true => (sockets.links(HOST).await?.into_iter())
                .map(|(name, link)| (name, link.index))
                .collect(),
            false => HashMap::new(),
        };
        for device in devices {
            let Place::Node(id) = device.end.place else {
                continue;
            };
            let pid = self.pids[&plan.nodes[id].name] as u32;
            let request = create_request(plan, device, pid, |p| host.get(p).copied())?;
            let socket = sockets.get(place_name(plan, asked_from(device)))?;
            RealKernel.request(socket, request).await?;
            fault::step();
        }
        Ok(())
    }
}
