//! Real routing daemons converging inside nslab nodes, as root: BIRD 2 and
//! FRR (zebra + ospfd) speak OSPFv2 in area 0 over a chain of three
//! routers, and r1's kernel table must learn r3's far subnet from them.
//!
//! ```text
//! h1 --lan0-- r1 --eth0--eth0-- r2 --eth1--eth0-- r3 --lan0-- h3
//! 10.1.0.0/24    10.0.12.0/30       10.0.23.0/30      10.3.0.0/24
//! ```
//!
//! Each router advertises its own subnets: r1 its stub LAN 10.1.0.0/24,
//! r2 the two links, r3 its stub LAN 10.3.0.0/24. The configurations are
//! in `tests/fixtures/daemons/` (one folder per router, bound read-only on
//! `/etc/bird` or `/etc/frr`); everything the daemons write (sockets, pid
//! files, logs, FRR's state under `/var/tmp/frr`) lands on the node's own
//! tmpfs. The daemons are started by the nodes' `exec:` steps and die with
//! the node's pid namespace when the lab goes down.
//!
//! Each test has two forms: the nodes as they are by default, and with
//! `userns: true` on each router (node root mapped to an unprivileged host
//! user).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{TestLab, can_build_labs, skipped};

/// How long OSPF may take to fill r1's and r3's tables. With point-to-point
/// links and one-second hellos it takes a few seconds.
const CONVERGENCE: Duration = Duration::from_secs(60);

/// The chain; `ROUTERS` becomes the three router nodes.
const CHAIN: &str = r#"
name: LAB
topology:
  defaults:
    # Daemon state stays in the node: /run (sockets, pid files, logs) and
    # /var/tmp (FRR's per-process crash-log folders under /var/tmp/frr).
    tmpfs: [/run, /tmp, /var/tmp]
  nodes:
ROUTERS
    h1:
      routes: ["10.0.0.0/8 via 10.1.0.1"]
    h3:
      routes: ["10.0.0.0/8 via 10.3.0.1"]
  links:
    - endpoints: ["h1:eth0", "r1:lan0"]
      ipv4: [10.1.0.2/24, 10.1.0.1/24]
    - endpoints: ["r1:eth0", "r2:eth0"]
      ipv4: [10.0.12.1/30, 10.0.12.2/30]
    - endpoints: ["r2:eth1", "r3:eth0"]
      ipv4: [10.0.23.1/30, 10.0.23.2/30]
    - endpoints: ["r3:lan0", "h3:eth0"]
      ipv4: [10.3.0.1/24, 10.3.0.2/24]
"#;

const ROUTERS: [&str; 3] = ["r1", "r2", "r3"];

/// A routing suite: its configuration files, how a router starts it, and
/// the `proto` its routes carry in the kernel table.
#[derive(Clone, Copy, Debug)]
enum Suite {
    Bird,
    Frr,
}

/// BIRD's `bird.conf` of r1, r2, r3.
const BIRD_CONF: [&str; 3] = [
    include_str!("fixtures/daemons/bird/r1/bird.conf"),
    include_str!("fixtures/daemons/bird/r2/bird.conf"),
    include_str!("fixtures/daemons/bird/r3/bird.conf"),
];

/// FRR's `zebra.conf` and `ospfd.conf` of r1, r2, r3.
const FRR_CONF: [[&str; 2]; 3] = [
    [
        include_str!("fixtures/daemons/frr/r1/zebra.conf"),
        include_str!("fixtures/daemons/frr/r1/ospfd.conf"),
    ],
    [
        include_str!("fixtures/daemons/frr/r2/zebra.conf"),
        include_str!("fixtures/daemons/frr/r2/ospfd.conf"),
    ],
    [
        include_str!("fixtures/daemons/frr/r3/zebra.conf"),
        include_str!("fixtures/daemons/frr/r3/ospfd.conf"),
    ],
];

/// Where Debian's frr package keeps its daemons.
const FRR_DIR: &str = "/usr/lib/frr";

