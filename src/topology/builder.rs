//! A topology built in code. The builder fills in the same raw shapes a
//! file is parsed into and hands them to the same validation, so a lab built
//! in code obeys exactly the rules of a topology file and its problems carry
//! the same key paths.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use super::model::{
    EndpointModel, ExpectModel, FileModel, ImpairFields, ImpairModel, LinkModel, Measure,
    NodeModel, Scalar, Seq, StepModel, Text, TopologyModel, UMap,
};
use super::{Problem, Topology, TopologyError, validate};
use crate::spec::StepAction;

/// Builds a [`Topology`] in code; start with [`Topology::builder`].
///
/// Node settings name their node, which must have been added first with
/// [`node`](Self::node) or [`bridge`](Self::bridge). Link settings
/// ([`ipv4`](Self::ipv4), [`ipv6`](Self::ipv6), [`mtu`](Self::mtu),
/// [`mac`](Self::mac), [`impair`](Self::impair), [`state`](Self::state)) apply to the link added
/// last. Expectations ([`expect_reach`](Self::expect_reach) and its
/// siblings) are the `expect:` entries `nslab check` tests.
///
/// ```
/// use nslab::spec::Topology;
///
/// let topology = Topology::builder("pair")
///     .node("h1")
///     .node("h2")
///     .link(["h1:eth0", "h2:eth0"])
///     .ipv4(["10.0.0.1/30", "10.0.0.2/30"])
///     .build()
///     .expect("a valid topology");
/// assert_eq!(topology.links.len(), 1);
/// ```
#[derive(Debug)]
pub struct TopologyBuilder {
    name: String,
    nodes: UMap<Option<NodeModel>>,
    links: Vec<LinkModel>,
    expect: Vec<ExpectModel>,
    scenario: Vec<StepModel>,
    /// Misuses of the builder itself (a setting for a node never added),
    /// reported with validation's problems.
    problems: Vec<Problem>,
}

impl Topology {
    /// Starts a topology named `name` built in code (see [`TopologyBuilder`]).
    pub fn builder(name: impl Into<String>) -> TopologyBuilder {
        TopologyBuilder {
            name: name.into(),
            nodes: UMap::default(),
            links: Vec::new(),
            expect: Vec::new(),
            scenario: Vec::new(),
            problems: Vec::new(),
        }
    }
}

fn text(s: impl Into<String>) -> Text {
    Text(s.into())
}

/// Inserts as the parser does: a second entry with the same key is kept
/// aside as a duplicate, for validation to report.
fn insert<V>(map: &mut UMap<V>, key: String, value: V) {
    if map.entries.contains_key(&key) {
        if !map.duplicates.contains(&key) {
            map.duplicates.push(key);
        }
    } else {
        map.entries.insert(key, value);
    }
}

impl TopologyBuilder {
    /// Adds a node (`kind: node`).
    pub fn node(mut self, name: impl Into<String>) -> Self {
        insert(&mut self.nodes, name.into(), Some(NodeModel::default()));
        self
    }

    /// Adds a bridge node (`kind: bridge`).
    pub fn bridge(mut self, name: impl Into<String>) -> Self {
        let model = NodeModel {
            kind: Some(text("bridge")),
            ..NodeModel::default()
        };
        insert(&mut self.nodes, name.into(), Some(model));
        self
    }

    /// The node's hostname (default: its name).
    pub fn hostname(self, node: &str, hostname: impl Into<String>) -> Self {
        self.with_node(node, "hostname", |m| m.hostname = Some(text(hostname)))
    }

    /// One sysctl of the node, e.g. `("net.ipv4.ip_forward", 1)`.
    pub fn sysctl(self, node: &str, key: impl Into<String>, value: impl Display) -> Self {
        self.with_node(node, "sysctls", |m| {
            let map = m.sysctls.get_or_insert_with(UMap::default);
            insert(map, key.into(), Scalar::Str(value.to_string()));
        })
    }

    /// One route of the node, in iproute2 syntax (`default via 10.0.0.1`).
    pub fn route(self, node: &str, route: impl Into<String>) -> Self {
        self.with_node(node, "routes", |m| {
            m.routes
                .get_or_insert_with(Seq::default)
                .0
                .push(text(route))
        })
    }

