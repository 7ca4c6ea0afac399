//! What a lab needs of the host, checked and made by `up`: the host's
//! bridges its ends join must exist, the host's addresses on the
//! management network must not be in a subnet the host has (a second lab
//! on containerlab's default management subnet would otherwise take over
//! the first one's route), and the sockets of the forwarded ports
//! (`ports:`) are bound before anything is built, their relays started
//! once the lab is wired.

use std::os::fd::OwnedFd;
use std::path::Path;

use ipnet::IpNet;
use std::collections::BTreeSet;

use super::LabError;
use crate::kernel::forward;
use crate::kernel::netlink::address::{AddressInfo, dump_addresses};
use crate::kernel::netlink::link::{LinkInfo, dump_links};
use crate::plan::{LinkPlan, Plan};

/// What `up` (and `apply`, for what it adds) needs of the host before it
/// builds anything: the host's bridges that the ends of `links` join exist
/// and are bridges, and (when `mgmt`) the addresses of the management
/// network's host interface are in no subnet the host has (or the other
/// way round). The lab's own management interface is not compared: it is
/// there only when `apply` changes its addresses. The file's own `host:`
/// ends are the user's to address as they like, and may share a subnet
/// across labs.
pub(crate) fn check_host<'a>(
    plan: &Plan,
    links: impl IntoIterator<Item = &'a LinkPlan>,
    mgmt: bool,
) -> Result<(), LabError> {
    let masters: BTreeSet<&str> = (links.into_iter().flat_map(|l| &l.endpoints))
        .filter_map(|e| e.master.as_deref())
        .collect();
    let mgmt = plan.mgmt.as_ref().filter(|_| mgmt);
    if mgmt.is_none() && masters.is_empty() {
        return Ok(());
    }
    let (links, addresses) = host_links_and_addresses()?;
    for master in masters {
        match links.iter().find(|l| l.name == master) {
            Some(l) if l.kind.as_deref() == Some("bridge") => {}
            Some(_) => {
                return Err(LabError::HostConflict(format!(
                    "the host's {master} is not a bridge; a `kind: bridge` node with `host-bridge: true` names one of the host's bridges"
                )));
            }
            None => {
                return Err(LabError::HostConflict(format!(
                    "the host has no bridge {master} (`host-bridge: true`): make it first, as containerlab expects (ip link add {master} type bridge), or drop `host-bridge` to have the lab make a bridge of its own"
                )));
            }
        }
    }
    let Some(mgmt) = mgmt else {
        return Ok(());
    };
    let iface = mgmt.host_iface.as_str();
    let own = links.iter().find(|l| l.name == iface).map(|l| l.index);
    let link_local = |n: &IpNet| match n {
        IpNet::V6(v6) => v6.addr().segments()[0] & 0xffc0 == 0xfe80,
        IpNet::V4(v4) => v4.addr().is_link_local(),
    };
    for mine in mgmt.ipv4.iter().chain(&mgmt.ipv6) {
        for theirs in addresses.iter().filter(|a| Some(a.index) != own) {
            let other = theirs.address;
            if link_local(&other) || link_local(mine) {
                continue;
            }
            if mine.contains(&other.addr()) || other.contains(&mine.addr()) {
                let name = (links.iter())
                    .find(|l| l.index == theirs.index)
                    .map_or_else(|| format!("interface {}", theirs.index), |l| l.name.clone());
                return Err(LabError::HostConflict(format!(
                    "the management network's host:{iface} would get {mine}, but the host's {name} has {other} in the same subnet (another lab's management network? give this one its own: mgmt: {{ipv4-subnet: ..., ipv6-subnet: ...}})"
                )));
            }
        }
    }
    Ok(())
}

/// The host's links and addresses, over a netlink socket of this thread's
/// (the host's) net namespace.
fn host_links_and_addresses() -> Result<(Vec<LinkInfo>, Vec<AddressInfo>), LabError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LabError::Runtime)?;
    runtime.block_on(async {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|source| LabError::Io {
                what: "open a netlink socket in the host".into(),
                source,
            })?;
        tokio::spawn(connection);
        let links = dump_links(&handle, "the host namespace").await?;
        let addresses = dump_addresses(&handle, "the host namespace").await?;
        Ok((links, addresses))
    })
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
