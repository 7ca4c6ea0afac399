//! `PlanDiff` from YAML to YAML: what `apply` would do.

use super::*;
use crate::topology::parse_str;

fn plan(yaml: &str) -> Plan {
    let topology = parse_str(yaml, "lab.yml".as_ref(), ".".as_ref()).expect("valid");
    Plan::from_topology(&topology)
}

const BASE: &str = r#"
name: d
topology:
  nodes:
    r1: {sysctls: {net.ipv4.ip_forward: 1}}
    r2: {}
    h1: {routes: ["default via 10.0.1.1"]}
  links:
    - endpoints: ["r1:eth0", "r2:eth0"]
      ipv4: [10.0.0.1/30, 10.0.0.2/30]
    - endpoints: ["h1:eth0", "r1:eth1"]
      ipv4: [10.0.1.2/24, 10.0.1.1/24]
"#;

fn diff(before: &str, after: &str) -> PlanDiff {
    PlanDiff::between(&[&plan(before)], &plan(after), &[])
}

#[test]
fn the_same_file_changes_nothing() {
    let d = diff(BASE, BASE);
    assert!(d.is_empty(), "{:?}", d.lines);
    assert_eq!(d, PlanDiff::default());
}

#[test]
fn a_link_written_the_other_way_round_is_the_same_link() {
    let swapped = BASE.replace(r#"["r1:eth0", "r2:eth0"]"#, r#"["r2:eth0", "r1:eth0"]"#);
    let swapped = swapped.replace("[10.0.0.1/30, 10.0.0.2/30]", "[10.0.0.2/30, 10.0.0.1/30]");
    assert!(diff(BASE, &swapped).is_empty());
}

#[test]
fn an_added_node_and_link_are_all_that_is_built() {
    let after = BASE.replace("    h1: {", "    r3: {}\n    h1: {")
        + "    - endpoints: [\"r2:eth1\", \"r3:eth0\"]\n";
    let d = diff(BASE, &after);
    assert_eq!(d.lines, ["+ node r3", "+ link r2:eth1 <-> r3:eth0"]);
    assert_eq!(d.add_nodes, [2]);
    assert_eq!(d.add_links, [2]);
    assert!(d.remove_nodes.is_empty() && d.remove_links.is_empty());
    assert!(d.nodes.is_empty() && d.ends.is_empty() && d.refused.is_empty());
}

#[test]
fn a_removed_node_takes_its_links_deleted_from_the_ends_that_stay() {
    let after = r#"
name: d
topology:
  nodes:
    r1: {sysctls: {net.ipv4.ip_forward: 1}}
    r2: {}
  links:
    - endpoints: ["r1:eth0", "r2:eth0"]
      ipv4: [10.0.0.1/30, 10.0.0.2/30]
"#;
    let d = diff(BASE, after);
    assert_eq!(d.remove_nodes, ["h1"]);
    let key: LinkKey = (("h1".into(), "eth0".into()), ("r1".into(), "eth1".into()));
    assert_eq!(d.remove_links, [key]);
    assert_eq!(d.lines, ["- node h1", "- link h1:eth0 <-> r1:eth1"]);
    assert!(d.add_nodes.is_empty() && d.add_links.is_empty());
}

#[test]
fn a_changed_gateway_is_one_route_change() {
    let after = BASE.replace("default via 10.0.1.1", "default via 10.0.1.9");
    let d = diff(BASE, &after);
    assert_eq!(
        d.lines,
        ["~ h1: route default via 10.0.1.1 -> default via 10.0.1.9"]
    );
    let h1 = &d.nodes["h1"];
    assert_eq!(h1.remove_routes[0].text, "default via 10.0.1.1");
    assert_eq!(h1.add_routes[0].text, "default via 10.0.1.9");
}

#[test]
fn addresses_impairments_states_mtus_and_sysctls_change_in_place() {
    let after = BASE
        .replace(
            "[10.0.0.1/30, 10.0.0.2/30]",
            "[10.0.0.1/30, 10.0.0.6/30]\n      mtu: 9000\n      impair: {rate: 10mbit}",
        )
        .replace(
            "[10.0.1.2/24, 10.0.1.1/24]",
            "[10.0.1.2/24, 10.0.1.1/24]\n      state: [down, null]",
        )
        .replace(
            "net.ipv4.ip_forward: 1",
            "net.ipv4.ip_forward: 0, net.ipv4.conf.all.rp_filter: 2",
        );
    let d = diff(BASE, &after);
    assert!(
        d.add_links.is_empty() && d.remove_links.is_empty(),
        "{:?}",
        d.lines
    );
    assert_eq!(d.mtus, [(0, 9000)]);
    let r2 = &d.ends[&("r2".to_string(), "eth0".to_string())];
    assert_eq!(r2.remove_addresses, [net("10.0.0.2/30")]);
    assert_eq!(r2.add_addresses, [net("10.0.0.6/30")]);
    assert!(r2.impair.is_some_and(|i| i.is_some()));
    let h1 = &d.ends[&("h1".to_string(), "eth0".to_string())];
    assert_eq!(h1.state, Some(LinkState::Down));
    let r1 = &d.nodes["r1"];
    let keys: Vec<&str> = r1.set_sysctls.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter"]);
    assert!(
        d.lines
            .contains(&"~ r1: sysctl net.ipv4.ip_forward 1 -> 0".to_string())
    );
    assert!(d.lines.contains(&"~ h1:eth0: state up -> down".to_string()));
}

#[test]
fn a_removed_sysctl_is_reset() {
    let after = BASE.replace("{sysctls: {net.ipv4.ip_forward: 1}}", "{}");
    let d = diff(BASE, &after);
    assert_eq!(d.nodes["r1"].reset_sysctls[0].key, "net.ipv4.ip_forward");
}

#[test]
fn a_hostname_change_is_refused_unless_the_node_is_recreated() {
    let after = BASE.replace("    r2: {}", "    r2: {hostname: other}");
    let d = diff(BASE, &after);
    assert_eq!(
        d.refused,
        [Refusal {
            node: "r2".into(),
            key: "hostname"
        }]
    );
    assert!(d.refused[0].to_string().contains("--recreate r2"));
    let d = PlanDiff::between(&[&plan(BASE)], &plan(&after), &["r2".into()]);
    assert!(d.refused.is_empty());
    assert_eq!(d.remove_nodes, ["r2"]);
    assert_eq!(d.add_nodes, [1]);
    // Its link is deleted from r1's end first, and made again.
    assert_eq!(d.remove_links.len(), 1);
    assert_eq!(d.add_links, [0]);
    assert_eq!(d.lines, ["~ node r2 (recreated)"]);
}

#[test]
fn a_new_mac_makes_the_pair_again() {
    let after = BASE.replace(
        "[10.0.0.1/30, 10.0.0.2/30]",
        "[10.0.0.1/30, 10.0.0.2/30]\n      mac: [\"02:00:00:00:00:01\", null]",
    );
    let d = diff(BASE, &after);
    assert_eq!(d.remove_links.len(), 1);
    assert_eq!(d.add_links, [0]);
    assert_eq!(d.lines, ["~ link r1:eth0 <-> r2:eth0 (re-created)"]);
}

#[test]
fn what_an_unfinished_apply_touched_is_built_again() {
    let pending = BASE.replace("    h1: {", "    r3: {}\n    h1: {")
        + "    - endpoints: [\"r2:eth1\", \"r3:eth0\"]\n";
    // Applying the same file again: r3 may be half made, so it is rebuilt
    // and its link made again; the rest is known to be there.
    let d = PlanDiff::between(&[&plan(BASE), &plan(&pending)], &plan(&pending), &[]);
    assert_eq!(d.remove_nodes, ["r3"]);
    assert_eq!(d.add_nodes, [2]);
    assert_eq!(d.add_links, [2]);
    // Deleted from r2's end in case it is there.
    assert_eq!(d.remove_links.len(), 1);
    assert!(d.nodes.is_empty() && d.ends.is_empty());
    // Going back to the first file instead removes whatever was made.
    let d = PlanDiff::between(&[&plan(BASE), &plan(&pending)], &plan(BASE), &[]);
    assert_eq!(d.remove_nodes, ["r3"]);
    assert!(d.add_nodes.is_empty() && d.add_links.is_empty());
}

fn net(text: &str) -> IpNet {
    text.parse().expect("a network")
}

#[test]
fn a_running_nodes_start_order_is_saved_not_refused() {
    let after = BASE.replace("r2: {}", "r2: {wait-for: [r1], startup-delay: 2}");
    let d = diff(BASE, &after);
    assert_eq!(
        d.lines,
        ["~ r2: start order (saved; its exec steps ran already)"]
    );
    assert!(d.refused.is_empty() && d.add_nodes.is_empty() && d.nodes.is_empty());
}
