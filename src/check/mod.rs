//! `nslab check`: what to probe from each node, and what the outcomes mean
//! for the reachability matrix and the expectations (pure, here), the
//! userspace probes themselves (`probe`), and the run that sends them
//! from every node of a running lab at once (`run`).
//!
//! The matrix: from every node (not bridges, not the host) an ICMP echo to
//! every address of every other node. Expectations come from the
//! topology's `expect:`; without any, every pair of the matrix is expected
//! to be reached (Mininet's pingall).
//!
//! The JSON form of [`CheckReport`] is stable for scripts (docs/cli.md, "check
//! --json").

pub(crate) mod probe;
mod render;
pub(crate) mod run;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

#[cfg(test)]
use render::MAX_TABLE_NODES;
pub use render::render_text;
pub(crate) use run::check;

use crate::check::probe::{Outcome, Pacing, Probe, UNREAD_RATELIMIT};
use crate::plan::{Place, Plan};
use crate::spec::{Expect, ExpectTarget, NodeKind, Protocol};

/// One planned address of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeAddress {
    pub node: String,
    pub iface: String,
    pub address: IpAddr,
}

/// Where the expectations came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expectations {
    /// The topology's `expect:` entries.
    Topology,
    /// None given: every pair of the matrix must be reached.
    Pingall,
}

/// One probed address.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probed {
    pub from: String,
    /// The node that has the address, when one does.
    pub to: Option<String>,
    pub interface: Option<String>,
    pub address: IpAddr,
    /// 4 or 6.
    pub family: u8,
    /// False when the probe could not be sent at all (the node is not
    /// running, no socket could be opened): nothing is known, and every
    /// expectation that needs it fails.
    pub probed: bool,
    pub reached: bool,
    /// The round trip (echo, UDP reply) or connect time, when reached and
    /// timed.
    pub rtt_ms: Option<f64>,
    /// Why not reached (`timeout`, `connection refused`, ...), why not
    /// probed, or a note.
    pub error: Option<String>,
}

/// One expectation and how it went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectResult {
    pub from: String,
    /// A node, `node:iface`, or an address in its canonical form
    /// (`2001:DB8::0:2` is `2001:db8::2`).
    pub to: String,
    /// `80/tcp`, `53/udp`, or none for ICMP echo.
    pub port: Option<String>,
    pub reach: bool,
    pub passed: bool,
    pub probes: Vec<Probed>,
}

/// A node whose probes, or some of them, could not run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceError {
    pub node: String,
    pub error: String,
}

/// Everything `nslab check` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    pub lab: String,
    /// Every expectation passed and every probe ran.
    pub passed: bool,
    pub expectations_from: Expectations,
    pub timeout_ms: u64,
    pub elapsed_ms: f64,
    /// The probing nodes, in file order.
    pub nodes: Vec<String>,
    pub errors: Vec<SourceError>,
    pub matrix: Vec<Probed>,
    pub expectations: Vec<ExpectResult>,
}

/// What a check comes to, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conclusion {
    /// Every expectation passed and every probe ran.
    Passed,
    /// An expectation failed, and every probe ran.
    Failed,
    /// Some probes could not run (a node not running, no socket): the
    /// result is unknown.
    Incomplete,
}

impl CheckReport {
    /// Passed, failed, or incomplete when some probes could not run (which
    /// outweighs a failed expectation: it may have failed for that reason).
    pub fn conclusion(&self) -> Conclusion {
        if self.passed {
            Conclusion::Passed
        } else if !self.errors.is_empty() {
            Conclusion::Incomplete
        } else {
            Conclusion::Failed
        }
    }
}

/// The probes behind one address of an expectation.
#[derive(Debug, Clone)]
struct ExpectProbe {
    target: Target,
    /// The probe whose outcome decides.
    main: usize,
    /// UDP: the echo to the same address (silence only counts as reached
    /// when the address answers).
    echo: Option<usize>,
}

/// An address as the plan knows it.
#[derive(Debug, Clone)]
struct Target {
    node: Option<String>,
    iface: Option<String>,
    address: IpAddr,
}

#[derive(Debug, Clone)]
struct PlannedExpectation {
    plan: Expect,
    /// Index in [`CheckPlan::sources`]; `None` when `from` is not a
    /// probing node (a plan edited by hand).
    source: Option<usize>,
    probes: Vec<ExpectProbe>,
}

