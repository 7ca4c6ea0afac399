//! `hosts:`, a node's `host:` and `vxlan:`: the machines a lab is spread
//! over. Checked here whole, before anything is placed or built: every
//! machine reachable by a name `ssh` takes and an underlay address, every
//! `host:` a machine of the file, and nothing in the lab that belongs to
//! one host's own network (the host's ends, the management network).

use std::collections::HashMap;
use std::net::IpAddr;

use indexmap::IndexMap;

use super::Problem;
use super::model::{MachineModel, NodeModel, SpreadVxlanModel, Text, UMap};
use crate::spec::{HOST, Link, MAX_VNI, Machine, SPREAD_VXLAN_PORT, Spread, name_problem};

/// What the file says of its hosts, and what in the lab could conflict.
pub(super) struct Given<'a> {
    pub lab: &'a str,
    pub hosts: Option<UMap<Option<MachineModel>>>,
    pub vxlan: Option<SpreadVxlanModel>,
    /// Every node's own keys (for `host:`).
    pub node_models: &'a IndexMap<String, Option<NodeModel>>,
    /// `topology.defaults` has a `host:`.
    pub default_host: bool,
    pub links: &'a [Link],
    pub has_mgmt: bool,
}

/// The lab's spread, or `None` for a one-host lab; problems are pushed.
pub(super) fn spread(given: Given<'_>, problems: &mut Vec<Problem>) -> Option<Spread> {
    let mut push = |path: String, message: String| problems.push(Problem::new(path, message));
    if given.default_host {
        push(
            "topology.defaults.host".into(),
            "`host` is a node's own: place nodes one by one, or let nslab place them".into(),
        );
    }
    let pinned: Vec<(&String, &Text)> = (given.node_models.iter())
        .filter_map(|(name, m)| Some((name, m.as_ref()?.host.as_ref()?)))
        .collect();
    let Some(hosts) = given.hosts else {
        for (node, _) in &pinned {
            push(
                format!("topology.nodes.{node}.host"),
                "the file has no `hosts:` to place the node on".into(),
            );
        }
        if given.vxlan.is_some() {
            push(
                "vxlan".into(),
                "`vxlan:` sets the tunnels between hosts: the file has no `hosts:`".into(),
            );
        }
        return None;
    };

    for name in &hosts.duplicates {
        push(
            format!("hosts.{name}"),
            format!("host {name:?} is named twice"),
        );
    }
    if hosts.entries.is_empty() {
        push(
            "hosts".into(),
            "name at least one machine, or leave `hosts:` out".into(),
        );
    }
    let mut machines = IndexMap::new();
    let mut underlays: HashMap<IpAddr, &str> = HashMap::new();
    for (name, model) in &hosts.entries {
        let at = |key: &str| format!("hosts.{name}.{key}");
        if let Some(why) = name_problem(name) {
            push(format!("hosts.{name}"), format!("host name {name:?} {why}"));
        }
        let model = model.clone().unwrap_or_default();
        let ssh = match model.ssh {
            None => Some(None),
            Some(Text(ssh)) => match word_problem(&ssh) {
                Some(why) => {
                    push(at("ssh"), format!("{ssh:?} {why}"));
                    None
                }
                None => Some(Some(ssh)),
            },
        };
        let underlay = match model.underlay {
            None => {
                push(
                    at("underlay"),
                    "the host's address that the other hosts' tunnels reach".into(),
                );
                None
            }
            Some(Text(text)) => match text.parse::<IpAddr>() {
                Ok(ip) if ip.is_unspecified() || ip.is_multicast() => {
                    push(at("underlay"), format!("{ip} is not one host's address"));
                    None
                }
                Ok(ip) => {
                    if let Some(other) = underlays.insert(ip, name) {
                        push(
                            at("underlay"),
                            format!("{ip} is host {other:?}'s underlay too"),
                        );
                    }
                    Some(ip)
                }
                Err(_) => {
                    push(at("underlay"), format!("{text:?} is not an IP address"));
                    None
                }
            },
        };
        let nslab = match model.nslab {
            None => Some("nslab".to_owned()),
            Some(Text(path)) => match word_problem(&path) {
                Some(why) => {
                    push(at("nslab"), format!("{path:?} {why}"));
                    None
                }
                None => Some(path),
            },
        };
        if let (Some(ssh), Some(underlay), Some(nslab)) = (ssh, underlay, nslab) {
            machines.insert(
                name.clone(),
                Machine {
                    ssh,
                    underlay,
                    nslab,
                },
            );
        }
    }
    let families: Vec<bool> = machines.values().map(|m| m.underlay.is_ipv4()).collect();
    if families.windows(2).any(|w| w[0] != w[1]) {
        push(
            "hosts".into(),
            "the underlay addresses mix IPv4 and IPv6: a tunnel's two ends are of one family"
                .into(),
        );
    }

    let mut placed = IndexMap::new();
    for (node, Text(host)) in pinned {
        if hosts.entries.contains_key(host) {
            placed.insert(node.clone(), host.clone());
        } else {
            push(
                format!("topology.nodes.{node}.host"),
                format!("{host:?} is not a host of `hosts:`"),
            );
        }
    }

    let vxlan = given.vxlan.unwrap_or_default();
    let vxlan_port = match vxlan.port {
        None => SPREAD_VXLAN_PORT,
        Some(p) => u16::try_from(p)
            .ok()
            .filter(|&p| p != 0)
            .unwrap_or_else(|| {
                push(
                    "vxlan.port".into(),
                    format!("{p} is not a UDP port (1 to 65535)"),
                );
                SPREAD_VXLAN_PORT
            }),
    };
    let first_vni = match vxlan.vni {
        None => Spread::default_first_vni(given.lab),
        Some(v) => u32::try_from(v)
            .ok()
            .filter(|&v| v >= 1 && (v as u64) + (given.links.len() as u64) <= u64::from(MAX_VNI))
            .unwrap_or_else(|| {
                push(
                    "vxlan.vni".into(),
                    format!(
                        "{v}: the first VNI must leave room for one per link below {}",
                        MAX_VNI + 1
                    ),
                );
                1
            }),
    };

    // What only one host's own network has.
    if given.has_mgmt {
        push(
            "mgmt".into(),
            "a lab spread over hosts has no management network (each host's own would be a different one); reach nodes with `nslab exec`".into(),
        );
    }
    for (i, link) in given.links.iter().enumerate() {
        for (e, end) in link.endpoints.iter().enumerate() {
            if end.node == HOST {
                push(
                    format!("topology.links[{i}].endpoints[{e}]"),
                    format!(
                        "host:{}: in a lab spread over hosts, `host` would be a different machine for each; link to a node instead",
                        end.iface
                    ),
                );
            }
        }
    }

    Some(Spread {
        hosts: machines,
        pinned: placed,
        vxlan_port,
        first_vni,
    })
}

