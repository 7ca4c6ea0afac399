//! Reading a topology file, with limits against hostile input.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::model::{BudgetGuard, FileModel, NameOnly};
use super::{Topology, TopologyError, clab, validate};
use crate::spec::is_valid_name;

/// Largest topology file accepted: 4 MiB.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Budget for alias expansion: strings, list elements and map entries may add
/// up to this many times the file's size (plus a floor for tiny files).
const EXPANSION_FACTOR: u64 = 4;
const EXPANSION_FLOOR: u64 = 1 << 20;

/// Deepest nesting of flow collections (`[...]`, `{...}`) let through to
/// libyaml, whose scanner costs O(depth) per token in flow context (so a file
/// of nothing but `[` takes minutes). Counted over the raw text, brackets in
/// strings and comments included, so it can only over-count; real topology
/// files nest three or four levels.
pub const MAX_FLOW_DEPTH: usize = 64;

/// Refuses text whose flow collections nest deeper than [`MAX_FLOW_DEPTH`],
/// returning the 1-based line and column of the first bracket too many.
fn check_flow_depth(text: &str) -> Result<(), (usize, usize)> {
    let (mut depth, mut line, mut col) = (0usize, 1usize, 0usize);
    for c in text.chars() {
        col += 1;
        match c {
            '\n' => {
                line += 1;
                col = 0;
            }
            '[' | '{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Err((line, col));
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Reads `path` (refusing more than [`MAX_FILE_BYTES`]) as UTF-8.
fn read_limited(path: &Path) -> Result<String, TopologyError> {
    let read_err = |source| TopologyError::Read {
        file: path.to_path_buf(),
        source,
    };
    let too_large = |size| TopologyError::TooLarge {
        file: path.to_path_buf(),
        size,
        limit: MAX_FILE_BYTES,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(meta.len()));
    }
    // The metadata may lie (special files, a file still growing): cap the read too.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| TopologyError::Parse {
        file: path.to_path_buf(),
        line: None,
        column: None,
        message: format!(
            "file is not valid UTF-8 (bad byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Reads, parses and validates a topology file. Relative bind sources are
/// resolved against the file's folder.
pub fn load(path: &Path) -> Result<Topology, TopologyError> {
    let text = read_limited(path)?;
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parse_str(&text, path, &base_dir)
}

/// Parses and validates topology text; `origin` names it in messages and
/// becomes [`Topology::source`]; relative bind sources are resolved against
/// `base_dir`.
pub fn parse_str(text: &str, origin: &Path, base_dir: &Path) -> Result<Topology, TopologyError> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(TopologyError::TooLarge {
            file: origin.to_path_buf(),
            size: text.len() as u64,
            limit: MAX_FILE_BYTES,
        });
    }
    if let Err((line, column)) = check_flow_depth(text) {
        return Err(TopologyError::Parse {
            file: origin.to_path_buf(),
            line: Some(line),
            column: Some(column),
            message: format!(
                "flow collections ([...] and {{...}}) are nested more than {MAX_FLOW_DEPTH} deep"
            ),
        });
    }
    // A containerlab file's `${VAR}`s are expanded before it is read, as
    // containerlab does; known by its name, or else by its keys once read.
    let expanded = match clab::has_clab_name(origin) && text.contains('$') {
        true => Some(expand(text, origin)?),
        false => None,
    };
    let mut model = parse_model(expanded.as_deref().unwrap_or(text), origin)?;
    if expanded.is_none() && text.contains('$') && clab::is_containerlab(&model, origin) {
        model = parse_model(&expand(text, origin)?, origin)?;
    }
    validate::validate(model, origin, base_dir).map_err(|problems| TopologyError::Invalid {
        file: origin.to_path_buf(),
        problems,
    })
}

/// The raw model of topology text, its aliases' expansion bounded.
fn parse_model(text: &str, origin: &Path) -> Result<FileModel, TopologyError> {
    let budget = (text.len() as u64)
        .saturating_mul(EXPANSION_FACTOR)
        .saturating_add(EXPANSION_FLOOR);
    let _guard = BudgetGuard::new(budget);
    serde_yaml::from_str(text).map_err(|e| TopologyError::from_yaml(origin.to_path_buf(), &e))
}

/// containerlab's `${VAR}` expansion from this process's environment.
fn expand(text: &str, origin: &Path) -> Result<String, TopologyError> {
    let limit = usize::try_from(MAX_FILE_BYTES).unwrap_or(usize::MAX);
    let expanded =
        clab::expand_env(text, limit, |name| std::env::var(name).ok()).map_err(|message| {
            TopologyError::Parse {
                file: origin.to_path_buf(),
                line: None,
                column: None,
                message,
            }
        })?;
    if let Err((line, column)) = check_flow_depth(&expanded) {
        return Err(TopologyError::Parse {
            file: origin.to_path_buf(),
            line: Some(line),
            column: Some(column),
            message: format!(
                "once its variables are expanded, flow collections ([...] and {{...}}) are nested more than {MAX_FLOW_DEPTH} deep"
            ),
        });
    }
    Ok(expanded)
}

/// Best effort: the `name:` of a topology file, even when the rest of the
/// file is invalid. Only returns names that pass [`is_valid_name`].
pub fn lab_name_of(path: &Path) -> Option<String> {
    let text = read_limited(path).ok()?;
    let parsed = match check_flow_depth(&text) {
        Ok(()) => serde_yaml::from_str::<NameOnly>(&text).ok(),
        Err(_) => None,
    };
    let name = match parsed {
        Some(n) => n.name,
        None => scan_name(&text)?,
    };
    is_valid_name(&name).then_some(name)
}

/// The lab name a topology file seems to have, from its first top-level
/// `name:` line, without parsing it: a hint only (for work that may start
/// before the file is parsed), never a checked name.
pub fn peek_lab_name(path: &Path) -> Option<String> {
    let text = read_limited(path).ok()?;
    scan_name(&text).filter(|name| is_valid_name(name))
}

/// Finds a top-level `name: VALUE` line without parsing the YAML.
fn scan_name(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix("name:")?;
        let rest = rest.split(" #").next().unwrap_or("").trim();
        let unquoted = rest
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .or_else(|| rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
            .unwrap_or(rest);
        Some(unquoted.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A unique file in the temp folder, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(tag: &str, contents: &[u8]) -> TempFile {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "nslab-topo-{}-{}-{tag}.yml",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&p, contents).expect("write temp file");
            TempFile(p)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn parse(text: &str) -> Result<Topology, TopologyError> {
        parse_str(text, Path::new("t.yml"), Path::new("/"))
    }

    #[test]
    fn oversized_file_is_refused_by_size() {
        let mut big = b"name: x\nblob: \"".to_vec();
        big.extend(std::iter::repeat_n(b'a', 5 * 1024 * 1024));
        big.extend(b"\"\n");
        let f = TempFile::new("big", &big);
        let err = load(&f.0).expect_err("too large");
        assert!(matches!(err, TopologyError::TooLarge { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.starts_with(&f.0.display().to_string()), "{msg}");
        assert!(msg.contains("file is too large (5242897 bytes)"), "{msg}");
        assert!(msg.contains("at most 4194304 bytes"), "{msg}");
    }

    #[test]
    fn oversized_text_is_refused_by_parse_str() {
        let big = format!("name: \"{}\"\n", "a".repeat(5 * 1024 * 1024));
        let err = parse(&big).expect_err("too large");
        assert!(
            err.to_string().starts_with("t.yml: file is too large"),
            "{err}"
        );
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let p = std::env::temp_dir().join(format!("nslab-topo-missing-{}.yml", std::process::id()));
        let err = load(&p).expect_err("missing");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("{}: cannot read: ", p.display())),
            "{msg}"
        );
    }

    #[test]
    fn non_utf8_is_a_parse_error() {
        let f = TempFile::new("latin1", b"name: caf\xe9\n");
        let err = load(&f.0).expect_err("not utf-8");
        assert!(
            err.to_string()
                .contains("not valid UTF-8 (bad byte at offset 9)"),
            "{err}"
        );
    }

    #[test]
    fn load_resolves_binds_against_the_file_folder() {
        let f = TempFile::new("binds", b"");
        let src =
            f.0.file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_owned();
        let text = format!(
            "name: b\ntopology:\n  nodes:\n    n1:\n      binds: [\"./{src}:/etc/x:ro\"]\n"
        );
        std::fs::write(&f.0, text).expect("rewrite");
        let t = load(&f.0).expect("valid");
        assert_eq!(t.source, f.0);
        let b = &t.nodes["n1"].binds[0];
        assert_eq!(b.source, std::path::absolute(&f.0).expect("abs"));
        assert_eq!(b.target, PathBuf::from("/etc/x"));
        assert!(b.read_only);
    }

    fn assert_fast_error(text: &str, want: &str) {
        let start = Instant::now();
        let err = parse(text).expect_err("must fail");
        let took = start.elapsed();
        assert!(took < Duration::from_secs(1), "took {took:?}");
        assert!(err.to_string().contains(want), "got {err}");
    }

    #[test]
    fn billion_laughs_fails_fast() {
        let mut text = String::from(
            "name: x\nx0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "x{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
            ));
        }
        // Unknown keys stop the parse first; also try it where it is deserialized.
        assert_fast_error(&text, "unknown field");
        let mut inside = String::from(
            "name: x\ntopology:\n  defaults:\n    exec: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n  nodes:\n",
        );
        for i in 1..10 {
            let p = i - 1;
            inside.push_str(&format!(
                "    n{i}: {{exec: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]}}\n"
            ));
        }
        assert_fast_error(&inside, "");
    }

    #[test]
    fn quadratic_alias_expansion_fails_fast() {
        // One big list aliased by many nodes: few jumps, but each expands the list.
        let mut text = String::from("name: x\ntopology:\n  defaults:\n    exec: &big [");
        for _ in 0..20_000 {
            text.push_str("a,");
        }
        text.push_str("]\n  nodes:\n");
        for i in 0..5_000 {
            text.push_str(&format!("    n{i}: {{exec: *big}}\n"));
        }
        assert_fast_error(&text, super::super::model::BUDGET_MESSAGE);
    }

    #[test]
    fn repeated_long_string_fails_fast() {
        let mut text = format!(
            "name: x\ntopology:\n  defaults:\n    hostname: &s \"{}\"\n    exec: [",
            "a".repeat(1 << 16)
        );
        for _ in 0..100 {
            text.push_str("*s,");
        }
        text.push_str("]\n");
        assert_fast_error(&text, super::super::model::BUDGET_MESSAGE);
    }

    #[test]
    fn deep_nesting_fails_fast() {
        let deep = format!(
            "name: x\ntopology:\n  nodes:\n    n1:\n      exec: {}{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_fast_error(
            &deep,
            "t.yml:5:77: flow collections ([...] and {...}) are nested more than 64 deep",
        );
        let deep_unknown = format!(
            "name: x\nzzz: {}{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_fast_error(&deep_unknown, "t.yml:");
        let deep_maps = format!(
            "name: x\ntopology: {}{}\n",
            "{a: ".repeat(10_000),
            "}".repeat(10_000)
        );
        assert_fast_error(&deep_maps, "t.yml:");
        // Block nesting is cheap for libyaml, and no shape of the model nests
        // deeper than a few levels, so the first wrong type stops it (before
        // serde_yaml's own recursion limit of 128).
        let deep_block = format!(
            "name: x\ntopology:\n  nodes:\n    n1:\n      exec:\n        {}a\n",
            "- ".repeat(10_000)
        );
        assert_fast_error(
            &deep_block,
            "t.yml:6:11: topology.nodes.n1.exec[0]: invalid type: sequence",
        );
        // 64 levels pass the guard and reach serde_yaml.
        let ok_depth = format!(
            "name: x\ntopology:\n  nodes:\n    n1:\n      exec: {}{}\n",
            "[".repeat(64),
            "]".repeat(64)
        );
        assert_fast_error(&ok_depth, "invalid type: sequence, expected a string");
        // Deep in a place where serde_yaml recurses (a map of maps).
        let deep_env = format!(
            "name: x\ntopology:\n  nodes:\n    n1:\n      env: {}{}\n",
            "{a: ".repeat(10_000),
            "}".repeat(10_000)
        );
        assert_fast_error(&deep_env, "t.yml:");
    }

    #[test]
    fn lab_name_of_is_best_effort() {
        let f = TempFile::new("name", b"name: lab1\ntopology:\n  nodes: {a: {bogus: 1}}\n");
        assert_eq!(lab_name_of(&f.0), Some("lab1".to_owned()));
        let f = TempFile::new("name2", b"# c\nname: \"lab2\"  # x\ntopology: [ unclosed\n");
        assert_eq!(lab_name_of(&f.0), Some("lab2".to_owned()));
        let f = TempFile::new("name3", b"name: ../etc\n");
        assert_eq!(lab_name_of(&f.0), None);
        let mut deep = b"name: deep\nx: ".to_vec();
        deep.extend(std::iter::repeat_n(b'[', 100_000));
        let f = TempFile::new("deep", &deep);
        let start = Instant::now();
        assert_eq!(lab_name_of(&f.0), Some("deep".to_owned()));
        assert!(start.elapsed() < Duration::from_secs(1));
        let f = TempFile::new("name4", b"topology: {}\n");
        assert_eq!(lab_name_of(&f.0), None);
        assert_eq!(lab_name_of(Path::new("/nonexistent/nslab/x.yml")), None);
    }
}