/// What to probe from which node.
#[derive(Debug, Clone)]
pub(crate) struct CheckPlan {
    pub lab: String,
    /// The probing nodes, in file order.
    pub sources: Vec<String>,
    /// Per source: its probes, each once.
    pub probes: Vec<Vec<Probe>>,
    /// Every node that has addresses, with them, in plan order: the hosts
    /// UDP probes are paced by.
    hosts: Vec<(String, Vec<IpAddr>)>,
    /// (source, target, probe index) of the matrix, in order.
    matrix: Vec<(usize, Target, usize)>,
    expectations: Vec<PlannedExpectation>,
    from: Expectations,
}

/// Every planned address of every node, in link order (then devices').
pub(crate) fn node_addresses(plan: &Plan) -> Vec<NodeAddress> {
    let mut out = Vec::new();
    for end in plan.ends() {
        if let Place::Node(id) = end.place {
            for net in &end.addresses {
                out.push(NodeAddress {
                    node: plan.nodes[id].name.clone(),
                    iface: end.ifname.clone(),
                    address: net.addr(),
                });
            }
        }
    }
    out
}

/// Adds `probe` to a source's list once; returns its index.
fn intern(list: &mut Vec<Probe>, index: &mut HashMap<Probe, usize>, probe: Probe) -> usize {
    *index.entry(probe).or_insert_with(|| {
        list.push(probe);
        list.len() - 1
    })
}

impl CheckPlan {
    /// The matrix and the expectations of a lab's plan (its `expect:`, or
    /// pingall when there is none).
    pub(crate) fn new(plan: &Plan) -> CheckPlan {
        let sources: Vec<String> = plan
            .nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Node)
            .map(|n| n.name.clone())
            .collect();
        let source_of: HashMap<&str, usize> = sources
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let addresses = node_addresses(plan);
        // Node → its addresses, in link order, for targets.
        let mut by_node: HashMap<&str, Vec<&NodeAddress>> = HashMap::new();
        for a in &addresses {
            by_node.entry(a.node.as_str()).or_default().push(a);
        }
        let owner: HashMap<IpAddr, &NodeAddress> =
            addresses.iter().rev().map(|a| (a.address, a)).collect();
        let target = |a: &NodeAddress| Target {
            node: Some(a.node.clone()),
            iface: Some(a.iface.clone()),
            address: a.address,
        };

        let mut probes: Vec<Vec<Probe>> = vec![Vec::new(); sources.len()];
        let mut index: Vec<HashMap<Probe, usize>> = vec![HashMap::new(); sources.len()];
        let mut matrix = Vec::new();
        for (s, source) in sources.iter().enumerate() {
            for a in addresses
                .iter()
                .filter(|a| a.node != *source && source_of.contains_key(a.node.as_str()))
            {
                let p = intern(&mut probes[s], &mut index[s], Probe::Echo(a.address));
                matrix.push((s, target(a), p));
            }
        }

        let (from, expect) = if plan.expect.is_empty() {
            (Expectations::Pingall, pingall(&sources, &by_node))
        } else {
            (Expectations::Topology, plan.expect.clone())
        };
        let expectations = expect
            .into_iter()
            .map(|e| {
                let source = source_of.get(e.from.as_str()).copied();
                let targets: Vec<Target> = match &e.to {
                    ExpectTarget::Node(node) => by_node
                        .get(node.as_str())
                        .into_iter()
                        .flatten()
                        .map(|a| target(a))
                        .collect(),
                    ExpectTarget::Interface { node, iface } => by_node
                        .get(node.as_str())
                        .into_iter()
                        .flatten()
                        .filter(|a| a.iface == *iface)
                        .map(|a| target(a))
                        .collect(),
                    ExpectTarget::Address(address) => vec![Target {
                        node: owner.get(address).map(|a| a.node.clone()),
                        iface: owner.get(address).map(|a| a.iface.clone()),
                        address: *address,
                    }],
                };
                let probes = match source {
                    None => Vec::new(),
                    Some(s) => targets
                        .into_iter()
                        .map(|t| {
                            let (list, index) = (&mut probes[s], &mut index[s]);
                            let echo = intern(list, index, Probe::Echo(t.address));
                            let (main, echo) = match e.port {
                                None => (echo, None),
                                Some(port) => {
                                    let at = SocketAddr::new(t.address, port.number);
                                    let probe = match port.protocol {
                                        Protocol::Tcp => Probe::Tcp(at),
                                        Protocol::Udp => Probe::Udp(at),
                                    };
                                    let main = intern(list, index, probe);
                                    let echo = (port.protocol == Protocol::Udp).then_some(echo);
                                    (main, echo)
                                }
                            };
                            ExpectProbe {
                                target: t,
                                main,
                                echo,
                            }
                        })
                        .collect(),
                };
                PlannedExpectation {
                    plan: e,
                    source,
                    probes,
                }
            })
            .collect();

