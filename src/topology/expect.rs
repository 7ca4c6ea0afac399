//! Validation of `expect:`, the reachability expectations of `nslab check`.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use indexmap::IndexMap;
use ipnet::IpNet;

use super::Problem;
use super::model::{ExpectModel, Scalar, Text};
use crate::spec::{Device, HOST, Link, Node};
use crate::spec::{Expect, ExpectTarget, NodeKind, parse_port};

/// What the expectations are checked against.
pub(crate) struct Lab<'a> {
    pub nodes: &'a IndexMap<String, Node>,
    /// The links that passed validation.
    pub links: &'a [Link],
    /// The devices that passed validation: their addresses are their
    /// nodes' too.
    pub devices: &'a [Device],
    /// Every well-formed `node:iface` of the links, valid or not, so that a
    /// link with a bad address does not also make its interface unknown.
    pub interfaces: &'a HashSet<(String, String)>,
    /// False when some link failed validation: its addresses are unknown,
    /// so "has no addresses" would be a guess.
    pub links_complete: bool,
}

/// Checks every entry; returns the valid ones and the problems of the rest.
pub(crate) fn expectations(list: &[ExpectModel], lab: &Lab) -> (Vec<Expect>, Vec<Problem>) {
    // (node, iface) → its addresses; node → whether it has any.
    let mut addresses: HashMap<(&str, &str), Vec<IpNet>> = HashMap::new();
    let device_ends = lab.devices.iter().map(|d| &d.end);
    for end in lab
        .links
        .iter()
        .flat_map(|l| &l.endpoints)
        .chain(device_ends)
    {
        let list = addresses
            .entry((end.node.as_str(), end.iface.as_str()))
            .or_default();
        list.extend(end.ipv4.iter().chain(end.ipv6.iter()));
    }
    let node_has_addresses: HashSet<&str> = addresses
        .iter()
        .filter(|(_, a)| !a.is_empty())
        .map(|((node, _), _)| *node)
        .collect();

    let mut problems = Vec::new();
    let mut out = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let path = format!("expect[{i}]");
        let before = problems.len();
        let mut push = |key: &str, message: String| {
            problems.push(Problem::new(format!("{path}.{key}"), message));
        };

        let Text(from) = &entry.from;
        match lab.nodes.get(from) {
            Some(node) if node.kind == NodeKind::Bridge => push(
                "from",
                format!("node {from:?} is a bridge; probes are sent from nodes"),
            ),
            Some(_) => {}
            None if from == HOST => push(
                "from",
                format!("{HOST:?} is not a node of the lab; probes are sent from nodes"),
            ),
            None => push("from", format!("no node named {from:?}")),
        }

        let Text(to) = &entry.to;
        let target = parse_target(to);
        match &target {
            Ok(ExpectTarget::Address(address)) => {
                if let Some(why) = not_probeable(*address) {
                    push("to", format!("{to:?} {why}"));
                }
            }
            Ok(ExpectTarget::Node(node)) => match lab.nodes.get(node) {
                Some(n) if n.kind == NodeKind::Bridge => push(
                    "to",
                    format!("node {node:?} is a bridge; a bridge has no addresses"),
                ),
                Some(_) if lab.links_complete && !node_has_addresses.contains(node.as_str()) => {
                    push("to", format!("node {node:?} has no addresses"))
                }
                Some(_) => {}
                None if node == HOST => push(
                    "to",
                    format!("{HOST:?} is not a node of the lab; give one of its addresses"),
                ),
                None => push(
                    "to",
                    format!("{to:?} is neither an address nor a node of the lab"),
                ),
            },
            Ok(ExpectTarget::Interface { node, iface }) => {
                if !lab.nodes.contains_key(node) && node != HOST {
                    push("to", format!("{to:?}: no node named {node:?}"));
                } else if node == HOST {
                    push(
                        "to",
                        format!("{HOST:?} is not a node of the lab; give one of its addresses"),
                    );
                } else if !lab.interfaces.contains(&(node.clone(), iface.clone())) {
                    push(
                        "to",
                        format!("{to:?}: {iface:?} is not an interface of node {node:?}"),
                    );
                } else if lab.links_complete
                    && addresses
                        .get(&(node.as_str(), iface.as_str()))
                        .is_none_or(Vec::is_empty)
                {
                    push("to", format!("interface {to:?} has no addresses"));
                }
            }
            Err(message) => push("to", message.clone()),
        }

        let port = match &entry.port {
            None => None,
            Some(Scalar::Str(s)) => match parse_port(s) {
                Ok(port) => Some(port),
                Err(message) => {
                    push("port", message);
                    None
                }
            },
            Some(Scalar::Int(n)) => {
                push(
                    "port",
                    format!("port {n} needs a protocol: write it as {n}/tcp or {n}/udp"),
                );
                None
            }
            Some(Scalar::Bool(b)) => {
                push(
                    "port",
                    format!("port {b} is not a port: write it as PORT/tcp or PORT/udp"),
                );
                None
            }
        };

        if problems.len() == before
            && let Ok(to) = target
        {
            out.push(Expect {
                from: from.clone(),
                to,
                port,
                reach: entry.reach.unwrap_or(true),
            });
        }
    }
    (out, problems)
}

