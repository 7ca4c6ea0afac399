//! `up` of a spread lab: check every host, record them, then build every
//! host's part at once; a part that fails takes every part down again.

use std::time::{Duration, Instant};

use super::record::{self, Record};
use super::{SpreadError, on_each, ssh};
use crate::plan::spread::{Part, parts};
use crate::spec::{Machine, Topology};

/// How `up` goes.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Take down a spread lab of the same name first.
    pub reconfigure: bool,
}

/// What `up` built.
#[derive(Debug, Clone)]
pub struct UpReport {
    pub lab: String,
    /// Per host with nodes: its name, its node count, how long its part
    /// took (ssh included).
    pub hosts: Vec<(String, usize, Duration)>,
    /// The cross-host links (VXLAN pairs).
    pub tunnels: usize,
    pub total: Duration,
}

/// Builds the spread lab `t` (a topology with `hosts:`) from the file at
/// `source`.
pub fn up(t: &Topology, options: &UpOptions) -> Result<UpReport, SpreadError> {
    let lock = record::lock(&t.name)?;
    let result = up_locked(t, options);
    // Refused before the record was written (or rolled back whole):
    // nothing of the lab stays on this machine, its lock file neither.
    if result.is_err() && matches!(record::read(&t.name), Ok(None)) {
        let _ = record::remove(&t.name);
    }
    drop(lock);
    result
}

fn up_locked(t: &Topology, options: &UpOptions) -> Result<UpReport, SpreadError> {
    let started = Instant::now();
    let spread = (t.spread.as_ref())
        .ok_or_else(|| SpreadError::Plan(format!("lab {} has no `hosts:`", t.name)))?;
    let (parts, tunnels) = parts(t, spread);
    if record::read(&t.name)?.is_some() {
        if !options.reconfigure {
            return Err(SpreadError::Exists {
                lab: t.name.clone(),
                on: None,
            });
        }
        super::down::down_locked(&t.name)?;
    }
    // Every host answers, with this nslab and without the lab, before
    // anything is built on any.
    let hosts: Vec<(&String, &Machine)> = spread.hosts.iter().collect();
    let failures: Vec<(String, String)> = on_each(&hosts, |(name, machine)| {
        check_host(&t.name, machine)
            .err()
            .map(|why| ((*name).clone(), why))
    })
    .into_iter()
    .flatten()
    .collect();
    if let Some(exists) = failures.iter().find(|(_, why)| why == LAB_EXISTS) {
        return Err(SpreadError::Exists {
            lab: t.name.clone(),
            on: Some(exists.0.clone()),
        });
    }
    if let Some((host, why)) = failures.into_iter().next() {
        return Err(SpreadError::Unreachable {
            ssh: spread.hosts[&host].ssh.clone().unwrap_or_default(),
            host,
            why,
        });
    }

    record::write(&Record::of(t, &spread.hosts, &parts, tunnels.clone()))?;

    let results = on_each(&parts, build_part);
    let failures: Vec<(String, String)> = (parts.iter().zip(&results))
        .filter_map(|(p, r)| {
            r.as_ref()
                .err()
                .map(|(why, _)| (p.host.clone(), why.clone()))
        })
        .collect();
    if !failures.is_empty() {
        // What was built comes down again, on the hosts that may hold
        // some of it; the record stays if one could not be cleaned, for
        // `down` to finish.
        let built: Vec<String> = (parts.iter().zip(&results))
            .filter(|(_, r)| r.as_ref().map_or_else(|(_, maybe)| *maybe, |_| true))
            .map(|(p, _)| p.host.clone())
            .collect();
        let mut record = record::read(&t.name)?.ok_or_else(|| SpreadError::NoRecord {
            lab: t.name.clone(),
        })?;
        record.parts = built;
        record::write(&record)?;
        let cleanup = super::down::down_locked(&t.name);
        let mut failures = failures;
        if let Err(SpreadError::Hosts { failures: more }) = cleanup {
            failures.extend(
                more.into_iter()
                    .map(|(h, why)| (h, format!("taking its part down again: {why}"))),
            );
        }
        return Err(SpreadError::Hosts { failures });
    }
    Ok(UpReport {
        lab: t.name.clone(),
        hosts: (parts.iter().zip(results))
            .map(|(p, r)| {
                (
                    p.host.clone(),
                    p.topology.nodes.len(),
                    r.unwrap_or_default(),
                )
            })
            .collect(),
        tunnels: tunnels.len(),
        total: started.elapsed(),
    })
}

/// What `check_host` says when the host has the lab already.
const LAB_EXISTS: &str = "it has a lab of that name";

/// Fails, saying why, unless `machine` answers over ssh with this version
/// of nslab and has no lab `lab`.
pub(super) fn check_host(lab: &str, machine: &Machine) -> Result<(), String> {
    if machine.ssh.is_none() {
        return Err("its `hosts:` entry has no `ssh:` (`nslab split` writes the parts of hosts reached some other way)".into());
    }
    let ours = format!("nslab {}", env!("CARGO_PKG_VERSION"));
    let output = ssh::run(machine, &["--version".into()], None)
        .map_err(|e| format!("ssh could not start: {e}"))?;
    match output.status.code() {
        Some(0) => {}
        Some(127) => {
            return Err(format!(
                "no nslab at {:?} there ({})",
                machine.nslab,
                ssh::failure(&output)
            ));
        }
        _ => return Err(ssh::failure(&output)),
    }
    let theirs = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if theirs != ours {
        return Err(format!(
            "it runs {theirs:?}, this machine {ours:?}: the same version is needed everywhere"
        ));
    }
    let output = ssh::run(
        machine,
        &["inspect".into(), lab.into(), "--json".into()],
        None,
    )
    .map_err(|e| format!("ssh could not start: {e}"))?;
    // Absent only when nslab says so: any other failure may hide a lab.
    let absent = format!("no lab {lab} ");
    match output.status.code() {
        Some(0) => Err(LAB_EXISTS.into()),
        Some(1) if String::from_utf8_lossy(&output.stderr).contains(&absent) => Ok(()),
        _ => Err(format!(
            "cannot tell whether it has a lab {lab}: {}",
            ssh::failure(&output)
        )),
    }
}

/// Builds one host's part there; how long it took, or why it failed and
/// whether the host may hold some of it: its nslab's own failure is rolled
/// back there; ssh's (255), a signal, may have cut it off midway.
fn build_part(part: &Part) -> Result<Duration, (String, bool)> {
    let started = Instant::now();
    let json = serde_json::to_vec(&part.plan()).map_err(|e| (e.to_string(), false))?;
    let args = ["up", "--plan", "-", "--quiet"].map(String::from);
    let output = ssh::run(&part.machine, &args, Some(&json))
        .map_err(|e| (format!("ssh could not start: {e}"), false))?;
    crate::lab::fault::step();
    match output.status.code() {
        Some(0) => Ok(started.elapsed()),
        Some(1 | 2) => Err((ssh::failure(&output), false)),
        _ => Err((ssh::failure(&output), true)),
    }
}
