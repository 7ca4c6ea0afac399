//! Devices, containerlab's single-ended links, built for real: a vxlan
//! whose tunnel is the host's carries a ping to a node across it; a
//! macvlan on a host interface that another lab made carries one to that
//! lab; a dummy comes up (or the test says by name that this kernel has
//! none); `apply` adds, changes and removes a device; a missing parent
//! fails before anything is built. Every underlay packet stays on
//! interfaces and in namespaces the tests made, and every `down` leaves
//! nothing.

mod common;

use common::{TestLab, can_build_labs, run, skipped};

/// A UDP port nothing listens on now, for a vxlan's tunnel on the host.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

/// `ip -n LAB-NODE -d -o link show dev IFACE`, or `None` when there is no
/// such interface.
fn link_of(lab: &str, node: &str, iface: &str) -> Option<String> {
    let netns = format!("{lab}-{node}");
    let out = std::process::Command::new("ip")
        .args(["-n", &netns, "-d", "-o", "link", "show", "dev", iface])
        .output()
        .expect("ip");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `nslab up`, asserting success and that every interface was ready: a
/// vxlan's or a dummy's operational state stays `unknown`, which is no
/// reason to wait for it.
#[track_caller]
fn up(lab: &TestLab) {
    let (code, out, err) = run(&["up", lab.file()]);
    assert_eq!(code, 0, "up failed:\n{out}\n{err}");
    assert!(!err.contains("not operationally up"), "{err}");
}

#[track_caller]
fn down(lab: &TestLab) {
    let (code, out, err) = run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "down: {out}\n{err}");
    assert!(lab.leftovers().is_empty(), "{:?}", lab.leftovers());
}

/// Node a's vxlan (nslab's, its tunnel the host's) meets node b's (made
/// by b's own `exec` step, its tunnel b's), over the host end of a link of
/// the lab: the underlay runs host:HOSTIF <-> b:eth1 alone.
#[test]
fn a_vxlan_tunnels_through_the_host_to_a_node() {
    if !can_build_labs("a_vxlan_tunnels_through_the_host_to_a_node") {
        return;
    }
    let port = free_udp_port();
    let yaml = r#"
name: LAB
topology:
  nodes:
    a: {}
    b:
      exec:
        - ip link add vx0 type vxlan id 4711 remote 10.213.1.1 dstport PORT dev eth1
        - ip address add 192.168.213.2/24 dev vx0
        - ip link set vx0 up
  links:
    - endpoints: ["host:HOSTIF", "b:eth1"]
      ipv4: [10.213.1.1/30, 10.213.1.2/30]
    - endpoints: ["a:vx0"]
      vxlan: {remote: 10.213.1.2, vni: 4711, port: PORT}
      ipv4: [192.168.213.1/24]
"#
    .replace("PORT", &port.to_string());
    let lab = TestLab::new("vxlan", &yaml);
    up(&lab);
    let link = link_of(&lab.name, "a", "vx0").expect("a:vx0");
    assert!(
        link.contains("vxlan id 4711 remote 10.213.1.2")
            && link.contains(&format!("dstport {port}")),
        "{link}"
    );
    // The kernel holds the tunnel's underlay in the host's namespace.
    assert!(link.contains("link-netnsid"), "{link}");
    lab.assert_ping("a", "192.168.213.2");
    lab.assert_ping("b", "192.168.213.1");
    down(&lab);
}

/// A macvlan of lab `m` on the host end of lab `p`'s link: the frames go
/// out by that end into p's node, and back.
#[test]
fn a_macvlan_sits_on_a_host_interface_another_lab_made() {
    if !can_build_labs("a_macvlan_sits_on_a_host_interface_another_lab_made") {
        return;
    }
    let provider = TestLab::new(
        "mvp",
        r#"
name: LAB
topology:
  nodes:
    p: {}
  links:
    - endpoints: ["p:eth1", "host:HOSTIF"]
      ipv4: [10.213.2.1/24, null]
"#,
    );
    up(&provider);
    // containerlab's form, with a management network of its own.
    let yaml = r#"
name: LAB
mgmt: {ipv4-subnet: 172.31.213.0/24}
topology:
  nodes:
    m: {}
  links:
    - type: macvlan
      endpoint: {node: m, interface: eth1, mac: "02:00:0a:d5:02:02", ipv4: 10.213.2.2/24}
      host-interface: PARENT
"#
    .replace("PARENT", &provider.host_if);
    let lab = TestLab::new("mvm", &yaml);
    up(&lab);
    let link = link_of(&lab.name, "m", "eth1").expect("m:eth1");
    assert!(link.contains("macvlan mode bridge"), "{link}");
    assert!(link.contains("02:00:0a:d5:02:02"), "{link}");
    lab.assert_ping("m", "10.213.2.1");
    provider.assert_ping("p", "10.213.2.2");
    // The parent is the other lab's: this one's `down` leaves it.
    down(&lab);
    assert!(
        std::process::Command::new("ip")
            .args(["link", "show", "dev", &provider.host_if])
            .output()
            .expect("ip")
            .status
            .success(),
        "the parent went with the macvlan's lab"
    );
    down(&provider);
}

