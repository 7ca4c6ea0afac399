//! Steps with `ip`: /run/netns names, bridges, veth pairs, ports and
//! addresses, routes. Interface names always follow `name` or `dev`, so
//! one that looks like an `ip` keyword (`br`, `help`) stays a name.

use super::quote::quote;
use super::{Script, netns};
use crate::plan::qdisc::{free_majors, qdiscs_for};
use crate::plan::{EndpointPlan, Place, Plan};
use crate::spec::{LinkState, NodeKind};

/// `ip` in a place: `ip -n "$LAB-NODE"`, or plain `ip` in the host.
fn ip(plan: &Plan, place: Place, family6: bool) -> String {
    let family = if family6 { " -6" } else { "" };
    match place {
        Place::Host => format!("ip{family}"),
        Place::Node(id) => format!("ip{family} -n {}", netns(&plan.nodes[id].name)),
    }
}

pub(super) fn names(s: &mut Script, plan: &Plan, vars: &[String]) {
    s.section("Names: /run/netns/$LAB-NODE, so that ip -n, ip netns exec and lsns see each node");
    s.raw("# Made once every node exists, so that no node's mount namespace holds a copy of a sibling's name.");
    for (node, var) in plan.nodes.iter().zip(vars) {
        let name = netns(&node.name);
        s.step(
            &format!(
                "{}: bind its net namespace on /run/netns/$LAB-{}",
                node.name, node.name
            ),
            &[
                format!("ip netns attach {name} \"${var}\""),
                format!("echo {name} >> \"$RUN/netns\""),
            ],
        );
    }
}

pub(super) fn bridges(s: &mut Script, plan: &Plan) {
    let bridges: Vec<&str> = plan
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Bridge)
        .map(|n| n.name.as_str())
        .collect();
    if bridges.is_empty() {
        return;
    }
    s.section("Bridges: one Linux bridge in each bridge node's net namespace");
    for (id, node) in plan.nodes.iter().enumerate() {
        if node.kind != NodeKind::Bridge {
            continue;
        }
        let ip = ip(plan, Place::Node(id), false);
        let name = quote(&node.name);
        s.step(
            &format!("{}: a bridge named {}, up", node.name, node.name),
            &[
                format!("{ip} link add name {name} type bridge"),
                format!("{ip} link set dev {name} up"),
            ],
        );
    }
}

pub(super) fn veths(s: &mut Script, plan: &Plan) {
    if plan.links.is_empty() {
        return;
    }
    s.section("Links: veth pairs, each end born in its namespace under its final name");
    s.raw("# One request makes both ends: nothing is created in one place and moved.");
    for link in &plan.links {
        let end = |e: &EndpointPlan| {
            let mut words = format!("name {}", quote(&e.ifname));
            if let Place::Node(id) = e.place {
                words.push_str(&format!(" netns {}", netns(&plan.nodes[id].name)));
            }
            if let Some(mtu) = link.mtu {
                words.push_str(&format!(" mtu {mtu}"));
            }
            if let Some(mac) = e.mac {
                words.push_str(&format!(" address {}", mac_text(&mac)));
            }
            words
        };
        let [a, b] = &link.endpoints;
        let mut what = plan.link_label(link);
        if let Some(mtu) = link.mtu {
            what.push_str(&format!(", MTU {mtu} on both ends"));
        }
        for e in [a, b] {
            if let Some(mac) = e.mac {
                what.push_str(&format!(", MAC {} on {}", mac_text(&mac), e.ifname));
            }
        }
        if [a, b].iter().any(|e| e.place == Place::Host) {
            what.push_str(" (the host end's name is fixed: it does not change with LAB)");
        }
        s.step(
            &what,
            &[format!("ip link add {} type veth peer {}", end(a), end(b))],
        );
    }
}

