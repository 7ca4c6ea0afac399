//! The teaching walk-through (topologies/teaching/README.md) cannot rot:
//! this brings its lab up under a unique name, runs every command of the
//! README's `console` blocks in order and compares the output, then checks
//! each claim the README makes about the host. Root only.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{TestLab, can_build_labs, nslab};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/topologies/teaching");
/// Longest a README command may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// The lab name the README uses.
const README_LAB: &str = "teaching";

/// One `$` command of a `console` block with the output the README shows.
#[derive(Debug)]
struct Step {
    command: String,
    expected: Vec<String>,
}

/// The `$` commands of every `console` block, in order.
fn steps(readme: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_console = false;
    for line in readme.lines() {
        if !in_console {
            in_console = line.trim_end() == "```console";
            continue;
        }
        if line.starts_with("```") {
            in_console = false;
        } else if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: command.to_string(),
                expected: Vec::new(),
            });
        } else {
            steps
                .last_mut()
                .expect("a console block starts with a $ command")
                .expected
                .push(line.to_string());
        }
    }
    steps
}

/// Splits a command line as `sh` would, for the quoting the README uses:
/// single quotes, double quotes (with `\"` and `\\`), backslash escapes.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for c in chars.by_ref().take_while(|&c| c != '\'') {
                    w.push(c);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => w.push(e),
                            Some(e) => {
                                w.push('\\');
                                w.push(e);
                            }
                            None => w.push('\\'),
                        },
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// Output lines as compared: runs of blanks as one space, no blanks at
/// either end (the tools pad their columns), no blank lines before or after.
fn normalized(lines: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut lines: Vec<String> = lines
        .into_iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    let first = lines
        .iter()
        .position(|l| !l.is_empty())
        .unwrap_or(lines.len());
    lines.drain(..first);
    lines
}

/// Does `line` match `pattern`, where `...` stands for any text?
fn matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    let (first, rest) = parts.split_first().expect("split gives one part");
    let Some(mut tail) = line.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return tail.is_empty();
    };
    for part in middle {
        match tail.find(part) {
            Some(at) => tail = &tail[at + part.len()..],
            None => return false,
        }
    }
    tail.ends_with(last)
}

/// Runs one README command against `lab` (for the README's `teaching`);
/// returns its stdout and stderr lines, in that order.
fn run_step(step: &Step, lab: &str) -> Vec<String> {
    let words = shell_words(&step.command);
    let prefix = format!("{README_LAB}/");
    assert!(
        words.len() > 4
            && words[..3] == ["sudo", "nslab", "exec"]
            && words[3].starts_with(&prefix)
            && words[4] == "--",
        "console blocks hold only `sudo nslab exec {README_LAB}/NODE -- ...`: {}",
        step.command
    );
    let target = format!("{lab}/{}", &words[3][prefix.len()..]);
    // Output to files, not pipes: a command may leave a process behind
    // that holds them open; and a step that hangs fails instead.
    let dir = std::env::temp_dir().join(format!("nslab-teaching-{lab}"));
    std::fs::create_dir_all(&dir).expect("output dir");
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = nslab()
        .arg("exec")
        .arg(&target)
        .args(&words[4..])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("run nslab exec");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > STEP_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("$ {} did not finish in {STEP_TIMEOUT:?}", step.command);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let lines: Vec<String> = [out_path, err_path]
        .iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).expect("read output");
            text.lines().map(String::from).collect::<Vec<_>>()
        })
        .collect();
    let _ = std::fs::remove_dir_all(dir);
    lines
}

