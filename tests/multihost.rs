//! Tests of multi-host labs (issue 14: one lab spread over several hosts
//! reached over ssh, the links between hosts made as VXLAN), run on
//! simulated hosts on this one machine.
//!
//! What the harness (`tests/common/underlay.rs`) models, and why: a
//! multi-host lab needs several machines that a controller reaches with
//! ssh, each running nslab with state of its own. An nslab node is a full
//! set of namespaces (net, mount, pid, uts, ipc, cgroup) held by its own
//! PID 1, so nslab itself runs inside one. The underlay is a lab of such
//! nodes on a bridge `ul`: a controller `ctl` (10.77.0.10, fd77::10) and
//! hosts `h1`..`hN` (10.77.0.11.., fd77::11..). Each host has
//!
//! - its own network stack and address, on the underlay bridge only, so
//!   traffic between hosts (ssh, and VXLAN later) stays inside the test's
//!   namespaces;
//! - its own `/run` and `/tmp` (tmpfs), so the nslab it runs keeps its own
//!   `/run/nslab` and `/run/netns`, and its labs are invisible to the
//!   machine's nslab and to the other hosts;
//! - its own `/root` (tmpfs), so an ssh session's shell reads none of the
//!   machine's root dotfiles and writes nothing in its home;
//! - its own sshd, listening on its addresses only, with a host key and the
//!   controller's public key made for this underlay (the machine's
//!   `/root/.ssh` and `/etc/ssh` are left alone); the controller's client
//!   configuration is `Underlay::ssh_command()`, which multi-host nslab
//!   reads from `NSLAB_SSH`.
//!
//! What they share is the machine: its kernel (one set of kernel modules
//! and sysctls outside the net namespaces, so a VXLAN port a host binds is
//! per net namespace, as on real hosts, but a kernel bug is everyone's),
//! its CPUs and memory (timings are not those of separate machines) and
//! every file outside their tmpfs (so each runs this build's nslab binary,
//! at the same path).

mod common;

use std::path::Path;

use common::underlay::{NSLAB, Underlay, text};
use common::{leftovers_of, unique_lab};

/// A lab of two nodes and one veth, for one simulated host.
fn tiny_lab(name: &str) -> String {
    format!(
        "name: {name}\n\
         topology:\n\
         \x20 nodes:\n\
         \x20   a: {{}}\n\
         \x20   b: {{}}\n\
         \x20 links:\n\
         \x20   - endpoints: [\"a:eth0\", \"b:eth0\"]\n\
         \x20     ipv4: [10.0.0.1/24, 10.0.0.2/24]\n\
         \x20     ipv6: [\"2001:db8::1/64\", \"2001:db8::2/64\"]\n"
    )
}

fn assert_ok(out: &std::process::Output, what: &str) {
    assert!(out.status.success(), "{what}:\n{}", text(out));
}

