//! The host's side of a lab's management network, checked and made by
//! `up`: the host's addresses on it must not be in a subnet the host has
//! (a second lab on containerlab's default management subnet would
//! otherwise take over the first one's route), and the sockets of the
//! forwarded ports (`ports:`) are bound before anything is built, their
//! relays started once the lab is wired.

use std::os::fd::OwnedFd;
use std::path::Path;

use futures::TryStreamExt;
use ipnet::IpNet;

use super::LabError;
use crate::kernel::forward;
use crate::kernel::netlink::address::dump_addresses;
use crate::plan::Plan;

/// Fails, naming both, when an address of the management network's host
/// interface is in a subnet the host already has (or the other way round).
/// (The file's own `host:` link ends are the user's to address as they
/// like, and may share a subnet across labs.)
pub(crate) fn check_host_addresses(plan: &Plan) -> Result<(), LabError> {
    let Some(mgmt) = &plan.mgmt else {
        return Ok(());
    };
    let iface = mgmt.host_iface.as_str();
    let ours: Vec<IpNet> = mgmt.ipv4.into_iter().chain(mgmt.ipv6).collect();
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| LabError::Io { what, source }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LabError::Runtime)?;
    let theirs = runtime.block_on(async {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(io("open a netlink socket in the host"))?;
        tokio::spawn(connection);
        let addresses = dump_addresses(&handle, "the host").await?;
        let names: Vec<(u32, String)> = handle
            .link()
            .get()
            .execute()
            .try_filter_map(|m| async move {
                let name = m.attributes.iter().find_map(|a| match a {
                    rtnetlink::packet_route::link::LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                });
                Ok(name.map(|n| (m.header.index, n)))
            })
            .try_collect()
            .await
            .map_err(crate::kernel::netlink::NetlinkError::request(
                "list the host's links".to_owned(),
            ))?;
        Ok::<_, LabError>((addresses, names))
    })?;
    let (addresses, names) = theirs;
    for mine in &ours {
        for theirs in &addresses {
            let other = theirs.address;
            let link_local = |n: &IpNet| match n {
                IpNet::V6(v6) => v6.addr().segments()[0] & 0xffc0 == 0xfe80,
                IpNet::V4(v4) => v4.addr().is_link_local(),
            };
            if link_local(&other) || link_local(mine) {
                continue;
            }
            if mine.contains(&other.addr()) || other.contains(&mine.addr()) {
                let name = (names.iter())
                    .find(|(i, _)| *i == theirs.index)
                    .map_or_else(|| format!("interface {}", theirs.index), |(_, n)| n.clone());
                return Err(LabError::HostConflict(format!(
                    "the management network's host:{iface} would get {mine}, but the host's {name} has {other} in the same subnet (another lab's management network? give this one its own: mgmt: {{ipv4-subnet: ..., ipv6-subnet: ...}})"
                )));
            }
        }
    }
    Ok(())
}

/// Binds the host's socket of every forwarded port, in plan order.
pub(crate) fn bind_ports(plan: &Plan) -> Result<Vec<OwnedFd>, LabError> {
    let Some(mgmt) = &plan.mgmt else {
        return Ok(Vec::new());
    };
    (mgmt.ports.iter())
        .map(|p| {
            forward::bind_socket(p.listen, p.protocol).map_err(|source| LabError::Io {
                what: format!("forward {}/{} to node {}", p.listen, p.protocol, p.node),
                source,
            })
        })
        .collect()
}

/// Starts the relay of each forwarded port with its socket, in the pid
/// namespace of `holder` (the management bridge's init).
pub(crate) fn start_relays(
    plan: &Plan,
    exe: Option<&Path>,
    holder: i32,
    sockets: Vec<OwnedFd>,
) -> Result<(), LabError> {
    let Some(mgmt) = &plan.mgmt else {
        return Ok(());
    };
    let exe = crate::kernel::init::executable(exe);
    for (port, socket) in mgmt.ports.iter().zip(sockets) {
        let label = format!("{}/{}", plan.lab, port.node);
        forward::start(&exe, holder, &label, socket, port.to, port.protocol).map_err(|source| {
            LabError::Io {
                what: format!("start the relay of {port}"),
                source,
            }
        })?;
    }
    Ok(())
}