pub(super) fn interfaces(s: &mut Script, plan: &Plan) {
    if plan.links.is_empty() {
        return;
    }
    fn bridge_of<'p>(plan: &'p Plan, end: &'p EndpointPlan) -> Option<&'p String> {
        match (end.place, &end.master) {
            (Place::Node(id), _) if plan.nodes[id].kind == NodeKind::Bridge => {
                Some(&plan.nodes[id].name)
            }
            // A port of one of the host's own bridges.
            (Place::Host, Some(master)) => Some(master),
            _ => None,
        }
    }
    let bridge_of = |end| bridge_of(plan, end);
    let ends: Vec<&EndpointPlan> = plan.links.iter().flat_map(|l| &l.endpoints).collect();
    let (ports, others): (Vec<&EndpointPlan>, Vec<&EndpointPlan>) =
        ends.into_iter().partition(|e| bridge_of(e).is_some());
    if !ports.is_empty() {
        s.section("Bridge ports join their bridge and come up");
        // As in nslab, where a port's one request usually beats the two or
        // three of the other end: the end that is up first gets the
        // kernel's carrier event at once, the other can wait up to a second.
        s.raw("# First, before their peers: a port up before its peer forwards as soon as the peer comes up.");
        for end in ports {
            let bridge = bridge_of(end).map_or(String::new(), |b| b.to_string());
            s.step(
                &format!(
                    "{}: a port of bridge {bridge}, up",
                    plan.endpoint_label(end)
                ),
                &[format!(
                    "{} link set dev {} master {} up",
                    ip(plan, end.place, false),
                    quote(&end.ifname),
                    quote(&bridge)
                )],
            );
        }
    }
    if others.is_empty() {
        return;
    }
    s.section("Addresses, links up");
    for end in others {
        let label = plan.endpoint_label(end);
        let ip = ip(plan, end.place, false);
        let dev = quote(&end.ifname);
        let mut commands: Vec<String> = end
            .addresses
            .iter()
            .map(|a| {
                // nodad: the address is usable at once, as nslab adds it.
                let nodad = if a.addr().is_ipv6() { " nodad" } else { "" };
                format!("{ip} address add {a} dev {dev}{nodad}")
            })
            .collect();
        commands.push(format!("{ip} link set dev {dev} up"));
        let addresses: Vec<String> = end.addresses.iter().map(|a| a.to_string()).collect();
        let what = match addresses.is_empty() {
            true => format!("{label}: up"),
            false if end.addresses.iter().any(|a| a.addr().is_ipv6()) => format!(
                "{label}: {} (IPv6 with nodad: no duplicate address detection), up",
                addresses.join(", ")
            ),
            false => format!("{label}: {}, up", addresses.join(", ")),
        };
        s.step(&what, &commands);
    }
}

pub(super) fn routes(s: &mut Script, plan: &Plan) {
    if plan.nodes.iter().all(|n| n.routes.is_empty()) {
        return;
    }
    s.section("Routes");
    s.raw("# proto static: nslab's routes carry that origin (ip's own default is boot).");
    for (id, node) in plan.nodes.iter().enumerate() {
        for route in &node.routes {
            let v6 = route.destination.addr().is_ipv6();
            let mut words = match route.destination.prefix_len() {
                0 => "default".to_string(),
                _ => route.destination.to_string(),
            };
            if let Some(gateway) = route.gateway {
                words.push_str(&format!(" via {gateway}"));
            }
            if let Some(dev) = &route.device {
                words.push_str(&format!(" dev {}", quote(dev)));
            }
            if let Some(metric) = route.metric {
                words.push_str(&format!(" metric {metric}"));
            }
            words.push_str(" proto static");
            s.step(
                &format!("{}: {}", node.name, route.text),
                &[format!(
                    "{} route add {words}",
                    ip(plan, Place::Node(id), v6)
                )],
            );
        }
    }
}

/// `tc` in a place, as [`ip`].
fn tc(plan: &Plan, place: Place) -> String {
    match place {
        Place::Host => "tc".to_string(),
        Place::Node(id) => format!("tc -n {}", netns(&plan.nodes[id].name)),
    }
}

pub(super) fn impairments(s: &mut Script, plan: &Plan) {
    let impaired = || {
        (plan.ends_with_mtu()).filter_map(|(end, mtu)| end.impair.as_ref().map(|i| (mtu, end, i)))
    };
    if impaired().next().is_none() {
        return;
    }
    s.section("Impairments: queueing disciplines on the egress of link ends");
    s.raw("# netem delays, drops, corrupts and duplicates (module sch_netem); tbf, a token bucket, caps the rate.");
    s.raw("# With both, tbf hangs below netem, so the rate applies to what netem lets out.");
    // The handles nslab's own requests take on a new interface.
    let (root, child) = free_majors(&[]);
    for (mtu, end, impair) in impaired() {
        let tc = tc(plan, end.place);
        let dev = quote(&end.ifname);
        let mut commands = Vec::new();
        match qdiscs_for(impair, mtu) {
            (Some(netem), tbf) => {
                commands.push(format!(
                    "{tc} qdisc replace dev {dev} root handle {root}: {}",
                    netem.tc_args()
                ));
                if let Some(tbf) = tbf {
                    commands.push(format!(
                        "{tc} qdisc add dev {dev} parent {root}:1 handle {child}: {}",
                        tbf.tc_args()
                    ));
                }
            }
            (None, Some(tbf)) => commands.push(format!(
                "{tc} qdisc replace dev {dev} root handle {root}: {}",
                tbf.tc_args()
            )),
            (None, None) => continue,
        }
        s.step(
            &format!("{}: {impair}", plan.endpoint_label(end)),
            &commands,
        );
    }
}

/// Ends with `state: down`, set down last, as nslab does: routes through
/// them were added while they were up (the kernel drops those, and the
/// end's IPv6 addresses, with the down).
pub(super) fn links_down(s: &mut Script, plan: &Plan) {
    let down: Vec<&EndpointPlan> = plan.ends().filter(|e| e.state == LinkState::Down).collect();
    if down.is_empty() {
        return;
    }
    s.section("Link ends with state: down");
    s.raw("# A veth end set down takes its peer's carrier with it (NO-CARRIER).");
    for end in down {
        s.step(
            &format!("{}: down", plan.endpoint_label(end)),
            &[format!(
                "{} link set dev {} down",
                ip(plan, end.place, false),
                quote(&end.ifname)
            )],
        );
    }
}

fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