impl Suite {
    fn name(self) -> &'static str {
        match self {
            Suite::Bird => "bird",
            Suite::Frr => "frr",
        }
    }

    /// The `proto` of the routes the suite puts in the kernel table.
    fn proto(self) -> &'static str {
        match self {
            Suite::Bird => "bird",
            Suite::Frr => "ospf",
        }
    }

    /// Why the suite cannot run here, if it cannot.
    fn missing(self) -> Option<String> {
        match self {
            Suite::Bird => ["bird", "birdc"]
                .iter()
                .find(|p| program(p).is_none())
                .map(|p| format!("{p} is not installed (Debian package bird2)")),
            Suite::Frr => {
                for daemon in ["zebra", "ospfd"] {
                    if !Path::new(FRR_DIR).join(daemon).is_file() {
                        return Some(format!(
                            "{FRR_DIR}/{daemon} is not installed (Debian package frr)"
                        ));
                    }
                }
                let user = Command::new("id").args(["-u", "frr"]).output();
                if !user.is_ok_and(|o| o.status.success()) {
                    return Some("there is no user frr (Debian package frr)".into());
                }
                None
            }
        }
    }

    /// The `binds:` entry of `router`: its configuration folder, read-only.
    fn bind(self, router: &str) -> String {
        match self {
            Suite::Bird => format!("./bird/{router}:/etc/bird:ro"),
            Suite::Frr => format!("./frr/{router}:/etc/frr:ro"),
        }
    }

    /// Writes router `index`'s configuration folder next to the topology.
    fn write_config(self, lab: &TestLab, index: usize) {
        let router = ROUTERS[index];
        match self {
            Suite::Bird => {
                readable(lab.write(&format!("bird/{router}/bird.conf"), BIRD_CONF[index]));
            }
            Suite::Frr => {
                let [zebra, ospfd] = FRR_CONF[index];
                readable(lab.write(&format!("frr/{router}/zebra.conf"), zebra));
                readable(lab.write(&format!("frr/{router}/ospfd.conf"), ospfd));
            }
        }
    }

    /// The `exec:` steps that start the suite in a router. Each daemon
    /// forks into the background, so the step (and `up`) returns.
    fn start(self) -> Vec<String> {
        match self {
            Suite::Bird => {
                let bird = program("bird").expect("bird checked before");
                vec![
                    "mkdir -p /run/bird".into(),
                    format!(
                        "{} -c /etc/bird/bird.conf -s /run/bird/bird.ctl -P /run/bird/bird.pid",
                        bird.display()
                    ),
                ]
            }
            Suite::Frr => {
                // The daemons drop to the user frr (keeping the
                // capabilities they need), so their folder is frr's; in a
                // user namespace, frr (and frrvty) must be mapped.
                let daemon = |name: &str| {
                    format!(
                        "{FRR_DIR}/{name} -d -u frr -g frr -f /etc/frr/{name}.conf \
                         -i /run/frr/{name}.pid -z /run/frr/zserv.api --vty_socket /run/frr \
                         -P 0 --log file:/run/frr/{name}.log"
                    )
                };
                vec![
                    "mkdir -p /run/frr && chown frr:frr /run/frr".into(),
                    daemon("zebra"),
                    daemon("ospfd"),
                ]
            }
        }
    }

    /// Commands whose output explains a router's state when a test fails.
    fn diagnostics(self) -> Vec<Vec<String>> {
        let argv = |s: &[&str]| s.iter().map(|a| a.to_string()).collect();
        let mut all: Vec<Vec<String>> = match self {
            Suite::Bird => {
                let birdc = program("birdc").expect("birdc checked before");
                let birdc = birdc.to_string_lossy().into_owned();
                let mut all: Vec<Vec<String>> =
                    ["show protocols", "show ospf neighbors", "show route"]
                        .iter()
                        .map(|c| {
                            let mut a =
                                vec![birdc.clone(), "-s".into(), "/run/bird/bird.ctl".into()];
                            a.extend(c.split(' ').map(String::from));
                            a
                        })
                        .collect();
                all.push(argv(&["cat", "/run/bird/bird.log"]));
                all
            }
            Suite::Frr => vec![
                argv(&[
                    "vtysh",
                    "--vty_socket",
                    "/run/frr",
                    "-c",
                    "show ip ospf neighbor",
                    "-c",
                    "show ip route",
                ]),
                argv(&["cat", "/run/frr/zebra.log", "/run/frr/ospfd.log"]),
            ],
        };
        all.push(argv(&["ip", "-4", "route"]));
        all.push(argv(&["ps", "-ef"]));
        all
    }
}

