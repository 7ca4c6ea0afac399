//! `events`: what happens in running labs, read from the kernel as it
//! happens: links going up or down, addresses and routes added or deleted,
//! impairments set or cleared, nodes started or stopped.
//!
//! Each node's net namespace has one rtnetlink socket subscribed to the
//! groups of links, addresses, routes and qdiscs (see
//! `kernel::netlink::watch`); each node's init is watched through a pidfd;
//! the labs' state is scanned twice a second for nodes that appear. The
//! [`Event`]s are sent from a thread of their own to an [`Events`]
//! iterator (or an [`EventStream`]).
//!
//! The JSON form is stable for scripts (docs/cli.md, "events"): one object
//! per event with `time`, `lab`, `node`, `kind`, `action`, `interface` and
//! a `detail` object whose fields depend on the kind.

mod time;
mod watch;

pub(crate) use watch::watch;
pub use watch::{EventStream, Events};

use std::fmt;
use std::net::IpAddr;
use std::time::SystemTime;

use ipnet::IpNet;
use serde::Serialize;
use serde_json::{Value, json};

use super::Impairment;

/// One thing that happened in a lab.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// When nslab saw it (the kernel's notifications carry no time).
    pub time: SystemTime,
    pub lab: String,
    /// The node it happened in; `None` for an event of the lab as a whole.
    pub node: Option<String>,
    pub kind: EventKind,
}

/// What happened. More kinds may come (nslab's own actions, say), and
/// more fields in each.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// An interface appeared, went away, or its operational state changed
    /// (set up or down, its carrier lost or back).
    #[non_exhaustive]
    Link {
        interface: String,
        action: LinkAction,
        /// IFF_UP: set up by an administrator (`ip link set ... up`).
        admin_up: bool,
        /// The carrier: for a veth, whether its peer is up.
        carrier: bool,
        /// The RFC 2863 operational state as `ip link` spells it in lower
        /// case: `up`, `down`, `lowerlayerdown`, `unknown`, ...
        operstate: String,
    },
    /// An address was added to an interface or deleted from it.
    #[non_exhaustive]
    Address {
        interface: String,
        action: Change,
        address: IpNet,
    },
    /// A route was added or deleted (those of the kernel's local table,
    /// which mirror the addresses, are left out).
    #[non_exhaustive]
    Route {
        action: Change,
        destination: IpNet,
        gateway: Option<IpAddr>,
        /// The output interface, when the route has one.
        interface: Option<String>,
        /// Who made it, as `ip route` spells it: `kernel`, `boot` (`ip
        /// route add`'s default), `static`, `bird`, `zebra`, ...
        protocol: String,
        /// The routing table: 254 is `main`.
        table: u32,
        /// `unicast`, `blackhole`, `unreachable`, `prohibit`, ...
        route_type: String,
    },
    /// The impairment of an interface's egress changed (its qdiscs were
    /// set, changed or removed): what it is now.
    #[non_exhaustive]
    Impairment {
        interface: String,
        impairment: Impairment,
    },
    /// A node's init started (after the stream began) or exited.
    #[non_exhaustive]
    Node { action: NodeAction, pid: i32 },
    /// The lab is gone: its nodes have stopped and its state is removed.
    /// A stream of one lab ends after it.
    LabDown,
    /// One change `nslab apply` (or `Lab::apply`) made, as `apply
    /// --dry-run` words it (`+ node r4`), or its start and end (`apply: 2
    /// change(s)`, `apply: done`).
    #[non_exhaustive]
    Apply { step: String },
}

/// What happened to a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkAction {
    /// Operationally up now: packets pass.
    Up,
    /// Not operationally up now (its state changed, and it is not up).
    Down,
    /// A new interface.
    Add,
    /// The interface is gone.
    Delete,
}

/// An address or a route added or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    Add,
    Delete,
}

/// A node's init started or exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeAction {
    Started,
    Stopped,
}

impl LinkAction {
    fn as_str(self) -> &'static str {
        match self {
            LinkAction::Up => "up",
            LinkAction::Down => "down",
            LinkAction::Add => "add",
            LinkAction::Delete => "delete",
        }
    }
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Change::Add => "add",
            Change::Delete => "delete",
        }
    }
}

impl NodeAction {
    fn as_str(self) -> &'static str {
        match self {
            NodeAction::Started => "started",
            NodeAction::Stopped => "stopped",
        }
    }
}

