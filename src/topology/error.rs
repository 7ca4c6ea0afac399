//! Errors of loading a topology file.

use std::fmt;
use std::path::PathBuf;

/// One validation problem: where in the file, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path, e.g. `topology.links[2].endpoints[0]`.
    pub path: String,
    /// What is wrong, naming the offending value.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a topology could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`super::MAX_FILE_BYTES`].
    #[error(
        "{}: file is too large ({size} bytes); a topology file may be at most {limit} bytes",
        file.display()
    )]
    TooLarge {
        file: PathBuf,
        size: u64,
        limit: u64,
    },
    /// The file is not valid YAML or does not have the expected shape
    /// (unknown key, wrong type, missing `name`, ...).
    #[error("{}{}: {message}", file.display(), Location(*line, *column))]
    Parse {
        file: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        message: String,
    },
    /// The file parsed but breaks rules; every problem found is listed.
    #[error("{}", Listing(file, problems))]
    Invalid {
        file: PathBuf,
        problems: Vec<Problem>,
    },
}

struct Location(Option<usize>, Option<usize>);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(l), Some(c)) => write!(f, ":{l}:{c}"),
            (Some(l), None) => write!(f, ":{l}"),
            _ => Ok(()),
        }
    }
}

struct Listing<'a>(&'a PathBuf, &'a [Problem]);

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.1.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {p}", self.0.display())?;
        }
        Ok(())
    }
}

impl TopologyError {
    /// The file the error is about.
    pub fn file(&self) -> &std::path::Path {
        match self {
            TopologyError::Read { file, .. }
            | TopologyError::TooLarge { file, .. }
            | TopologyError::Parse { file, .. }
            | TopologyError::Invalid { file, .. } => file,
        }
    }

    /// Builds a [`TopologyError::Parse`] from a serde_yaml error, moving the
    /// location out of the message into `line`/`column`.
    pub(crate) fn from_yaml(file: PathBuf, err: &serde_yaml::Error) -> TopologyError {
        let mut message = err.to_string();
        let (mut line, mut column) = (None, None);
        if let Some(loc) = err.location() {
            line = Some(loc.line());
            column = Some(loc.column());
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(at) = message.find(&suffix) {
                message.replace_range(at..at + suffix.len(), "");
            }
        }
        TopologyError::Parse {
            file,
            line,
            column,
            message,
        }
    }
}
