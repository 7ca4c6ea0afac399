//! `nslab graph` checked by the real tools: Graphviz's `dot` must accept the
//! DOT text and draw every node and every label line, `--format svg` must
//! give the same picture, and the real Mermaid parser (tests/mermaid/) must
//! read back the nodes, shapes and edge labels of the Mermaid text. Run over
//! every topology in topologies/, a few `nslab generate` shapes and a lab of
//! awkward names. Needs no root and creates no lab.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{nslab, output_of, run};
use nslab::plan::{Place, Plan};
use nslab::spec::NodeKind;

/// Node names that are Mermaid keywords or edge markers (`end`, `o1`, `x`),
/// `-` and `_`, interface names with quotes, backslashes, entity and HTML
/// characters, a host link.
const AWKWARD: &str = r#"
name: awkward_lab-1
topology:
  nodes:
    a-b_c: {}
    end: {}
    o1: {}
    x: {}
    sw_1: {kind: bridge}
  links:
    - endpoints: ['a-b_c:q"\#1;', 'end:<b>&amp;']
      ipv4: [10.0.0.1/30, 10.0.0.2/30]
      ipv6: ["2001:db8::1/64", "2001:db8::2/64"]
    - endpoints: ['o1:`md`', 'x:{|}%%;']
      ipv4: [10.0.1.1/30, 10.0.1.2/30]
      mtu: 1400
    - endpoints: ['o1:e0', 'sw_1:p1']
    - endpoints: ['x:e0', 'sw_1:p2']
    - endpoints: ['host:nslab-aw0\', 'end:up0']
      ipv4: [192.0.2.1/30, 192.0.2.2/30]
"#;

/// A scratch folder of this test process, removed when dropped, pass or
/// fail.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(tag: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("nslab-graph-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    Scratch(dir)
}

/// Every topology the checks run over: topologies/ (with its folders), a few
/// generated shapes and the awkward lab, written to `dir`.
fn topologies(dir: &Path) -> Vec<PathBuf> {
    let mut files = common::topology_files();
    assert!(files.len() >= 4, "topologies/ should hold examples");
    for shape in [
        &["linear", "4"][..],
        &["star", "5"],
        &["tree", "2", "2"],
        &["grid", "2", "3"],
    ] {
        let file = dir.join(format!("{}.yml", shape.join("-")));
        let mut args = vec!["generate"];
        args.extend_from_slice(shape);
        args.extend_from_slice(&["-o", file.to_str().expect("utf-8")]);
        let (code, _, err) = run(&args);
        assert_eq!(code, 0, "generate {shape:?}: {err}");
        files.push(file);
    }
    let awkward = dir.join("awkward.yml");
    std::fs::write(&awkward, AWKWARD).expect("write awkward.yml");
    files.push(awkward);
    files
}

fn plan_of(file: &Path) -> Plan {
    let topology =
        nslab::topology::load(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    Plan::from_topology(&topology)
}

fn name_of(plan: &Plan, place: Place) -> &str {
    match place {
        Place::Node(id) => &plan.nodes[id].name,
        Place::Host => "host",
    }
}

/// What the picture must say of each link, a line each: both ends as
/// `node:iface` with their addresses, then the MTU when set (README).
fn expected_lines(plan: &Plan) -> Vec<Vec<String>> {
    plan.links
        .iter()
        .map(|link| {
            let mut lines: Vec<String> = link
                .endpoints
                .iter()
                .map(|end| {
                    let mut words = vec![format!("{}:{}", name_of(plan, end.place), end.ifname)];
                    words.extend(end.addresses.iter().map(ToString::to_string));
                    words.join(" ")
                })
                .collect();
            if let Some(mtu) = link.mtu {
                lines.push(format!("mtu {mtu}"));
            }
            lines
        })
        .collect()
}

/// The vertex names the picture must show: every node, and the host when a
/// link ends there.
fn expected_vertices(plan: &Plan) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = plan.nodes.iter().map(|n| n.name.clone()).collect();
    if plan
        .links
        .iter()
        .flat_map(|l| &l.endpoints)
        .any(|e| e.place == Place::Host)
    {
        names.insert("host".into());
    }
    names
}

