//! `nslab inspect [LAB]`: labs, nodes and interfaces, read from the kernel.

use clap::Args;

use crate::lab::{self, LabView};

use super::{EXIT_FAILED, Outcome, failed, lab_name};

#[derive(Debug, Args)]
pub(super) struct InspectArgs {
    lab: Option<String>,
    /// Stable JSON output for scripts
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: InspectArgs) -> Outcome {
    super::need_privileges(EXIT_FAILED)?;
    // A bad name fails as a lab that is not there does (exit 1).
    let lab = args
        .lab
        .as_deref()
        .map(lab_name)
        .transpose()
        .map_err(|(_, message)| (EXIT_FAILED, message))?;
    let views = lab::inspect(lab.as_ref()).map_err(failed)?;
    if args.json {
        let text = serde_json::to_string_pretty(&views).map_err(failed)?;
        println!("{text}");
    } else {
        let spread = match args.lab.is_none() && !super::spread::here() {
            true => crate::spread::record::list().unwrap_or_default(),
            false => Vec::new(),
        };
        if !views.is_empty() || spread.is_empty() {
            print_views(&views);
        }
        print_spread_labs(&spread);
    }
    Ok(0)
}

/// The labs spread over hosts from this machine, a line each (their nodes
/// are the hosts' to show: `inspect LAB`).
fn print_spread_labs(labs: &[String]) {
    for lab in labs {
        if let Ok(Some(record)) = crate::spread::record::read(lab) {
            let hosts: Vec<&str> = record.hosts.keys().map(String::as_str).collect();
            println!(
                "lab {lab} (spread over {}: {}; nslab inspect {lab})",
                if hosts.len() == 1 { "host" } else { "hosts" },
                hosts.join(", ")
            );
        }
    }
}

pub(super) fn print_views(views: &[LabView]) {
    if views.is_empty() {
        println!("no labs");
    }
    for view in views {
        println!(
            "lab {} ({}){}",
            view.name,
            view.status,
            view.topology
                .as_deref()
                .map(|t| format!(" from {t}"))
                .unwrap_or_default()
        );
        for node in &view.nodes {
            let pid = match (node.pid, node.stopped) {
                (Some(pid), _) => pid.to_string(),
                (None, true) => "stopped".to_string(),
                (None, false) => "-".to_string(),
            };
            let host = node
                .host
                .as_deref()
                .map(|h| format!("host {h:<8} "))
                .unwrap_or_default();
            println!(
                "  {:<12} {:<6} {host}pid {:<8} hostname {:<12} netns {}  net:[{}]",
                node.name,
                node.kind,
                pid,
                node.hostname.as_deref().unwrap_or("-"),
                node.netns,
                node.namespaces
                    .get("net")
                    .map_or("-".into(), |i| i.to_string()),
            );
            if let (Some(uids), Some(gids)) = (&node.uid_map, &node.gid_map) {
                println!("      user namespace: uid map {uids}, gid map {gids}");
            }
            for iface in &node.interfaces {
                // Up without a carrier: its veth peer is down.
                let state = match (iface.up, iface.operstate.as_str()) {
                    (false, _) => "down",
                    (true, "down" | "lowerlayerdown") => "no carrier",
                    (true, _) => "up",
                };
                let mut details = vec![state.to_string()];
                if let Some(mtu) = iface.mtu {
                    details.push(format!("mtu {mtu}"));
                }
                // A cross-host link's end (its MTU less the tunnel's).
                if iface.kind.as_deref() == Some("vxlan") {
                    details.push("vxlan".into());
                }
                if let Some(peer) = &iface.peer {
                    details.push(format!("peer {peer}"));
                }
                if let Some(bridge) = &iface.bridge {
                    details.push(format!("bridge {bridge}"));
                }
                if let Some(impair) = &iface.impair {
                    details.push(format!("impair {impair}"));
                }
                println!(
                    "      {:<10} {:<40} {}",
                    iface.name,
                    iface.addresses.join(" "),
                    details.join(", ")
                );
            }
        }
    }
}

impl InspectArgs {
    /// The lab, if one is named, and `--json`.
    pub(super) fn lab(&self) -> (Option<&str>, bool) {
        (self.lab.as_deref(), self.json)
    }
}