/// A program on the PATH or in an sbin folder (which a non-root PATH
/// may lack).
fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Makes a configuration file and its folder readable by a daemon that
/// dropped to its own user (FRR's), whatever the umask.
fn readable(path: PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let folder = path.parent().expect("a folder").to_path_buf();
    for (at, mode) in [(path, 0o644), (folder, 0o755)] {
        std::fs::set_permissions(&at, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", at.display()));
    }
}

/// The topology of the chain running `suite`; `userns` puts every router
/// in a user namespace of its own.
fn chain_yaml(suite: Suite, userns: bool) -> String {
    let mut routers = String::new();
    for router in ROUTERS {
        routers.push_str(&format!("    {router}:\n"));
        if userns {
            routers.push_str("      userns: true\n");
        }
        routers.push_str("      sysctls: {net.ipv4.ip_forward: 1}\n");
        routers.push_str(&format!("      binds: [\"{}\"]\n", suite.bind(router)));
        routers.push_str("      exec:\n");
        for step in suite.start() {
            assert!(!step.contains(['"', '\\']), "quote {step:?} for YAML");
            routers.push_str(&format!("        - \"{step}\"\n"));
        }
    }
    CHAIN.replace("ROUTERS\n", &routers)
}

/// The route to `prefix` in `node`'s main table once it carries
/// `proto PROTO`, polled until `deadline`; `Err` holds the last table read.
fn wait_for_route(
    lab: &TestLab,
    node: &str,
    prefix: &str,
    proto: &str,
    deadline: Instant,
) -> Result<String, String> {
    let wanted = format!(" proto {proto} ");
    loop {
        let (code, out, err) = lab.exec(node, &["ip", "-4", "route", "show", prefix]);
        assert_eq!(code, 0, "ip route in {node}: {err}");
        if let Some(line) = out
            .lines()
            .find(|l| l.starts_with(prefix) && format!("{l} ").contains(&wanted))
        {
            return Ok(line.to_string());
        }
        if Instant::now() >= deadline {
            let (_, table, _) = lab.exec(node, &["ip", "-4", "route"]);
            return Err(table);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the daemons of every router say about themselves.
fn diagnostics(lab: &TestLab, suite: Suite) -> String {
    let mut text = String::new();
    for router in ROUTERS {
        for argv in suite.diagnostics() {
            let args: Vec<&str> = argv.iter().map(String::as_str).collect();
            let (code, out, err) = lab.exec(router, &args);
            text.push_str(&format!(
                "--- {router}: {} (exit {code})\n{out}{err}",
                argv.join(" ")
            ));
        }
    }
    text
}

/// Brings the chain up with `suite` on every router and checks that OSPF
/// converges: r1 learns r3's far subnet (and r3 r1's), r1 pings r3's far
/// address and h1 pings h3 across all three routers.
fn converges(test: &str, suite: Suite, userns: bool) {
    converges_then(test, suite, userns, |_, _| {});
}

/// [`converges`], then `then` on the converged lab before it goes down.
fn converges_then(test: &str, suite: Suite, userns: bool, then: impl FnOnce(&TestLab, Suite)) {
    if !can_build_labs(test) {
        return;
    }
    if let Some(why) = suite.missing() {
        skipped(format_args!("{test}: {why}"));
        return;
    }
    // FRR's crash-log folders must stay in the nodes (their /var/tmp).
    let host_var_tmp_frr = Path::new("/var/tmp/frr");
    let host_had_var_tmp_frr = host_var_tmp_frr.exists();

    let started = Instant::now();
    let lab = TestLab::new(suite.name(), &chain_yaml(suite, userns));
    for index in 0..ROUTERS.len() {
        suite.write_config(&lab, index);
    }
    lab.up();
    let up = started.elapsed();

    let deadline = Instant::now() + CONVERGENCE;
    let proto = suite.proto();
    let learned = |node: &str, prefix: &str| {
        wait_for_route(&lab, node, prefix, proto, deadline).unwrap_or_else(|table| {
            panic!(
                "{node} learned no {prefix} (proto {proto}) within {CONVERGENCE:?}; \
                 its table:\n{table}\n{}",
                diagnostics(&lab, suite)
            )
        })
    };
    let far = learned("r1", "10.3.0.0/24");
    assert!(
        far.contains("via 10.0.12.2 ") && far.contains(" dev eth0 "),
        "r1 reaches 10.3.0.0/24 through r2 on eth0: {far}"
    );
    // The way back, so that the pings have one.
    let back = learned("r3", "10.1.0.0/24");
    assert!(
        back.contains("via 10.0.23.1 ") && back.contains(" dev eth0 "),
        "r3 reaches 10.1.0.0/24 through r2 on eth0: {back}"
    );
    let converged = started.elapsed() - up;
    // r2 learned both stub LANs, from either side.
    learned("r2", "10.1.0.0/24");
    learned("r2", "10.3.0.0/24");

    lab.assert_ping("r1", "10.3.0.1");
    lab.assert_ping("h1", "10.3.0.2");
    eprintln!(
        "{test}: up in {:.1} s, converged {:.1} s later ({far})",
        up.as_secs_f64(),
        converged.as_secs_f64()
    );

    then(&lab, suite);

    // Down: the daemons die with their nodes, and the lab leaves nothing.
    let (code, _, err) = common::run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "down: {err}");
    assert_eq!(lab.leftovers(), Vec::<String>::new());
    if !host_had_var_tmp_frr {
        assert!(
            !host_var_tmp_frr.exists(),
            "FRR wrote {} on the host",
            host_var_tmp_frr.display()
        );
    }
}

#[test]
fn bird_ospf_converges() {
    converges("bird_ospf_converges", Suite::Bird, false);
}

#[test]
fn bird_ospf_converges_in_user_namespaces() {
    converges("bird_ospf_converges_in_user_namespaces", Suite::Bird, true);
}

#[test]
fn frr_ospf_converges() {
    converges("frr_ospf_converges", Suite::Frr, false);
}

#[test]
fn frr_ospf_converges_in_user_namespaces() {
    converges("frr_ospf_converges_in_user_namespaces", Suite::Frr, true);
}

/// The middle router restarted with `nslab node restart`: new daemons in a
/// new init, its links kept; r1 and r3 (and their daemons) untouched. OSPF
/// reconverges: r2 learns both stub LANs again and traffic crosses it.
fn restart_r2(lab: &TestLab, suite: Suite) {
    let pids = |lab: &TestLab| -> Vec<(String, i64)> {
        lab.inspect_json()[0]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| {
                (
                    n["name"].as_str().unwrap_or("").to_string(),
                    n["pid"].as_i64().unwrap_or(0),
                )
            })
            .collect()
    };
    // The daemons of r1 and r3: every process of the node but its init
    // and the `ps` that lists them.
    let daemons = |node: &str| -> Vec<String> {
        lab.exec(node, &["ps", "-eo", "pid=,comm="])
            .1
            .lines()
            .map(str::trim)
            .filter(|l| !l.ends_with(" ps") && !l.ends_with("nslab-init"))
            .map(str::to_string)
            .collect()
    };
    let before = pids(lab);
    let (r1_daemons, r3_daemons) = (daemons("r1"), daemons("r3"));
    let started = Instant::now();
    let (code, out, err) = common::run(&["node", "restart", &format!("{}/r2", lab.name)]);
    assert_eq!(code, 0, "restart: {out}{err}");
    let after = pids(lab);
    for ((name, old), (_, new)) in before.iter().zip(&after) {
        match name.as_str() {
            "r2" => assert_ne!(old, new, "r2 has a new init"),
            _ => assert_eq!(old, new, "{name} was left alone"),
        }
    }
    assert_eq!(daemons("r1"), r1_daemons, "r1's daemons kept running");
    assert_eq!(daemons("r3"), r3_daemons, "r3's daemons kept running");
    let deadline = Instant::now() + CONVERGENCE;
    // r2's new daemons learn both stub LANs, and r1 and r3 the far one
    // through r2 again (they lost it with r2's carrier).
    for (node, prefix) in [
        ("r2", "10.1.0.0/24"),
        ("r2", "10.3.0.0/24"),
        ("r1", "10.3.0.0/24"),
        ("r3", "10.1.0.0/24"),
    ] {
        wait_for_route(lab, node, prefix, suite.proto(), deadline).unwrap_or_else(|table| {
            panic!(
                "{node} learned no {prefix} after r2 restarted; its table:\n{table}\n{}",
                diagnostics(lab, suite)
            )
        });
    }
    lab.assert_ping("h1", "10.3.0.2");
    eprintln!(
        "r2 restarted; OSPF reconverged and h1 reached h3 {:.1} s later",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn frr_reconverges_after_a_router_restarts() {
    converges_then(
        "frr_reconverges_after_a_router_restarts",
        Suite::Frr,
        true,
        restart_r2,
    );
}