        let hosts = plan
            .nodes
            .iter()
            .filter_map(|node| {
                let list = by_node.get(node.name.as_str())?;
                Some((node.name.clone(), list.iter().map(|a| a.address).collect()))
            })
            .collect();

        CheckPlan {
            lab: plan.lab.clone(),
            sources,
            probes,
            hosts,
            matrix,
            expectations,
            from,
        }
    }

    /// The nodes whose ICMP rate limits pace UDP probes: those with an
    /// address some UDP probe goes to, in plan order.
    pub(crate) fn paced_nodes(&self) -> Vec<&str> {
        let udp: std::collections::HashSet<IpAddr> = self
            .probes
            .iter()
            .flatten()
            .filter_map(|p| match p {
                Probe::Udp(a) => Some(a.ip()),
                _ => None,
            })
            .collect();
        self.hosts
            .iter()
            .filter(|(_, addresses)| addresses.iter().any(|a| udp.contains(a)))
            .map(|(node, _)| node.as_str())
            .collect()
    }

    /// The pacing of UDP probes, from the intervals read from the nodes
    /// ([`RATELIMIT_SYSCTLS`], per node: IPv4, IPv6). A node, or a family of
    /// one, whose interval was not read is paced by [`UNREAD_RATELIMIT`].
    pub(crate) fn pacing(&self, ratelimits: &HashMap<String, [Option<Duration>; 2]>) -> Pacing {
        let mut pacing = Pacing::default();
        for (node, addresses) in &self.hosts {
            let read = ratelimits.get(node).copied().unwrap_or_default();
            pacing.host(
                addresses.iter().copied(),
                read.map(|r| r.unwrap_or(UNREAD_RATELIMIT)),
            );
        }
        pacing
    }

    /// Reads the outcomes, per source in the order of [`Self::probes`]
    /// (or why that source could not probe at all), into the report.
    pub(crate) fn evaluate(
        &self,
        results: &[Result<Vec<Outcome>, String>],
        timeout: Duration,
        elapsed: Duration,
    ) -> CheckReport {
        let outcome = |s: usize, p: usize| -> Outcome {
            match results.get(s) {
                Some(Ok(outcomes)) => outcomes
                    .get(p)
                    .cloned()
                    .unwrap_or_else(|| Outcome::NotProbed("no outcome".into())),
                Some(Err(e)) => Outcome::NotProbed(e.clone()),
                None => Outcome::NotProbed("not probed".into()),
            }
        };
        let probed = |s: usize, t: &Target, main: Outcome, echo: Option<Outcome>| {
            let v = verdict(main, echo);
            Probed {
                from: self.sources[s].clone(),
                to: t.node.clone(),
                interface: t.iface.clone(),
                address: t.address,
                family: if t.address.is_ipv4() { 4 } else { 6 },
                probed: v.probed,
                reached: v.reached,
                rtt_ms: v.rtt.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3),
                error: v.error,
            }
        };

        let matrix: Vec<Probed> = self
            .matrix
            .iter()
            .map(|(s, t, p)| probed(*s, t, outcome(*s, *p), None))
            .collect();
        let expectations: Vec<ExpectResult> = self
            .expectations
            .iter()
            .map(|e| {
                let probes: Vec<Probed> = match e.source {
                    None => Vec::new(),
                    Some(s) => e
                        .probes
                        .iter()
                        .map(|p| {
                            probed(
                                s,
                                &p.target,
                                outcome(s, p.main),
                                p.echo.map(|i| outcome(s, i)),
                            )
                        })
                        .collect(),
                };
                // A probe that did not run fails whatever is expected: not
                // having looked is not "not reached".
                let passed = e.source.is_some()
                    && !probes.is_empty()
                    && probes.iter().all(|p| p.probed && p.reached == e.plan.reach);
                ExpectResult {
                    from: e.plan.from.clone(),
                    to: e.plan.to.to_string(),
                    port: e.plan.port.map(|p| p.to_string()),
                    reach: e.plan.reach,
                    passed,
                    probes,
                }
            })
            .collect();
        // Whole sources that failed, and each other reason a probe of a
        // source did not run, once.
        let mut errors: Vec<SourceError> = Vec::new();
        for (s, source) in self.sources.iter().enumerate() {
            let mut add = |error: &str| {
                if !errors.iter().any(|e| e.node == *source && e.error == error) {
                    errors.push(SourceError {
                        node: source.clone(),
                        error: error.to_owned(),
                    });
                }
            };
            match results.get(s) {
                Some(Err(e)) => add(e),
                Some(Ok(outcomes)) => {
                    for o in outcomes {
                        if let Outcome::NotProbed(why) = o {
                            add(why);
                        }
                    }
                    if outcomes.len() < self.probes[s].len() {
                        add("no outcome");
                    }
                }
                None => add("not probed"),
            }
        }
        CheckReport {
            lab: self.lab.clone(),
            passed: errors.is_empty() && expectations.iter().all(|e| e.passed),
            expectations_from: self.from,
            timeout_ms: timeout.as_millis() as u64,
            elapsed_ms: (elapsed.as_secs_f64() * 1e6).round() / 1e3,
            nodes: self.sources.clone(),
            errors,
            matrix,
            expectations,
        }
    }
}

