//! Helpers for the integration tests: they drive the real `nslab` binary,
//! build labs under unique names, and always tear them down.

#![allow(dead_code)]

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Simulated hosts (nodes running sshd) for the multi-host tests.
pub(crate) mod underlay;

/// The host ids the tests lend to user-namespaced nodes (256 blocks), so
/// that the suite never writes the host's /etc/subuid and /etc/subgid
/// (what nslab does on first use without a range is unit-tested on
/// scratch files).
pub(crate) const USERNS_RANGE: (u32, u32) = (2_000_000_000, 256 * 65536);

/// Options for a `nslab::Lab` of the tests: a name of its own, this
/// build's binary as the node inits, and the tests' id range.
pub(crate) fn lab_options() -> nslab::LabOptions {
    nslab::LabOptions::new()
        .unique()
        .nslab_exe(env!("CARGO_BIN_EXE_nslab"))
        .userns_range(USERNS_RANGE.0, USERNS_RANGE.1)
}

/// The nslab binary under test, with the tests' id range.
pub(crate) fn nslab() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nslab"));
    command.env(
        "NSLAB_USERNS_RANGE",
        format!("{}:{}", USERNS_RANGE.0, USERNS_RANGE.1),
    );
    command
}

/// The id blocks lent to the nodes of `lab`: (node, first host uid).
pub(crate) fn id_claims_of(lab: &str) -> Vec<(String, u32)> {
    let Ok(entries) = std::fs::read_dir("/run/nslab/.ids") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|text| {
            let fields: Vec<&str> = text.split_whitespace().collect();
            match fields[..] {
                [l, node, uid, ..] if l == lab => Some((node.to_string(), uid.parse().ok()?)),
                _ => None,
            }
        })
        .collect()
}

/// Runs nslab with `args`; returns (exit code, stdout, stderr).
pub(crate) fn run(args: &[&str]) -> (i32, String, String) {
    output_of(nslab().args(args).output().expect("run nslab"))
}

