//! Verbs on a spread lab: one on a node runs on that node's host (its
//! terminal, input and output passed through ssh); one on the lab runs on
//! every host at once, for the caller to merge.

use std::process::{Command, Output};

use super::record::Record;
use super::{SpreadError, on_each, ssh};

/// The command that runs `nslab ARGS` on the host of `node`, with this
/// process's standard input, output and error; `tty` asks for a terminal.
pub fn on_node_host(
    record: &Record,
    node: &str,
    args: &[String],
    tty: bool,
) -> Result<(String, Command), SpreadError> {
    let (host, machine) = record.host_of(node).ok_or_else(|| SpreadError::NoNode {
        lab: record.lab.clone(),
        node: node.into(),
    })?;
    let command = ssh::command(machine, args, tty).map_err(|e| SpreadError::Unreachable {
        host: host.to_owned(),
        ssh: machine.ssh.clone().unwrap_or_default(),
        why: e.to_string(),
    })?;
    Ok((host.to_owned(), command))
}

/// Runs `nslab ARGS` on every host of `record` at once: each host's name
/// with its output, in the record's order (an `Err` is ssh that could not
/// start).
pub fn on_every_host(record: &Record, args: &[String]) -> Vec<(String, std::io::Result<Output>)> {
    let hosts: Vec<_> = record.hosts.iter().collect();
    on_each(&hosts, |(name, machine)| {
        ((*name).clone(), ssh::run(machine, args, None))
    })
}

/// The last lines of a host's standard error, else its exit status.
pub fn failure(output: &Output) -> String {
    ssh::failure(output)
}
