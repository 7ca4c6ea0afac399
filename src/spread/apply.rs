//! `apply` of a spread lab: each host's part changed to what the edited
//! file makes of it, by that host's `nslab apply --plan -`. Running nodes
//! stay on their hosts and running links between hosts keep their VNIs, so
//! that a part changes only where the file did; a host whose part is left
//! without nodes takes it down, a new host builds its own (an `apply` of a
//! lab that is not there is `up`). The record lists every host the lab
//! may be on before any is asked, so a killed `apply` leaves nothing that
//! `down` misses, and a second `apply` finishes it.

use std::time::{Duration, Instant};

use super::record::{self, Record};
use super::{SpreadError, on_each, ssh};
use crate::plan::spread::parts_keeping;
use crate::spec::Topology;

/// How `apply` goes.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Change nothing: each host lists its changes.
    pub dry_run: bool,
    /// Nodes to build again (each on its host).
    pub recreate: Vec<String>,
}

/// What `apply` did: each host with what its nslab said (its changes), or
/// that its part was taken down.
#[derive(Debug, Clone)]
pub struct ApplyReport {
    pub lab: String,
    pub hosts: Vec<(String, String)>,
    pub total: Duration,
}

/// Applies `t` (a topology with `hosts:`) to the spread lab of its name;
/// builds it (as `up`) when this machine has no record of it.
pub fn apply(t: &Topology, options: &ApplyOptions) -> Result<ApplyReport, SpreadError> {
    let started = Instant::now();
    let lock = record::lock(&t.name)?;
    let Some(running) = record::read(&t.name)? else {
        drop(lock);
        if options.dry_run {
            return Ok(ApplyReport {
                lab: t.name.clone(),
                hosts: vec![(
                    String::new(),
                    format!("lab {} is not running: apply would bring it up", t.name),
                )],
                total: started.elapsed(),
            });
        }
        let up = super::up(t, &super::UpOptions::default())?;
        return Ok(ApplyReport {
            lab: up.lab,
            hosts: (up.hosts.into_iter())
                .map(|(host, nodes, _)| (host, format!("brought up: {nodes} node(s)")))
                .collect(),
            total: started.elapsed(),
        });
    };
    let mut spread = (t.spread.clone())
        .ok_or_else(|| SpreadError::Plan(format!("lab {} has no `hosts:`", t.name)))?;
    for node in &options.recreate {
        if !t.nodes.contains_key(node) {
            return Err(SpreadError::NoNode {
                lab: t.name.clone(),
                node: node.clone(),
            });
        }
    }
    // Running nodes stay where they run, unless the file moves them.
    for (node, host) in &running.nodes {
        if t.nodes.contains_key(node) && spread.hosts.contains_key(host) {
            spread
                .pinned
                .entry(node.clone())
                .or_insert_with(|| host.clone());
        }
    }
    let (parts, tunnels) = parts_keeping(t, &spread, &running.tunnels);

    // A host that holds a part keeps its machine: another `ssh:` or
    // `underlay:` for it would leave the old machine's part behind.
    for host in &running.parts {
        if let (Some(old), Some(new)) = (running.hosts.get(host), spread.hosts.get(host))
            && old != new
        {
            return Err(SpreadError::Plan(format!(
                "hosts.{host}: its `ssh:`, `underlay:` or `nslab:` changed while it holds a part of lab {}: take the lab down and up again",
                t.name
            )));
        }
    }
    // A host new to the lab must not hold a lab of that name already.
    let new_hosts: Vec<&crate::plan::spread::Part> = parts
        .iter()
        .filter(|p| !running.parts.contains(&p.host))
        .collect();
    let refused: Vec<(String, String)> = on_each(&new_hosts, |part| {
        super::up::check_host(&t.name, &part.machine)
            .err()
            .map(|why| (part.host.clone(), why))
    })
    .into_iter()
    .flatten()
    .collect();
    if !refused.is_empty() {
        return Err(SpreadError::Refused { failures: refused });
    }

    // Every host that has a part now or may hold one: a part is changed,
    // made or taken down.
    let mut hosts = running.hosts.clone();
    for (name, machine) in &spread.hosts {
        hosts.insert(name.clone(), machine.clone());
    }
    let work: Vec<(String, Work)> = (hosts.iter())
        .filter_map(|(host, machine)| {
            let part = parts.iter().find(|p| &p.host == host);
            let work = match part {
                Some(part) => Work::Apply(Box::new(part.plan()), machine.clone()),
                None if running.parts.contains(host) => Work::Down(machine.clone()),
                None => return None,
            };
            Some((host.clone(), work))
        })
        .collect();
    // A trial first (each host's `apply --dry-run` makes every check of
    // its `apply`): a change one host refuses is made on none.
    let trial = ApplyOptions {
        dry_run: true,
        ..options.clone()
    };
    let tried = on_each(&work, |(_, work)| run(&t.name, work, &trial));
    let refused: Vec<(String, String)> = (work.iter().zip(&tried))
        .filter_map(|((host, _), r)| r.as_ref().err().map(|why| (host.clone(), why.clone())))
        .collect();
    if !refused.is_empty() {
        return Err(SpreadError::Refused { failures: refused });
    }
    if options.dry_run {
        let said = (work.iter().zip(tried))
            .map(|((host, _), r)| (host.clone(), r.unwrap_or_default()))
            .collect();
        return Ok(ApplyReport {
            lab: t.name.clone(),
            hosts: said,
            total: started.elapsed(),
        });
    }
    // Before any host is asked: every host that may hold a part.
    let mut may_hold: Vec<String> = running.parts.clone();
    may_hold.extend(
        parts
            .iter()
            .map(|p| p.host.clone())
            .filter(|h| !running.parts.contains(h)),
    );
    record::write(&Record {
        hosts: hosts.clone(),
        parts: may_hold,
        ..running.clone()
    })?;
    let results = on_each(&work, |(_, work)| run(&t.name, work, options));
    let mut failures = Vec::new();
    let mut said = Vec::new();
    for ((host, _), result) in work.iter().zip(results) {
        match result {
            Ok(text) => said.push((host.clone(), text)),
            Err(why) => failures.push((host.clone(), why)),
        }
    }
    if !failures.is_empty() {
        return Err(SpreadError::Hosts { failures });
    }
    // The hosts the lab is on now, and where each node is.
    record::write(&Record::of(t, &spread.hosts, &parts, tunnels))?;
    Ok(ApplyReport {
        lab: t.name.clone(),
        hosts: said,
        total: started.elapsed(),
    })
}