pub(crate) fn output_of(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A child process of the test, killed (if still running) and reaped when
/// dropped, so a failed assertion leaves none behind.
pub(crate) struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // After a wait that saw it exit, std sends nothing: its pid may
        // belong to another process by now.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// True when the tests may build labs. Otherwise prints why the calling test
/// is skipped, so a run without root never looks like a pass.
pub(crate) fn can_build_labs(test: &str) -> bool {
    match nslab::test_support::check_privileges() {
        Ok(()) => true,
        Err(why) => {
            skipped(format_args!("{test}: {why}"));
            false
        }
    }
}

/// Says that a test, or a part of one, did not run and why: on stderr, and
/// as a line of the file named by `NSLAB_SKIP_LOG` (set by `scripts/test`,
/// which lists them at the end), so a skip is never counted as a pass
/// without saying so.
pub(crate) fn skipped(what: std::fmt::Arguments<'_>) {
    let line = format!("SKIPPED {what}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("NSLAB_SKIP_LOG") {
        use std::io::Write;
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = appended {
            eprintln!("cannot record the skip in {}: {e}", path.to_string_lossy());
        }
    }
}

/// What every lab, netns name and host interface of this test process
/// starts with, so that snapshots can leave out what parallel tests make.
pub(crate) fn run_prefix() -> String {
    format!("t{}", std::process::id() % 100_000)
}

/// A lab name no other test (or test run) uses.
pub(crate) fn unique_lab(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{tag}{}",
        run_prefix(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A host interface name of this test process (at most 15 bytes).
/// A TCP port of the host's loopback that is free now (for a forwarded
/// port of a test's lab).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub(crate) fn host_ifname(n: usize) -> String {
    format!("{}h{n}", run_prefix())
}

/// A topology written to a temp folder, with `LAB` replaced by the lab name.
/// The lab is torn down when this is dropped, pass or fail.
pub(crate) struct TestLab {
    pub name: String,
    /// What `HOSTIF` in the topology became.
    pub host_if: String,
    pub dir: PathBuf,
    pub file: PathBuf,
}

impl TestLab {
    /// `LAB` in `yaml` becomes the lab name and `HOSTIF` a host interface
    /// name of this test run.
    pub(crate) fn new(tag: &str, yaml: &str) -> Self {
        static HOST_IFS: AtomicUsize = AtomicUsize::new(0);
        let name = unique_lab(tag);
        let host_if = host_ifname(HOST_IFS.fetch_add(1, Ordering::Relaxed));
        let yaml = yaml.replace("HOSTIF", &host_if);
        let dir = std::env::temp_dir().join(format!("nslab-test-{name}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("lab.yml");
        std::fs::write(&file, yaml.replace("LAB", &name)).expect("write topology");
        Self {
            name,
            host_if,
            dir,
            file,
        }
    }

    /// What the lab could leave behind, its host interface included.
    pub(crate) fn leftovers(&self) -> Vec<String> {
        let mut found = leftovers_of(&self.name);
        let out = Command::new("ip")
            .args(["-o", "link", "show", "dev", &self.host_if])
            .output();
        if out.is_ok_and(|o| o.status.success()) {
            found.push(format!("host interface {}", self.host_if));
        }
        found
    }

    /// Writes an extra file next to the topology (for binds).
    pub(crate) fn write(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write");
        path
    }

    pub(crate) fn file(&self) -> &str {
        self.file.to_str().expect("utf-8 path")
    }

    /// `nslab up FILE`, asserting success.
    pub(crate) fn up(&self) {
        let (code, out, err) = run(&["up", self.file()]);
        assert_eq!(code, 0, "up failed:\n{out}\n{err}");
    }

    /// `nslab exec LAB/NODE -- ARGS...`
    pub(crate) fn exec(&self, node: &str, args: &[&str]) -> (i32, String, String) {
        let target = format!("{}/{node}", self.name);
        let mut all = vec!["exec", target.as_str(), "--"];
        all.extend_from_slice(args);
        run(&all)
    }

    /// Asserts that `node` can ping `address` (one try, up to 3 s).
    pub(crate) fn assert_ping(&self, node: &str, address: &str) {
        let (code, out, err) =
            self.exec(node, &["ping", "-c", "1", "-W", "3", "-t", "255", address]);
        assert_eq!(code, 0, "{node} -> {address} failed:\n{out}\n{err}");
    }

    pub(crate) fn inspect_json(&self) -> serde_json::Value {
        let (code, out, err) = run(&["inspect", &self.name, "--json"]);
        assert_eq!(code, 0, "inspect failed: {err}");
        serde_json::from_str(&out).expect("inspect --json is JSON")
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = nslab().args(["down", "--lab", &self.name]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a lab could leave behind, looked up by the lab's name.
pub(crate) fn leftovers_of(lab: &str) -> Vec<String> {
    let mut found = Vec::new();
    let prefix = format!("{lab}-");
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                found.push(format!("netns name {name}"));
            }
        }
    }
    if Path::new("/run/nslab").join(lab).exists() {
        found.push(format!("state /run/nslab/{lab}"));
    }
    if Path::new("/run/nslab").join(format!("{lab}.lock")).exists() {
        found.push(format!("lock /run/nslab/{lab}.lock"));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines() {
        if line.contains(&format!("/run/netns/{prefix}"))
            || line.contains(&format!("/run/nslab/{lab}"))
        {
            found.push(format!("mount {line}"));
        }
    }
    for root in nslab::test_support::cgroup_roots() {
        let dir = root.join("nslab").join(lab);
        if dir.exists() {
            found.push(format!("cgroup {}", dir.display()));
        }
    }
    for (node, uid) in id_claims_of(lab) {
        found.push(format!("id block {uid} of node {node}"));
    }
    // The relays of forwarded ports (a zombie has no command line left).
    let relay = format!("nslab-forward\0{lab}/");
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if cmdline.starts_with(relay.as_bytes()) {
            let pid = entry.file_name().to_string_lossy().into_owned();
            found.push(format!(
                "relay pid {pid}: {}",
                String::from_utf8_lossy(&cmdline)
            ));
        }
    }
    for init in nslab::test_support::find_inits(Some(lab)).unwrap_or_default() {
        found.push(format!("init pid {} of node {}", init.pid, init.node));
    }
    let alias = format!("nslab:{lab}");
    let links = Command::new("ip")
        .args(["-d", "-o", "link", "show"])
        .output()
        .expect("ip link");
    for line in String::from_utf8_lossy(&links.stdout).lines() {
        if line.contains(&format!("alias {alias}")) {
            found.push(format!("host link {line}"));
        }
    }
    found
}

/// The host's own network and mount configuration, to compare before and
/// after a test: links, addresses, routes, named netns and mounts.
pub(crate) fn host_snapshot(ignore_prefix: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for args in [
        &["-o", "link", "show"][..],
        &["-o", "address", "show"],
        &["route", "show", "table", "all"],
        &["-6", "route", "show", "table", "all"],
        &["netns", "list"],
    ] {
        let out = Command::new("ip").args(args).output().expect("ip");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if !line.contains(ignore_prefix) {
                // Counters and timers change on their own; keep the facts.
                let line: String = line.split(" valid_lft").next().unwrap_or(line).to_string();
                lines.push(format!("{} | {line}", args.join(" ")));
            }
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines() {
        if !line.contains(ignore_prefix) {
            // Drop the mount id and parent id, which are not stable facts.
            let rest: Vec<&str> = line.split(' ').skip(2).collect();
            lines.push(format!("mount | {}", rest.join(" ")));
        }
    }
    lines.sort();
    lines
}

/// Every topology file under topologies/, its folders included, sorted
/// (not the lab directories `up` makes for containerlab's files there).
pub(crate) fn topology_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/topologies"
    ))];
    while let Some(folder) = folders.pop() {
        for path in std::fs::read_dir(&folder)
            .expect("topologies/")
            .flatten()
            .map(|e| e.path())
        {
            let lab_dir = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("clab-"));
            if path.is_dir() && !lab_dir {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
