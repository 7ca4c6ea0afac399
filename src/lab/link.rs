//! `link`: set one interface of a running node (`LAB/NODE:IFACE`)
//! administratively up or down, over a netlink socket opened in the node's
//! net namespace. A veth end set down takes its peer's carrier with it.

use ipnet::IpNet;
use rtnetlink::Handle;

use super::LabError;
use super::impair::{Target, with_interface};
use super::running::RunningNode;
use crate::kernel::netlink::address::AddAddress;
use crate::kernel::netlink::link::SetLinkState;
use crate::kernel::netlink::route::AddRoute;
use crate::kernel::netlink::{NetlinkError, errno};
use crate::plan::{Place, Plan};
use crate::spec::{LinkState, Route};

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
            restore(
                &target.socket,
                target.index,
                &target.label,
                plan,
                &node.node,
                iface,
            )
            .await?;
        }
        Ok(())
    })
}

/// Adds back the planned addresses of `iface` and the node's routes that
/// may go through it (`node` is `host` for a link's host end: addresses
/// only). What is still there is left (EEXIST), and so is a route whose
/// gateway lies behind another link that is down.
pub(super) async fn restore(
    socket: &Handle,
    index: u32,
    label: &str,
    plan: &Plan,
    node: &str,
    iface: &str,
) -> Result<(), NetlinkError> {
    let id = plan.nodes.iter().position(|n| n.name == node);
    let place = match id {
        Some(id) => Place::Node(id),
        None if node == crate::spec::HOST => Place::Host,
        None => return Ok(()),
    };
    let end = plan.ends().find(|e| e.place == place && e.ifname == iface);
    if let Some(end) = end {
        put_back_addresses(socket, index, label, &end.addresses).await?;
    }
    let Some(id) = id else { return Ok(()) };
    for route in &plan.nodes[id].routes {
        let output_index = match &route.device {
            Some(device) if device != iface => continue,
            Some(_) => Some(index),
            None => None,
        };
        put_back_route(socket, node, route, output_index).await?;
    }
    Ok(())
}

/// Adds `addresses` to the link `index` again; one still there is left.
pub(super) async fn put_back_addresses(
    socket: &Handle,
    index: u32,
    label: &str,
    addresses: &[IpNet],
) -> Result<(), NetlinkError> {
    for address in addresses {
        let add = AddAddress {
            index,
            address: *address,
            label: label.to_string(),
        };
        tolerate(add.execute(socket).await, &[libc::EEXIST])?;
    }
    Ok(())
}

/// Adds a route of `node` again (through `output_index`, when it names a
/// device); one still there, or whose gateway lies behind a link that is
/// down, is left.
pub(super) async fn put_back_route(
    socket: &Handle,
    node: &str,
    route: &Route,
    output_index: Option<u32>,
) -> Result<(), NetlinkError> {
    let add = AddRoute::of(node, route, output_index);
    tolerate(
        add.execute(socket).await,
        &ROUTE_THERE_OR_BEHIND_A_DOWN_LINK,
    )
}

/// `result`, with a route or address that is there already counted as
/// added.
pub(super) fn already_there(result: Result<(), NetlinkError>) -> Result<(), NetlinkError> {
    tolerate(result, &[libc::EEXIST])
}

/// A route added again that is there already, or whose gateway lies
/// behind a link that is down.
const ROUTE_THERE_OR_BEHIND_A_DOWN_LINK: [i32; 4] = [
    libc::EEXIST,
    libc::ENETUNREACH,
    libc::EHOSTUNREACH,
    libc::ENETDOWN,
];

/// `result`, with a refusal for one of the `errnos` counted as success.
fn tolerate(result: Result<(), NetlinkError>, errnos: &[i32]) -> Result<(), NetlinkError> {
    match result {
        Err(NetlinkError::Request { source, .. })
            if errno(&source).is_some_and(|e| errnos.contains(&e)) =>
        {
            Ok(())
        }
        other => other,
    }
}
