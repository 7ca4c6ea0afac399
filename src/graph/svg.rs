//! SVG through Graphviz: DOT text piped to `dot -Tsvg`. Graphviz is only a
//! renderer here; nslab draws nothing of the kernel's with it.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// Why a picture could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GraphError {
    #[error(
        "--format svg needs Graphviz's `dot`, which is not installed: install graphviz (apt-get install graphviz), or use --format dot"
    )]
    DotMissing,
    #[error("could not run `dot`: {0}")]
    Spawn(std::io::Error),
    #[error("talking to `dot`: {0}")]
    Pipe(std::io::Error),
    #[error("`dot -Tsvg` failed ({status}): {stderr}")]
    DotFailed { status: String, stderr: String },
}

/// The DOT text laid out and drawn by `dot -Tsvg`.
pub(crate) fn dot_to_svg(dot: &str) -> Result<Vec<u8>, GraphError> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => GraphError::DotMissing,
            _ => GraphError::Spawn(e),
        })?;
    let mut stdin = child.stdin.take().ok_or_else(|| pipe_missing("stdin"))?;
    let mut stdout = child.stdout.take().ok_or_else(|| pipe_missing("stdout"))?;
    let mut stderr = child.stderr.take().ok_or_else(|| pipe_missing("stderr"))?;
    // Writing and reading at once: a big graph fills either pipe before
    // `dot` has read all of its input or we have read all of its output.
    let (written, svg, errors) = std::thread::scope(|s| {
        let writer = s.spawn(move || {
            let result = stdin.write_all(dot.as_bytes());
            drop(stdin); // EOF: dot starts the layout
            result
        });
        let err_reader = s.spawn(move || {
            let mut text = String::new();
            stderr.read_to_string(&mut text).map(|_| text)
        });
        let mut svg = Vec::new();
        let read = stdout.read_to_end(&mut svg).map(|_| svg);
        (joined(writer.join()), read, joined(err_reader.join()))
    });
    let status = child.wait().map_err(GraphError::Pipe)?;
    let stderr = errors.unwrap_or_default();
    if !status.success() {
        return Err(GraphError::DotFailed {
            status: status.to_string(),
            stderr: stderr.trim().to_string(),
        });
    }
    written.map_err(GraphError::Pipe)?;
    svg.map_err(GraphError::Pipe)
}

/// A pipe thread's result; a panic in it becomes an I/O error.
fn joined<T>(result: std::thread::Result<std::io::Result<T>>) -> std::io::Result<T> {
    result.unwrap_or_else(|_| Err(std::io::Error::other("pipe thread panicked")))
}

fn pipe_missing(which: &str) -> GraphError {
    GraphError::Pipe(std::io::Error::other(format!("no {which} pipe to `dot`")))
}