    /// One bind mount, `host_path:node_path[:ro|:rw]`; a relative host path
    /// is taken from the working directory at [`build`](Self::build).
    pub fn bind(self, node: &str, bind: impl Into<String>) -> Self {
        self.with_node(node, "binds", |m| {
            m.binds.get_or_insert_with(Seq::default).0.push(text(bind))
        })
    }

    /// The node's tmpfs paths, replacing the default `[/tmp, /run]`.
    pub fn tmpfs<S: Into<String>>(self, node: &str, paths: impl IntoIterator<Item = S>) -> Self {
        self.with_node(node, "tmpfs", |m| {
            m.tmpfs = Some(Seq(paths.into_iter().map(text).collect()))
        })
    }

    /// The node's CPU share (`0.5`: half of one CPU), as the `cpus` key.
    pub fn cpus(self, node: &str, cpus: f64) -> Self {
        self.with_node(node, "cpus", |m| m.cpus = Some(Measure(cpus.to_string())))
    }

    /// The CPUs the node may run on (`"0-1"`), as the `cpuset` key.
    pub fn cpuset(self, node: &str, cpus: impl Into<String>) -> Self {
        self.with_node(node, "cpuset", |m| {
            m.cpuset = Some(Scalar::Str(cpus.into()))
        })
    }

    /// The node's memory limit (`"256M"`), as the `memory` key.
    pub fn memory(self, node: &str, memory: impl Into<String>) -> Self {
        self.with_node(node, "memory", |m| m.memory = Some(Measure(memory.into())))
    }

    /// The most processes the node holds at once, as the `pids` key.
    pub fn pids(self, node: &str, pids: u64) -> Self {
        self.with_node(node, "pids", |m| m.pids = Some(Scalar::Int(pids.into())))
    }

    /// A user namespace of the node's own (`userns: true`): its root is an
    /// unprivileged host id.
    pub fn userns(self, node: &str, userns: bool) -> Self {
        self.with_node(node, "userns", |m| m.userns = Some(Scalar::Bool(userns)))
    }

    /// One node whose `exec` steps all run before this node's (the
    /// `wait-for` key).
    pub fn wait_for(self, node: &str, other: impl Into<String>) -> Self {
        self.with_node(node, "wait-for", |m| {
            m.wait_for
                .get_or_insert_with(Seq::default)
                .0
                .push(text(other))
        })
    }

    /// Seconds after the first `exec` step of the lab before this node's
    /// may start (the `startup-delay` key).
    pub fn startup_delay(self, node: &str, seconds: u32) -> Self {
        self.with_node(node, "startup-delay", |m| {
            m.startup_delay = Some(Scalar::Int(seconds.into()))
        })
    }

    /// One environment variable of the node's commands.
    pub fn env(self, node: &str, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.with_node(node, "env", |m| {
            let map = m.env.get_or_insert_with(UMap::default);
            insert(map, key.into(), Scalar::Str(value.into()));
        })
    }

    /// One command run in the node through `/bin/sh -c` after all wiring.
    pub fn exec(self, node: &str, command: impl Into<String>) -> Self {
        self.with_node(node, "exec", |m| {
            m.exec
                .get_or_insert_with(Seq::default)
                .0
                .push(text(command))
        })
    }

    /// Adds a link between two `node:iface` endpoints.
    pub fn link<S: Into<String>>(mut self, endpoints: [S; 2]) -> Self {
        self.links.push(LinkModel {
            endpoints: Seq(endpoints
                .into_iter()
                .map(|e| EndpointModel::Text(text(e)))
                .collect()),
            kind: None,
            endpoint: None,
            host_interface: None,
            vars: None,
            labels: None,
            remote: None,
            vni: None,
            dst_port: None,
            udp_port: None,
            src_port: None,
            parent_interface: None,
            mode: None,
            macvlan: None,
            vxlan: None,
            dummy: None,
            device_keys: None,
            ipv4: None,
            ipv6: None,
            mtu: None,
            mac: None,
            impair: None,
            state: None,
        });
        self
    }

