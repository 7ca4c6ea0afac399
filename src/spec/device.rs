//! A device: an interface of one node that is no veth pair, containerlab's
//! single-ended links. A macvlan sits on an interface of the host, a vxlan
//! tunnels through the host's network, a dummy goes nowhere. Each is made
//! in the node's net namespace and goes with it.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::Endpoint;

/// The UDP port of a vxlan when none is given: containerlab's (the IANA
/// port, 4789, is often filtered or taken by other overlays).
pub const VXLAN_PORT: u16 = 14789;

/// The largest VXLAN network identifier (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// One device, with its node's end.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// The node's interface: `node` is always a node of the lab (never the
    /// host, never a bridge).
    pub end: Endpoint,
    /// The interface's MTU; `None`: the kernel's (a macvlan takes its
    /// parent's).
    pub mtu: Option<u32>,
    pub kind: DeviceKind,
}

/// What a device is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum DeviceKind {
    /// A macvlan on the host's interface `parent`, which exists before the
    /// lab does.
    Macvlan {
        parent: String,
        mode: MacvlanMode,
    },
    /// A vxlan whose tunnel (its UDP socket, its route to `remote`) is the
    /// host's.
    Vxlan {
        remote: IpAddr,
        vni: u32,
        /// The UDP port it sends to and listens on.
        port: u16,
        /// The one UDP source port it sends from (containerlab's
        /// `src-port`); `None`: the kernel spreads flows over its range.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_port: Option<u16>,
        /// The host's interface the tunnel leaves by (containerlab's
        /// `parent-interface`); `None`: the host's routes choose.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<String>,
        /// The host's address the tunnel is sent from (a cross-host link's
        /// end: the host's underlay address); `None`: the host's routes
        /// choose.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        local: Option<IpAddr>,
    },
    Dummy,
}

impl DeviceKind {
    /// `macvlan`, `vxlan` or `dummy`: the kernel's name of the kind, and
    /// the topology key.
    pub fn name(&self) -> &'static str {
        match self {
            DeviceKind::Macvlan { .. } => "macvlan",
            DeviceKind::Vxlan { .. } => "vxlan",
            DeviceKind::Dummy => "dummy",
        }
    }

    /// The host's interface the device needs before `up`: a macvlan's
    /// parent, a vxlan's when it names one.
    pub fn parent(&self) -> Option<&str> {
        match self {
            DeviceKind::Macvlan { parent, .. } => Some(parent),
            DeviceKind::Vxlan { parent, .. } => parent.as_deref(),
            DeviceKind::Dummy => None,
        }
    }

    /// Whether the device is made from the host's namespace: its parent or
    /// its tunnel is there.
    pub fn uses_host(&self) -> bool {
        !matches!(self, DeviceKind::Dummy)
    }
}

impl std::fmt::Display for DeviceKind {
    /// `macvlan on eth0 (bridge)`, `vxlan to 192.0.2.1 vni 100 port 14789`,
    /// `dummy`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceKind::Macvlan { parent, mode } => write!(f, "macvlan on {parent} ({mode})"),
            DeviceKind::Vxlan {
                remote,
                vni,
                port,
                source_port,
                parent,
                local,
            } => {
                write!(f, "vxlan to {remote} vni {vni} port {port}")?;
                if let Some(local) = local {
                    write!(f, " from {local}")?;
                }
                if let Some(source) = source_port {
                    write!(f, " from port {source}")?;
                }
                if let Some(parent) = parent {
                    write!(f, " via {parent}")?;
                }
                Ok(())
            }
            DeviceKind::Dummy => f.write_str("dummy"),
        }
    }
}

/// How a macvlan shares its parent with the parent's other macvlans
/// (`ip link` names them the same way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacvlanMode {
    /// Macvlans of one parent reach each other directly.
    #[default]
    Bridge,
    /// Everything goes out by the parent, even to a sibling.
    Vepa,
    /// The one macvlan of its parent, which takes the parent's place.
    Passthru,
    /// Macvlans of one parent never reach each other.
    Private,
    /// Receives only frames from the MAC addresses it is given.
    Source,
}

impl MacvlanMode {
    /// Every mode, as the topology writes it.
    pub const ALL: [MacvlanMode; 5] = [
        MacvlanMode::Bridge,
        MacvlanMode::Vepa,
        MacvlanMode::Passthru,
        MacvlanMode::Private,
        MacvlanMode::Source,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            MacvlanMode::Bridge => "bridge",
            MacvlanMode::Vepa => "vepa",
            MacvlanMode::Passthru => "passthru",
            MacvlanMode::Private => "private",
            MacvlanMode::Source => "source",
        }
    }
}

impl std::str::FromStr for MacvlanMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        MacvlanMode::ALL
            .into_iter()
            .find(|m| m.as_str() == text)
            .ok_or_else(|| {
                format!("mode {text:?} is not a macvlan mode: use bridge, vepa, passthru, private or source")
            })
    }
}

impl std::fmt::Display for MacvlanMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_as_ip_link_writes_them() {
        for mode in MacvlanMode::ALL {
            assert_eq!(mode.as_str().parse::<MacvlanMode>(), Ok(mode));
        }
        let e = "passthrough"
            .parse::<MacvlanMode>()
            .expect_err("not a mode");
        assert!(
            e.contains("bridge, vepa, passthru, private or source"),
            "{e}"
        );
        assert_eq!(MacvlanMode::default(), MacvlanMode::Bridge);
    }

    #[test]
    fn kinds_say_what_they_are() {
        let vxlan = DeviceKind::Vxlan {
            remote: "192.0.2.1".parse().expect("ip"),
            vni: 100,
            port: VXLAN_PORT,
            source_port: None,
            parent: Some("eth0".into()),
            local: None,
        };
        assert_eq!(
            vxlan.to_string(),
            "vxlan to 192.0.2.1 vni 100 port 14789 via eth0"
        );
        assert_eq!(vxlan.parent(), Some("eth0"));
        let macvlan = DeviceKind::Macvlan {
            parent: "eth0".into(),
            mode: MacvlanMode::Vepa,
        };
        assert_eq!(macvlan.to_string(), "macvlan on eth0 (vepa)");
        assert!(!DeviceKind::Dummy.uses_host());
        assert_eq!(DeviceKind::Dummy.parent(), None);
        // As plan.json holds it.
        let json = serde_json::to_string(&macvlan).expect("json");
        assert_eq!(json, r#"{"type":"macvlan","parent":"eth0","mode":"vepa"}"#);
        assert_eq!(
            serde_json::from_str::<DeviceKind>(r#"{"type":"dummy"}"#).expect("json"),
            DeviceKind::Dummy
        );
    }
}