fn graph(file: &Path, format: &str) -> Vec<u8> {
    let out = nslab()
        .args(["graph", file.to_str().expect("utf-8"), "--format", format])
        .output()
        .expect("run nslab graph");
    assert!(
        out.status.success(),
        "graph {} --format {format}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn has_program(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `dot -Tsvg` of `text`: (exit code, SVG, stderr).
fn dot_svg(text: &[u8]) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dot");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text)
        .expect("write to dot");
    output_of(child.wait_with_output().expect("dot output"))
}

/// The text of every `<title>` and `<text>` element of an SVG, XML
/// entities decoded.
fn svg_texts(svg: &str, element: &str) -> Vec<String> {
    let open = format!("<{element}");
    let close = format!("</{element}>");
    let mut texts = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start..];
        let Some(gt) = after.find('>') else { break };
        let Some(end) = after.find(&close) else { break };
        texts.push(xml_unescape(&after[gt + 1..end]));
        rest = &after[end + close.len()..];
    }
    texts
}

fn xml_unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let semi = after.find(';').expect("entity ends with ;");
        let entity = &after[1..semi];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = entity
                    .strip_prefix("#x")
                    .map(|h| u32::from_str_radix(h, 16))
                    .or_else(|| entity.strip_prefix('#').map(str::parse))
                    .unwrap_or_else(|| panic!("unknown entity &{entity};"))
                    .expect("numeric entity");
                char::from_u32(code).expect("valid char")
            }
        };
        // Graphviz writes spaces next to spaces as non-breaking ones.
        out.push(if c == '\u{a0}' { ' ' } else { c });
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn dot_output_is_drawn_by_graphviz_with_every_node_and_label() {
    if !has_program("dot") {
        common::skipped(format_args!(
            "dot_output_is_drawn_by_graphviz_with_every_node_and_label: Graphviz's `dot` is not installed (apt-get install graphviz; scripts/test installs it)"
        ));
        return;
    }
    let dir = scratch("dot");
    for file in topologies(&dir) {
        let plan = plan_of(&file);
        let dot = graph(&file, "dot");
        let (code, svg, err) = dot_svg(&dot);
        assert_eq!(code, 0, "{}: dot -Tsvg failed: {err}", file.display());
        assert!(svg.contains("<svg"), "{}: no SVG", file.display());
        assert!(
            !err.contains("Warning") && !err.contains("Error"),
            "{}: {err}",
            file.display()
        );
        // Graphviz titles each node group with the node's name and each
        // edge group with `a--b`.
        let titles: BTreeSet<String> = svg_texts(&svg, "title").into_iter().collect();
        for name in expected_vertices(&plan) {
            assert!(titles.contains(&name), "{}: no node {name}", file.display());
        }
        let texts: Vec<String> = svg_texts(&svg, "text");
        for lines in expected_lines(&plan) {
            for line in lines {
                assert!(
                    texts.contains(&line),
                    "{}: label line {line:?} not drawn",
                    file.display()
                );
            }
        }
        // Nodes, bridges and the host are drawn in different shapes.
        let dot = String::from_utf8(dot).expect("utf-8");
        for node in &plan.nodes {
            let bridge = format!("\"{}\" [shape=hexagon", node.name);
            assert_eq!(
                dot.contains(&bridge),
                node.kind == NodeKind::Bridge,
                "{}: {}",
                file.display(),
                node.name
            );
        }
    }
}

#[test]
fn svg_format_is_the_graphviz_picture() {
    if !has_program("dot") {
        common::skipped(format_args!(
            "svg_format_is_the_graphviz_picture: Graphviz's `dot` is not installed (apt-get install graphviz; scripts/test installs it)"
        ));
        return;
    }
    let dir = scratch("svg");
    for file in topologies(&dir) {
        let out = dir.join("picture.svg");
        let (code, _, err) = run(&[
            "graph",
            file.to_str().expect("utf-8"),
            "--format",
            "svg",
            "-o",
            out.to_str().expect("utf-8"),
        ]);
        assert_eq!(code, 0, "{}: {err}", file.display());
        let svg = std::fs::read_to_string(&out).expect("svg written");
        assert!(svg.contains("<svg"), "{}", file.display());
        let (_, expected, _) = dot_svg(&graph(&file, "dot"));
        assert_eq!(svg, expected, "{}: not dot's picture", file.display());
        let titles: BTreeSet<String> = svg_texts(&svg, "title").into_iter().collect();
        for name in expected_vertices(&plan_of(&file)) {
            assert!(titles.contains(&name), "{}: no node {name}", file.display());
        }
    }
}

