//! Reachability expectations (`expect:` in the topology), checked by
//! `nslab check` against the running lab.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One expectation: from a node, to some addresses, optionally a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expect {
    /// The node the probes are sent from (a node, never a bridge).
    pub from: String,
    pub to: ExpectTarget,
    /// A TCP or UDP port instead of an ICMP echo.
    pub port: Option<Port>,
    /// `true`: every address of the target must be reached; `false`: none
    /// may be.
    pub reach: bool,
}

/// What an expectation probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectTarget {
    /// Every address of a node.
    Node(String),
    /// Every address of one interface of a node.
    Interface { node: String, iface: String },
    /// One address, in the lab or not.
    Address(IpAddr),
}

impl fmt::Display for ExpectTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectTarget::Node(node) => f.write_str(node),
            ExpectTarget::Interface { node, iface } => write!(f, "{node}:{iface}"),
            ExpectTarget::Address(address) => write!(f, "{address}"),
        }
    }
}

/// A transport protocol of a port expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// `80/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Port {
    pub number: u16,
    pub protocol: Protocol,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.number, self.protocol)
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.from, self.to)?;
        if let Some(port) = self.port {
            write!(f, " port {port}")?;
        }
        if !self.reach {
            f.write_str(" (must not reach)")?;
        }
        Ok(())
    }
}

/// Parses `PORT/PROTO` (`80/tcp`, `53/udp`).
pub(crate) fn parse_port(s: &str) -> Result<Port, String> {
    let Some((number, protocol)) = s.split_once('/') else {
        return Err(format!(
            "port {s:?} needs a protocol: write it as {s}/tcp or {s}/udp"
        ));
    };
    let protocol = match protocol {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        other => {
            return Err(format!("port {s:?}: protocol {other:?} is not tcp or udp"));
        }
    };
    match number.parse::<u16>() {
        Ok(n) if n > 0 && number.bytes().all(|b| b.is_ascii_digit()) => Ok(Port {
            number: n,
            protocol,
        }),
        _ => Err(format!(
            "port {s:?}: {number:?} is not a port number (1 to 65535)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse() {
        assert_eq!(
            parse_port("80/tcp"),
            Ok(Port {
                number: 80,
                protocol: Protocol::Tcp
            })
        );
        assert_eq!(
            parse_port("65535/udp"),
            Ok(Port {
                number: 65535,
                protocol: Protocol::Udp
            })
        );
        for (s, want) in [
            ("80", "needs a protocol"),
            ("80/sctp", "protocol \"sctp\" is not tcp or udp"),
            ("0/tcp", "is not a port number"),
            ("65536/tcp", "is not a port number"),
            ("+80/tcp", "is not a port number"),
            ("/tcp", "is not a port number"),
            ("80/TCP", "is not tcp or udp"),
        ] {
            let e = parse_port(s).expect_err(s);
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn expectations_display_as_written() {
        let e = Expect {
            from: "h1".into(),
            to: ExpectTarget::Interface {
                node: "h2".into(),
                iface: "eth0".into(),
            },
            port: Some(Port {
                number: 53,
                protocol: Protocol::Udp,
            }),
            reach: false,
        };
        assert_eq!(e.to_string(), "h1 -> h2:eth0 port 53/udp (must not reach)");
        let e = Expect {
            from: "h1".into(),
            to: ExpectTarget::Address("2001:db8::1".parse().expect("ip")),
            port: None,
            reach: true,
        };
        assert_eq!(e.to_string(), "h1 -> 2001:db8::1");
    }
}
