//! containerlab's single-ended links in nslab's form (a device, see
//! `topology::devices`): `type: macvlan` (`host-interface`, `mode`), a
//! brief link with a `macvlan:PARENT` end, `type: vxlan` (`remote`, `vni`,
//! `dst-port` or its older name `udp-port`, `src-port`,
//! `parent-interface`) and `type: dummy`. Problems found later name the
//! keys the file used ([`DeviceKeys`]).

use std::collections::HashSet;

use super::super::Problem;
use super::super::devices::DeviceKeys;
use super::super::model::{EndpointModel, LinkModel, MacvlanModel, Seq, Text, VxlanModel};
use super::links::{DEFAULT_MTU, end_text};

/// How a link of a containerlab file is a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// `type: macvlan|vxlan|dummy` with an `endpoint`.
    Typed(&'static str),
    /// `endpoints: ["n:eth1", "macvlan:PARENT"]`: the macvlan end's index.
    Brief(usize),
    /// nslab's own form (`macvlan:`, `vxlan:`, `dummy:`), as in nslab's
    /// files.
    Own,
}

/// The device form of a link, if it is one. `typed`: its `type`.
pub(super) fn form(typed: Option<&str>, link: &LinkModel) -> Option<Form> {
    match typed {
        Some("macvlan") => Some(Form::Typed("macvlan")),
        Some("vxlan") => Some(Form::Typed("vxlan")),
        Some("dummy") => Some(Form::Typed("dummy")),
        Some(_) => None,
        None if super::super::devices::is_device(link) => Some(Form::Own),
        None => (link.endpoints.0.iter())
            .position(|e| matches!(e, EndpointModel::Text(Text(t)) if t.starts_with("macvlan:")))
            .map(Form::Brief),
    }
}

/// The link in nslab's form, or `None` with its problems pushed. `path`:
/// the link's, `topology.links[i]`; `hosts`: the `kind: host` nodes.
pub(super) fn resolve(
    form: Form,
    mut link: LinkModel,
    path: &str,
    hosts: &HashSet<String>,
    problems: &mut Vec<Problem>,
) -> Option<LinkModel> {
    let mut keys = DeviceKeys::default();
    let before = problems.len();
    let mut push = |key: &str, message: String| {
        problems.push(Problem::new(format!("{path}.{key}"), message));
    };
    let end = match form {
        Form::Own => {
            // Its values are nslab's; a containerlab key is a mistake.
            if let Some(key) = foreign(&link, &[]) {
                push(
                    key,
                    format!(
                        "`{key}` is containerlab's; a device in nslab's form (`macvlan:`, `vxlan:`, `dummy:`) does without it"
                    ),
                );
                return None;
            }
            return Some(link);
        }
        Form::Brief(j) => brief(&mut link, j, &mut keys, &mut push)?,
        Form::Typed(kind) => typed(kind, &mut link, &mut keys, &mut push)?,
    };
    let (text, fields) = match end_text(end, hosts) {
        Ok(end) => end,
        Err(why) => {
            push(&keys.endpoint, why);
            return None;
        }
    };
    link.endpoints = Seq(vec![EndpointModel::Text(Text(text))]);
    for (key, slot, given) in [
        ("ipv4", &mut link.ipv4, fields.ipv4),
        ("ipv6", &mut link.ipv6, fields.ipv6),
        ("mac", &mut link.mac, fields.mac),
    ] {
        // containerlab writes "no address" as "".
        for entry in slot.iter_mut().flat_map(|l| &mut l.0) {
            if entry.as_ref().is_some_and(|t| t.0.trim().is_empty()) {
                *entry = None;
            }
        }
        if let Some(given) = given {
            if slot.is_some() {
                push(
                    key,
                    format!("give `{key}` once: in the endpoint or in the link"),
                );
            }
            *slot = Some(Seq(vec![Some(given)]));
        }
    }
    if problems.len() != before {
        return None;
    }
    // containerlab's MTU for a dummy; a macvlan takes its parent's and a
    // vxlan the kernel's, unless the file gives one.
    if link.dummy.is_some() {
        link.mtu = link.mtu.or(Some(DEFAULT_MTU));
    }
    link.vars = None;
    link.labels = None;
    link.device_keys = Some(keys);
    Some(link)
}