    /// IPv4 addresses (`ADDR/PREFIX`) of the last link's two ends, in
    /// endpoint order; `None` for an end without one.
    pub fn ipv4<'a>(self, addresses: [impl Into<Option<&'a str>>; 2]) -> Self {
        let list = per_end(addresses);
        self.with_link("ipv4", |l| l.ipv4 = Some(list))
    }

    /// IPv6 addresses of the last link's two ends, as [`ipv4`](Self::ipv4).
    pub fn ipv6<'a>(self, addresses: [impl Into<Option<&'a str>>; 2]) -> Self {
        let list = per_end(addresses);
        self.with_link("ipv6", |l| l.ipv6 = Some(list))
    }

    /// The MTU of both ends of the last link.
    pub fn mtu(self, mtu: u32) -> Self {
        self.with_link("mtu", |l| l.mtu = Some(i64::from(mtu)))
    }

    /// MACs (`aa:bb:cc:dd:ee:ff`) of the last link's two ends, `None` for a
    /// random one.
    pub fn mac<'a>(self, macs: [impl Into<Option<&'a str>>; 2]) -> Self {
        let list = per_end(macs);
        self.with_link("mac", |l| l.mac = Some(list))
    }

    /// The administrative state (`"up"` or `"down"`) of the last link's two
    /// ends, `None` for up: a down end is set down at the end of `up`, and
    /// its peer sees no carrier.
    pub fn state<'a>(self, states: [impl Into<Option<&'a str>>; 2]) -> Self {
        let list = per_end(states);
        self.with_link("state", |l| l.state = Some(list))
    }

    /// Impairs both ends of the last link with the settings of a file's
    /// `impair:`, e.g. `[("delay", "20ms"), ("loss", "1%"), ("rate", "10mbit")]`
    /// (keys: delay, jitter, loss, rate, corrupt, duplicate).
    pub fn impair<'a>(mut self, settings: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let fields = self.impair_fields(settings);
        self.with_link("impair", |l| l.impair = Some(ImpairModel::Both(fields)))
    }

    /// Impairs one end of the last link (0 or 1, in endpoint order), as
    /// [`impair`](Self::impair) does both; each end is set on its own.
    pub fn impair_end<'a>(
        mut self,
        end: usize,
        settings: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let fields = self.impair_fields(settings);
        if end > 1 {
            self.problems.push(Problem::new(
                "topology.links.impair",
                format!("impair_end({end}): a link has ends 0 and 1"),
            ));
            return self;
        }
        self.with_link("impair", |l| {
            let mut ends = match l.impair.take() {
                Some(ImpairModel::Each(Seq(ends))) => ends,
                Some(ImpairModel::Both(both)) => vec![Some(both.clone()), Some(both)],
                None => Vec::new(),
            };
            ends.resize_with(2, || None);
            ends[end] = Some(fields);
            l.impair = Some(ImpairModel::Each(Seq(ends)));
        })
    }

    /// Expects `from` (a node) to reach `to`: a node (each of its
    /// addresses), `node:iface`, or an address.
    pub fn expect_reach(self, from: &str, to: &str) -> Self {
        self.expectation(from, to, None, None)
    }

    /// Expects `from` to connect to `port` (`80/tcp`, `53/udp`) on `to`.
    pub fn expect_port(self, from: &str, to: &str, port: &str) -> Self {
        self.expectation(from, to, Some(port), None)
    }

    /// Expects `from` *not* to reach `to` (on `port`, when given): a
    /// firewall or a missing route under test.
    pub fn expect_blocked(self, from: &str, to: &str, port: Option<&str>) -> Self {
        self.expectation(from, to, port, Some(false))
    }

    /// Adds a `scenario:` step at `at` from the start of `nslab
    /// run-scenario`: steps are checked as the file's are, in the order
    /// they are added.
    ///
    /// ```
    /// use std::time::Duration;
    /// use nslab::spec::{LinkState, NodeAction, StepAction, Topology};
    ///
    /// let topology = Topology::builder("pair")
    ///     .node("h1")
    ///     .node("h2")
    ///     .link(["h1:eth0", "h2:eth0"])
    ///     .ipv4(["10.0.0.1/30", "10.0.0.2/30"])
    ///     .expect_reach("h1", "h2")
    ///     .scenario_step(Duration::ZERO, StepAction::Check)
    ///     .scenario_step(
    ///         Duration::from_millis(500),
    ///         StepAction::Link { node: "h2".into(), iface: "eth0".into(), state: LinkState::Down },
    ///     )
    ///     .scenario_step(
    ///         Duration::from_secs(1),
    ///         StepAction::Node { node: "h2".into(), action: NodeAction::Restart },
    ///     )
    ///     .build()
    ///     .expect("a valid topology");
    /// assert_eq!(topology.scenario.steps.len(), 3);
    /// ```
    pub fn scenario_step(mut self, at: std::time::Duration, action: StepAction) -> Self {
        let mut step = StepModel {
            at: Some(Measure(format!("{}us", at.as_micros()))),
            ..StepModel::default()
        };
        match action {
            StepAction::Link { node, iface, state } => {
                step.link = Some(text(format!("{node}:{iface}")));
                step.state = Some(text(state.to_string()));
            }
            StepAction::Node { node, action } => {
                step.node = Some(text(node));
                step.action = Some(text(action.to_string()));
            }
            StepAction::Check => step.check = Some(true),
        }
        self.scenario.push(step);
        self
    }

    /// Validates what was built, with every rule of a topology file,
    /// reporting all problems at once.
    pub fn build(self) -> Result<Topology, TopologyError> {
        let origin = PathBuf::from(format!("{} (built in code)", self.name));
        let model = FileModel {
            name: text(self.name),
            prefix: None,
            mgmt: None,
            topology: Some(TopologyModel {
                defaults: None,
                kinds: None,
                groups: None,
                nodes: Some(self.nodes),
                links: Some(Seq(self.links)),
            }),
            expect: (!self.expect.is_empty()).then_some(Seq(self.expect)),
            scenario: (!self.scenario.is_empty()).then_some(Seq(self.scenario)),
            hosts: None,
            vxlan: None,
        };
        let mut problems = self.problems;
        match validate::validate(model, &origin, Path::new(".")) {
            Ok(topology) if problems.is_empty() => Ok(topology),
            Ok(_) => Err(TopologyError::Invalid {
                file: origin,
                problems,
            }),
            Err(found) => {
                problems.extend(found);
                Err(TopologyError::Invalid {
                    file: origin,
                    problems,
                })
            }
        }
    }

    fn with_node(mut self, node: &str, key: &str, set: impl FnOnce(&mut NodeModel)) -> Self {
        match self.nodes.entries.get_mut(node) {
            Some(model) => set(model.get_or_insert_with(NodeModel::default)),
            None => self.problems.push(Problem::new(
                format!("topology.nodes.{node}.{key}"),
                format!(
                    "no node named {node:?} was added (with .node() or .bridge()) before its {key}"
                ),
            )),
        }
        self
    }

    fn with_link(mut self, key: &str, set: impl FnOnce(&mut LinkModel)) -> Self {
        match self.links.last_mut() {
            Some(link) => set(link),
            None => self.problems.push(Problem::new(
                format!("topology.links.{key}"),
                format!("{key} set before any link was added (with .link())"),
            )),
        }
        self
    }
}

