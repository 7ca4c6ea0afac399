//! `link`: set one interface of a running node (`LAB/NODE:IFACE`)
//! administratively up or down, over a netlink socket opened in the node's
//! net namespace. A veth end set down takes its peer's carrier with it.

use super::LabError;
use super::impair::{Target, with_interface};
use super::running::RunningNode;
use crate::kernel::netlink::address::AddAddress;
use crate::kernel::netlink::link::SetLinkState;
use crate::kernel::netlink::route::AddRoute;
use crate::kernel::netlink::{NetlinkError, errno};
use crate::plan::{Place, Plan};
use crate::spec::LinkState;

/// Sets the interface `iface` of a running node up or down, in one
/// request. Setting an end down makes the kernel drop its IPv6 addresses
/// and every route through it; setting it up puts back what `plan` (the
/// lab's) gives them, so a link that went down and up again carries what
/// it did before.
pub(crate) fn link_set(
    node: &RunningNode,
    plan: Option<&Plan>,
    iface: &str,
    state: LinkState,
) -> Result<(), LabError> {
    with_interface(node, iface, async |target: Target| {
        SetLinkState {
            index: target.index,
            state,
            label: target.label.clone(),
        }
        .execute(&target.socket)
        .await?;
        if let (LinkState::Up, Some(plan)) = (state, plan) {
            restore(&target, plan, &node.node, iface).await?;
        }
        Ok(())
    })
}

/// Adds back the planned addresses of `iface` and the node's routes that
/// may go through it. What is still there is left (EEXIST), and so is a
/// route whose gateway lies behind another link that is down.
async fn restore(target: &Target, plan: &Plan, node: &str, iface: &str) -> Result<(), LabError> {
    let Some(id) = plan.nodes.iter().position(|n| n.name == node) else {
        return Ok(());
    };
    let end = plan
        .links
        .iter()
        .flat_map(|l| &l.endpoints)
        .find(|e| e.place == Place::Node(id) && e.ifname == iface);
    for address in end.iter().flat_map(|e| &e.addresses) {
        let add = AddAddress {
            index: target.index,
            address: *address,
            label: target.label.clone(),
        };
        tolerate(add.execute(&target.socket).await, &[libc::EEXIST])?;
    }
    for route in &plan.nodes[id].routes {
        let output_index = match &route.device {
            Some(device) if device != iface => continue,
            Some(_) => Some(target.index),
            None => None,
        };
        let add = AddRoute {
            destination: route.destination,
            gateway: route.gateway,
            output_index,
            metric: route.metric,
            label: format!("node {}: route {}", node, route.text),
        };
        tolerate(
            add.execute(&target.socket).await,
            &ROUTE_THERE_OR_BEHIND_A_DOWN_LINK,
        )?;
    }
    Ok(())
}

/// A route added again that is there already, or whose gateway lies
/// behind a link that is down.
pub(super) const ROUTE_THERE_OR_BEHIND_A_DOWN_LINK: [i32; 4] = [
    libc::EEXIST,
    libc::ENETUNREACH,
    libc::EHOSTUNREACH,
    libc::ENETDOWN,
];

/// `result`, with a refusal for one of the `errnos` counted as success.
pub(super) fn tolerate(
    result: Result<(), NetlinkError>,
    errnos: &[i32],
) -> Result<(), NetlinkError> {
    match result {
        Err(NetlinkError::Request { source, .. })
            if errno(&source).is_some_and(|e| errnos.contains(&e)) =>
        {
            Ok(())
        }
        other => other,
    }
}
