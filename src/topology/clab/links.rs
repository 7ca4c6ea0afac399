//! containerlab's links, brief (`endpoints: ["a:eth1", "b:eth1"]`) and
//! extended (`type: veth` with `{node, interface, mac}` ends, `type:
//! host`), in nslab's form; its single-ended ones (macvlan, vxlan, dummy)
//! are `devices`'.

use std::collections::HashSet;

use super::super::Problem;
use super::super::model::{EndpointFields, EndpointModel, LinkModel, Seq, Text};
use crate::spec::{HOST, MGMT_BRIDGE};

/// The MTU containerlab gives a veth link when the file gives none.
pub(super) const DEFAULT_MTU: i64 = 9500;

/// The links in nslab's form. `hosts`: the `kind: host` nodes.
pub(super) fn resolve(
    links: Seq<LinkModel>,
    hosts: &HashSet<String>,
    problems: &mut Vec<Problem>,
) -> Seq<LinkModel> {
    let mut out = Vec::new();
    for (i, mut link) in links.0.into_iter().enumerate() {
        let path = format!("topology.links[{i}]");
        let typed = link.kind.take().map(|k| k.0);
        if let Some(form) = super::devices::form(typed.as_deref(), &link) {
            out.extend(super::devices::resolve(form, link, &path, hosts, problems));
            continue;
        }
        let kind = typed.unwrap_or_else(|| "veth".to_owned());
        let ends: Vec<EndpointModel> = match kind.as_str() {
            "veth" => {
                if link.endpoint.is_some() || link.host_interface.is_some() {
                    problems.push(Problem::new(
                        &path,
                        "a veth link has `endpoints` (two), not `endpoint` or `host-interface`",
                    ));
                    continue;
                }
                std::mem::take(&mut link.endpoints.0)
            }
            "host" | "mgmt-net" => {
                let (Some(end), Some(Text(other_iface))) =
                    (link.endpoint.take(), link.host_interface.take())
                else {
                    problems.push(Problem::new(
                        &path,
                        format!("a link of type {kind} needs `endpoint` ({{node, interface}}) and `host-interface`"),
                    ));
                    continue;
                };
                // A mgmt-net link's other end is a port of the management
                // network's bridge, named `host-interface`.
                let other = match kind.as_str() {
                    "host" => HOST,
                    _ => MGMT_BRIDGE,
                };
                vec![
                    end,
                    EndpointModel::Text(Text(format!("{other}:{other_iface}"))),
                ]
            }
            other => {
                problems.push(Problem::new(
                    format!("{path}.type"),
                    link_type_problem(other),
                ));
                continue;
            }
        };
        let foreign = [
            ("remote", link.remote.is_some()),
            ("vni", link.vni.is_some()),
            ("dst-port", link.dst_port.is_some()),
            ("udp-port", link.udp_port.is_some()),
            ("src-port", link.src_port.is_some()),
            ("parent-interface", link.parent_interface.is_some()),
            ("mode", link.mode.is_some()),
        ];
        let own_device = [
            ("macvlan", link.macvlan.is_some()),
            ("vxlan", link.vxlan.is_some()),
            ("dummy", link.dummy.is_some()),
        ];
        if let Some((key, _)) = own_device.iter().find(|(_, given)| *given) {
            problems.push(Problem::new(
                format!("{path}.{key}"),
                format!("`{key}` is nslab's form of a device, a link of one endpoint without `type`; not part of a {kind} link"),
            ));
            continue;
        }
        if let Some((key, _)) = foreign.iter().find(|(_, given)| *given) {
            problems.push(Problem::new(
                format!("{path}.{key}"),
                format!("`{key}` belongs to macvlan and vxlan links, not to a {kind} link"),
            ));
            continue;
        }
        let (mut macs, mut ipv4, mut ipv6) = (Vec::new(), Vec::new(), Vec::new());
        let mut ok = true;
        for (j, end) in ends.into_iter().enumerate() {
            let at = format!("{path}.endpoints[{j}]");
            match end_text(end, hosts) {
                Ok((text, fields)) => {
                    link.endpoints.0.push(EndpointModel::Text(Text(text)));
                    macs.push(fields.mac);
                    ipv4.push(fields.ipv4);
                    ipv6.push(fields.ipv6);
                }
                Err(why) => {
                    problems.push(Problem::new(at, why));
                    ok = false;
                }
            }
        }
        if !ok {
            continue;
        }
        for (key, slot, given) in [
            ("mac", &mut link.mac, macs),
            ("ipv4", &mut link.ipv4, ipv4),
            ("ipv6", &mut link.ipv6, ipv6),
        ] {
            // containerlab writes "no address" as "", and may list one.
            if let Some(list) = slot {
                for entry in &mut list.0 {
                    if entry.as_ref().is_some_and(|t| t.0.trim().is_empty()) {
                        *entry = None;
                    }
                }
                if list.0.len() == 1 {
                    list.0.push(None);
                }
            }
            if given.iter().any(Option::is_some) {
                if slot.is_some() {
                    problems.push(Problem::new(
                        format!("{path}.{key}"),
                        format!("give `{key}` once: in the endpoints or in the link"),
                    ));
                    ok = false;
                }
                *slot = Some(Seq(given));
            }
        }
        if !ok {
            continue;
        }
        link.mtu = link.mtu.or(Some(DEFAULT_MTU));
        link.vars = None;
        link.labels = None;
        out.push(link);
    }
    Seq(out)
}

