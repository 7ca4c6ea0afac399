//! A lab spread over several hosts, driven from one machine (the
//! controller) over SSH. The controller validates the whole file, places
//! the nodes and cuts the lab into one part per host (see
//! [`crate::plan::spread`]); each part is an ordinary nslab lab of the same
//! name on its host, built there by that host's nslab from the part's plan
//! sent on the standard input of `nslab up --plan -`. Verbs on a node are
//! run by its host's nslab; verbs on the lab, by every host's.
//!
//! Nothing is built anywhere before every host has answered with this
//! version of nslab and no lab of that name. The controller's record (see
//! [`record`]) is written before the first part, and `down` asks every
//! host in it, so a failed or killed `up` leaves nothing `down` misses.

mod apply;
mod down;
pub mod forward;
pub mod record;
pub mod scenario;
mod ssh;
mod up;

use std::path::PathBuf;

pub use apply::{ApplyOptions, ApplyReport, apply};
pub use down::{DownReport, down};
pub use ssh::{HERE_ENV, SSH_ENV};
pub use up::{UpOptions, UpReport, up};

/// What can go wrong driving a spread lab.
#[derive(Debug, thiserror::Error)]
pub enum SpreadError {
    #[error("host {host}{} cannot be used: {why}", if ssh.is_empty() { String::new() } else { format!(" ({ssh})") })]
    Unreachable {
        host: String,
        ssh: String,
        why: String,
    },
    #[error("lab {lab} is up already{}; take it down first (nslab down --lab {lab})", on.as_deref().map(|h| format!(" on host {h}")).unwrap_or_default())]
    Exists { lab: String, on: Option<String> },
    #[error("no spread lab {lab} is recorded on this machine")]
    NoRecord { lab: String },
    #[error("node {node} is not in lab {lab}")]
    NoNode { lab: String, node: String },
    #[error("{}", failures.iter().map(|(host, why)| format!("host {host}: {why}")).collect::<Vec<_>>().join("\n  "))]
    Hosts { failures: Vec<(String, String)> },
    /// Refused before any host changed anything (`apply`'s trial run).
    #[error("nothing changed on any host:\n  {}", failures.iter().map(|(host, why)| format!("host {host}: {why}")).collect::<Vec<_>>().join("\n  "))]
    Refused { failures: Vec<(String, String)> },
    #[error("the record {}: {source}", path.display())]
    Record {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Plan(String),
}

/// Runs `work` for every item at once, one thread each (each mostly waits
/// for its ssh), and returns the results in order.
fn on_each<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = items
            .iter()
            .map(|item| scope.spawn(|| work(item)))
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}