/// Why an address cannot be the target of a probe, if it cannot: a probe
/// goes to one host, and an answer must come from that address.
fn not_probeable(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(a) if a.is_unspecified() => {
            Some("is the unspecified address (0.0.0.0), not a host; give one of its addresses")
        }
        IpAddr::V6(a) if a.is_unspecified() => {
            Some("is the unspecified address (::), not a host; give one of its addresses")
        }
        IpAddr::V4(a) if a.is_broadcast() => {
            Some("is the broadcast address, not a host; give one host's address")
        }
        IpAddr::V4(a) if a.is_multicast() => {
            Some("is a multicast address (224.0.0.0/4), not a host; give one host's address")
        }
        IpAddr::V6(a) if a.is_multicast() => {
            Some("is a multicast address (ff00::/8), not a host; give one host's address")
        }
        IpAddr::V6(a) if a.is_unicast_link_local() => Some(
            "is a link-local address (fe80::/10), which names no host without an interface \
             and `to:` has no way to give one; give the node or NODE:IFACE, or a global address",
        ),
        _ => None,
    }
}

/// `to:` is an address, `NODE:IFACE` or `NODE`. An IPv6 address holds
/// colons too, so addresses are tried first.
fn parse_target(to: &str) -> Result<ExpectTarget, String> {
    if let Ok(address) = to.parse::<IpAddr>() {
        return Ok(ExpectTarget::Address(address));
    }
    if let Ok(net) = to.parse::<IpNet>() {
        return Err(format!(
            "{to:?}: give one address, without a prefix length ({})",
            net.addr()
        ));
    }
    if let Some((node, iface)) = to.split_once(':') {
        if node.is_empty() || iface.is_empty() || iface.contains(':') {
            return Err(format!(
                "{to:?} is neither an address nor NODE:IFACE nor a node"
            ));
        }
        return Ok(ExpectTarget::Interface {
            node: node.to_owned(),
            iface: iface.to_owned(),
        });
    }
    Ok(ExpectTarget::Node(to.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_that_name_no_single_host_are_refused() {
        for (s, want) in [
            ("0.0.0.0", "the unspecified address (0.0.0.0)"),
            ("::", "the unspecified address (::)"),
            ("255.255.255.255", "the broadcast address"),
            ("224.0.0.1", "a multicast address (224.0.0.0/4)"),
            ("239.255.255.250", "a multicast address"),
            ("ff02::1", "a multicast address (ff00::/8)"),
            ("fe80::1", "a link-local address (fe80::/10)"),
            ("febf::1", "a link-local address"),
        ] {
            let why = not_probeable(s.parse().expect("ip")).unwrap_or_else(|| panic!("{s}"));
            assert!(why.contains(want), "{s}: {why}");
        }
        for s in [
            "10.0.0.255",
            "127.0.0.1",
            "::1",
            "203.0.113.9",
            "2001:db8::1",
            "fec0::1",
        ] {
            assert_eq!(not_probeable(s.parse().expect("ip")), None, "{s}");
        }
    }

    #[test]
    fn targets_parse() {
        let ip = |s: &str| ExpectTarget::Address(s.parse().expect("ip"));
        assert_eq!(parse_target("203.0.113.9"), Ok(ip("203.0.113.9")));
        assert_eq!(parse_target("2001:db8::9"), Ok(ip("2001:db8::9")));
        assert_eq!(parse_target("::1"), Ok(ip("::1")));
        assert_eq!(
            parse_target("h2:eth0"),
            Ok(ExpectTarget::Interface {
                node: "h2".into(),
                iface: "eth0".into()
            })
        );
        assert_eq!(parse_target("h2"), Ok(ExpectTarget::Node("h2".into())));
        for (s, want) in [
            ("10.0.0.1/24", "without a prefix length (10.0.0.1)"),
            ("2001:db8::/64", "without a prefix length"),
            ("h2:", "neither an address"),
            (":eth0", "neither an address"),
            ("2001:db8::zz", "neither an address"),
        ] {
            let e = parse_target(s).expect_err(s);
            assert!(e.contains(want), "{s}: {e}");
        }
    }
}
