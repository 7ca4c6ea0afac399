//! The generated script: its steps, their order and quoting.

use std::path::{Path, PathBuf};

use super::*;
use crate::plan::{EndpointPlan, LinkPlan, Place};
use crate::spec::{Bind, Node, NodeKind};
use crate::topology::parse_str;

fn plan_of(yaml: &str) -> Plan {
    let topology = parse_str(yaml, Path::new("lab.yml"), Path::new("/")).expect("valid topology");
    Plan::from_topology(&topology)
}

fn script_of(yaml: &str) -> String {
    script(&plan_of(yaml), None).expect("script")
}

/// Byte offset of the first line that starts with `prefix`.
#[track_caller]
fn line_at(text: &str, prefix: &str) -> usize {
    let mut offset = 0;
    for line in text.lines() {
        if line.starts_with(prefix) {
            return offset;
        }
        offset += line.len() + 1;
    }
    panic!("no line starting with {prefix:?} in:\n{text}");
}

/// The script passes `sh -n` (parsed, nothing run).
#[track_caller]
fn assert_parses(text: &str) {
    let out = std::process::Command::new("/bin/sh")
        .args(["-n", "-c", text])
        .output()
        .expect("run /bin/sh -n");
    assert!(
        out.status.success(),
        "sh -n failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const CHAIN: &str = r#"
name: chain
topology:
  defaults:
    sysctls: {net.ipv4.ip_forward: 1}
  nodes:
    h1:
      routes: ["default via 10.0.1.1", "default via 2001:db8:1::1"]
    r1:
      sysctls: {net.ipv4.conf.eth1.rp_filter: 2}
    h2:
      routes: ["10.0.1.0/24 dev eth0 metric 5"]
      env: {ROLE: server}
      exec: ["echo ready > /tmp/state"]
    lan:
      kind: bridge
  links:
    - endpoints: ["h1:eth0", "r1:eth0"]
      ipv4: [10.0.1.2/24, 10.0.1.1/24]
      ipv6: ["2001:db8:1::2/64", "2001:db8:1::1/64"]
      mac: ["02:00:00:00:00:01", null]
    - endpoints: ["r1:eth1", "lan:p1"]
      ipv4: [10.0.2.1/24, null]
    - endpoints: ["h2:eth0", "lan:p2"]
      ipv4: [10.0.2.2/24, null]
      mtu: 9000
"#;

#[test]
fn the_script_is_a_runnable_posix_script_under_any_lab_name() {
    let text = script_of(CHAIN);
    assert!(text.starts_with("#!/bin/sh\n"), "{text}");
    assert!(text.contains("\nset -eu\n"));
    assert!(text.contains("\nLAB=${LAB:-chain}\n"));
    assert!(text.contains("\nRUN=/run/nslab-sh/$LAB\n"));
    // Every netns name comes from $LAB, never from the plan's name.
    assert!(!text.contains("chain-"), "{text}");
    assert!(text.contains("ip netns attach \"$LAB-h1\" \"$pid_h1\""));
    assert!(text.contains("if [ \"${1:-}\" = down ]; then down; exit 0; fi"));
    assert!(text.ends_with(
        "trap - EXIT\necho \"lab $LAB is up: 4 node(s), 3 link(s); remove it with: $0 down\"\n"
    ));
    assert_parses(&text);
}

#[test]
fn steps_follow_the_phases_of_up() {
    let text = script_of(CHAIN);
    let order = [
        "unshare --net --uts --ipc --cgroup --mount --pid --fork",
        "nsenter -t \"$pid_h1\" -a sh -eu <<'EOF'",
        "echo 1 > /proc/sys/net/ipv4/ip_forward",
        "ip netns attach \"$LAB-h1\"",
        "ip -n \"$LAB-lan\" link add name lan type bridge",
        "ip link add name eth0 netns \"$LAB-h1\"",
        // Ports before the other ends, so that they forward at once.
        "ip -n \"$LAB-lan\" link set dev p2 master lan up",
        "ip -n \"$LAB-h1\" address add 10.0.1.2/24 dev eth0",
        "ip -n \"$LAB-h1\" route add default via 10.0.1.1 proto static",
        "echo 2 > /proc/sys/net/ipv4/conf/eth1/rp_filter",
        "nsenter -t \"$pid_h2\" -a env ROLE=server /bin/sh -c",
        "trap - EXIT",
    ];
    let at: Vec<usize> = order.iter().map(|p| line_at(&text, p)).collect();
    for (pair, at) in order.windows(2).zip(at.windows(2)) {
        assert!(
            at[0] < at[1],
            "{:?} should come before {:?}",
            pair[0],
            pair[1]
        );
    }
    // Nodes, names and links each in file order.
    for prefix in ["pid_", "ip netns attach \"$LAB-"] {
        let nodes: Vec<usize> = ["h1", "r1", "h2", "lan"]
            .iter()
            .map(|n| match prefix {
                "pid_" => line_at(&text, &format!("pid_{n}=$(pid1_of $! {n})")),
                _ => line_at(&text, &format!("{prefix}{n}\"")),
            })
            .collect();
        assert!(nodes.windows(2).all(|w| w[0] < w[1]), "{prefix}: {nodes:?}");
    }
    // Every node's init block comes before any name (as nslab names them
    // once every init exists).
    assert!(
        line_at(&text, "nsenter -t \"$pid_lan\" -a sh -eu") < line_at(&text, "ip netns attach")
    );
}

#[test]
fn links_carry_their_mtu_and_mac_and_ends_their_addresses() {
    let text = script_of(CHAIN);
    assert!(text.contains(
        "\nip link add name eth0 netns \"$LAB-h1\" address 02:00:00:00:00:01 type veth peer name eth0 netns \"$LAB-r1\"\n"
    ));
    assert!(text.contains(
        "\nip link add name eth0 netns \"$LAB-h2\" mtu 9000 type veth peer name p2 netns \"$LAB-lan\" mtu 9000\n"
    ));
    // IPv6 without duplicate address detection, as nslab adds it; IPv4 as is.
    assert!(text.contains("\nip -n \"$LAB-h1\" address add 2001:db8:1::2/64 dev eth0 nodad\n"));
    assert!(text.contains("\nip -n \"$LAB-h1\" address add 10.0.1.2/24 dev eth0\n"));
    assert!(text.contains("\nip -n \"$LAB-h1\" link set dev eth0 up\n"));
    // Bridge ports join their bridge and come up; they get no address.
    assert!(text.contains("\nip -n \"$LAB-lan\" link set dev p1 master lan up\n"));
    assert!(!text.contains("dev p1\n"));
    // Routes: IPv6 ones with -6; dev and metric kept.
    assert!(
        text.contains("\nip -6 -n \"$LAB-h1\" route add default via 2001:db8:1::1 proto static\n")
    );
    assert!(
        text.contains("\nip -n \"$LAB-h2\" route add 10.0.1.0/24 dev eth0 metric 5 proto static\n")
    );
}

#[test]
fn every_node_gets_what_the_init_does() {
    let text = script_of(CHAIN);
    for node in ["h1", "r1", "h2", "lan"] {
        let start = line_at(
            &text,
            &format!("nsenter -t \"$pid_{node}\" -a sh -eu <<'EOF'"),
        );
        let block = &text[start..];
        let block = &block[..=block.find("\nEOF\n").expect("end of the block")];
        for line in [
            "umount -a -l -t nsfs 2>/dev/null || true",
            "mount -t sysfs -o nosuid,nodev,noexec sysfs /sys",
            "mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp",
            "mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs /run",
            &format!("hostname {node}"),
            "ip link set dev lo up",
            "echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad",
            "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad",
            "echo 1 > /proc/sys/net/ipv4/ip_forward",
        ] {
            assert!(
                block.contains(&format!("\n{line}\n")),
                "{node}: no {line:?} in\n{block}"
            );
        }
        // The sysctl naming an interface waits for the interface.
        assert!(!block.contains("rp_filter"), "{block}");
    }
}

#[test]
fn odd_values_are_quoted_and_comments_stay_on_one_line() {
    let text = script_of(
        r#"
name: odd
topology:
  nodes:
    a:
      env: {GREETING: "it's $HOME", X: "a b"}
      exec: ["echo \"$GREETING\" > /tmp/g\necho two"]
      sysctls: {kernel.domainname: "x\\y"}
    b: {}
  links:
    - endpoints: ["a:e$x", "b:br"]
      ipv4: [10.0.0.1/24, 10.0.0.2/24]
"#,
    );
    assert!(text.contains(
        "\nip link add name 'e$x' netns \"$LAB-a\" type veth peer name br netns \"$LAB-b\"\n"
    ));
    assert!(text.contains("\nip -n \"$LAB-a\" address add 10.0.0.1/24 dev 'e$x'\n"));
    // `br` would be read as ip's `broadcast` without `dev`.
    assert!(text.contains("\nip -n \"$LAB-b\" link set dev br up\n"));
    assert!(text.contains(
        "nsenter -t \"$pid_a\" -a env 'GREETING=it'\\''s $HOME' 'X=a b' /bin/sh -c 'echo \"$GREETING\" > /tmp/g\necho two' </dev/null\n"
    ));
    assert!(text.contains("\n# a: echo \"$GREETING\" > /tmp/g\\necho two\n"));
    // echo could turn a backslash into something else: printf.
    assert!(text.contains("\nprintf '%s\\n' 'x\\y' > /proc/sys/kernel/domainname\n"));
    assert_parses(&text);
}

#[test]
fn bind_sources_hidden_by_the_nodes_mounts_are_opened_first() {
    let text = script_of(
        r#"
name: binds
topology:
  nodes:
    a:
      binds: ["/etc/hostname:/etc/motd:ro", "/tmp:/run/x/old-tmp"]
"#,
    );
    // /etc/hostname stays visible: bound by its path.
    assert!(
        text.contains(
            "\nmount --rbind /etc/hostname /etc/motd\nmount -o remount,bind,ro /etc/motd\n"
        )
    );
    // /tmp is hidden by the node's tmpfs on /tmp: opened before it.
    let open = line_at(&text, "exec 3< /tmp");
    assert!(open < line_at(&text, "mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp"));
    assert!(text.contains(
        "\nif [ ! -e /run/x/old-tmp ]; then if [ -d /proc/self/fd/3 ]; then mkdir -p /run/x/old-tmp; else mkdir -p /run/x; touch /run/x/old-tmp; fi; fi\nmount -c --rbind /proc/self/fd/3 /run/x/old-tmp\nexec 3<&-\n"
    ));
    // A target outside the node's tmpfs is never created.
    assert!(!text.contains("mkdir -p /etc"));
    assert_parses(&text);
}

#[test]
fn too_many_hidden_sources_are_refused() {
    let binds: Vec<String> = (0..8).map(|i| format!("\"/tmp:/tmp/t{i}\"")).collect();
    let yaml = format!(
        "name: many\ntopology:\n  nodes:\n    a:\n      binds: [{}]\n",
        binds.join(", ")
    );
    match script(&plan_of(&yaml), None) {
        Err(ExplainError::TooManyHiddenSources { node, count }) => {
            assert_eq!((node.as_str(), count), ("a", 8));
        }
        other => panic!("expected TooManyHiddenSources, got {other:?}"),
    }
    // Seven fit.
    let yaml = yaml.replace(", \"/tmp:/tmp/t7\"", "");
    assert!(script(&plan_of(&yaml), None).is_ok());
}

#[test]
fn host_ends_live_in_the_host_namespace() {
    let text = script_of(
        r#"
name: up
topology:
  nodes:
    a: {}
  links:
    - endpoints: ["host:nslab-up0", "a:eth0"]
      ipv4: [10.7.0.1/30, 10.7.0.2/30]
"#,
    );
    assert!(
        text.contains("\nip link add name nslab-up0 type veth peer name eth0 netns \"$LAB-a\"\n")
    );
    assert!(
        text.contains("\nip address add 10.7.0.1/30 dev nslab-up0\nip link set dev nslab-up0 up\n")
    );
    assert!(text.contains("fixed"), "the host name's fixedness is said");
}

#[test]
fn pid_variables_are_unique_and_hostnames_reach_the_kernel() {
    let text = script_of(
        r#"
name: names
topology:
  nodes:
    b-c: {}
    b_c: {}
    d: {hostname: "-n"}
"#,
    );
    assert!(text.contains("\npid_b_c=$(pid1_of $! b-c)\n"));
    assert!(text.contains("\npid_b_c_2=$(pid1_of $! b_c)\n"));
    assert!(text.contains("\nip netns attach \"$LAB-b_c\" \"$pid_b_c_2\"\n"));
    // hostname(1) refuses `_`; nslab's sethostname does not.
    assert!(text.contains("\nhostname b-c\n"));
    assert!(text.contains("\necho b_c > /proc/sys/kernel/hostname\n"));
    // echo would take `-n` for its option and write nothing.
    assert!(text.contains("\nprintf '%s\\n' -n > /proc/sys/kernel/hostname\n"));
    assert_parses(&text);
}

#[test]
fn a_value_cannot_end_a_here_document_early() {
    // Built by hand: a bind target holding a line "EOF".
    let plan = Plan {
        lab: "doc".into(),
        source: None,
        lab_dir: None,
        lab_files: Vec::new(),
        notes: Vec::new(),
        mgmt: None,
        container_prefix: None,
        remote_names: Vec::new(),
        spread: None,
        nodes: vec![Node {
            name: "a".into(),
            kind: NodeKind::Node,
            hostname: "a".into(),
            tmpfs: vec![PathBuf::from("/tmp")],
            binds: vec![Bind {
                source: "/etc/hostname".into(),
                target: "/tmp/x\nEOF\nreboot".into(),
                read_only: false,
            }],
            sysctls: vec![],
            routes: vec![],
            env: vec![],
            exec: vec![],
            limits: Default::default(),
            userns: false,
            startup_delay: None,
            wait_for: vec![],
        }],
        links: vec![LinkPlan {
            endpoints: [
                EndpointPlan {
                    place: Place::Node(0),
                    ifname: "eth0".into(),
                    addresses: vec![],
                    mac: None,
                    impair: None,
                    state: Default::default(),
                    master: None,
                },
                EndpointPlan {
                    place: Place::Host,
                    ifname: "h0".into(),
                    addresses: vec![],
                    mac: None,
                    impair: None,
                    state: Default::default(),
                    master: None,
                },
            ],
            mtu: None,
        }],
        devices: vec![],
        expect: vec![],
        scenario: Default::default(),
    };
    let text = script(&plan, None).expect("script");
    assert!(
        text.contains("nsenter -t \"$pid_a\" -a sh -eu <<'EOF1'\n"),
        "{text}"
    );
    // The value stays one quoted word, and the document ends at its own line.
    assert!(text.contains("mount --rbind /etc/hostname '/tmp/x\nEOF\nreboot'\n"));
    assert!(text.contains("\nEOF1\n"));
    assert_parses(&text);
}

#[test]
fn impairments_are_tc_lines_after_the_routes() {
    let text = script_of(
        r#"
name: imp
topology:
  nodes:
    a: {routes: ["default via 10.0.0.2"]}
    b: {}
  links:
    - endpoints: ["a:eth0", "b:eth0"]
      ipv4: [10.0.0.1/24, 10.0.0.2/24]
      impair: {rate: 10mbit}
    - endpoints: ["a:eth1", "host:impx0"]
      impair: [{delay: 20ms, jitter: 5ms, loss: 1%, corrupt: 0.1%, duplicate: 0.1%, rate: 5mbit}, {delay: 1500us}]
"#,
    );
    // tbf alone at the root; the bucket is nslab's own (10 ms of rate, at
    // least two frames; the queue holds 50 ms more).
    assert!(text.contains(
        "\ntc -n \"$LAB-a\" qdisc replace dev eth0 root handle 1: tbf rate 10mbit burst 12500 limit 75000\n"
    ));
    assert!(text.contains("\ntc -n \"$LAB-b\" qdisc replace dev eth0 root handle 1: tbf"));
    // netem at the root, tbf below it, on the handles nslab's requests
    // take; netem's queue is nslab's (at least tc's 1000 packets).
    assert!(text.contains(
        "\ntc -n \"$LAB-a\" qdisc replace dev eth1 root handle 1: netem delay 20ms 5ms loss 1% corrupt 0.1% duplicate 0.1% limit 1000\n"
    ));
    assert!(text.contains(
        "\ntc -n \"$LAB-a\" qdisc add dev eth1 parent 1:1 handle 2: tbf rate 5mbit burst 6250 limit 37500\n"
    ));
    // The host's end, with the host's own tc.
    assert!(
        text.contains(
            "\ntc qdisc replace dev impx0 root handle 1: netem delay 1500us limit 1000\n"
        )
    );
    assert!(line_at(&text, "ip -n \"$LAB-a\" route add") < line_at(&text, "tc -n"));
    assert_parses(&text);
}

#[test]
fn a_user_namespaced_node_is_unshared_with_its_user_namespace_and_mapped() {
    let yaml = "name: u\ntopology:\n  nodes:\n    a: {userns: true}\n    b: {}\n";
    let text = script(&plan_of(yaml), Some((3_000_000_000, 65536 * 4))).expect("script");
    assert!(text.contains("unshare --user --net --uts"), "{text}");
    assert!(
        text.contains("echo '0 3000000000 65536' > \"/proc/$pid_a/uid_map\""),
        "{text}"
    );
    assert!(
        text.contains("echo '0 3000000000 65536' > \"/proc/$pid_a/gid_map\""),
        "{text}"
    );
    assert!(text.contains("--map-users=3000000000,0,65536"), "{text}");
    // b has none: the plain step, no map.
    assert_eq!(text.matches("unshare --user").count(), 1);
    assert!(!text.contains("$pid_b/uid_map"));
}

#[test]
fn ends_with_state_down_are_set_down_after_the_routes() {
    let text = script_of(
        "name: l\ntopology:\n  nodes:\n    a: {routes: [\"default via 10.0.0.2\"]}\n    b: {}\n  links:\n    - endpoints: [\"a:eth0\", \"b:eth0\"]\n      ipv4: [10.0.0.1/24, 10.0.0.2/24]\n      state: [null, down]\n",
    );
    assert_parses(&text);
    let down = line_at(&text, "ip -n \"$LAB-b\" link set dev eth0 down");
    assert!(line_at(&text, "ip -n \"$LAB-a\" route add default") < down);
    assert!(
        !text.contains("\"$LAB-a\" link set dev eth0 down"),
        "{text}"
    );
}

#[test]
fn exec_steps_come_in_start_order_with_their_delays() {
    let text = script_of(
        r#"
name: order
topology:
  nodes:
    a: {exec: ["echo a"], wait-for: [b]}
    b: {exec: ["echo b"], startup-delay: 2}
    c: {exec: ["echo c"]}
"#,
    );
    let (b, a, c) = (
        line_at(&text, "# b: echo b"),
        line_at(&text, "# a: echo a"),
        line_at(&text, "# c: echo c"),
    );
    assert!(c < b && b < a, "{text}");
    let start = line_at(&text, "exec_start=$(date +%s)");
    let wait = line_at(&text, "left=$((exec_start + 2 - $(date +%s)))");
    assert!(start < c && c < wait && wait < b, "{text}");
    // a waits for b, so b's delay holds it too, counted from the start.
    let second = text[b..].find("left=$((exec_start + 2 ").map(|i| i + b);
    assert!(second.is_some_and(|w| w < a), "{text}");
    assert_parses(&text);
}