#[test]
fn a_missing_parent_fails_before_anything_is_built() {
    if !can_build_labs("a_missing_parent_fails_before_anything_is_built") {
        return;
    }
    // HOSTIF names an interface of this test run that nobody made.
    let lab = TestLab::new(
        "mvx",
        r#"
name: LAB
topology:
  nodes:
    m: {}
  links:
    - endpoints: ["m:mv0"]
      macvlan: {parent: HOSTIF}
"#,
    );
    let (code, _, err) = run(&["up", lab.file()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("the host has no interface {}", lab.host_if)),
        "{err}"
    );
    assert!(!err.contains("rolled back"), "nothing was built: {err}");
    assert!(lab.leftovers().is_empty(), "{:?}", lab.leftovers());
}

/// A dummy with an address, up; or, on a kernel without dummy
/// interfaces, the refusal names what is missing, nothing is left, and
/// the test says it skipped.
#[test]
fn a_dummy_comes_up_or_the_kernel_says_it_has_none() {
    if !can_build_labs("a_dummy_comes_up_or_the_kernel_says_it_has_none") {
        return;
    }
    let lab = TestLab::new(
        "dummy",
        r#"
name: LAB
topology:
  nodes:
    a: {routes: ["10.213.9.0/24 dev d0"]}
  links:
    - endpoints: ["a:d0"]
      dummy: true
      ipv4: [10.213.3.1/24]
      mtu: 9000
"#,
    );
    let (code, out, err) = run(&["up", lab.file()]);
    if code != 0 && err.contains("the kernel has no dummy interfaces") {
        assert!(err.contains("dummy a:d0"), "{err}");
        assert!(err.contains("CONFIG_DUMMY"), "{err}");
        assert!(err.contains("rolled back"), "{err}");
        assert!(lab.leftovers().is_empty(), "{:?}", lab.leftovers());
        skipped(format_args!(
            "a_dummy_comes_up_or_the_kernel_says_it_has_none: this kernel has no dummy interfaces (module dummy, CONFIG_DUMMY); up refused it by name and left nothing"
        ));
        return;
    }
    assert_eq!(code, 0, "up: {out}\n{err}");
    let link = link_of(&lab.name, "a", "d0").expect("a:d0");
    assert!(
        link.contains("dummy") && link.contains("mtu 9000"),
        "{link}"
    );
    let (code, out, _) = lab.exec("a", &["ip", "-4", "-o", "address", "show", "dev", "d0"]);
    assert_eq!(code, 0);
    assert!(out.contains("10.213.3.1/24"), "{out}");
    down(&lab);
}

/// `apply` adds a device to a running lab, makes it again when it
/// changed, and deletes it when it is gone, leaving the rest.
#[test]
fn apply_adds_changes_and_removes_a_device() {
    if !can_build_labs("apply_adds_changes_and_removes_a_device") {
        return;
    }
    let port = free_udp_port();
    let base = "name: LAB\ntopology:\n  nodes:\n    a: {}\n    b: {}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [10.213.4.1/30, 10.213.4.2/30]\n";
    let lab = TestLab::new("apdev", base);
    up(&lab);
    let with = |vni: u32| {
        let device = format!(
            "    - endpoints: [\"a:vx0\"]\n      vxlan: {{remote: 10.213.4.9, vni: {vni}, port: {port}}}\n      ipv4: [192.168.214.1/24]\n"
        );
        (base.to_owned() + &device).replace("LAB", &lab.name)
    };
    let apply = |yaml: &str, want: &str| {
        std::fs::write(&lab.file, yaml).expect("write");
        let (code, out, err) = run(&["apply", lab.file()]);
        assert_eq!(code, 0, "apply: {out}\n{err}");
        assert!(out.contains(want), "{want:?} in {out}");
    };
    apply(
        &with(7),
        &format!("+ device vxlan a:vx0 to 10.213.4.9 vni 7 port {port}"),
    );
    let link = link_of(&lab.name, "a", "vx0").expect("a:vx0 added");
    assert!(link.contains("vxlan id 7 "), "{link}");
    apply(&with(8), "~ device vxlan a:vx0");
    let link = link_of(&lab.name, "a", "vx0").expect("a:vx0 made again");
    assert!(link.contains("vxlan id 8 "), "{link}");
    let (_, out, _) = lab.exec("a", &["ip", "-4", "-o", "address", "show", "dev", "vx0"]);
    assert!(out.contains("192.168.214.1/24"), "{out}");
    apply(&base.replace("LAB", &lab.name), "- device vxlan a:vx0");
    assert!(link_of(&lab.name, "a", "vx0").is_none(), "a:vx0 left");
    lab.assert_ping("a", "10.213.4.2");
    down(&lab);
}
