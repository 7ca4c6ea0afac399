//! The bad-input corpus: every file in `tests/bad-topologies/`, plus a few
//! generated ones too big to commit, must be refused by `nslab validate` (and,
//! as root, by `nslab up`) with exit code 2, the expected message and the file
//! name, quickly, without a panic, and without creating anything.
//!
//! Each corpus file names its expected message on its first line as
//! `# expect: SUBSTRING`; a file that cannot carry a comment (empty, not
//! UTF-8) has it in a sidecar `FILE.expect` instead.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a refusal may take.
const LIMIT: Duration = Duration::from_secs(5);
/// When a run that is over the limit is killed.
const KILL_AFTER: Duration = Duration::from_secs(30);

/// One file that must be refused.
#[derive(Debug)]
struct Case {
    file: PathBuf,
    expect: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-topologies")
}

/// The corpus files, sorted, each with its expected message. A file without
/// one is a failure of its own.
fn corpus(failures: &mut Vec<String>) -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/bad-topologies/")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "expect"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        let name = file_name(&file);
        let mut sidecar = file.clone().into_os_string();
        sidecar.push(".expect");
        let sidecar = PathBuf::from(sidecar);
        let expect = if sidecar.exists() {
            std::fs::read_to_string(&sidecar)
                .ok()
                .and_then(|t| t.lines().next().map(|l| l.trim().to_owned()))
        } else {
            let bytes = std::fs::read(&file).expect("read corpus file");
            let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
            String::from_utf8_lossy(first)
                .strip_prefix("# expect:")
                .map(|s| s.trim().to_owned())
        };
        match expect {
            Some(expect) if !expect.is_empty() => cases.push(Case { file, expect }),
            _ => failures.push(format!(
                "{name}: no expected message (a first line `# expect: ...` or a sidecar {name}.expect)"
            )),
        }
    }
    cases
}

/// A temp folder for generated files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("nslab-corpus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Files too big to commit: a 50 MB file, 100,000-deep nestings and
/// multi-MiB files that once took quadratic time or memory.
fn generated(dir: &Path) -> Vec<Case> {
    use std::io::Write;
    let mut cases = Vec::new();

    const SIZE: u64 = 50 * 1024 * 1024;
    let big = dir.join("too-large.yml");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&big).expect("create"));
        let head = b"name: bad-too-large\ntopology:\n  nodes: {a: {}}\n";
        out.write_all(head).expect("write");
        let line = format!("# {}\n", "x".repeat(1021));
        let mut left = SIZE - head.len() as u64;
        while left > 0 {
            let n = left.min(line.len() as u64) as usize;
            out.write_all(&line.as_bytes()[line.len() - n..])
                .expect("write");
            left -= n as u64;
        }
        out.flush().expect("flush");
    }
    assert_eq!(std::fs::metadata(&big).expect("stat").len(), SIZE);
    cases.push(Case {
        file: big,
        expect: format!(
            "file is too large ({SIZE} bytes); a topology file may be at most {} bytes",
            nslab::topology::MAX_FILE_BYTES
        ),
    });

    const DEPTH: usize = 100_000;
    let flow = dir.join("deep-flow-100000.yml");
    let text = format!(
        "name: bad-deep-flow-generated\ntopology:\n  nodes:\n    a:\n      exec: {}{}\n",
        "[".repeat(DEPTH),
        "]".repeat(DEPTH)
    );
    std::fs::write(&flow, text).expect("write");
    cases.push(Case {
        file: flow,
        expect: format!(
            "flow collections ([...] and {{...}}) are nested more than {} deep",
            nslab::topology::MAX_FLOW_DEPTH
        ),
    });

    let maps = dir.join("deep-flow-maps-100000.yml");
    let text = format!(
        "name: bad-deep-maps-generated\ntopology: {}x{}\n",
        "{a: ".repeat(DEPTH),
        "}".repeat(DEPTH)
    );
    std::fs::write(&maps, text).expect("write");
    cases.push(Case {
        file: maps,
        expect: "are nested more than".to_owned(),
    });

    let block = dir.join("deep-block-100000.yml");
    let text = format!(
        "name: bad-deep-block-generated\ntopology:\n  nodes:\n    a:\n      exec:\n        {}x\n",
        "- ".repeat(DEPTH)
    );
    std::fs::write(&block, text).expect("write");
    cases.push(Case {
        file: block,
        expect: "topology.nodes.a.exec[0]: invalid type: sequence, expected a string".to_owned(),
    });

    // Found by review (the fuzzer's inputs are too short to reach them):
    // defaults copied into every node used to take memory quadratic in the
    // file size, and repeated keys time quadratic in their number.
    let copies = dir.join("defaults-copied-into-20000-nodes.yml");
    let mut text =
        String::from("name: bad-defaults-generated\ntopology:\n  defaults:\n    exec:\n");
    for i in 0..100_000 {
        text.push_str(&format!("      - e{i}\n"));
    }
    text.push_str("  nodes:\n");
    for i in 0..20_000 {
        text.push_str(&format!("    n{i}:\n"));
    }
    std::fs::write(&copies, text).expect("write");
    cases.push(Case {
        file: copies,
        expect: "topology.defaults: defaults (about 3788890 bytes) copied into each of 20000 nodes"
            .to_owned(),
    });

    let dups = dir.join("duplicate-node-names-100000.yml");
    let mut text = String::from("name: bad-duplicates-generated\ntopology:\n  nodes:\n");
    for i in 0..100_000 {
        text.push_str(&format!("    n{i}:\n    n{i}:\n"));
    }
    std::fs::write(&dups, text).expect("write");
    cases.push(Case {
        file: dups,
        expect: "topology.nodes: node \"n99999\" is defined more than once".to_owned(),
    });
    cases
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// What one run of nslab did.
struct Run {
    code: Option<i32>,
    stderr: String,
    took: Duration,
    killed: bool,
}