impl TopologyBuilder {
    fn expectation(
        mut self,
        from: &str,
        to: &str,
        port: Option<&str>,
        reach: Option<bool>,
    ) -> Self {
        self.expect.push(ExpectModel {
            from: text(from),
            to: text(to),
            port: port.map(|p| Scalar::Str(p.to_owned())),
            reach,
        });
        self
    }

    /// The fields of `impair:` from key/value pairs; an unknown key is a
    /// problem named as a file's would be.
    fn impair_fields<'a>(
        &mut self,
        settings: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> ImpairFields {
        let mut fields = ImpairFields::default();
        for (key, value) in settings {
            if !fields.set(key, value) {
                self.problems.push(Problem::new(
                    "topology.links.impair",
                    format!(
                        "unknown impairment {key:?}; expected one of {}",
                        super::IMPAIR_KEYS.join(", ")
                    ),
                ));
            }
        }
        fields
    }
}

fn per_end<'a>(values: [impl Into<Option<&'a str>>; 2]) -> Seq<Option<Text>> {
    Seq(values.into_iter().map(|v| v.into().map(text)).collect())
}

#[cfg(test)]
mod tests {
    use crate::spec::NodeKind;
    use crate::spec::Topology;
    use crate::topology::{TopologyError, parse_str};
    use std::path::{Path, PathBuf};

