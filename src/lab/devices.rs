//! Devices (macvlan, vxlan, dummy interfaces of nodes) in the kernel, for
//! `up` and `apply`: the check that their parents are there before
//! anything is built, and the request that makes each. Nothing is marked
//! on the host: a device lives in its node's net namespace and the kernel
//! deletes it with that namespace, whatever ends the lab.

use std::ffi::CString;

use super::LabError;
use super::seam::Request;
use crate::kernel::netlink::link::{CreateDummy, CreateMacvlan, CreateVxlan, NewDevice};
use crate::plan::{DevicePlan, Place, Plan};
use crate::spec::DeviceKind;

/// Fails, naming it, when the parent of one of `devices` (a macvlan's, a
/// vxlan's that names one) is not an interface of the host: found here,
/// nothing of the lab is built yet. Looked up from the calling thread,
/// which is in the host's net namespace.
pub(crate) fn check_parents<'a>(
    plan: &Plan,
    devices: impl IntoIterator<Item = &'a DevicePlan>,
) -> Result<(), LabError> {
    for device in devices {
        // A cross-host link's end is sent from its host's underlay
        // address: a part built on another machine is refused here.
        if let DeviceKind::Vxlan {
            local: Some(local), ..
        } = &device.kind
            && !host_has_address(*local)
        {
            return Err(LabError::HostConflict(format!(
                "{}: this host has no address {local}, the underlay address of its tunnel (was the part sent to the host its `hosts:` entry names?)",
                plan.device_label(device)
            )));
        }
        let Some(parent) = device.kind.parent() else {
            continue;
        };
        if host_index(parent).is_none() {
            return Err(LabError::MissingParent {
                device: plan.device_label(device),
                parent: parent.to_owned(),
                kind: device.kind.name(),
            });
        }
    }
    Ok(())
}

/// Whether an interface of the host has `address`.
fn host_has_address(address: std::net::IpAddr) -> bool {
    let Ok(addresses) = nix::ifaddrs::getifaddrs() else {
        return false;
    };
    addresses.filter_map(|a| a.address).any(|a| {
        let v4 = a.as_sockaddr_in().map(|s| std::net::IpAddr::V4(s.ip()));
        let v6 = a.as_sockaddr_in6().map(|s| std::net::IpAddr::V6(s.ip()));
        v4.or(v6) == Some(address)
    })
}

/// The ifindex of the host's interface `name`, if there is one.
fn host_index(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call,
    // which only reads it.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

/// The request that makes `device`, whose node's init is `pid`. A device
/// that uses the host ([`DeviceKind::uses_host`]) is asked for on the
/// host's socket and born in the node's namespace, its parent found by
/// `host_index` (the host's interfaces by name); a dummy is asked for on
/// the node's own socket.
pub(crate) fn create_request(
    plan: &Plan,
    device: &DevicePlan,
    pid: u32,
    host_index: impl Fn(&str) -> Option<u32>,
) -> Result<Request, LabError> {
    let label = plan.device_label(device);
    let new = NewDevice {
        name: device.end.ifname.clone(),
        netns_pid: device.kind.uses_host().then_some(pid),
        mac: device.end.mac,
        mtu: device.mtu,
        label: label.clone(),
    };
    let index = |parent: &str| {
        host_index(parent).ok_or_else(|| LabError::MissingParent {
            device: label.clone(),
            parent: parent.to_owned(),
            kind: device.kind.name(),
        })
    };
    Ok(match &device.kind {
        DeviceKind::Macvlan { parent, mode } => Request::CreateMacvlan(CreateMacvlan {
            parent: index(parent)?,
            mode: *mode,
            device: new,
        }),
        DeviceKind::Vxlan {
            remote,
            vni,
            port,
            source_port,
            parent,
            local,
        } => Request::CreateVxlan(CreateVxlan {
            local: *local,
            vni: *vni,
            remote: *remote,
            port: *port,
            source_port: *source_port,
            underlay: parent.as_deref().map(index).transpose()?,
            device: new,
        }),
        DeviceKind::Dummy => Request::CreateDummy(CreateDummy { device: new }),
    })
}

/// The place whose socket asks for `device`: the host's when it uses the
/// host, else its node's.
pub(crate) fn asked_from(device: &DevicePlan) -> Place {
    match device.kind.uses_host() {
        true => Place::Host,
        false => device.end.place,
    }
}

/// Whether any of `devices` names a parent, so that the host's interfaces
/// must be read first.
pub(crate) fn need_host_indexes<'a>(devices: impl IntoIterator<Item = &'a DevicePlan>) -> bool {
    devices.into_iter().any(|d| d.kind.parent().is_some())
}