/// Every source to every other node that has addresses.
fn pingall(sources: &[String], by_node: &HashMap<&str, Vec<&NodeAddress>>) -> Vec<Expect> {
    let mut out = Vec::new();
    for from in sources {
        for to in sources {
            if from != to && by_node.contains_key(to.as_str()) {
                out.push(Expect {
                    from: from.clone(),
                    to: ExpectTarget::Node(to.clone()),
                    port: None,
                    reach: true,
                });
            }
        }
    }
    out
}

/// How one address fared.
#[derive(Debug, Clone, PartialEq)]
struct Verdict {
    probed: bool,
    reached: bool,
    rtt: Option<Duration>,
    error: Option<String>,
}

/// Reached, round trip and why not, from a probe's outcome (and for UDP
/// the echo to the same address): a UDP datagram that met silence counts
/// as reached only when the address answers echo, since silence is also
/// what a dead address gives, and as not probed when that echo was not.
fn verdict(main: Outcome, echo: Option<Outcome>) -> Verdict {
    let not = |why: String| Verdict {
        probed: true,
        reached: false,
        rtt: None,
        error: Some(why),
    };
    match (main, echo) {
        (Outcome::Answered(rtt), _) => Verdict {
            probed: true,
            reached: true,
            rtt: Some(rtt),
            error: None,
        },
        (Outcome::Silent, Some(Outcome::Answered(_))) => Verdict {
            probed: true,
            reached: true,
            rtt: None,
            error: Some("no reply and no error (the address answers echo)".into()),
        },
        // Silence means nothing without the echo that tells an open port
        // from a dead address: nothing is known.
        (Outcome::Silent, Some(Outcome::NotProbed(why))) => Verdict {
            probed: false,
            reached: false,
            rtt: None,
            error: Some(format!(
                "no reply and no error, and the echo that would tell an open port from a dead address was not probed: {why}"
            )),
        },
        (Outcome::Silent, _) => not("no reply, and the address does not answer echo".into()),
        (Outcome::TimedOut, _) => not("timeout".into()),
        (Outcome::Failed(e), _) => not(e),
        (Outcome::NotProbed(why), _) => Verdict {
            probed: false,
            reached: false,
            rtt: None,
            error: Some(why),
        },
    }
}

/// The sysctls UDP pacing reads, live, from the net namespace of each node
/// it paces when the check starts (paths under /proc/sys): the interval at
/// which the node sends ICMP errors to one peer after a burst, for IPv4 and
/// for IPv6, in milliseconds.
pub(crate) const RATELIMIT_SYSCTLS: [&str; 2] =
    ["net/ipv4/icmp_ratelimit", "net/ipv6/icmp/ratelimit"];

/// A value of a [`RATELIMIT_SYSCTLS`] entry as an interval (zero: no
/// limit), or `None` when it is not a count of milliseconds.
pub(crate) fn ratelimit_interval(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_millis)
}

#[cfg(test)]
mod tests;