    fn routed() -> super::TopologyBuilder {
        Topology::builder("routed")
            .node("h1")
            .node("r1")
            .node("h2")
            .sysctl("r1", "net.ipv4.ip_forward", 1)
            .link(["h1:eth0", "r1:eth0"])
            .ipv4(["10.0.1.2/30", "10.0.1.1/30"])
            .link(["r1:eth1", "h2:eth0"])
            .ipv4(["10.0.2.1/30", "10.0.2.2/30"])
            .mtu(1400)
            .route("h1", "default via 10.0.1.1")
            .route("h2", "default via 10.0.2.1")
    }

    /// Asserts that `built` describes the lab the topology file `yaml`
    /// does (all but the file it came from), and returns it.
    fn assert_same_lab(built: &Topology, yaml: &str) -> Topology {
        let file = parse_str(yaml, Path::new("routed.yml"), Path::new(".")).expect("valid file");
        let lab = |t: &Topology| Topology {
            source: PathBuf::new(),
            ..t.clone()
        };
        let built = lab(built);
        assert_eq!(built, lab(&file));
        built
    }

    #[test]
    fn a_built_topology_equals_the_same_file() {
        let built = routed().build().expect("valid");
        assert_same_lab(
            &built,
            r#"
name: routed
topology:
  nodes:
    h1: {routes: ["default via 10.0.1.1"]}
    r1: {sysctls: {net.ipv4.ip_forward: 1}}
    h2: {routes: ["default via 10.0.2.1"]}
  links:
    - endpoints: ["h1:eth0", "r1:eth0"]
      ipv4: [10.0.1.2/30, 10.0.1.1/30]
    - endpoints: ["r1:eth1", "h2:eth0"]
      ipv4: [10.0.2.1/30, 10.0.2.2/30]
      mtu: 1400
"#,
        );
    }

    #[test]
    fn start_order_equals_the_same_file() {
        let built = Topology::builder("order")
            .node("a")
            .node("b")
            .wait_for("b", "a")
            .startup_delay("b", 2)
            .build()
            .expect("valid");
        assert_same_lab(
            &built,
            "name: order\ntopology:\n  nodes:\n    a: {}\n    b: {wait-for: [a], startup-delay: 2}\n",
        );
    }

    #[test]
    fn limits_equal_the_same_file() {
        let built = Topology::builder("limits")
            .node("a")
            .cpus("a", 0.5)
            .cpuset("a", "0")
            .memory("a", "64M")
            .pids("a", 20)
            .build()
            .expect("valid");
        assert_same_lab(
            &built,
            "name: limits\ntopology:\n  nodes:\n    a: {cpus: 0.5, cpuset: \"0\", memory: 64M, pids: 20}\n",
        );
        let bad = Topology::builder("limits")
            .bridge("sw")
            .memory("sw", "64M")
            .build()
            .expect_err("a bridge takes no limit");
        assert!(
            bad.to_string().contains("topology.nodes.sw.memory"),
            "{bad}"
        );
    }

