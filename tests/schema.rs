//! `nslab schema` (the JSON Schema of topology files, as docs/schema.json
//! has it) is a valid draft-07 schema; every topology in topologies/, in
//! nslab's form and containerlab's, passes it; and what editors should
//! flag (an unknown key, a vendor kind, a bad link state) fails it.
//! Checked with Python's `jsonschema`, which scripts/test installs.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{run, skipped, topology_files};

/// Reads `schema` and then one YAML document per `---`-separated file
/// path on stdin; prints `ok` or the first error of each.
const CHECK: &str = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
for doc in sys.stdin.read().split("\n=====\n"):
    if not doc.strip():
        continue
    errors = sorted(validator.iter_errors(yaml.safe_load(doc)), key=lambda e: list(e.absolute_path))
    print("ok" if not errors else "/".join(map(str, errors[0].absolute_path)) + ": " + errors[0].message)
"#;

/// The verdict of the schema on each document, or `None` when Python's
/// jsonschema is not there.
fn verdicts(docs: &[String]) -> Option<Vec<String>> {
    let have = Command::new("python3")
        .args(["-c", "import jsonschema, yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("nslab-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let schema = dir.join("schema.json");
    let (code, out, err) = run(&["schema", "-o", schema.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "nslab schema: {err}");
    assert!(out.is_empty());
    let mut child = Command::new("python3")
        .args(["-c", CHECK, schema.to_str().expect("utf-8")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let input = docs.join("\n=====\n");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn the_schema_is_the_checked_in_one() {
    let (code, out, _) = run(&["schema"]);
    assert_eq!(code, 0);
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schema.json"))
        .expect("docs/schema.json");
    assert_eq!(out, file);
}

#[test]
fn every_topology_passes_the_schema_and_bad_ones_fail_it() {
    let files = topology_files();
    assert!(
        files.iter().any(|f| f.to_string_lossy().contains("/clab/")),
        "{files:?}"
    );
    let mut docs: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("read"))
        .collect();
    let bad = [
        (
            "topology/nodes/a",
            "name: x\ntopology:\n  nodes:\n    a: {colour: red}\n",
        ),
        (
            "topology/nodes/a/kind",
            "name: x\ntopology:\n  nodes:\n    a: {kind: nokia_srlinux}\n",
        ),
        (
            "topology/links/0/state/0",
            "name: x\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [\"a:e\", \"b:e\"]\n      state: [sideways, up]\n",
        ),
        (
            "topology/links/0/endpoints/0",
            "name: x\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [\"a\", \"b:e\"]\n",
        ),
        ("mgmt", "name: x\nmgmt: {driver-opts: {a: b}}\n"),
        ("mgmt/mtu", "name: x\nmgmt: {mtu: 9}\n"),
        (
            "topology/links/0/vxlan/vni",
            "name: x\ntopology:\n  nodes: {a: {}}\n  links:\n    - endpoints: [\"a:vx0\"]\n      vxlan: {remote: 192.0.2.1, vni: 0}\n",
        ),
        (
            "topology/links/0/endpoints",
            "name: x\ntopology:\n  nodes: {a: {}}\n  links:\n    - endpoints: [\"a:e\"]\n",
        ),
        (
            "topology/links/0/endpoints",
            "name: x\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [\"a:d\", \"b:d\"]\n      dummy: true\n",
        ),
        (
            "topology/nodes/b/stages/create/wait-for/0/stage",
            "name: x\ntopology:\n  nodes:\n    a: {}\n    b: {stages: {create: {wait-for: [{node: a, stage: healthy}]}}}\n",
        ),
    ];
    docs.extend(bad.iter().map(|(_, doc)| doc.to_string()));
    let Some(verdicts) = verdicts(&docs) else {
        skipped(format_args!(
            "every_topology_passes_the_schema_and_bad_ones_fail_it: Python's jsonschema and yaml are not installed (Debian packages python3-jsonschema, python3-yaml)"
        ));
        return;
    };
    assert_eq!(verdicts.len(), docs.len(), "{verdicts:?}");
    for (file, verdict) in files.iter().zip(&verdicts) {
        assert_eq!(verdict, "ok", "{}", file.display());
    }
    for ((path, doc), verdict) in bad.iter().zip(&verdicts[files.len()..]) {
        assert!(
            verdict.starts_with(&format!("{path}: ")),
            "{doc}: {verdict}"
        );
    }
}