impl EventKind {
    /// The `kind` field of the JSON form: `link`, `address`, `route`,
    /// `impairment`, `node` or `lab`.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Link { .. } => "link",
            EventKind::Address { .. } => "address",
            EventKind::Route { .. } => "route",
            EventKind::Impairment { .. } => "impairment",
            EventKind::Node { .. } => "node",
            EventKind::LabDown | EventKind::Apply { .. } => "lab",
        }
    }

    /// The `action` field of the JSON form.
    pub fn action(&self) -> &'static str {
        match self {
            EventKind::Link { action, .. } => action.as_str(),
            EventKind::Address { action, .. } | EventKind::Route { action, .. } => action.as_str(),
            EventKind::Impairment {
                impairment: Impairment::None,
                ..
            } => "clear",
            EventKind::Impairment { .. } => "set",
            EventKind::Node { action, .. } => action.as_str(),
            EventKind::LabDown => "down",
            EventKind::Apply { .. } => "apply",
        }
    }

    /// The interface it is about, if any.
    pub fn interface(&self) -> Option<&str> {
        match self {
            EventKind::Link { interface, .. }
            | EventKind::Address { interface, .. }
            | EventKind::Impairment { interface, .. } => Some(interface),
            EventKind::Route { interface, .. } => interface.as_deref(),
            EventKind::Node { .. } | EventKind::LabDown | EventKind::Apply { .. } => None,
        }
    }

    /// The `detail` object of the JSON form.
    fn detail(&self) -> Value {
        match self {
            EventKind::Link {
                admin_up,
                carrier,
                operstate,
                ..
            } => json!({"operstate": operstate, "admin_up": admin_up, "carrier": carrier}),
            EventKind::Address { address, .. } => json!({"address": address}),
            EventKind::Route {
                destination,
                gateway,
                protocol,
                table,
                route_type,
                ..
            } => json!({
                "destination": destination,
                "gateway": gateway,
                "protocol": protocol,
                "table": table,
                "type": route_type,
            }),
            EventKind::Impairment { impairment, .. } => json!({
                "impairment": impairment,
                "text": impairment.to_string(),
            }),
            EventKind::Node { pid, .. } => json!({"pid": pid}),
            EventKind::LabDown => json!({}),
            EventKind::Apply { step } => json!({"step": step}),
        }
    }
}

/// The JSON form: `{"time", "lab", "node", "kind", "action", "interface",
/// "detail"}`, `node` and `interface` null when the event has none.
impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Line<'a> {
            time: String,
            lab: &'a str,
            node: Option<&'a str>,
            kind: &'static str,
            action: &'static str,
            interface: Option<&'a str>,
            detail: Value,
        }
        Line {
            time: time::rfc3339_millis(self.time),
            lab: &self.lab,
            node: self.node.as_deref(),
            kind: self.kind.name(),
            action: self.kind.action(),
            interface: self.kind.interface(),
            detail: self.kind.detail(),
        }
        .serialize(serializer)
    }
}

/// The text form, one line: `TIME LAB/NODE KIND ...`, e.g.
/// `2026-12-03T08:40:01.123Z lab/r1 link eth0 down (lowerlayerdown)`.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", time::rfc3339_millis(self.time), self.lab)?;
        if let Some(node) = &self.node {
            write!(f, "/{node}")?;
        }
        write!(f, " {}", self.kind.name())?;
        match &self.kind {
            EventKind::Link {
                interface,
                action,
                admin_up,
                carrier,
                operstate,
            } => {
                write!(f, " {interface} {}", action.as_str())?;
                let mut notes = Vec::new();
                if operstate != "up" {
                    notes.push(operstate.clone());
                }
                if !admin_up {
                    notes.push("admin down".into());
                } else if !carrier {
                    notes.push("no carrier".into());
                }
                if !notes.is_empty() {
                    write!(f, " ({})", notes.join(", "))?;
                }
                Ok(())
            }
            EventKind::Address {
                interface,
                action,
                address,
            } => write!(f, " {} {address} dev {interface}", action.as_str()),
            EventKind::Route {
                action,
                destination,
                gateway,
                interface,
                protocol,
                table,
                route_type,
            } => {
                write!(f, " {}", action.as_str())?;
                if route_type != "unicast" {
                    write!(f, " {route_type}")?;
                }
                write!(f, " {destination}")?;
                if let Some(gateway) = gateway {
                    write!(f, " via {gateway}")?;
                }
                if let Some(interface) = interface {
                    write!(f, " dev {interface}")?;
                }
                write!(f, " proto {protocol}")?;
                if *table != 254 {
                    write!(f, " table {table}")?;
                }
                Ok(())
            }
            EventKind::Impairment {
                interface,
                impairment,
            } => match impairment {
                Impairment::None => write!(f, " {interface} clear"),
                other => write!(f, " {interface} set {other}"),
            },
            EventKind::Node { action, pid } => write!(f, " {} (pid {pid})", action.as_str()),
            EventKind::LabDown => write!(f, " down"),
            EventKind::Apply { step } => write!(f, " apply {step}"),
        }
    }
}

#[cfg(test)]
mod tests;