#[test]
fn svg_without_graphviz_says_to_install_it() {
    let dir = scratch("nodot");
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/topologies/chain3.yml");
    // An empty PATH: no `dot` to be found, whatever the machine has.
    let out = nslab()
        .args(["graph", file, "--format", "svg"])
        .env("PATH", &*dir)
        .output()
        .expect("run nslab");
    let (code, out, err) = output_of(out);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("`dot`") && err.contains("install graphviz"),
        "{err}"
    );
}

#[test]
fn bad_input_exits_2() {
    let dir = scratch("bad");
    let file = dir.join("bad.yml");
    std::fs::write(
        &file,
        "name: bad\ntopology:\n  nodes: {a: {}}\n  links:\n    - endpoints: [\"a:e0\", \"ghost:e0\"]\n",
    )
    .expect("write");
    for format in ["dot", "mermaid", "svg"] {
        let (code, out, err) = run(&["graph", file.to_str().expect("utf-8"), "--format", format]);
        assert_eq!(code, 2, "{format}: {out}{err}");
        assert!(err.contains("ghost"), "{err}");
    }
    let (code, _, err) = run(&["graph", file.to_str().expect("utf-8"), "-f", "png"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn mermaid_past_its_edge_limit_gets_a_note() {
    let dir = scratch("limit");
    let file = dir.join("star.yml");
    let file = file.to_str().expect("utf-8");
    for (n, note) in [(500, false), (501, true)] {
        let (code, _, err) = run(&["generate", "star", &n.to_string(), "-o", file]);
        assert_eq!(code, 0, "{err}");
        let (code, out, err) = run(&["graph", file, "-f", "mermaid"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.matches(" ---|").count(), n, "one edge per link");
        assert_eq!(err.contains("at most 500 edges"), note, "star {n}: {err}");
    }
}

/// node_modules with the pinned Mermaid (see tests/mermaid/package.json).
fn mermaid_modules() -> Result<PathBuf, String> {
    if !has_program("node") {
        return Err("Node.js is not installed (scripts/test installs nodejs and npm)".into());
    }
    let dir = std::env::var_os("NSLAB_MERMAID_MODULES").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/mermaid-check")),
        PathBuf::from,
    );
    if dir.join("node_modules/mermaid/package.json").is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "the mermaid npm package is not installed in {} (scripts/test runs `npm ci` there from tests/mermaid/)",
            dir.display()
        ))
    }
}

/// tests/mermaid/check.mjs over `files`: (exit code, JSON lines, stderr).
fn mermaid_check(modules: &Path, files: &[PathBuf]) -> (i32, String, String) {
    let checker = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mermaid/check.mjs");
    let out = Command::new("node")
        .arg(checker)
        .arg(modules)
        .args(files)
        .output()
        .expect("run node");
    output_of(out)
}