#[test]
fn readme_parsing_helpers() {
    assert_eq!(
        shell_words(
            r#"sudo nslab exec teaching/bob -- sh -c 'findmnt /x || echo "no mount"' a\ b "q\"r""#
        ),
        [
            "sudo",
            "nslab",
            "exec",
            "teaching/bob",
            "--",
            "sh",
            "-c",
            r#"findmnt /x || echo "no mount""#,
            "a b",
            "q\"r"
        ]
    );
    assert!(matches("0x... 0 root", "0x1234 0 root"));
    assert!(matches("... ps -e", "17 ps -e"));
    assert!(matches("rtt = .../... ms", "rtt = 0.1/0.2 ms"));
    assert!(matches("exact", "exact"));
    assert!(!matches("exact", "exact!"));
    assert!(!matches("a...b", "ba"));
    assert!(!matches("time ... ms", "time 3"));
    assert_eq!(
        normalized(["".into(), "  PID   COMMAND ".into(), "".into()]),
        ["PID COMMAND"]
    );
    let s = steps("text\n```console\n$ a\nout\n\n$ b\n```\n```sh\n$ not this\n```\n");
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].command, "a");
    assert_eq!(s[0].expected, ["out", ""]);
    assert_eq!(s[1].expected, Vec::<String>::new());
}

