//! `up`'s devices (macvlan, vxlan, dummy interfaces of nodes): made after
//! the veth pairs, then given their addresses and brought up as the other
//! ends of the node are. A macvlan or vxlan is asked for on the host's
//! socket (its parent or tunnel is there) and born in its node; a dummy
//! on the node's own. Their roll-back is their nodes': the kernel deletes
//! them with the net namespace.

use std::collections::HashMap;

use super::{Indexes, Wiring, in_flight, missing};
use crate::kernel::netlink::NetlinkError;
use crate::kernel::netlink::address::AddAddress;
use crate::kernel::netlink::link::{AttachPort, SetUp};
use crate::lab::LabError;
use crate::lab::devices::{asked_from, create_request, need_host_indexes};
use crate::lab::seam::{Kernel, Request};
use crate::plan::Place;
use crate::spec::NodeKind;

impl<K: Kernel> Wiring<'_, K> {
    /// Makes every device, many in flight at once.
    pub(super) async fn create_devices(&self) -> Result<(), LabError> {
        let devices = &self.plan.devices;
        if devices.is_empty() {
            return Ok(());
        }
        // Parents by name: one dump of the host's links.
        let host: HashMap<String, u32> = match need_host_indexes(devices) {
            true => (self.kernel)
                .dump_links(self.socket(Place::Host), "the host namespace")
                .await?
                .into_iter()
                .map(|l| (l.name, l.index))
                .collect(),
            false => HashMap::new(),
        };
        let mut requests = Vec::with_capacity(devices.len());
        for device in devices {
            let Place::Node(id) = device.end.place else {
                continue;
            };
            let pid = self.pids[id] as u32;
            let request = create_request(self.plan, device, pid, |p| host.get(p).copied())?;
            let socket = self.socket(asked_from(device));
            requests.push(self.kernel.request(socket, request));
        }
        Ok(in_flight(self.progress, "devices", requests).await?)
    }

    /// Each device's addresses, then up (a device kept down, `state:
    /// down`, is set down with the links' ends later).
    pub(super) async fn configure_devices(&self, indexes: &Indexes) -> Result<(), NetlinkError> {
        let mut requests = Vec::new();
        for end in self.plan.devices.iter().map(|d| &d.end) {
            let label = self.plan.endpoint_label(end);
            let index = indexes
                .get(end.place, &end.ifname)
                .ok_or_else(|| missing(&label))?;
            let (kernel, socket) = (self.kernel, self.socket(end.place));
            // A bridge's device (a cross-host link's end) is one of its
            // ports, as a veth end there is.
            let bridge = match end.place {
                Place::Node(id) if self.plan.nodes[id].kind == NodeKind::Bridge => {
                    let name = &self.plan.nodes[id].name;
                    Some(
                        indexes
                            .get(end.place, name)
                            .ok_or_else(|| missing(&label))?,
                    )
                }
                _ => None,
            };
            requests.push(async move {
                if let Some(bridge) = bridge {
                    let attach = AttachPort {
                        port: index,
                        bridge,
                        label: format!("bridge port {label}"),
                    };
                    kernel.request(socket, Request::AttachPort(attach)).await?;
                }
                for address in &end.addresses {
                    let add = AddAddress {
                        index,
                        address: *address,
                        label: label.clone(),
                    };
                    kernel.request(socket, Request::AddAddress(add)).await?;
                }
                let up = SetUp { index, label };
                kernel.request(socket, Request::SetUp(up)).await
            });
        }
        in_flight(self.progress, "device addresses", requests).await
    }
}