/// `endpoints: ["n:eth1", "macvlan:PARENT"]` (in either order): the node's
/// end, and the link made a macvlan.
fn brief(
    link: &mut LinkModel,
    j: usize,
    keys: &mut DeviceKeys,
    push: &mut impl FnMut(&str, String),
) -> Option<EndpointModel> {
    let ends = std::mem::take(&mut link.endpoints.0);
    if ends.len() != 2 {
        push(
            "endpoints",
            format!("a link has exactly two endpoints, found {}", ends.len()),
        );
        return None;
    }
    let k = 1 - j;
    let EndpointModel::Text(Text(parent)) = &ends[j] else {
        return None;
    };
    keys.endpoint = format!("endpoints[{k}]");
    keys.parent = format!("endpoints[{j}]");
    keys.mode = "mode".into();
    let parent = parent.trim_start_matches("macvlan:").to_owned();
    if let Some(key) = foreign(link, &["mode"]) {
        push(key, not_for(key, "macvlan"));
        return None;
    }
    link.macvlan = Some(MacvlanModel {
        parent: Some(Text(parent)),
        mode: link.mode.take(),
    });
    ends.into_iter().nth(k)
}

/// `type: macvlan|vxlan|dummy`: the node's end (`endpoint`), and the
/// link's own keys made nslab's.
fn typed(
    kind: &'static str,
    link: &mut LinkModel,
    keys: &mut DeviceKeys,
    push: &mut impl FnMut(&str, String),
) -> Option<EndpointModel> {
    keys.endpoint = "endpoint".into();
    let own_form = [
        ("macvlan", link.macvlan.is_some()),
        ("vxlan", link.vxlan.is_some()),
        ("dummy", link.dummy.is_some()),
    ];
    if let Some((key, _)) = own_form.iter().find(|(_, given)| *given) {
        push(
            key,
            format!(
                "`{key}` is nslab's form of a device, without `type`; a link of `type: {kind}` takes containerlab's keys"
            ),
        );
        return None;
    }
    if !link.endpoints.0.is_empty() {
        push(
            "endpoints",
            format!("a {kind} link has `endpoint` (one, the node's), not `endpoints`"),
        );
        return None;
    }
    let Some(end) = link.endpoint.take() else {
        push(
            "endpoint",
            format!("a {kind} link needs `endpoint`: {{node, interface}}"),
        );
        return None;
    };
    let own: &[&str] = match kind {
        "macvlan" => &["host-interface", "mode"],
        "vxlan" => &[
            "remote",
            "vni",
            "dst-port",
            "udp-port",
            "src-port",
            "parent-interface",
        ],
        _ => &[],
    };
    if let Some(key) = foreign(link, own) {
        push(key, not_for(key, kind));
        return None;
    }
    match kind {
        "macvlan" => {
            keys.parent = "host-interface".into();
            keys.mode = "mode".into();
            link.macvlan = Some(MacvlanModel {
                parent: link.host_interface.take(),
                mode: link.mode.take(),
            });
        }
        "vxlan" => {
            keys.remote = "remote".into();
            keys.vni = "vni".into();
            keys.src_port = "src-port".into();
            keys.vxlan_parent = "parent-interface".into();
            // containerlab takes `udp-port` only without `dst-port`.
            let port = match (link.dst_port.take(), link.udp_port.take()) {
                (Some(dst), _) => {
                    keys.port = "dst-port".into();
                    Some(dst)
                }
                (None, udp) => {
                    keys.port = "udp-port".into();
                    udp
                }
            };
            link.vxlan = Some(VxlanModel {
                remote: link.remote.take(),
                vni: link.vni.take(),
                port,
                src_port: link.src_port.take(),
                parent: link.parent_interface.take(),
            });
        }
        _ => link.dummy = Some(super::super::model::Scalar::Bool(true)),
    }
    Some(end)
}

/// The first containerlab key of the link that is not among `own`.
fn foreign(link: &LinkModel, own: &[&str]) -> Option<&'static str> {
    [
        ("host-interface", link.host_interface.is_some()),
        ("mode", link.mode.is_some()),
        ("remote", link.remote.is_some()),
        ("vni", link.vni.is_some()),
        ("dst-port", link.dst_port.is_some()),
        ("udp-port", link.udp_port.is_some()),
        ("src-port", link.src_port.is_some()),
        ("parent-interface", link.parent_interface.is_some()),
        ("endpoint", link.endpoint.is_some()),
    ]
    .into_iter()
    .find(|(key, given)| *given && !own.contains(key))
    .map(|(key, _)| key)
}

fn not_for(key: &str, kind: &str) -> String {
    let whose = match key {
        "host-interface" => "host, mgmt-net and macvlan links",
        "mode" => "macvlan links",
        "endpoint" => "links of one endpoint (host, mgmt-net, macvlan, vxlan, dummy)",
        _ => "vxlan links",
    };
    format!("`{key}` belongs to {whose}, not to a {kind} link")
}
