//! Devices in nslab's form and containerlab's, through the loader.

use std::path::Path;

use crate::spec::{DeviceKind, LinkState, MacvlanMode, VXLAN_PORT};
use crate::topology::tests::{assert_problem_in, problems_of};
use crate::topology::{Topology, TopologyError, parse_str};

fn own(yaml: &str) -> Result<Topology, TopologyError> {
    parse_str(yaml, Path::new("/srv/labs/t.yml"), Path::new("/srv/labs"))
}

fn clab(yaml: &str) -> Result<Topology, TopologyError> {
    parse_str(
        yaml,
        Path::new("/srv/labs/t.clab.yml"),
        Path::new("/srv/labs"),
    )
}

/// nslab's file with nodes `a` and `b` and the bridge `sw`, and `links`.
fn lab(links: &str) -> String {
    format!(
        "name: d\ntopology:\n  nodes: {{a: {{}}, b: {{}}, sw: {{kind: bridge}}}}\n  links:\n{links}"
    )
}

#[track_caller]
fn assert_own_problem(links: &str, path: &str, msg: &str) {
    let ps = problems_of(own(&lab(links)), Path::new("/srv/labs/t.yml"));
    assert_problem_in(&ps, path, msg);
}

#[track_caller]
fn assert_clab_problem(links: &str, path: &str, msg: &str) {
    let yaml = format!("name: d\ntopology:\n  nodes: {{a: {{}}, b: {{}}}}\n  links:\n{links}");
    let ps = problems_of(clab(&yaml), Path::new("/srv/labs/t.clab.yml"));
    assert_problem_in(&ps, path, msg);
}