/// What one host does.
enum Work {
    Apply(Box<crate::plan::Plan>, crate::spec::Machine),
    Down(crate::spec::Machine),
}

/// Does `work`; what the host's nslab said, or why it failed.
fn run(lab: &str, work: &Work, options: &ApplyOptions) -> Result<String, String> {
    let output = match work {
        Work::Apply(plan, machine) => {
            let json = serde_json::to_vec(plan).map_err(|e| e.to_string())?;
            let mut args = vec!["apply".to_owned(), "--plan".into(), "-".into()];
            if options.dry_run {
                args.push("--dry-run".into());
            }
            let here = |node: &String| plan.nodes.iter().any(|n| n.name == *node);
            for node in options.recreate.iter().filter(|n| here(n)) {
                args.extend(["--recreate".to_owned(), node.clone()]);
            }
            ssh::run(machine, &args, Some(&json))
        }
        Work::Down(_) if options.dry_run => {
            return Ok(format!("- its part of lab {lab} (no node left there)"));
        }
        Work::Down(machine) => {
            ssh::run(machine, &["down".into(), "--lab".into(), lab.into()], None)
        }
    }
    .map_err(|e| format!("ssh could not start: {e}"))?;
    match output.status.success() {
        true => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
        false => Err(ssh::failure(&output)),
    }
}