#[test]
fn mermaid_output_is_read_back_by_the_mermaid_parser() {
    let modules = match mermaid_modules() {
        Ok(dir) => dir,
        Err(why) => {
            common::skipped(format_args!(
                "mermaid_output_is_read_back_by_the_mermaid_parser: {why}"
            ));
            return;
        }
    };
    let dir = scratch("mermaid");
    let files = topologies(&dir);
    let mut written = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let out = dir.join(format!("{i}.mmd"));
        std::fs::write(&out, graph(file, "mermaid")).expect("write mermaid");
        written.push(out);
    }
    let (code, stdout, stderr) = mermaid_check(&modules, &written);
    assert_eq!(
        code, 0,
        "the Mermaid parser refused some output:\n{stdout}\n{stderr}"
    );
    let reports: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("checker prints JSON lines"))
        .collect();
    assert_eq!(reports.len(), files.len(), "{stdout}");
    for (file, report) in files.iter().zip(&reports) {
        let plan = plan_of(file);
        let at = file.display();
        assert_eq!(report["ok"], true, "{at}: {report}");
        assert_eq!(report["type"], "flowchart-v2", "{at}");
        // Vertices: every name shown as written, in the shape of its kind.
        let vertices = report["vertices"].as_array().expect("vertices");
        let shown: BTreeSet<String> = vertices
            .iter()
            .map(|v| v["text"].as_str().expect("text").to_string())
            .collect();
        // A device is a vertex of its own, named by what it is.
        let mut expected = expected_vertices(&plan);
        expected.extend(plan.devices.iter().map(|d| d.kind.to_string()));
        assert_eq!(shown, expected, "{at}");
        let id_of = |name: &str| {
            let v = vertices
                .iter()
                .find(|v| v["text"] == name)
                .unwrap_or_else(|| panic!("{at}: no vertex {name}"));
            (
                v["id"].as_str().expect("id").to_string(),
                v["shape"].as_str().expect("shape").to_string(),
            )
        };
        for node in &plan.nodes {
            let (_, shape) = id_of(&node.name);
            let want = match node.kind {
                NodeKind::Node => "square",
                NodeKind::Bridge => "hexagon",
            };
            assert_eq!(shape, want, "{at}: {}", node.name);
        }
        if shown.contains("host") {
            assert_eq!(id_of("host").1, "cylinder", "{at}");
        }
        // Edges: one per link, between the right vertices, labelled with
        // exactly the expected lines; then one per device, from its node.
        let edges = report["edges"].as_array().expect("edges");
        assert_eq!(edges.len(), plan.links.len() + plan.devices.len(), "{at}");
        for (device, edge) in plan.devices.iter().zip(&edges[plan.links.len()..]) {
            assert_eq!(
                edge["start"].as_str(),
                Some(id_of(name_of(&plan, device.end.place)).0.as_str()),
                "{at}"
            );
            assert_eq!(
                edge["end"].as_str(),
                Some(id_of(&device.kind.to_string()).0.as_str()),
                "{at}"
            );
        }
        for ((link, lines), edge) in plan.links.iter().zip(expected_lines(&plan)).zip(edges) {
            let [a, b] = &link.endpoints;
            assert_eq!(
                edge["start"].as_str(),
                Some(id_of(name_of(&plan, a.place)).0.as_str()),
                "{at}"
            );
            assert_eq!(
                edge["end"].as_str(),
                Some(id_of(name_of(&plan, b.place)).0.as_str()),
                "{at}"
            );
            assert_eq!(
                edge["text"].as_str(),
                Some(lines.join("\n").as_str()),
                "{at}"
            );
        }
    }
}

#[test]
fn the_edge_limit_noted_is_the_mermaid_parsers() {
    let modules = match mermaid_modules() {
        Ok(dir) => dir,
        Err(why) => {
            common::skipped(format_args!(
                "the_edge_limit_noted_is_the_mermaid_parsers: {why}"
            ));
            return;
        }
    };
    let dir = scratch("parser-limit");
    let mut written = Vec::new();
    for n in [500, 501] {
        let yaml = dir.join(format!("star{n}.yml"));
        let yaml = yaml.to_str().expect("utf-8");
        let (code, _, err) = run(&["generate", "star", &n.to_string(), "-o", yaml]);
        assert_eq!(code, 0, "{err}");
        let out = dir.join(format!("star{n}.mmd"));
        std::fs::write(&out, graph(Path::new(yaml), "mermaid")).expect("write");
        written.push(out);
    }
    let (_, stdout, stderr) = mermaid_check(&modules, &written);
    let ok: Vec<bool> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON")["ok"] == true)
        .collect();
    assert_eq!(ok, [true, false], "{stdout}{stderr}");
    assert!(stdout.contains("Edge limit"), "{stdout}");
}

#[test]
fn the_readme_examples_are_what_graph_prints() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md"))
        .expect("README.md");
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/topologies/chain3.yml");
    for (command, format) in [
        ("$ nslab graph topologies/chain3.yml\n", "dot"),
        (
            "$ nslab graph topologies/chain3.yml --format mermaid\n",
            "mermaid",
        ),
    ] {
        let start = readme.find(command).expect("the README shows the command") + command.len();
        let shown: Vec<&str> = readme[start..]
            .lines()
            .take_while(|l| !l.starts_with('$') && *l != "  ..." && *l != "```")
            .collect();
        assert!(shown.len() >= 5, "README example of --format {format}");
        let printed = String::from_utf8(graph(Path::new(file), format)).expect("utf-8");
        let printed: Vec<&str> = printed.lines().take(shown.len()).collect();
        assert_eq!(shown, printed, "README example of --format {format}");
    }
}
