//! The text and JSON forms of events.

use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::spec::Impair;

fn at(kind: EventKind) -> Event {
    Event {
        time: UNIX_EPOCH + Duration::from_millis(1_796_287_201_123),
        lab: "lab".into(),
        node: Some("r1".into()),
        kind,
    }
}

fn link(action: LinkAction, admin_up: bool, carrier: bool, operstate: &str) -> Event {
    at(EventKind::Link {
        interface: "eth0".into(),
        action,
        admin_up,
        carrier,
        operstate: operstate.into(),
    })
}

fn route() -> Event {
    at(EventKind::Route {
        action: Change::Add,
        destination: "10.3.0.0/24".parse().expect("net"),
        gateway: Some("10.0.12.2".parse().expect("ip")),
        interface: Some("eth0".into()),
        protocol: "bird".into(),
        table: 254,
        route_type: "unicast".into(),
    })
}

#[test]
fn renders_one_line_per_event() {
    let t = "2026-12-03T08:40:01.123Z";
    let cases = [
        (
            link(LinkAction::Down, true, false, "lowerlayerdown"),
            "lab/r1 link eth0 down (lowerlayerdown, no carrier)",
        ),
        (
            link(LinkAction::Down, false, false, "down"),
            "lab/r1 link eth0 down (down, admin down)",
        ),
        (
            link(LinkAction::Up, true, true, "up"),
            "lab/r1 link eth0 up",
        ),
        (
            route(),
            "lab/r1 route add 10.3.0.0/24 via 10.0.12.2 dev eth0 proto bird",
        ),
        (
            at(EventKind::Address {
                interface: "eth0".into(),
                action: Change::Delete,
                address: "10.0.0.1/24".parse().expect("net"),
            }),
            "lab/r1 address delete 10.0.0.1/24 dev eth0",
        ),
        (
            at(EventKind::Route {
                action: Change::Delete,
                destination: "10.9.0.0/16".parse().expect("net"),
                gateway: None,
                interface: None,
                protocol: "static".into(),
                table: 100,
                route_type: "blackhole".into(),
            }),
            "lab/r1 route delete blackhole 10.9.0.0/16 proto static table 100",
        ),
        (
            at(EventKind::Impairment {
                interface: "eth0".into(),
                impairment: Impairment::None,
            }),
            "lab/r1 impairment eth0 clear",
        ),
        (
            at(EventKind::Node {
                action: NodeAction::Stopped,
                pid: 42,
            }),
            "lab/r1 node stopped (pid 42)",
        ),
    ];
    for (event, text) in cases {
        assert_eq!(event.to_string(), format!("{t} {text}"));
    }
    let down = Event {
        node: None,
        ..at(EventKind::LabDown)
    };
    assert_eq!(down.to_string(), format!("{t} lab lab down"));
}

#[test]
fn the_json_has_the_documented_fields() {
    let value = serde_json::to_value(route()).expect("json");
    assert_eq!(
        value,
        serde_json::json!({
            "time": "2026-12-03T08:40:01.123Z",
            "lab": "lab",
            "node": "r1",
            "kind": "route",
            "action": "add",
            "interface": "eth0",
            "detail": {
                "destination": "10.3.0.0/24",
                "gateway": "10.0.12.2",
                "protocol": "bird",
                "table": 254,
                "type": "unicast",
            },
        })
    );
    let value =
        serde_json::to_value(link(LinkAction::Down, true, false, "lowerlayerdown")).expect("json");
    assert_eq!(value["kind"], "link");
    assert_eq!(value["action"], "down");
    assert_eq!(
        value["detail"],
        serde_json::json!({"operstate": "lowerlayerdown", "admin_up": true, "carrier": false})
    );
    let rate = Impair {
        rate_bits: Some(10_000_000),
        ..Impair::default()
    };
    let value = serde_json::to_value(at(EventKind::Impairment {
        interface: "eth0".into(),
        impairment: Impairment::Set(rate),
    }))
    .expect("json");
    assert_eq!(value["action"], "set");
    assert_eq!(value["detail"]["impairment"]["state"], "set");
    assert_eq!(
        value["detail"]["impairment"]["impair"]["rate_bits"],
        10_000_000
    );
    assert_eq!(value["detail"]["text"], "rate 10mbit");
    let node = serde_json::to_value(at(EventKind::Node {
        action: NodeAction::Started,
        pid: 7,
    }))
    .expect("json");
    assert_eq!(node["interface"], serde_json::Value::Null);
    assert_eq!(node["detail"], serde_json::json!({"pid": 7}));
    let down = serde_json::to_value(Event {
        node: None,
        ..at(EventKind::LabDown)
    })
    .expect("json");
    assert_eq!(down["node"], serde_json::Value::Null);
    assert_eq!(down["kind"], "lab");
    assert_eq!(down["action"], "down");
}