/// What an extended endpoint gives besides its name.
#[derive(Debug, Default)]
pub(super) struct EndFields {
    pub mac: Option<Text>,
    pub ipv4: Option<Text>,
    pub ipv6: Option<Text>,
}

/// An end as `node:iface` (a `kind: host` node's as `host:iface`) and its
/// MAC and addresses, or why it cannot be one.
pub(super) fn end_text(
    end: EndpointModel,
    hosts: &HashSet<String>,
) -> Result<(String, EndFields), String> {
    let (node, iface, fields) = match end {
        EndpointModel::Text(Text(text)) => match text.split_once(':') {
            Some((node, iface)) => (node.to_owned(), iface.to_owned(), EndFields::default()),
            None => return Err(format!("endpoint {text:?} must be NODE:IFACE")),
        },
        EndpointModel::Fields(EndpointFields {
            node,
            interface,
            mac,
            ipv4,
            ipv6,
            _vars: _,
        }) => match interface {
            Some(Text(iface)) => {
                // containerlab writes "none" as "" (or blanks).
                let given = |t: Option<Text>| t.filter(|t| !t.0.trim().is_empty());
                let fields = EndFields {
                    mac: given(mac),
                    ipv4: given(ipv4),
                    ipv6: given(ipv6),
                };
                (node.0, iface, fields)
            }
            None => {
                return Err(format!(
                    "endpoint of node {:?} needs an `interface`",
                    node.0
                ));
            }
        },
    };
    match node.as_str() {
        "macvlan" => Err(format!(
            "endpoint \"macvlan:{iface}\": a macvlan end belongs to a brief link (`endpoints` and no `type`), or write `type: macvlan` with `host-interface: {iface}`"
        )),
        "host" => Ok((format!("host:{iface}"), fields)),
        _ if hosts.contains(&node) => Ok((format!("host:{iface}"), fields)),
        _ => Ok((format!("{node}:{iface}"), fields)),
    }
}

fn link_type_problem(kind: &str) -> String {
    match kind {
        "vxlan-stitch" => "links of type vxlan-stitch are not built by nslab: containerlab makes the vxlan in the host and joins it to a veth into the node with tc rules, and nslab makes no interface in the host but a link's host end; write `type: vxlan`, which puts the vxlan in the node itself, its tunnel still the host's".into(),
        "veth-stitch" => "links of type veth-stitch are not built by nslab: containerlab joins two veth pairs through the host with tc rules so that a vendor node's link can be captured and impaired; nslab's veth links take `impair` and `nslab capture` as they are: write a veth link (no `type`, or `type: veth`)".into(),
        other => format!(
            "link type {other:?} is not known: containerlab's are veth, veth-stitch, host, mgmt-net, macvlan, vxlan, vxlan-stitch and dummy"
        ),
    }
}