/// Why `word` cannot be given to `ssh` as one argument, if it cannot: it
/// is empty, has white space or control characters, or starts with `-`
/// (ssh would take it for an option).
fn word_problem(word: &str) -> Option<&'static str> {
    if word.is_empty() {
        Some("is empty")
    } else if word.starts_with('-') {
        Some("starts with '-'")
    } else if word.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("has white space or control characters")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::topology::parse_str;
    use crate::topology::tests::{assert_problem_in, problems_of};

    #[test]
    fn every_problem_of_the_hosts_is_named_by_its_key() {
        let yaml = r#"
name: bad
hosts:
  a: {ssh: "-oProxyCommand=x", underlay: 192.0.2.1}
  b: {underlay: not-an-ip, nslab: "my nslab"}
  c: {ssh: c, underlay: 192.0.2.1}
  d: {ssh: d, underlay: "2001:db8::1"}
vxlan: {port: 70000, vni: 0}
mgmt: {}
topology:
  nodes:
    r1: {host: z}
    r2: {}
  links:
    - endpoints: [r1:eth0, host:r1]
"#;
        let origin = Path::new("bad.yml");
        let ps = problems_of(parse_str(yaml, origin, Path::new("/")), origin);
        for (path, message) in [
            ("hosts.a.ssh", "starts with '-'"),
            ("hosts.b.underlay", "is not an IP address"),
            ("hosts.b.nslab", "white space"),
            ("hosts.c.underlay", "host \"a\"'s underlay too"),
            ("hosts", "mix IPv4 and IPv6"),
            ("vxlan.port", "not a UDP port"),
            ("vxlan.vni", "the first VNI"),
            ("mgmt", "no management network"),
            ("topology.nodes.r1.host", "\"z\" is not a host"),
            ("topology.links[0].endpoints[1]", "host:r1"),
        ] {
            assert_problem_in(&ps, path, message);
        }
        let lone = "name: lone\nvxlan: {port: 4789}\ntopology:\n  nodes:\n    r1: {host: a}\n";
        let ps = problems_of(parse_str(lone, origin, Path::new("/")), origin);
        assert_problem_in(&ps, "topology.nodes.r1.host", "no `hosts:`");
        assert_problem_in(&ps, "vxlan", "no `hosts:`");
    }
}