#[test]
fn every_simulated_host_answers_over_ssh_and_runs_nslab() {
    let root_ssh = Path::new("/root/.ssh").exists();
    let Some(ul) = Underlay::start(3) else {
        return;
    };

    // The controller runs the nslab under test, and its commands see the
    // ssh command to use in NSLAB_SSH.
    assert_ok(&ul.ctl(&["--version"]), "nslab --version in ctl");
    let out = ul.in_ctl(&["printenv", "NSLAB_SSH"]);
    assert_ok(&out, "printenv NSLAB_SSH in ctl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        ul.ssh_command()
    );

    // Every host answers ssh from the controller, on both addresses, as
    // itself, and runs the nslab under test.
    let ssh: Vec<String> = ul
        .ssh_command()
        .split_whitespace()
        .map(String::from)
        .collect();
    for i in 1..=ul.hosts() {
        let target = format!("root@{}", ul.host_address(i));
        let mut cmd: Vec<&str> = ssh.iter().map(String::as_str).collect();
        cmd.extend([target.as_str(), NSLAB, "--version"]);
        let out = ul.in_ctl(&cmd);
        assert_ok(&out, &format!("{} from ctl", cmd.join(" ")));
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("nslab "),
            "nslab --version on h{i}: {}",
            text(&out)
        );
        let out = ul.ssh(i, &["hostname"]);
        assert_ok(&out, &format!("ssh h{i} hostname"));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("h{i}"));
        // Its root's home is its own, empty (not the machine's /root).
        let out = ul.ssh(i, &["ls", "-A", "/root"]);
        assert_ok(&out, &format!("ssh h{i} ls -A /root"));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "", "h{i}'s /root");
        let target6 = format!("root@{}", ul.host_address6(i));
        let mut cmd: Vec<&str> = ssh.iter().map(String::as_str).collect();
        cmd.extend([target6.as_str(), "hostname"]);
        let out = ul.in_ctl(&cmd);
        assert_ok(&out, &format!("{} from ctl", cmd.join(" ")));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("h{i}"));
    }

    // A lab of its own on h1, made, used and removed over ssh by the
    // nslab there.
    let tiny = unique_lab("tiny");
    let file = ul.write("tiny.yml", &tiny_lab(&tiny));
    let file = file.to_str().expect("a UTF-8 path");
    let out = ul.ssh(1, &[NSLAB, "up", file]);
    assert_ok(&out, "nslab up on h1 over ssh");
    let target = format!("{tiny}/a");
    for address in ["10.0.0.2", "2001:db8::2"] {
        let out = ul.ssh(
            1,
            &[
                NSLAB, "exec", &target, "--", "ping", "-c", "1", "-W", "3", address,
            ],
        );
        assert_ok(&out, &format!("ping {address} in {tiny} on h1 over ssh"));
    }
    // Its state is h1's alone: not the machine's, not another host's.
    assert_eq!(ul.labs_in("h1"), vec![tiny.clone()]);
    assert!(ul.labs_in("h2").is_empty(), "h2 holds no lab");
    assert!(ul.labs_in("ctl").is_empty(), "ctl holds no lab");
    assert!(
        !Path::new("/run/nslab").join(&tiny).exists(),
        "the machine's /run/nslab has no {tiny}"
    );
    let out = ul.ssh(1, &[NSLAB, "down", "--lab", &tiny]);
    assert_ok(&out, "nslab down on h1 over ssh");
    assert!(ul.labs_in("h1").is_empty(), "h1 holds no lab after down");
    assert_eq!(leftovers_of(&tiny), Vec::<String>::new());

    drop(ul);
    assert_eq!(
        Path::new("/root/.ssh").exists(),
        root_ssh,
        "/root/.ssh is left as it was"
    );
}

#[test]
fn an_underlay_leaves_nothing_behind_even_with_a_lab_left_on_a_host() {
    let Some(ul) = Underlay::start(1) else {
        return;
    };
    let lab = ul.lab().to_string();
    let dir = ul.dir().to_path_buf();
    // A lab that a failed test would leave up on h1.
    let tiny = unique_lab("left");
    let file = ul.write("left.yml", &tiny_lab(&tiny));
    let out = ul.ssh(1, &[NSLAB, "up", file.to_str().expect("a UTF-8 path")]);
    assert_ok(&out, "nslab up on h1 over ssh");
    assert_eq!(ul.labs_in("h1"), vec![tiny.clone()]);

    drop(ul);
    assert_eq!(leftovers_of(&tiny), Vec::<String>::new());
    assert_eq!(leftovers_of(&lab), Vec::<String>::new());
    assert!(!dir.exists(), "{} is removed", dir.display());
    let sshd = std::process::Command::new("pgrep")
        .args(["-f", &format!("sshd -f {}", dir.display())])
        .output()
        .expect("run pgrep");
    assert!(
        sshd.stdout.is_empty(),
        "no sshd of the underlay runs: {}",
        String::from_utf8_lossy(&sshd.stdout)
    );
}
