//! The management network (`mgmt:`): a bridge node of the lab with every
//! node's `eth0` on it, and one interface of the host's on it carrying the
//! gateway addresses, so that the host reaches every node, as
//! containerlab's management network does. Its links are ordinary links of
//! the lab; what is here is what only the management network has.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::Protocol;

/// The name of the management network's bridge node (also containerlab's
/// name for its end in links: `mgmt-net:IFACE`).
pub const MGMT_BRIDGE: &str = "mgmt-net";

/// Every node's interface on the management network.
pub const MGMT_IFACE: &str = "eth0";

/// A lab's management network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mgmt {
    /// The host's interface on the bridge, named after the lab.
    pub host_iface: String,
    /// The host's IPv4 address on it, with the subnet's prefix length
    /// (the nodes' gateway: `172.20.20.1/24` by default).
    pub ipv4: Option<IpNet>,
    /// The same for IPv6.
    pub ipv6: Option<IpNet>,
    /// Ports of the host forwarded to nodes, in file order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortForward>,
}

/// One port of the host forwarded to a node over the management network
/// (containerlab's `ports:`, Docker's `-p`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortForward {
    /// The node it reaches.
    pub node: String,
    /// The host's address and port it listens on (the unspecified address:
    /// every address of the host).
    pub listen: SocketAddr,
    /// The node's management address and port it connects to.
    pub to: SocketAddr,
    pub protocol: Protocol,
}

impl fmt::Display for PortForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {} ({}:{}/{})",
            self.listen,
            self.to,
            self.node,
            self.to.port(),
            self.protocol
        )
    }
}

/// One entry of `ports:` as Docker writes it: `[HOST_IP:]HOST_PORT:PORT[/PROTO]`
/// (an IPv6 host address in brackets), protocol `tcp` by default. Returns
/// the listening address and the node's port.
pub fn parse_port_forward(text: &str) -> Result<(SocketAddr, u16, Protocol), String> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((spec, "tcp")) => (spec, Protocol::Tcp),
        Some((spec, "udp")) => (spec, Protocol::Udp),
        Some((_, other)) => {
            return Err(format!(
                "port {text:?}: protocol {other:?} is not tcp or udp"
            ));
        }
        None => (text, Protocol::Tcp),
    };
    let (host, node_port) = spec.rsplit_once(':').ok_or_else(|| {
        format!("port {text:?} needs the host's port too: HOST_PORT:PORT, as in 8080:80")
    })?;
    let (ip, host_port) = match host.rsplit_once(':') {
        Some((ip, port)) => {
            let ip = ip
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .unwrap_or(ip);
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| format!("port {text:?}: {ip:?} is not an IP address"))?;
            (ip, port)
        }
        None => (IpAddr::from([0u8; 16]), host),
    };
    let number = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ if p.contains('-') => Err(format!(
            "port {text:?}: ranges of ports are not taken; give one entry per port"
        )),
        _ => Err(format!(
            "port {text:?}: {p:?} is not a port number (1 to 65535)"
        )),
    };
    Ok((
        SocketAddr::new(ip, number(host_port)?),
        number(node_port)?,
        protocol,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_as_docker_writes_them() {
        let any = IpAddr::from([0u8; 16]);
        assert_eq!(
            parse_port_forward("8080:80"),
            Ok((SocketAddr::new(any, 8080), 80, Protocol::Tcp))
        );
        assert_eq!(
            parse_port_forward("127.0.0.1:5353:53/udp"),
            Ok(("127.0.0.1:5353".parse().unwrap(), 53, Protocol::Udp))
        );
        assert_eq!(
            parse_port_forward("[::1]:2222:22/tcp"),
            Ok(("[::1]:2222".parse().unwrap(), 22, Protocol::Tcp))
        );
        for bad in [
            "80",
            "8080:80/sctp",
            "x:80",
            "0:80",
            "8000-8001:80-81",
            "1.2.3:80:80",
        ] {
            assert!(parse_port_forward(bad).is_err(), "{bad}");
        }
    }
}
