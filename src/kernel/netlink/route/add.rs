//! Adding a static route.

use ipnet::IpNet;
use rtnetlink::packet_route::route::RouteMessage;
use rtnetlink::{Handle, RouteMessageBuilder};
use std::net::IpAddr;

use crate::kernel::netlink::NetlinkError;
use crate::spec::Route;

#[derive(Debug, Clone)]
pub(crate) struct AddRoute {
    pub destination: IpNet,
    pub gateway: Option<IpAddr>,
    pub output_index: Option<u32>,
    pub metric: Option<u32>,
    /// How the route is named in errors, e.g. `node h1: route default via 10.0.1.1`.
    pub label: String,
}

impl AddRoute {
    /// A node's planned route (through `output_index` when it names a
    /// device), labelled `node NODE: route TEXT`.
    pub(crate) fn of(node: &str, route: &Route, output_index: Option<u32>) -> AddRoute {
        AddRoute {
            destination: route.destination,
            gateway: route.gateway,
            output_index,
            metric: route.metric,
            label: format!("node {node}: route {}", route.text),
        }
    }

    pub(crate) async fn execute(self, handle: &Handle) -> Result<(), NetlinkError> {
        let message = self.message()?;
        handle
            .route()
            .add(message)
            .execute()
            .await
            .map_err(NetlinkError::request(self.label))
    }

    /// The RTM_NEWROUTE message (a delete sends the same with
    /// RTM_DELROUTE).
    pub(crate) fn message(&self) -> Result<RouteMessage, NetlinkError> {
        let fail = |reason: String| NetlinkError::Request {
            what: self.label.clone(),
            source: rtnetlink::Error::InvalidNla(reason),
        };
        let mut builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(self.destination.addr(), self.destination.prefix_len())
            .map_err(|e| fail(e.to_string()))?;
        if let Some(gateway) = self.gateway {
            builder = builder.gateway(gateway).map_err(|e| fail(e.to_string()))?;
        } else {
            // A route with only a device is on-link.
            builder = builder.scope(rtnetlink::packet_route::route::RouteScope::Link);
        }
        if let Some(index) = self.output_index {
            builder = builder.output_interface(index);
        }
        if let Some(metric) = self.metric {
            builder = builder.priority(metric);
        }
        Ok(builder.build())
    }
}
