//! The layering rule of the crate (src/lib.rs, docs/architecture.md): each
//! module imports only the layers below it. A `crate::` path that names a
//! higher layer, or another module of the same layer, fails this test.

use std::path::Path;

/// Bottom to top; modules on one row are siblings and import none of
/// each other.
const LAYERS: &[&[&str]] = &[
    &["spec"],
    &["topology"],
    &["plan"],
    &["kernel"],
    &["state", "privileges"],
    &["lab"],
    &["check", "capture", "explain", "graph", "generate", "spread"],
    &["scenario"],
    &["api"],
    &["cli"],
    &["test_support", "lib", "main"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file names as `crate::NAME`, also inside a
/// group (`crate::{a, b::c}`).
fn crate_paths(text: &str) -> Vec<String> {
    let name = |rest: &str| {
        let rest = rest.trim_start();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        rest[..end].to_string()
    };
    let mut names = Vec::new();
    for (i, m) in text.match_indices("crate::") {
        let rest = &text[i + m.len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                names.extend(group.split(',').map(name));
            }
            None => names.push(name(rest)),
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

#[test]
fn no_module_imports_a_higher_layer_or_a_sibling() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a component");
        let module = first.as_os_str().to_str().expect("utf-8");
        let module = module.strip_suffix(".rs").unwrap_or(module);
        let own = layer(module).unwrap_or_else(|| panic!("{module} is in no layer of LAYERS"));
        let text = std::fs::read_to_string(file).expect("read");
        for named in crate_paths(&text) {
            let Some(theirs) = layer(&named) else {
                continue;
            };
            if named != module && theirs >= own {
                wrong.push(format!("{} names crate::{named}", rel.display()));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "layering broken:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_check_sees_an_upward_import() {
    assert_eq!(crate_paths("use crate::lab::up;"), ["lab"]);
    assert_eq!(
        crate_paths("use crate::{plan::Plan, kernel};"),
        ["plan", "kernel"]
    );
    assert!(layer("kernel") < layer("lab"));
    assert!(layer("topology") < layer("plan"));
}
