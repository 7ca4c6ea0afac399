//! `nslab node stop|start|restart LAB/NODE`: a node powered off and on in
//! a running lab, its links and the other nodes untouched.

use clap::{Args, Subcommand};

use crate::lab::{self, NodeChange};
use crate::spec::NodeRef;

use super::{EXIT_FAILED, EXIT_INVALID, Outcome};

#[derive(Debug, Args)]
pub(super) struct NodeArgs {
    #[command(subcommand)]
    action: NodeAction,
}

#[derive(Debug, Subcommand)]
enum NodeAction {
    /// End every process of the node; keep its net namespace and links,
    /// set down (its peers lose carrier)
    Stop(Target),
    /// Start a stopped node again: a new init in its kept net namespace,
    /// its addresses, routes, sysctls and exec steps as `up` makes them
    Start(Target),
    /// Stop, then start
    Restart(Target),
}

#[derive(Debug, Args)]
struct Target {
    /// LAB/NODE, or NODE when one lab has it
    target: String,
}

pub(super) fn run(args: NodeArgs) -> Outcome {
    let (Target { target }, verb) = match &args.action {
        NodeAction::Stop(t) => (t, "stopped"),
        NodeAction::Start(t) => (t, "started"),
        NodeAction::Restart(t) => (t, "restarted"),
    };
    let node: NodeRef = target.parse().map_err(|e| (EXIT_INVALID, format!("{e}")))?;
    super::need_privileges(EXIT_FAILED)?;
    let change = match args.action {
        NodeAction::Stop(_) => lab::stop_node(&node),
        NodeAction::Start(_) => lab::start_node(&node, None),
        NodeAction::Restart(_) => lab::restart_node(&node, None),
    }
    .map_err(super::lab_failure)?;
    print_change(verb, &change);
    Ok(0)
}

fn print_change(verb: &str, change: &NodeChange) {
    let what = match verb {
        "stopped" => format!(
            "init {} ended, {} interface(s) down",
            change.pid, change.interfaces
        ),
        _ => format!("init {}, {} interface(s) up", change.pid, change.interfaces),
    };
    println!("{}/{} {verb}: {what}", change.lab, change.node);
}

impl NodeArgs {
    /// The target as given (`LAB/NODE`).
    pub(super) fn target(&self) -> &str {
        match &self.action {
            NodeAction::Stop(t) | NodeAction::Start(t) | NodeAction::Restart(t) => &t.target,
        }
    }
}
