//! containerlab's files, through the loader as `nslab` reads them.

use std::path::Path;

use super::super::tests::{assert_problem_in, problems_of};
use super::super::{Topology, TopologyError, parse_str};
use super::expand_env;
use crate::spec::NodeKind;

/// Parses `yaml` as a containerlab file (by its name) in `/srv/labs`.
fn clab(yaml: &str) -> Result<Topology, TopologyError> {
    parse_str(
        yaml,
        Path::new("/srv/labs/t.clab.yml"),
        Path::new("/srv/labs"),
    )
}

#[track_caller]
fn assert_problem(yaml: &str, path: &str, msg: &str) {
    let ps = problems_of(clab(yaml), Path::new("/srv/labs/t.clab.yml"));
    assert_problem_in(&ps, path, msg);
}

#[test]
fn variables_expand_as_containerlab_expands_them() {
    let env = |name: &str| match name {
        "SET" => Some("v".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    let table = [
        ("a ${SET} $SET b", "a v v b"),
        ("${UNSET} $UNSET ${EMPTY}", "$UNSET $UNSET $EMPTY"),
        ("${UNSET:=d} ${EMPTY:=d} ${SET:=d} ${UNSET:-d}", "d d v d"),
        ("${UNSET=d} ${EMPTY=d} ${SET-d}", "d $EMPTY v"),
        ("${UNSET+a}|${EMPTY+a}|${SET:+a}", "|a|a"),
        ("$$SET $$ $1 ${1} $ x $(date)", "$SET $ $1 ${1} $ x $(date)"),
    ];
    for (text, want) in table {
        assert_eq!(expand_env(text, 1 << 20, env).expect(text), want, "{text}");
    }
    let err = expand_env("a\nb ${SET\n}", 1 << 20, env).expect_err("unclosed");
    assert!(err.starts_with("line 2:"), "{err}");
}

const LEVELS: &str = r#"
name: lv
topology:
  defaults:
    env: {A: defaults, B: defaults}
    exec: ["echo defaults"]
    binds: ["/etc/hostname:/run/a", "/etc/hosts:/run/d"]
  kinds:
    linux:
      env: {B: kind, C: kind}
      exec: ["echo kind"]
      binds: ["/etc/hostname:/run/k"]
  groups:
    g:
      env: {C: group}
      exec: ["echo group", "echo defaults"]
      binds: ["/etc/passwd:/run/d"]
  nodes:
    n1:
      group: g
      image: alpine
      exec: ["echo __clabNodeName__ in __clabNodeDir__ of __clabLabName__"]
      binds: ["__clabNodeDir__/conf:/run/conf:ro"]
    n2: {kind: linux, cpu: 0.5, cpu-set: "0", memory: 64mb}
    sw: {kind: bridge}
    h: {kind: host}
  links:
    - endpoints: ["n1:eth1", "n2:eth1"]
      ipv4: ["10.0.0.1/24", ""]
    - type: veth
      endpoints:
        - {node: n1, interface: eth2, mac: "02:00:00:00:00:0a", ipv6: "2001:db8::1/64"}
        - {node: sw, interface: p1}
    - type: host
      endpoint: {node: n2, interface: eth2}
      host-interface: n2-host
    - endpoints: ["h:lv-h", "n2:eth3"]
"#;

#[test]
fn a_node_has_its_own_then_its_groups_then_its_kinds_then_the_defaults() {
    let t = clab(LEVELS).expect("valid");
    let n1 = &t.nodes["n1"];
    let env: Vec<(&str, &str)> = n1
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env, [("A", "defaults"), ("B", "kind"), ("C", "group")]);
    // exec one after the other, each line once; the magic variables replaced.
    assert_eq!(
        n1.exec,
        [
            "echo defaults",
            "echo kind",
            "echo group",
            "echo n1 in /srv/labs/clab-lv/n1 of clab-lv"
        ]
    );
    // binds by target, the group's over the defaults', sorted by target.
    let binds: Vec<String> = (n1.binds.iter())
        .map(|b| format!("{}:{}", b.source.display(), b.target.display()))
        .collect();
    assert_eq!(
        binds,
        [
            "/etc/hostname:/run/a",
            "/srv/labs/clab-lv/n1/conf:/run/conf",
            "/etc/passwd:/run/d",
            "/etc/hostname:/run/k"
        ]
    );
    assert_eq!(t.lab_dir.as_deref(), Some(Path::new("/srv/labs/clab-lv")));
    assert_eq!(t.notes.len(), 1);
    assert!(t.notes[0].ends_with(": alpine (n1)"), "{:?}", t.notes);
    let n2 = &t.nodes["n2"];
    assert_eq!(
        (n2.limits.cpus, n2.limits.memory),
        (Some(0.5), Some(64 << 20))
    );
    assert_eq!(n2.limits.cpuset.as_deref(), Some("0"));
    assert_eq!(t.nodes["sw"].kind, NodeKind::Bridge);
    // A `kind: host` node is the host.
    assert!(!t.nodes.contains_key("h"));
}

#[test]
fn links_in_every_form_become_veth_pairs_of_mtu_9500() {
    let t = clab(LEVELS).expect("valid");
    // The file's links, before those of the management network.
    let links = &t.links[..4];
    let ends: Vec<String> = (links.iter())
        .map(|l| {
            format!(
                "{}:{} {}:{}",
                l.endpoints[0].node,
                l.endpoints[0].iface,
                l.endpoints[1].node,
                l.endpoints[1].iface
            )
        })
        .collect();
    assert_eq!(
        ends,
        [
            "n1:eth1 n2:eth1",
            "n1:eth2 sw:p1",
            "n2:eth2 host:n2-host",
            "host:lv-h n2:eth3"
        ]
    );
    assert!(links.iter().all(|l| l.mtu == Some(9500)));
    let [a, b] = &t.links[0].endpoints;
    assert_eq!((a.ipv4.is_some(), b.ipv4.is_some()), (true, false));
    let e = &t.links[1].endpoints[0];
    assert_eq!(e.mac, Some([2, 0, 0, 0, 0, 0x0a]));
    assert!(e.ipv6.is_some());
}

#[test]
fn what_nslab_cannot_honour_is_named() {
    let node =
        |extra: &str| format!("name: x\ntopology:\n  nodes:\n    n1: {{{extra}}}\n    n2: {{}}\n");
    assert_problem(
        &node("kind: nokia_srlinux"),
        "topology.nodes.n1.kind",
        "vendor's network OS",
    );
    assert_problem(
        &node("kind: frr, extras: {frr: {daemons: [ospfd, quaggad]}}"),
        "topology.nodes.n1.extras.frr.daemons",
        "\"quaggad\" is not one of FRR's daemons",
    );
    assert_problem(
        &node("kind: linux, startup-config: r1.conf"),
        "topology.nodes.n1.startup-config",
        "not supported",
    );
    assert_problem(
        &node("network-mode: \"container:n2\""),
        "topology.nodes.n1.network-mode",
        "only \"none\"",
    );
    assert_problem(
        &node("entrypoint: /init"),
        "topology.nodes.n1.entrypoint",
        "containerlab's `entrypoint` is not supported",
    );
    assert_problem(
        &node("user: \"a:b\""),
        "topology.nodes.n1.user",
        "is not a user name or number",
    );
    assert_problem(
        &node("mgmt-ipv4: 172.20.21.9"),
        "topology.nodes.n1.mgmt-ipv4",
        "not a host address of the management subnet 172.20.20.0/24",
    );
    assert_problem(
        &node("network-mode: none, mgmt-ipv6: \"3fff:172:20:20::9\""),
        "topology.nodes.n1.mgmt-ipv6",
        "`network-mode: none`",
    );
    assert_problem(
        &node("mgmt-ipv4: 172.20.20.1"),
        "topology.nodes.n1.mgmt-ipv4",
        "the management network's gateway",
    );
    assert_problem(
        &node("ports: [\"80\"]"),
        "topology.nodes.n1.ports[0]",
        "needs the host's port too",
    );
    assert_problem(
        &node("group: nope"),
        "topology.nodes.n1.group",
        "not defined",
    );
    assert_problem(
        "name: x\nmgmt: {ipv4-subnet: 10.0.0.0/30}\ntopology:\n  nodes: {n1: {}, n2: {}}\n",
        "topology.nodes.n2",
        "has no address left for node \"n2\"",
    );
    assert_problem(
        "name: x\ntopology:\n  nodes: {n1: {}, mgmt-net: {}}\n",
        "topology.nodes.mgmt-net",
        "the management network's",
    );
    assert_problem(
        "name: x\ntopology:\n  nodes: {n1: {}, n2: {}}\n  links:\n    - endpoints: [n1:eth0, n2:eth1]\n",
        "topology.links[0].endpoints[0]",
        "n1:eth0 is node \"n1\"'s management interface",
    );
    let link = |l: &str| {
        format!("name: x\ntopology:\n  nodes: {{n1: {{}}, n2: {{}}}}\n  links:\n    - {l}\n")
    };
    assert_problem(
        &link("{type: vxlan-stitch, endpoint: {node: n1, interface: vx}}"),
        "topology.links[0].type",
        "vxlan-stitch are not built by nslab",
    );
    assert_problem(
        &link("{type: veth-stitch, endpoints: [\"n1:e\", \"n2:e\"]}"),
        "topology.links[0].type",
        "veth-stitch are not built by nslab",
    );
    assert_problem(
        &link("{type: vxlan, endpoint: {node: n1, interface: vx}}"),
        "topology.links[0].remote",
        "a vxlan needs `remote`",
    );
    assert_problem(
        &link("{type: host, endpoint: {node: n1, interface: e}}"),
        "topology.links[0]",
        "host-interface",
    );
}

#[test]
fn the_management_network_numbers_nodes_around_pinned_addresses() {
    let yaml = "name: m\nmgmt: {ipv4-subnet: 10.9.0.0/24, ipv4-range: 10.9.0.0/28, mtu: 1400}\ntopology:\n  nodes:\n    a: {}\n    b: {mgmt-ipv4: 10.9.0.2, ports: [\"127.0.0.1:8022:22\", \"5353:53/udp\"]}\n    c: {network-mode: none}\n    sw: {kind: bridge}\n  links:\n    - endpoints: [\"a:eth1\", \"mgmt-net:a-eth1\"]\n    - type: mgmt-net\n      endpoint: {node: c, interface: eth1}\n      host-interface: c-eth1\n";
    let t = clab(yaml).expect("valid");
    let mgmt = t.mgmt.as_ref().expect("a management network");
    assert_eq!(mgmt.host_iface, "mgmt-m");
    assert_eq!(
        mgmt.ipv4.map(|a| a.to_string()).as_deref(),
        Some("10.9.0.1/24")
    );
    assert_eq!(mgmt.ipv6, None);
    let ports: Vec<String> = mgmt.ports.iter().map(ToString::to_string).collect();
    assert_eq!(
        ports,
        [
            "127.0.0.1:8022 -> 10.9.0.2:22 (b:22/tcp)",
            "[::]:5353 -> 10.9.0.2:53 (b:53/udp)"
        ]
    );
    let ends = |l: &crate::spec::Link| {
        let [x, y] = &l.endpoints;
        let addr = x.ipv4.map(|a| format!(" {a}")).unwrap_or_default();
        format!(
            "{}:{}{addr} {}:{} mtu {:?}",
            x.node, x.iface, y.node, y.iface, l.mtu
        )
    };
    let links: Vec<String> = t.links.iter().map(ends).collect();
    assert_eq!(
        links,
        [
            "a:eth1 mgmt-net:a-eth1 mtu Some(9500)",
            "c:eth1 mgmt-net:c-eth1 mtu Some(9500)",
            "host:mgmt-m 10.9.0.1/24 mgmt-net:host mtu Some(1400)",
            "a:eth0 10.9.0.3/24 mgmt-net:a mtu Some(1400)",
            "b:eth0 10.9.0.2/24 mgmt-net:b mtu Some(1400)",
        ]
    );
    assert_eq!(t.nodes["mgmt-net"].kind, NodeKind::Bridge);
    assert_eq!(t.container_prefix.as_deref(), Some("clab-m-"));
}

#[test]
fn a_prefix_is_a_names_characters() {
    assert_problem(
        "name: p\nprefix: \"a b\\nc\"\ntopology:\n  nodes: {a: {}}\n",
        "prefix",
        "a prefix is made of letters",
    );
    let t = clab("name: p\nprefix: lab.x_1\ntopology:\n  nodes: {a: {}}\n").expect("valid");
    assert_eq!(t.container_prefix.as_deref(), Some("lab.x_1-p-"));
}

#[test]
fn a_host_bridge_is_the_hosts_and_its_ends_host_ends() {
    let yaml = "name: hb\ntopology:\n  nodes:\n    a: {}\n    br0: {kind: bridge, host-bridge: true}\n  links:\n    - endpoints: [a:eth1, br0:hb-a]\n";
    let t = clab(yaml).expect("valid");
    assert!(!t.nodes.contains_key("br0"));
    let end = &t.links[0].endpoints[1];
    assert_eq!(
        (end.node.as_str(), end.iface.as_str(), end.master.as_deref()),
        ("host", "hb-a", Some("br0"))
    );
    assert_problem(
        "name: hb\ntopology:\n  nodes:\n    a: {host-bridge: true}\n",
        "topology.nodes.a.host-bridge",
        "only a `kind: bridge` node",
    );
    assert_problem(
        "name: hb\ntopology:\n  nodes:\n    a: {}\n    br0: {kind: bridge, host-bridge: true}\n  links:\n    - endpoints: [a:eth1, br0:hb-a]\n      ipv4: [10.0.0.1/24, 10.0.0.2/24]\n",
        "topology.links[0].endpoints[1]",
        "takes no address",
    );
}

#[test]
fn nslab_files_opt_in_to_the_management_network() {
    let own = "name: o\ntopology:\n  nodes: {a: {}}\n";
    let t = parse_str(own, Path::new("/srv/o.yml"), Path::new("/srv")).expect("valid");
    assert!(t.mgmt.is_none() && t.links.is_empty() && t.container_prefix.is_none());
    let with = format!("mgmt: {{}}\n{own}");
    let t = parse_str(&with, Path::new("/srv/o.yml"), Path::new("/srv")).expect("valid");
    assert_eq!(t.lab_dir, None, "still nslab's own file");
    let mgmt = t.mgmt.expect("a management network");
    assert_eq!(
        (
            mgmt.ipv4.unwrap().to_string(),
            mgmt.ipv6.unwrap().to_string()
        ),
        ("172.20.20.1/24".into(), "3fff:172:20:20::1/64".into())
    );
    let without = "name: o\ntopology:\n  nodes: {a: {mgmt-ipv4: 172.20.20.5}}\n";
    let err = parse_str(without, Path::new("/srv/o.yml"), Path::new("/srv")).unwrap_err();
    assert!(err.to_string().contains("add `mgmt: {}`"), "{err}");
}

#[test]
fn a_file_is_containerlabs_by_its_name_or_its_keys() {
    let plain = "name: x\ntopology:\n  nodes:\n    n1: {kind: linux}\n";
    // By its keys: `kind: linux` is containerlab's.
    let t = parse_str(plain, Path::new("/srv/x.yml"), Path::new("/srv")).expect("valid");
    assert_eq!(t.lab_dir.as_deref(), Some(Path::new("/srv/clab-x")));
    // An nslab file stays nslab's: no lab directory, no 9500 MTU.
    let own = "name: x\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [\"a:e0\", \"b:e0\"]\n";
    let t = parse_str(own, Path::new("/srv/x.yml"), Path::new("/srv")).expect("valid");
    assert_eq!((t.lab_dir, t.links[0].mtu), (None, None));
    // By its name, even with nslab's keys alone.
    let t = parse_str(own, Path::new("/srv/x.clab.yaml"), Path::new("/srv")).expect("valid");
    assert_eq!(t.links[0].mtu, Some(9500));
}

#[test]
fn frr_images_are_known_by_their_repository() {
    use super::images::host_software;
    for image in [
        "quay.io/frrouting/frr:10.5.1",
        "frrouting/frr",
        "docker.io/frrouting/frr:v8.4.1",
        "quay.io/frrouting/frr@sha256:0123",
    ] {
        assert_eq!(host_software(image).map(|s| s.name), Some("FRR"), "{image}");
    }
    for image in [
        "alpine:3",
        "ghcr.io/example/frr",
        "frrouting/frr-exporter:1",
    ] {
        assert_eq!(host_software(image), None, "{image}");
    }
}

/// docs/schema.json (what `nslab schema` prints) names exactly the node
/// and link keys the loader takes, less those it refuses by name.
#[test]
fn the_schema_keys_are_the_loaders() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/schema.json")).expect("schema");
    let keys = |definition: &str| -> Vec<String> {
        let mut keys: Vec<String> = (schema["definitions"][definition]["properties"].as_object())
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    // The loader's keys, from its message for an unknown one.
    let taken = |yaml: &str| -> Vec<String> {
        let err = clab(yaml).expect_err("an unknown key").to_string();
        let list = err
            .split("expected one of ")
            .nth(1)
            .expect("a list of keys");
        let mut keys: Vec<String> = list
            .split(", ")
            .map(|k| k.trim_matches('`').to_owned())
            .collect();
        keys.sort();
        keys
    };
    let mut node = taken("name: x\ntopology:\n  nodes:\n    a: {zzz: 1}\n");
    // `startup-config` and `extras` are `kind: frr`'s, refused elsewhere.
    node.retain(|k| !refused_key(k) || k == "startup-config" || k == "extras");
    assert_eq!(keys("node"), node);
    let mut mgmt = taken("name: x\nmgmt: {zzz: 1}\ntopology:\n  nodes: {a: {}}\n");
    // The Docker options nslab refuses.
    mgmt.retain(|k| k != "driver-opts");
    assert_eq!(keys("mgmt"), mgmt);
    let link = taken("name: x\ntopology:\n  nodes: {a: {}}\n  links:\n    - {zzz: 1}\n");
    assert_eq!(keys("link"), link);
}

/// Whether `key` is one the loader takes only to refuse it by name.
fn refused_key(key: &str) -> bool {
    let yaml = format!("name: x\ntopology:\n  nodes:\n    a: {{{key}: 1}}\n");
    match clab(&yaml) {
        Err(TopologyError::Invalid { problems, .. }) => problems.iter().any(|p| {
            p.path == format!("topology.nodes.a.{key}") && p.message.contains("is not supported")
        }),
        _ => false,
    }
}

#[test]
fn cmd_starts_before_the_exec_steps_in_the_background() {
    let yaml = "name: c\ntopology:\n  nodes:\n    web:\n      cmd: python3 -m http.server 80\n      exec: [\"echo after\"]\n";
    let t = clab(yaml).expect("valid");
    assert_eq!(
        t.nodes["web"].exec,
        [
            "exec >>/run/cmd.log 2>&1 </dev/null; python3 -m http.server 80 &",
            "echo after"
        ]
    );
}

#[test]
fn a_kinds_group_and_endpoint_blanks_count_as_containerlab_counts_them() {
    let yaml = r#"
name: g
topology:
  kinds:
    linux: {group: g1}
  groups:
    g1: {env: {FROM: g1}}
  nodes:
    a: {kind: linux}
    b: {kind: linux}
    sw: {kind: bridge}
  defaults:
    memory: 64M
  links:
    - type: veth
      endpoints:
        - {node: a, interface: e1, ipv4: "10.0.0.1/24", mac: ""}
        - {node: b, interface: e1, ipv4: ""}
    - endpoints: ["a:e2", "sw:p1"]
"#;
    let t = clab(yaml).expect("valid");
    // The kind's group gives `a` its env.
    assert_eq!(t.nodes["a"].env, [("FROM".to_owned(), "g1".to_owned())]);
    // A bridge takes nothing node-only from `defaults`.
    assert_eq!(t.nodes["sw"].limits.memory, None);
    assert_eq!(t.nodes["a"].limits.memory, Some(64 << 20));
    let [a, b] = &t.links[0].endpoints;
    assert!(a.ipv4.is_some() && a.mac.is_none() && b.ipv4.is_none());
}

#[test]
fn dollars_expand_without_braces_too() {
    let env = |name: &str| (name == "HOME").then(|| "/root".to_owned());
    assert_eq!(
        expand_env("cd $HOME; echo $$", 1 << 20, env).expect("ok"),
        "cd /root; echo $"
    );
    assert!(expand_env("$HOME$HOME", 8, env).is_err(), "past the limit");
    assert_eq!(expand_env("${NOPE:-}", 1 << 20, env).expect("ok"), "$NOPE");
    assert_eq!(
        expand_env("${NOPE:-$HOME}", 1 << 20, env).expect("ok"),
        "/root"
    );
}

#[test]
fn dns_is_the_nodes_own_resolv_conf() {
    let yaml = "name: d\ntopology:\n  nodes:\n    a:\n      dns: {servers: [192.0.2.53], search: [lab.example], options: [\"ndots:2\"]}\n";
    let t = clab(yaml).expect("valid");
    let file = Path::new("/srv/labs/clab-d/a/resolv.conf");
    assert!(
        t.nodes["a"]
            .binds
            .iter()
            .any(|b| b.source == file && b.target == Path::new("/etc/resolv.conf"))
    );
    assert_eq!(t.lab_files.len(), 1);
    assert_eq!(t.lab_files[0].0, file);
    assert!(
        t.lab_files[0]
            .1
            .ends_with("nameserver 192.0.2.53\nsearch lab.example\noptions ndots:2\n"),
        "{}",
        t.lab_files[0].1
    );
}

#[test]
fn user_runs_cmd_and_the_exec_steps() {
    let yaml = "name: u\ntopology:\n  nodes:\n    a: {user: nobody, cmd: sleep 9, exec: [\"id -u > /tmp/who\"]}\n";
    let t = clab(yaml).expect("valid");
    let run_as = |step: &str| {
        format!(
            "setpriv --reuid=nobody --regid=\"$(id -g nobody)\" --init-groups -- /bin/sh -c '{step}'"
        )
    };
    assert_eq!(
        t.nodes["a"].exec,
        [
            format!(
                "exec >>/run/cmd.log 2>&1 </dev/null; {} &",
                run_as("sleep 9")
            ),
            format!("exec {}", run_as("id -u > /tmp/who"))
        ]
    );
}

#[test]
fn kind_frr_runs_the_hosts_frr_with_its_config_and_daemons() {
    if !Path::new("/usr/lib/frr/frrinit.sh").exists() {
        return; // validation refuses kind frr without FRR, as it should
    }
    let yaml = "name: f\ntopology:\n  nodes:\n    r1: {kind: frr, startup-config: /etc/hostname, extras: {frr: {daemons: [ospfd, bgpd]}}}\n";
    let t = clab(yaml).expect("valid");
    let r1 = &t.nodes["r1"];
    assert_eq!(r1.exec, ["/usr/lib/frr/frrinit.sh start"]);
    let binds: Vec<String> = (r1.binds.iter())
        .map(|b| format!("{}:{}", b.source.display(), b.target.display()))
        .collect();
    assert_eq!(
        binds,
        [
            "/etc/hostname:/etc/frr/frr.conf",
            "/srv/labs/clab-f/r1/daemons:/etc/frr/daemons"
        ]
    );
    assert!(r1.tmpfs.iter().any(|p| p == Path::new("/etc/frr")));
    let (file, daemons) = &t.lab_files[0];
    assert_eq!(file, Path::new("/srv/labs/clab-f/r1/daemons"));
    assert!(
        daemons.contains("zebra=yes\nstaticd=yes\nospfd=yes\nbgpd=yes\nvtysh_enable=yes\n"),
        "{daemons}"
    );
}
