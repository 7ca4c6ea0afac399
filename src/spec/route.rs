//! A node's static route, and its grammar: `DEST [via ADDR] [dev IFACE]
//! [metric N]`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::ifname_problem;

/// A static route in a node. It is saved as the text it was written as
/// (a thousand-node lab's plan is written by every `apply`, and its routes
/// were most of it as fields); the fields are parsed again when read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The route as written, for messages.
    pub text: String,
    /// `default` is `0.0.0.0/0` or `::/0`, by the family of the gateway.
    pub destination: IpNet,
    pub gateway: Option<IpAddr>,
    /// Output interface name on the same node.
    pub device: Option<String>,
    pub metric: Option<u32>,
}

impl std::str::FromStr for Route {
    /// Says what is wrong, without repeating the route's text.
    type Err = String;

    fn from_str(text: &str) -> Result<Route, String> {
        parse_route(text)
    }
}

impl Serialize for Route {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Route {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Route, D::Error> {
        deserializer.deserialize_any(RouteVisitor)
    }
}

/// A route's text, or (in plans saved by earlier versions) its fields.
struct RouteVisitor;

/// The fields form of earlier versions.
#[derive(Deserialize)]
struct RouteFields {
    text: String,
    destination: IpNet,
    gateway: Option<IpAddr>,
    device: Option<String>,
    metric: Option<u32>,
}

impl<'de> Visitor<'de> for RouteVisitor {
    type Value = Route;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a route such as \"default via 10.0.0.1\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Route, E> {
        parse_route(text).map_err(|why| E::custom(format!("route {text:?}: {why}")))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Route, A::Error> {
        let f = RouteFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Route {
            text: f.text,
            destination: f.destination,
            gateway: f.gateway,
            device: f.device,
            metric: f.metric,
        })
    }
}

/// Parses one route. `DEST` is `default` or an address with or without
/// `/len` (a bare address is a host route); the keywords may come in any
/// order, each at most once, and at least one of `via` and `dev` is needed.
/// `default` takes its family from `via` (`default dev X` is IPv4). The
/// destination is normalised to its network. The error does not repeat the
/// route text.
fn parse_route(text: &str) -> Result<Route, String> {
    let mut tokens = text.split_whitespace();
    let Some(dest) = tokens.next() else {
        return Err("route is empty".to_owned());
    };
    let dest_net: Option<IpNet> = if dest == "default" {
        None
    } else if dest.contains('/') {
        match dest.parse::<IpNet>() {
            Ok(n) => Some(n.trunc()),
            Err(_) => return Err(format!("destination {dest:?} is not a valid prefix")),
        }
    } else {
        match dest.parse::<IpAddr>() {
            Ok(a) => Some(IpNet::from(a)),
            Err(_) => {
                return Err(format!(
                    "destination {dest:?} is not \"default\", an address or a prefix"
                ));
            }
        }
    };

    let mut gateway: Option<IpAddr> = None;
    let mut device: Option<String> = None;
    let mut metric: Option<u32> = None;
    while let Some(tok) = tokens.next() {
        match tok {
            "via" | "dev" | "metric" => {}
            other => {
                return Err(format!(
                    "unexpected {other:?} (expected via, dev or metric)"
                ));
            }
        }
        let Some(value) = tokens.next() else {
            return Err(format!("{tok:?} needs a value"));
        };
        let seen = match tok {
            "via" => gateway.is_some(),
            "dev" => device.is_some(),
            _ => metric.is_some(),
        };
        if seen {
            return Err(format!("{tok:?} is given more than once"));
        }
        match tok {
            "via" => match value.parse::<IpAddr>() {
                Ok(a) => gateway = Some(a),
                Err(_) => return Err(format!("gateway {value:?} is not an address")),
            },
            "dev" => {
                if let Some(why) = ifname_problem(value) {
                    return Err(format!("device {value:?} {why}"));
                }
                device = Some(value.to_owned());
            }
            _ => match value.parse::<u32>() {
                Ok(m) => metric = Some(m),
                Err(_) => {
                    return Err(format!(
                        "metric {value:?} is not a number from 0 to 4294967295"
                    ));
                }
            },
        }
    }
    if gateway.is_none() && device.is_none() {
        return Err("needs \"via ADDR\" or \"dev IFACE\"".to_owned());
    }
    let destination = match (dest_net, gateway) {
        (Some(net), Some(gw)) => {
            if net.addr().is_ipv4() != gw.is_ipv4() {
                return Err(format!(
                    "destination {net} is {} but gateway {gw} is {}",
                    family(net.addr()),
                    family(gw)
                ));
            }
            net
        }
        (Some(net), None) => net,
        (None, Some(IpAddr::V6(_))) => IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 0)),
        (None, _) => IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0)),
    };
    Ok(Route {
        text: text.to_owned(),
        destination,
        gateway,
        device,
        metric,
    })
}