#[test]
fn nslabs_form_is_a_link_of_one_endpoint() {
    let t = own(&lab(r#"
    - endpoints: ["a:mv0"]
      macvlan: {parent: eth0, mode: vepa}
      ipv4: [10.0.0.2/24]
      ipv6: ["2001:db8::2/64"]
      mac: ["02:00:00:00:00:02"]
    - endpoints: ["a:vx0"]
      vxlan: {remote: "2001:db8::9", vni: 100, port: 4789, src-port: 5000, parent: eth1}
      mtu: 1400
      state: [down]
      impair: {delay: 10ms}
    - endpoints: ["b:d0"]
      dummy: true
    - endpoints: ["a:eth1", "b:eth1"]
"#))
    .expect("valid");
    assert_eq!(t.links.len(), 1);
    let [mv, vx, d] = &t.devices[..] else {
        panic!("three devices: {:?}", t.devices)
    };
    assert_eq!(
        mv.kind,
        DeviceKind::Macvlan {
            parent: "eth0".into(),
            mode: MacvlanMode::Vepa
        }
    );
    assert_eq!((mv.end.node.as_str(), mv.end.iface.as_str()), ("a", "mv0"));
    assert_eq!(mv.end.ipv4, Some("10.0.0.2/24".parse().expect("net")));
    assert_eq!(mv.end.ipv6, Some("2001:db8::2/64".parse().expect("net")));
    assert_eq!(mv.end.mac, Some([2, 0, 0, 0, 0, 2]));
    assert_eq!(mv.mtu, None);
    assert_eq!(
        vx.kind,
        DeviceKind::Vxlan {
            remote: "2001:db8::9".parse().expect("ip"),
            vni: 100,
            port: 4789,
            source_port: Some(5000),
            parent: Some("eth1".into()),
            local: None,
        }
    );
    assert_eq!(vx.mtu, Some(1400));
    assert_eq!(vx.end.state, LinkState::Down);
    assert!(vx.end.impair.is_some());
    assert_eq!(d.kind, DeviceKind::Dummy);
    // A device's interface may be a route's `dev`.
    let routed = lab("    - endpoints: [\"a:d0\"]\n      dummy: true\n")
        .replace("a: {}", "a: {routes: [\"10.9.0.0/16 dev d0\"]}");
    own(&routed).expect("a route through a dummy");
}

#[test]
fn defaults_are_bridge_mode_and_containerlabs_port() {
    let t = own(&lab(r#"
    - endpoints: ["a:mv0"]
      macvlan: {parent: eth0}
    - endpoints: ["a:vx0"]
      vxlan: {remote: 192.0.2.1, vni: 1}
"#))
    .expect("valid");
    assert!(matches!(
        t.devices[0].kind,
        DeviceKind::Macvlan {
            mode: MacvlanMode::Bridge,
            ..
        }
    ));
    assert!(matches!(
        t.devices[1].kind,
        DeviceKind::Vxlan {
            port: VXLAN_PORT,
            source_port: None,
            parent: None,
            ..
        }
    ));
}

#[test]
fn every_problem_is_named_by_its_key() {
    let bad = [
        (
            "    - endpoints: [\"a:vx0\"]\n      vxlan: {remote: 192.0.2.1, vni: 0}\n",
            "topology.links[0].vxlan.vni",
            "vni 0 is out of range: use 1 to 16777215",
        ),
        (
            "    - endpoints: [\"a:vx0\"]\n      vxlan: {remote: 192.0.2.1, vni: 16777216}\n",
            "topology.links[0].vxlan.vni",
            "out of range",
        ),
        (
            "    - endpoints: [\"a:vx0\"]\n      vxlan: {remote: 192.0.2.1, vni: \"7\"}\n",
            "topology.links[0].vxlan.vni",
            "is not a whole number",
        ),
        (
            "    - endpoints: [\"a:vx0\"]\n      vxlan: {remote: far.example, vni: 7}\n",
            "topology.links[0].vxlan.remote",
            "is not an IP address",
        ),
        (
            "    - endpoints: [\"a:vx0\"]\n      vxlan: {remote: 239.1.1.1, vni: 7}\n",
            "topology.links[0].vxlan.remote",
            "no one host's address",
        ),
        (
            "    - endpoints: [\"a:vx0\"]\n      vxlan: {vni: 7}\n",
            "topology.links[0].vxlan.remote",
            "needs `remote`",
        ),
        (
            "    - endpoints: [\"a:vx0\"]\n      vxlan: {remote: 192.0.2.1}\n",
            "topology.links[0].vxlan.vni",
            "needs `vni`",
        ),
        (
            "    - endpoints: [\"a:vx0\"]\n      vxlan: {remote: 192.0.2.1, vni: 7, port: 0}\n",
            "topology.links[0].vxlan.port",
            "port 0 is out of range: use 1 to 65535",
        ),
        (
            "    - endpoints: [\"a:vx0\"]\n      vxlan: {remote: 192.0.2.1, vni: 7, src-port: 65535}\n",
            "topology.links[0].vxlan.src-port",
            "use 1 to 65534",
        ),
        (
            "    - endpoints: [\"a:mv0\"]\n      macvlan: {mode: bridge}\n",
            "topology.links[0].macvlan.parent",
            "a macvlan needs `parent`",
        ),
        (
            "    - endpoints: [\"a:mv0\"]\n      macvlan: {parent: \"no good\"}\n",
            "topology.links[0].macvlan.parent",
            "parent \"no good\": interface name",
        ),
        (
            "    - endpoints: [\"a:mv0\"]\n      macvlan: {parent: eth0, mode: passthrough}\n",
            "topology.links[0].macvlan.mode",
            "not a macvlan mode",
        ),
        (
            "    - endpoints: [\"sw:mv0\"]\n      macvlan: {parent: eth0}\n",
            "topology.links[0].endpoints[0]",
            "node \"sw\" is a bridge",
        ),
        (
            "    - endpoints: [\"host:d0\"]\n      dummy: true\n",
            "topology.links[0].endpoints[0]",
            "nslab makes none in the host",
        ),
        (
            "    - endpoints: [\"zz:d0\"]\n      dummy: true\n",
            "topology.links[0].endpoints[0]",
            "no node named \"zz\"",
        ),
        (
            "    - endpoints: [\"a:d0\", \"b:d0\"]\n      dummy: true\n",
            "topology.links[0].endpoints",
            "a dummy link has one endpoint",
        ),
        (
            "    - endpoints: [\"a:d0\"]\n      dummy: false\n",
            "topology.links[0].dummy",
            "`dummy: false` makes no link",
        ),
        (
            "    - endpoints: [\"a:d0\"]\n      dummy: true\n      vxlan: {remote: 192.0.2.1, vni: 7}\n",
            "topology.links[0]",
            "this one is vxlan and dummy",
        ),
        (
            "    - endpoints: [\"a:d0\"]\n      dummy: true\n      ipv4: [10.0.0.1/24, 10.0.0.2/24]\n",
            "topology.links[0].ipv4",
            "one entry per endpoint (1, null for none), found 2",
        ),
        (
            "    - endpoints: [\"a:d0\"]\n      dummy: true\n      ipv4: [10.0.0.1]\n",
            "topology.links[0].ipv4[0]",
            "has no prefix length",
        ),
        (
            "    - endpoints: [\"a:d0\"]\n      dummy: true\n      mac: [\"01:00:00:00:00:01\"]\n",
            "topology.links[0].mac[0]",
            "multicast",
        ),
        (
            "    - endpoints: [\"a:d0\"]\n      dummy: true\n      state: [sideways]\n",
            "topology.links[0].state[0]",
            "not up or down",
        ),
        (
            "    - endpoints: [\"a:d0\"]\n      dummy: true\n      impair: {delay: 1}\n",
            "topology.links[0].impair.delay",
            "",
        ),
        (
            "    - endpoints: [\"a:d0\"]\n      dummy: true\n      mtu: 20\n",
            "topology.links[0].mtu",
            "mtu 20 is out of range",
        ),
    ];
    for (links, path, msg) in bad {
        assert_own_problem(links, path, msg);
    }
}

#[test]
fn a_device_shares_the_nodes_interface_names_with_the_links() {
    assert_own_problem(
        "    - endpoints: [\"a:eth1\", \"b:eth1\"]\n    - endpoints: [\"a:eth1\"]\n      dummy: true\n",
        "topology.links[1].endpoints[0]",
        "interface \"a:eth1\" is already used at topology.links[0].endpoints[0]",
    );
    assert_own_problem(
        "    - endpoints: [\"a:eth1\"]\n      dummy: true\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n",
        "topology.links[1].endpoints[0]",
        "interface \"a:eth1\" is already used at topology.links[0].endpoints[0]",
    );
}

#[test]
fn a_parent_is_the_hosts_before_up_and_a_tunnel_is_the_hosts_once() {
    assert_own_problem(
        "    - endpoints: [\"a:eth1\", \"host:up0\"]\n    - endpoints: [\"b:mv0\"]\n      macvlan: {parent: up0}\n",
        "topology.links[1].macvlan.parent",
        "is a host end of this lab's own links",
    );
    assert_own_problem(
        "    - endpoints: [\"a:vx0\"]\n      vxlan: {remote: 192.0.2.1, vni: 7}\n    - endpoints: [\"b:vx0\"]\n      vxlan: {remote: 192.0.2.2, vni: 7}\n",
        "topology.links[1].vxlan.vni",
        "vni 7 on port 14789 is topology.links[0]'s already",
    );
    // Another port, or another family, is another tunnel.
    own(&lab(
        "    - endpoints: [\"a:vx0\"]\n      vxlan: {remote: 192.0.2.1, vni: 7}\n    - endpoints: [\"b:vx0\"]\n      vxlan: {remote: 192.0.2.2, vni: 7, port: 14790}\n    - endpoints: [\"b:vx1\"]\n      vxlan: {remote: \"2001:db8::1\", vni: 7}\n",
    ))
    .expect("three tunnels");
}

#[test]
fn a_device_has_addresses_for_the_expectations() {
    let yaml = lab("    - endpoints: [\"b:d0\"]\n      dummy: true\n      ipv4: [10.0.0.2/24]\n")
        + "expect:\n  - {from: a, to: b, reach: false}\n";
    own(&yaml).expect("b has an address on its dummy");
}

#[test]
fn containerlabs_forms_become_nslabs() {
    let yaml = r#"
name: d
topology:
  nodes: {a: {}, b: {}}
  links:
    - type: macvlan
      endpoint: {node: a, interface: eth1, mac: "02:00:00:00:00:09", ipv4: 10.0.0.2/24}
      host-interface: enp0s3
      mode: private
    - endpoints: ["macvlan:enp0s4", "b:eth1"]
    - type: vxlan
      endpoint: {node: a, interface: vx0}
      remote: 192.0.2.1
      vni: 100
      udp-port: 4789
      mtu: 1400
    - type: vxlan
      endpoint: {node: b, interface: vx0}
      remote: 192.0.2.1
      vni: 101
      dst-port: 4790
      udp-port: 4789
      src-port: 5000
      parent-interface: eth9
    - type: dummy
      endpoint: {node: b, interface: d0}
      ipv4: [10.1.0.1/24]
"#;
    let t = clab(yaml).expect("valid");
    let devices: Vec<(String, String, Option<u32>)> = (t.devices.iter())
        .map(|d| {
            (
                format!("{}:{}", d.end.node, d.end.iface),
                d.kind.to_string(),
                d.mtu,
            )
        })
        .collect();
    assert_eq!(
        devices,
        [
            ("a:eth1".into(), "macvlan on enp0s3 (private)".into(), None),
            ("b:eth1".into(), "macvlan on enp0s4 (bridge)".into(), None),
            (
                "a:vx0".into(),
                "vxlan to 192.0.2.1 vni 100 port 4789".into(),
                Some(1400)
            ),
            (
                "b:vx0".into(),
                "vxlan to 192.0.2.1 vni 101 port 4790 from port 5000 via eth9".into(),
                None
            ),
            // containerlab's MTU for a dummy.
            ("b:d0".into(), "dummy".into(), Some(9500)),
        ]
    );
    assert_eq!(t.devices[0].end.mac, Some([2, 0, 0, 0, 0, 9]));
    assert_eq!(
        t.devices[0].end.ipv4,
        Some("10.0.0.2/24".parse().expect("net"))
    );
    assert_eq!(
        t.devices[4].end.ipv4,
        Some("10.1.0.1/24".parse().expect("net"))
    );
}

#[test]
fn containerlabs_problems_name_its_keys() {
    assert_clab_problem(
        "    - {type: vxlan, endpoint: {node: a, interface: vx0}, remote: 192.0.2.1, vni: 0}\n",
        "topology.links[0].vni",
        "vni 0 is out of range",
    );
    assert_clab_problem(
        "    - {type: vxlan, endpoint: {node: a, interface: vx0}, remote: 192.0.2.1, vni: 7, udp-port: 0}\n",
        "topology.links[0].udp-port",
        "port 0 is out of range",
    );
    assert_clab_problem(
        "    - {type: vxlan, endpoint: {node: a, interface: vx0}, vni: 7}\n",
        "topology.links[0].remote",
        "needs `remote`",
    );
    assert_clab_problem(
        "    - {type: macvlan, endpoint: {node: a, interface: eth1}}\n",
        "topology.links[0].host-interface",
        "a macvlan needs `host-interface`",
    );
    assert_clab_problem(
        "    - {type: macvlan, endpoint: {node: a, interface: eth1}, host-interface: eth0, mode: nope}\n",
        "topology.links[0].mode",
        "not a macvlan mode",
    );
    assert_clab_problem(
        "    - endpoints: [\"a:eth1\", \"macvlan:bad name\"]\n",
        "topology.links[0].endpoints[1]",
        "interface name",
    );
    assert_clab_problem(
        "    - {type: dummy, endpoint: {node: a, interface: d0}, host-interface: x}\n",
        "topology.links[0].host-interface",
        "not to a dummy link",
    );
    assert_clab_problem(
        "    - {type: vxlan, endpoint: {node: a, interface: vx0}, remote: 192.0.2.1, vni: 7, mode: bridge}\n",
        "topology.links[0].mode",
        "belongs to macvlan links, not to a vxlan link",
    );
    assert_clab_problem(
        "    - {type: dummy, endpoints: [\"a:d0\"]}\n",
        "topology.links[0].endpoints",
        "has `endpoint` (one, the node's), not `endpoints`",
    );
    assert_clab_problem(
        "    - {type: dummy}\n",
        "topology.links[0].endpoint",
        "needs `endpoint`",
    );
    assert_clab_problem(
        "    - {type: dummy, endpoint: {node: a, interface: d0, ipv4: 10.0.0.1/24}, ipv4: [10.0.0.1/24]}\n",
        "topology.links[0].ipv4",
        "give `ipv4` once",
    );
    assert_clab_problem(
        "    - {type: veth, endpoints: [\"a:e\", \"b:e\"], dummy: true}\n",
        "topology.links[0].dummy",
        "nslab's form of a device",
    );
    assert_clab_problem(
        "    - {type: macvlan, endpoint: {node: a, interface: eth1}, host-interface: eth0, macvlan: {parent: eth1}}\n",
        "topology.links[0].macvlan",
        "nslab's form of a device, without `type`",
    );
    assert_clab_problem(
        "    - {type: vxlan-stitch, endpoint: {node: a, interface: vx0}, remote: 192.0.2.1, vni: 7}\n",
        "topology.links[0].type",
        "write `type: vxlan`",
    );
    assert_clab_problem(
        "    - {type: veth-stitch, endpoints: [\"a:e\", \"b:e\"]}\n",
        "topology.links[0].type",
        "write a veth link",
    );
}

#[test]
fn nslabs_form_works_in_containerlabs_files() {
    let yaml = "name: d\ntopology:\n  nodes: {a: {}}\n  links:\n    - endpoints: [\"a:d0\"]\n      dummy: true\n";
    let t = clab(yaml).expect("valid");
    assert_eq!(t.devices[0].kind, DeviceKind::Dummy);
    // Without containerlab's MTU: the form is nslab's.
    assert_eq!(t.devices[0].mtu, None);
}

#[test]
fn a_macvlan_end_makes_a_file_containerlabs() {
    let yaml = "name: d\ntopology:\n  nodes: {a: {}}\n  links:\n    - endpoints: [\"a:eth1\", \"macvlan:eth0\"]\n";
    let t = own(yaml).expect("valid");
    assert!(t.mgmt.is_some(), "read as containerlab's");
    assert_eq!(t.devices[0].kind.parent(), Some("eth0"));
    // Unless a node is named `macvlan`: then it is that node's end.
    let yaml = "name: d\ntopology:\n  nodes: {a: {}, macvlan: {}}\n  links:\n    - endpoints: [\"a:eth1\", \"macvlan:eth0\"]\n";
    let t = own(yaml).expect("valid");
    assert!(t.mgmt.is_none() && t.devices.is_empty() && t.links.len() == 1);
}
