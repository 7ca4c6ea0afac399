//! Feeds arbitrary bytes through the topology parser and validator, and
//! every topology that passes through the planner.
//!
//! Bytes that are not UTF-8 are converted lossily (the file loader refuses
//! them before the parser, so only text reaches `parse_str` in practice).

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// A private, empty folder that relative bind sources resolve against.
fn base_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("nslab-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz base dir");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match nslab::topology::parse_str(&text, Path::new("fuzz.yml"), base_dir()) {
        Ok(topology) => {
            let plan = nslab::plan::Plan::from_topology(&topology);
            assert_eq!(plan.nodes.len(), topology.nodes.len());
            assert_eq!(plan.links.len(), topology.links.len());
            // Every link end is the host or a node of the plan.
            for link in &plan.links {
                for end in &link.endpoints {
                    if let nslab::plan::Place::Node(id) = end.place {
                        assert!(id < plan.nodes.len(), "endpoint names no node");
                    }
                }
            }
            // A valid lab name can never escape /run.
            assert!(nslab::spec::is_valid_name(&plan.lab));
        }
        Err(err) => {
            // Every error names the file.
            let msg = err.to_string();
            assert!(
                msg.starts_with("fuzz.yml"),
                "error does not name the file: {msg}"
            );
        }
    }
});