/// Waits until every `eth*` interface of `nodes` is operationally up. `up`
/// already waits for that; the kernel adds the IPv6 link-local address in
/// the same background step, a moment after the state, and the walk-through
/// shows that address.
fn wait_for_links(lab: &TestLab, nodes: &[&str]) {
    let started = Instant::now();
    for node in nodes {
        loop {
            let (code, out, err) =
                lab.exec(node, &["sh", "-c", "cat /sys/class/net/eth*/operstate"]);
            assert_eq!(code, 0, "{node}: {err}");
            if out.lines().all(|l| l == "up") {
                break;
            }
            assert!(
                started.elapsed() < STEP_TIMEOUT,
                "{node}: links not up: {out}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    eprintln!("links operationally up {:?} after up", started.elapsed());
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ns_link(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_link(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_claim_of_the_walk_through_holds() {
    if !can_build_labs("every_claim_of_the_walk_through_holds") {
        return;
    }
    let topology = read(&format!("{DIR}/namespaces.yml"));
    let named = format!("\nname: {README_LAB}\n");
    assert_eq!(
        topology.matches(&named).count(),
        1,
        "the lab is named {README_LAB}"
    );
    let lab = TestLab::new("teach", &topology.replace(&named, "\nname: LAB\n"));
    lab.write(
        "files/greeting.txt",
        &read(&format!("{DIR}/files/greeting.txt")),
    );
    let hostname_before = read("/proc/sys/kernel/hostname");
    let forward_before = read("/proc/sys/net/ipv4/ip_forward");
    lab.up();
    wait_for_links(&lab, &["alice", "router", "bob"]);

    // Every console command, in order, prints what the README shows.
    let readme = read(&format!("{DIR}/README.md"));
    let steps = steps(&readme);
    assert!(steps.len() >= 15, "the walk-through has its steps");
    let mut outputs = Vec::new();
    for step in &steps {
        let actual = normalized(run_step(step, &lab.name));
        let expected = normalized(
            step.expected
                .iter()
                .map(|l| l.replace(&format!("{README_LAB}/"), &format!("{}/", lab.name))),
        );
        let same = actual.len() == expected.len()
            && expected.iter().zip(&actual).all(|(e, a)| matches(e, a));
        assert!(
            same,
            "$ {}\nREADME shows:\n{}\nbut the lab printed:\n{}",
            step.command,
            expected.join("\n"),
            actual.join("\n")
        );
        outputs.push((step.command.as_str(), actual));
    }
    let output_of_step = |needle: &str| {
        &outputs
            .iter()
            .find(|(c, _)| c.contains(needle))
            .unwrap_or_else(|| panic!("no README step {needle:?}"))
            .1
    };

    // Namespaces: six of each node's own, the user namespace the host's.
    let view = lab.inspect_json();
    let nodes = view[0]["nodes"].as_array().expect("nodes");
    let node = |name: &str| {
        nodes
            .iter()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    };
    for kind in ["cgroup", "ipc", "mnt", "net", "pid", "uts"] {
        let host = ns_link(format!("/proc/self/ns/{kind}"));
        let mut seen = vec![host];
        for name in ["alice", "router", "bob"] {
            let inode = node(name)["namespaces"][kind].as_u64().expect("inode");
            let link = format!("{kind}:[{inode}]");
            assert!(!seen.contains(&link), "{name}'s {kind} namespace is shared");
            seen.push(link);
        }
    }
    let alice_pid = node("alice")["pid"].as_u64().expect("alice's init pid");
    assert_eq!(
        ns_link(format!("/proc/{alice_pid}/ns/user")),
        ns_link("/proc/self/ns/user"),
        "nodes share the host's user namespace"
    );
    let alice_net = output_of_step("readlink /proc/self/ns/net");
    assert_eq!(
        alice_net[0],
        format!("net:[{}]", node("alice")["namespaces"]["net"]),
        "readlink in alice shows alice's net namespace"
    );
    assert_eq!(alice_net[1], ns_link("/proc/self/ns/user"));

    // Outside its tmpfs and binds, a node sees the host's files.
    let (code, os_release, err) = lab.exec("alice", &["cat", "/etc/os-release"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(os_release, read("/etc/os-release"));

    // uts: the host's hostname did not change.
    assert_eq!(read("/proc/sys/kernel/hostname"), hostname_before);

    // pid: the host sees alice's sleep, in alice's pid namespace, and its
    // NSpid line gives the PID alice's ps showed.
    let in_alice: u32 = output_of_step("alice -- ps -e")
        .iter()
        .find(|l| l.ends_with(" sleep 1000"))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("alice's ps lists the sleep with its pid");
    let alice_pidns = ns_link(format!("/proc/{alice_pid}/ns/pid"));
    let on_host: Vec<(u32, String)> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x001000\x00")
                && std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                    .is_ok_and(|l| l.to_string_lossy() == alice_pidns)
        })
        .map(|pid| {
            let status = read(&format!("/proc/{pid}/status"));
            let nspid = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .expect("NSpid line")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            (pid, nspid)
        })
        .collect();
    assert_eq!(on_host.len(), 1, "the host sees alice's sleep: {on_host:?}");
    let (host_pid, nspid) = &on_host[0];
    assert_eq!(*nspid, format!("{host_pid} {in_alice}"));

    // cgroup: alice's namespace is rooted at alice's own cgroup, where her
    // init is, and `exec` ran the sleep there too, whatever cgroup this
    // test runs in.
    let cgroup2 = |pid: &str| {
        read(&format!("/proc/{pid}/cgroup"))
            .lines()
            .find(|l| l.starts_with("0::"))
            .map(String::from)
    };
    let alices = Some(format!("0::/nslab/{}/alice", lab.name));
    assert_eq!(cgroup2(&alice_pid.to_string()), alices);
    assert_eq!(cgroup2(&host_pid.to_string()), alices);
    assert_ne!(cgroup2("self"), alices);

    // mnt: alice's file and bob's bind are nowhere on the host.
    assert!(!Path::new("/var/tmp/alice-was-here").exists());
    assert!(!Path::new("/run/greeting.txt").exists());

    // net: alice holds lo and eth0 alone; the host's forwarding is as it was.
    let alice_ifaces: Vec<&str> = node("alice")["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .map(|i| i["name"].as_str().expect("name"))
        .collect();
    assert_eq!(alice_ifaces, ["lo", "eth0"]);
    assert_eq!(read("/proc/sys/net/ipv4/ip_forward"), forward_before);

    // ipc: the host's ipcs does not list alice's queue.
    let key = output_of_step("alice -- ipcs -q")
        .iter()
        .find_map(|l| l.strip_prefix("0x"))
        .and_then(|l| l.split(' ').next())
        .map(|k| format!("0x{k}"))
        .expect("alice's queue key");
    let host_ipcs = std::process::Command::new("ipcs")
        .arg("-q")
        .output()
        .expect("ipcs on the host");
    assert!(
        !String::from_utf8_lossy(&host_ipcs.stdout).contains(&key),
        "alice's queue {key} is listed on the host"
    );

    // Clean up: down removes it all, the sleep included.
    let (code, out, err) = common::run(&["down", "--lab", &lab.name]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(lab.leftovers(), Vec::<String>::new());
    assert!(
        !Path::new(&format!("/proc/{host_pid}")).exists()
            || read(&format!("/proc/{host_pid}/cmdline")) != "sleep\u{0}1000\u{0}",
        "alice's sleep outlived the lab"
    );
}