/// Runs `nslab COMMAND FILE`, killing it after [`KILL_AFTER`].
fn run(command: &str, file: &Path) -> Run {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nslab"))
        .arg(command)
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nslab");
    // Read on a thread so a long message can never block the child.
    let mut pipe = child.stderr.take().expect("stderr pipe");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    });
    let mut killed = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for nslab") {
            break status;
        }
        if start.elapsed() > KILL_AFTER {
            let _ = child.kill();
            killed = true;
            break child.wait().expect("wait for killed nslab");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = start.elapsed();
    let stderr = reader.join().expect("stderr reader");
    Run {
        code: status.code(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        took,
        killed,
    }
}

/// Checks one refusal; returns the problems found, each naming the file.
fn check_refusal(command: &str, case: &Case, r: &Run, want_message: bool) -> Vec<String> {
    let name = file_name(&case.file);
    let mut out = Vec::new();
    let shown = || r.stderr.trim_end().replace('\n', "\n      ");
    if r.killed {
        out.push(format!(
            "{name}: nslab {command} was still running after {KILL_AFTER:?}; killed"
        ));
    } else if r.took >= LIMIT {
        out.push(format!(
            "{name}: nslab {command} took {:?} (limit {LIMIT:?})",
            r.took
        ));
    }
    if r.code != Some(2) {
        out.push(format!(
            "{name}: nslab {command} exited with {:?}, want 2; stderr: {}",
            r.code,
            shown()
        ));
    }
    if r.stderr.contains("panicked") {
        out.push(format!("{name}: nslab {command} panicked: {}", shown()));
    }
    if want_message && !r.stderr.contains(&case.expect) {
        out.push(format!(
            "{name}: nslab {command}: stderr lacks {:?}; stderr: {}",
            case.expect,
            shown()
        ));
    }
    let path = case.file.display().to_string();
    if !r.stderr.contains(&path) {
        out.push(format!(
            "{name}: nslab {command}: stderr does not name the file {path:?}; stderr: {}",
            shown()
        ));
    }
    out
}

/// What to look for in the snapshots of one file: the lab's name (valid or
/// not, as far as it can be told).
fn lab_key(file: &Path) -> Option<String> {
    if let Some(name) = nslab::topology::lab_name_of(file) {
        return Some(name);
    }
    // An invalid name (`../x`, `a/b`) is worth watching too: nslab must not
    // have made anything under it, wherever it points.
    let bytes = std::fs::read(file).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let raw = text.lines().find_map(|l| l.strip_prefix("name:"))?;
    let raw = raw.split(" #").next().unwrap_or("").trim();
    let raw = raw.trim_matches(|c| c == '"' || c == '\'');
    (!raw.is_empty() && !raw.contains('\0') && raw.len() < 200).then(|| raw.to_owned())
}

/// The objects of one lab that exist right now.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    /// Entries of /run/netns whose name holds the lab name.
    netns: BTreeSet<String>,
    /// Whether /run/nslab/LAB exists.
    state_dir: bool,
    /// Node inits (`nslab-init ...` command lines) naming the lab, with pids.
    inits: BTreeSet<(u32, String)>,
}

