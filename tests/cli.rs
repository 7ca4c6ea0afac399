//! The command line without building labs: validation, exit codes,
//! privileges, shell completions and the manual page.

mod common;

use common::{TestLab, run, topology_files};

#[test]
fn every_shipped_topology_validates() {
    let files = topology_files();
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

/// The verbs of `nslab --help`, `help` left out, checked to hold at least
/// the ones nslab has always had.
fn verbs() -> Vec<String> {
    let (code, out, err) = run(&["--help"]);
    assert_eq!(code, 0, "{err}");
    let verbs: Vec<String> = out
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|&verb| verb != "help")
        .map(str::to_string)
        .collect();
    for verb in [
        "up",
        "down",
        "exec",
        "inspect",
        "stats",
        "validate",
        "generate",
        "explain",
        "graph",
        "impair",
        "check",
        "capture",
        "completions",
        "man",
    ] {
        assert!(verbs.iter().any(|v| v == verb), "no {verb} in:\n{out}");
    }
    verbs
}

/// A folder of this test, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("nslab-test-{}", common::unique_lab(tag)));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn bash_completion_registers_and_offers_every_verb() {
    let (code, script, err) = run(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    let dir = TempDir::new("completion");
    let file = dir.0.join("nslab.bash");
    std::fs::write(&file, script).expect("write the script");
    // What bash does on TAB after `nslab `: the registered function, called
    // with the words typed so far; it answers in COMPREPLY.
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c"])
        .arg(
            r#"source "$1" || exit 1
complete -p nslab || exit 1
function=$(complete -p nslab | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
COMP_WORDS=(nslab "")
COMP_CWORD=1
COMP_LINE="nslab "
COMP_POINT=${#COMP_LINE}
"$function" nslab "" nslab
printf 'offered: %s\n' "${COMPREPLY[@]}""#,
        )
        .arg("bash")
        .arg(&file)
        .output()
        .expect("run bash");
    let (code, out, err) = common::output_of(out);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.is_empty(), "bash complained: {err}");
    assert!(
        out.lines()
            .next()
            .is_some_and(|l| l.starts_with("complete ") && l.ends_with(" nslab")),
        "nslab is not registered:\n{out}"
    );
    let offered: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("offered: "))
        .collect();
    for verb in verbs() {
        assert!(
            offered.contains(&verb.as_str()),
            "{verb} not offered: {offered:?}"
        );
    }
}

#[test]
fn every_shell_gets_a_script_naming_every_verb() {
    let verbs = verbs();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, script, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for verb in &verbs {
            assert!(script.contains(verb.as_str()), "{shell}: no {verb}");
        }
    }
    let (code, _, err) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is bad input: {err}");
}

/// `page` rendered by groff as plain text, or `None` (test skipped) when
/// groff is not installed. Fails on any warning.
fn render_man(what: &str, page: &[u8]) -> Option<String> {
    use std::io::Write;
    // -ww: every warning; -P-cbou: no bold, underline or overstrike.
    let child = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        common::skipped(format_args!("{what}: groff (groff-base) is not installed"));
        return None;
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(page)
        .expect("feed groff");
    let (code, text, err) = common::output_of(child.wait_with_output().expect("groff"));
    assert_eq!(code, 0, "{what}: {err}");
    assert!(err.is_empty(), "{what}: groff warned:\n{err}");
    Some(text)
}

#[test]
fn the_man_page_renders_and_lists_every_verb() {
    let (code, page, err) = run(&["man"]);
    assert_eq!(code, 0, "{err}");
    let Some(text) = render_man("nslab man", page.as_bytes()) else {
        return;
    };
    assert!(text.starts_with("nslab(1)"), "{text}");
    for verb in verbs() {
        assert!(
            text.contains(&format!("nslab-{verb}(1)")),
            "no nslab-{verb}(1) in:\n{text}"
        );
    }
}

#[test]
fn man_dir_writes_a_page_per_verb() {
    let dir = TempDir::new("man");
    let (code, out, err) = run(&["man", "--dir", dir.0.to_str().expect("utf-8")]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let mut pages = vec!["nslab".to_string()];
    pages.extend(verbs().iter().map(|verb| format!("nslab-{verb}")));
    for page in pages {
        let path = dir.0.join(format!("{page}.1"));
        let roff = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let Some(text) = render_man(&page, &roff) else {
            return;
        };
        assert!(text.starts_with(&format!("{page}(1)")), "{text}");
    }
}

#[test]
fn completions_and_man_into_a_closed_pipe_fail_cleanly() {
    for args in [&["completions", "bash"][..], &["man"][..]] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nslab"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start nslab");
        // The reader is gone before anything is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        // A child forked meanwhile by another test thread can hold a copy
        // of the read end for a moment, and the write then succeeds: only
        // a failed write is checked for its message.
        if out.status.code() != Some(0) {
            assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        }
    }
}