    #[test]
    fn impairments_and_expectations_equal_the_same_file() {
        let built = routed()
            .impair([("delay", "20ms"), ("rate", "10mbit")])
            .impair_end(1, [("loss", "1%")])
            .link(["h1:eth1", "h2:eth1"])
            .impair_end(0, [("jitter", "5ms"), ("delay", "10ms")])
            .expect_reach("h1", "h2")
            .expect_port("h1", "h2:eth0", "80/tcp")
            .expect_blocked("h1", "203.0.113.9", None)
            .build()
            .expect("valid");
        let built = assert_same_lab(
            &built,
            r#"
name: routed
topology:
  nodes:
    h1: {routes: ["default via 10.0.1.1"]}
    r1: {sysctls: {net.ipv4.ip_forward: 1}}
    h2: {routes: ["default via 10.0.2.1"]}
  links:
    - endpoints: ["h1:eth0", "r1:eth0"]
      ipv4: [10.0.1.2/30, 10.0.1.1/30]
    - endpoints: ["r1:eth1", "h2:eth0"]
      ipv4: [10.0.2.1/30, 10.0.2.2/30]
      mtu: 1400
      impair:
        - {delay: 20ms, rate: 10mbit}
        - {loss: 1%}
    - endpoints: ["h1:eth1", "h2:eth1"]
      impair: [{jitter: 5ms, delay: 10ms}, null]
expect:
  - {from: h1, to: h2}
  - {from: h1, to: "h2:eth0", port: 80/tcp}
  - {from: h1, to: 203.0.113.9, reach: false}
"#,
        );
        assert_eq!(built.expect.len(), 3);
        assert!(built.links[1].endpoints[1].impair.is_some());
    }

    #[test]
    fn impairment_misuses_are_problems() {
        let err = routed()
            .impair([("latency", "20ms")])
            .impair_end(2, [("loss", "1%")])
            .impair([("loss", "200%")])
            .build()
            .expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("unknown impairment \"latency\""), "{text}");
        assert!(text.contains("a link has ends 0 and 1"), "{text}");
        assert!(text.contains("topology.links[1].impair"), "{text}");
        let err = Topology::builder("none")
            .node("a")
            .impair([("delay", "1ms")])
            .expect_reach("a", "ghost")
            .build()
            .expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("impair set before any link"), "{text}");
        assert!(text.contains("expect[0].to"), "{text}");
    }

    #[test]
    fn bridges_and_missing_addresses() {
        let t = Topology::builder("lan")
            .node("h1")
            .bridge("sw")
            .link(["h1:eth0", "sw:p1"])
            .ipv4([Some("10.0.0.1/24"), None])
            .build()
            .expect("valid");
        assert_eq!(t.nodes["sw"].kind, NodeKind::Bridge);
        assert_eq!(t.links[0].endpoints[1].ipv4, None);
    }

    #[test]
    fn problems_are_the_files_problems_with_key_paths() {
        let err = Topology::builder("bad")
            .node("h1")
            .node("h1")
            .link(["h1:eth0", "ghost:eth0"])
            .ipv4(["10.0.0.1/33", "10.0.0.2/24"])
            .build()
            .expect_err("invalid");
        let TopologyError::Invalid { problems, file } = &err else {
            panic!("not a validation error: {err}");
        };
        assert_eq!(file, Path::new("bad (built in code)"));
        let text = err.to_string();
        assert!(
            text.contains("node \"h1\" is defined more than once"),
            "{text}"
        );
        assert!(text.contains("topology.links[0].endpoints[1]"), "{text}");
        assert!(text.contains("no node named \"ghost\""), "{text}");
        assert!(
            problems
                .iter()
                .any(|p| p.path.starts_with("topology.links[0].ipv4")),
            "{text}"
        );
    }

    #[test]
    fn settings_for_a_node_never_added_are_problems() {
        let err = Topology::builder("x")
            .node("h1")
            .route("h9", "default via 10.0.0.1")
            .mtu(1400)
            .build()
            .expect_err("invalid");
        let text = err.to_string();
        assert!(
            text.contains("topology.nodes.h9.routes: no node named \"h9\""),
            "{text}"
        );
        assert!(
            text.contains("topology.links.mtu: mtu set before any link"),
            "{text}"
        );
    }

    #[test]
    fn invalid_lab_name_is_refused_as_in_a_file() {
        let err = Topology::builder("Bad Name")
            .node("h1")
            .build()
            .expect_err("invalid");
        assert!(
            err.to_string().contains("name: lab name \"Bad Name\""),
            "{err}"
        );
    }
}