fn snapshot(lab: &str) -> Snapshot {
    let netns = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(lab))
                .collect()
        })
        .unwrap_or_default();
    let state_dir = Path::new("/run/nslab").join(lab).exists();
    let mut inits = BTreeSet::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.starts_with(b"nslab-init") {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(lab) {
                inits.insert((pid, text.trim_end().to_owned()));
            }
        }
    }
    Snapshot {
        netns,
        state_dir,
        inits,
    }
}

fn compare(name: &str, lab: &str, before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let new_ns: Vec<_> = after.netns.difference(&before.netns).collect();
    if !new_ns.is_empty() {
        out.push(format!(
            "{name}: nslab up left new /run/netns entries {new_ns:?}"
        ));
    }
    if after.state_dir && !before.state_dir {
        out.push(format!("{name}: nslab up left /run/nslab/{lab}"));
    }
    let new_inits: Vec<_> = after.inits.difference(&before.inits).collect();
    if !new_inits.is_empty() {
        out.push(format!("{name}: nslab up left node inits {new_inits:?}"));
    }
    out
}

#[test]
fn every_bad_topology_is_refused() {
    let mut failures = Vec::new();
    let tmp = TempDir::new();
    let committed = corpus(&mut failures);
    let generated = generated(&tmp.0);
    let n_committed = committed.len();
    let n_generated = generated.len();
    let cases: Vec<Case> = committed.into_iter().chain(generated).collect();
    assert!(
        n_committed >= 45,
        "tests/bad-topologies/ should hold at least 45 files, found {n_committed}"
    );

    // Files `validate` refused with exit code 2: only those are safe to give to `up`.
    let mut refused = Vec::new();
    for case in &cases {
        let r = run("validate", &case.file);
        failures.extend(check_refusal("validate", case, &r, true));
        if r.code == Some(2) {
            refused.push(case);
        }
    }

    let mut up_checked = 0;
    match nslab::test_support::check_privileges() {
        Err(why) => common::skipped(format_args!("corpus up-checks: {why}")),
        Ok(()) => {
            for case in &refused {
                let name = file_name(&case.file);
                let lab = lab_key(&case.file);
                let before = lab.as_deref().map(snapshot);
                let r = run("up", &case.file);
                failures.extend(check_refusal("up", case, &r, true));
                if let (Some(lab), Some(before)) = (lab.as_deref(), before) {
                    failures.extend(compare(&name, lab, &before, &snapshot(lab)));
                }
                up_checked += 1;
            }
        }
    }

    println!(
        "corpus: checked {} files ({n_committed} in tests/bad-topologies/, {n_generated} generated) with validate, {up_checked} with up",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} problem(s) in the bad-topology corpus:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
