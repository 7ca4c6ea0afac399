//! The command line without building labs: validation, exit codes,
//! privileges.

mod common;

use common::{TestLab, run};

fn topologies() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/topologies"))
        .expect("topologies/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_topology_validates() {
    let files = topologies();
    assert!(
        files.len() >= 4,
        "topologies/ should hold at least four examples"
    );
    for file in files {
        let (code, out, err) = run(&["validate", file.to_str().expect("utf-8")]);
        assert_eq!(code, 0, "{}: {out}{err}", file.display());
        assert!(out.contains("is valid"), "{out}");
    }
}

#[test]
fn bad_input_exits_2_and_names_the_problem() {
    let lab = TestLab::new(
        "bad",
        r#"
name: LAB
topology:
  nodes:
    a: {}
  links:
    - endpoints: ["a:eth0", "ghost:eth0"]
"#,
    );
    for command in ["validate", "up"] {
        let (code, _, err) = run(&[command, lab.file()]);
        assert_eq!(code, 2, "{command}: {err}");
        assert!(err.contains("ghost"), "{command}: {err}");
        assert!(
            err.contains(lab.file()),
            "{command} must name the file: {err}"
        );
    }
}

#[test]
fn yaml_syntax_errors_carry_line_and_column() {
    let lab = TestLab::new("syntax", "name: LAB\ntopology:\n  nodes: [a\n");
    let (code, _, err) = run(&["validate", lab.file()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{}:", lab.file())), "{err}");
    assert!(
        err.chars().any(|c| c.is_ascii_digit()),
        "no line number: {err}"
    );
}

#[test]
fn a_missing_file_is_bad_input() {
    let (code, _, err) = run(&["validate", "/nonexistent/lab.yml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/lab.yml"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, _) = run(&["frobnicate"]);
    assert_eq!(code, 2);
    let (code, _, _) = run(&["down"]);
    assert_eq!(code, 2, "down needs FILE, --lab or --all");
}

#[test]
fn without_privileges_up_explains_and_creates_nothing() {
    // Needs root to drop to an unprivileged user; as a normal user the
    // command is already unprivileged.
    let setpriv = std::process::Command::new("setpriv")
        .arg("--version")
        .output();
    if setpriv.is_err() {
        common::skipped(format_args!(
            "without_privileges_up_explains_and_creates_nothing: setpriv (util-linux) is not installed"
        ));
        return;
    }
    let lab = TestLab::new(
        "nopriv",
        r#"
name: LAB
topology:
  nodes:
    a: {}
"#,
    );
    // Readable by the unprivileged user.
    let _ = std::process::Command::new("chmod")
        .args(["-R", "a+rX", lab.dir.to_str().expect("utf-8")])
        .status();
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_nslab"))
        .args(["up", lab.file()])
        .output()
        .expect("setpriv");
    let (code, _, err) = common::output_of(out);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("needs root"), "{err}");
    assert_eq!(common::leftovers_of(&lab.name), Vec::<String>::new());
}
