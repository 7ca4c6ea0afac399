//! `down` of a spread lab: every host of the record takes its part down
//! (a host without one has nothing to do); the record goes when all did.

use std::time::{Duration, Instant};

use super::record::{self, Record};
use super::{SpreadError, on_each, ssh};

/// What `down` did.
#[derive(Debug, Clone)]
pub struct DownReport {
    pub lab: String,
    pub hosts: usize,
    pub total: Duration,
}

/// Takes the spread lab `lab` down on every host of its record.
pub fn down(lab: &str) -> Result<DownReport, SpreadError> {
    let _lock = record::lock(lab)?;
    down_locked(lab)
}

/// [`down`], the controller's lock held.
pub(super) fn down_locked(lab: &str) -> Result<DownReport, SpreadError> {
    let started = Instant::now();
    let record = record::read(lab)?.ok_or_else(|| SpreadError::NoRecord { lab: lab.into() })?;
    let failures = down_hosts(&record);
    if !failures.is_empty() {
        // Done on the others: a second `down` asks only these.
        let mut left = record.clone();
        left.parts = failures.iter().map(|(h, _)| h.clone()).collect();
        record::write(&left)?;
        return Err(SpreadError::Hosts { failures });
    }
    record::remove(lab)?;
    Ok(DownReport {
        lab: lab.into(),
        hosts: record.hosts.len(),
        total: started.elapsed(),
    })
}

/// Runs `nslab down` on every host of `record` at once; the hosts that
/// failed, with why.
fn down_hosts(record: &Record) -> Vec<(String, String)> {
    let hosts: Vec<_> = (record.hosts.iter())
        .filter(|(host, _)| record.parts.contains(host))
        .collect();
    let args = ["down", "--lab", &record.lab, "--quiet"].map(String::from);
    on_each(&hosts, |(name, machine)| {
        let result = ssh::run(machine, &args, None);
        match result {
            Ok(output) if output.status.success() => None,
            Ok(output) => Some(((*name).clone(), ssh::failure(&output))),
            Err(e) => Some(((*name).clone(), format!("ssh could not start: {e}"))),
        }
    })
    .into_iter()
    .flatten()
    .collect()
}