fn family(a: IpAddr) -> &'static str {
    if a.is_ipv4() { "IPv4" } else { "IPv6" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_as_its_text_and_read_in_both_forms() {
        let route: Route = "10.1.0.0/16 via 10.0.0.1 metric 5".parse().expect("route");
        let json = serde_json::to_string(&route).expect("encode");
        assert_eq!(json, r#""10.1.0.0/16 via 10.0.0.1 metric 5""#);
        assert_eq!(serde_json::from_str::<Route>(&json).expect("decode"), route);
        // A plan saved by an earlier version, with the fields spelled out.
        let fields = r#"{"text": "10.1.0.0/16 via 10.0.0.1 metric 5", "destination": "10.1.0.0/16",
            "gateway": "10.0.0.1", "device": null, "metric": 5}"#;
        assert_eq!(
            serde_json::from_str::<Route>(fields).expect("decode"),
            route
        );
        let bad = serde_json::from_str::<Route>(r#""10.1.0.0/16""#).expect_err("no via");
        assert!(bad.to_string().contains("needs"), "{bad}");
    }

    fn net(s: &str) -> IpNet {
        s.parse().expect("test net")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test ip")
    }

    #[test]
    fn valid_routes() {
        type Row = (
            &'static str,
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
            Option<u32>,
        );
        let table: &[Row] = &[
            (
                "default via 10.0.1.1",
                "0.0.0.0/0",
                Some("10.0.1.1"),
                None,
                None,
            ),
            (
                "default via 2001:db8:1::1",
                "::/0",
                Some("2001:db8:1::1"),
                None,
                None,
            ),
            ("default dev eth0", "0.0.0.0/0", None, Some("eth0"), None),
            (
                "10.0.1.5/24 via 10.0.0.1",
                "10.0.1.0/24",
                Some("10.0.0.1"),
                None,
                None,
            ),
            ("10.9.9.9 dev eth1", "10.9.9.9/32", None, Some("eth1"), None),
            (
                "2001:db8::7 dev eth1",
                "2001:db8::7/128",
                None,
                Some("eth1"),
                None,
            ),
            (
                "2001:db8:5::9/48 via fe80::1 dev eth0",
                "2001:db8:5::/48",
                Some("fe80::1"),
                Some("eth0"),
                None,
            ),
            (
                "  192.168.0.0/16   metric 7 dev eth2 via 10.0.0.1 ",
                "192.168.0.0/16",
                Some("10.0.0.1"),
                Some("eth2"),
                Some(7),
            ),
            (
                "default metric 4294967295 via 10.0.0.1",
                "0.0.0.0/0",
                Some("10.0.0.1"),
                None,
                Some(u32::MAX),
            ),
        ];
        for (text, dest, via, dev, metric) in table {
            let r = parse_route(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.text, *text);
            assert_eq!(r.destination, net(dest), "{text}");
            assert_eq!(r.gateway, via.map(ip), "{text}");
            assert_eq!(r.device.as_deref(), *dev, "{text}");
            assert_eq!(r.metric, *metric, "{text}");
        }
    }

    #[test]
    fn invalid_routes() {
        let table: &[(&str, &str)] = &[
            ("", "route is empty"),
            ("   ", "route is empty"),
            ("default", "needs \"via ADDR\" or \"dev IFACE\""),
            ("10.0.0.0/8", "needs \"via ADDR\" or \"dev IFACE\""),
            ("10.0.0.0/8 metric 5", "needs \"via ADDR\" or \"dev IFACE\""),
            (
                "defualt via 10.0.0.1",
                "destination \"defualt\" is not \"default\", an address or a prefix",
            ),
            (
                "10.0.0.0/33 via 10.0.0.1",
                "destination \"10.0.0.0/33\" is not a valid prefix",
            ),
            ("default via", "\"via\" needs a value"),
            (
                "default via 10.0.0.300",
                "gateway \"10.0.0.300\" is not an address",
            ),
            (
                "default via 10.0.0.1/24",
                "gateway \"10.0.0.1/24\" is not an address",
            ),
            (
                "default via 10.0.0.1 via 10.0.0.2",
                "\"via\" is given more than once",
            ),
            (
                "default dev eth0 dev eth1",
                "\"dev\" is given more than once",
            ),
            (
                "default via 10.0.0.1 metric 1 metric 2",
                "\"metric\" is given more than once",
            ),
            (
                "default via 10.0.0.1 metric -1",
                "metric \"-1\" is not a number",
            ),
            (
                "default via 10.0.0.1 metric 4294967296",
                "metric \"4294967296\" is not a number",
            ),
            ("default via 10.0.0.1 onlink", "unexpected \"onlink\""),
            ("default via 10.0.0.1 proto static", "unexpected \"proto\""),
            ("default dev a/b", "device \"a/b\" may not hold"),
            (
                "default dev abcdefghijklmnop",
                "device \"abcdefghijklmnop\" is longer than 15 bytes",
            ),
            (
                "10.0.0.0/8 via 2001:db8::1",
                "destination 10.0.0.0/8 is IPv4 but gateway 2001:db8::1 is IPv6",
            ),
            (
                "2001:db8::/32 via 10.0.0.1",
                "destination 2001:db8::/32 is IPv6 but gateway 10.0.0.1 is IPv4",
            ),
        ];
        for (text, want) in table {
            match parse_route(text) {
                Ok(r) => panic!("{text:?} parsed as {r:?}"),
                Err(e) => assert!(e.contains(want), "{text:?}: got {e:?}, want {want:?}"),
            }
        }
    }
}
