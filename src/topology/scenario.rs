//! Validation of `scenario:`, the timed steps of `nslab run-scenario`.
//!
//! Steps run in file order, so their times must not go back: a step timed
//! before the one above it is refused rather than silently reordered. The
//! nodes' states are followed through the steps, so that a step that could
//! only fail when it runs (starting a running node, setting a link of a
//! stopped one) is refused here, before the lab is touched.

use std::collections::HashSet;
use std::time::Duration;

use indexmap::IndexMap;

use super::Problem;
use super::impair::parse_duration_us;
use super::model::{Measure, StepModel, Text};
use crate::spec::{HOST, LinkState, Node, NodeAction, NodeKind, Scenario, Step, StepAction};

/// Checks every step against the lab's nodes and interfaces
/// (`(node, iface)` of every link end); returns the scenario of the valid
/// steps and the problems of the rest.
pub(crate) fn scenario(
    list: &[StepModel],
    nodes: &IndexMap<String, Node>,
    interfaces: &HashSet<(String, String)>,
) -> (Scenario, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut steps = Vec::new();
    let mut last = Duration::ZERO;
    let mut stopped: HashSet<&str> = HashSet::new();
    for (i, entry) in list.iter().enumerate() {
        let path = format!("scenario[{i}]");
        let before = problems.len();
        let mut push = |key: &str, message: String| {
            let at = if key.is_empty() {
                path.clone()
            } else {
                format!("{path}.{key}")
            };
            problems.push(Problem::new(at, message));
        };

        let at = match &entry.at {
            None => {
                push(
                    "at",
                    "missing: give the step's time from the start, such as 2s or 500ms".into(),
                );
                None
            }
            Some(Measure(text)) => match parse_duration_us(text) {
                Ok(us) => Some(Duration::from_micros(us)),
                Err(why) => {
                    push("at", format!("{text:?} {why}"));
                    None
                }
            },
        };
        if let Some(at) = at {
            if at < last {
                push(
                    "at",
                    format!(
                        "{at:?} is before the step above it ({last:?}); steps run in file order, so list them by time"
                    ),
                );
            } else {
                last = at;
            }
        }

        let given = [
            entry.link.is_some(),
            entry.node.is_some(),
            entry.check.is_some(),
        ];
        let action = match given.iter().filter(|g| **g).count() {
            1 => None,
            0 => {
                push("", "a step needs one of link, node or check".into());
                Some(Err(()))
            }
            _ => {
                push("", "a step has exactly one of link, node or check".into());
                Some(Err(()))
            }
        };
        if entry.state.is_some() && entry.link.is_none() {
            push(
                "state",
                "state goes with link (link: NODE:IFACE, state: up or down)".into(),
            );
        }
        if entry.action.is_some() && entry.node.is_none() {
            push(
                "action",
                "action goes with node (node: NODE, action: stop, start or restart)".into(),
            );
        }

        let mut action: Result<StepAction, ()> = action.unwrap_or(Ok(StepAction::Check));
        if let Some(Text(link)) = &entry.link
            && action.is_ok()
        {
            action = link_step(link, entry.state.as_ref(), nodes, interfaces, &stopped)
                .map_err(|(key, message)| push(key, message));
        } else if let Some(Text(node)) = &entry.node
            && action.is_ok()
        {
            action = node_step(node, entry.action.as_ref(), nodes, &stopped)
                .map_err(|(key, message)| push(key, message));
        } else if entry.check == Some(false) {
            push(
                "check",
                "check takes only true (leave the step out instead)".into(),
            );
        }

        if let Ok(StepAction::Node { node, action }) = &action {
            let node = nodes.get_key_value(node).map_or("", |(k, _)| k.as_str());
            match action {
                NodeAction::Stop => stopped.insert(node),
                NodeAction::Start => stopped.remove(node),
                NodeAction::Restart => false,
            };
        }
        if problems.len() == before
            && let (Some(at), Ok(action)) = (at, action)
        {
            steps.push(Step { at, action });
        }
    }
    (Scenario { steps }, problems)
}

type StepProblem = (&'static str, String);

/// A node of the lab that a step may act on: no bridge, not the host.
fn step_node(
    node: &str,
    nodes: &IndexMap<String, Node>,
    key: &'static str,
) -> Result<(), StepProblem> {
    match nodes.get(node) {
        Some(n) if n.kind == NodeKind::Bridge => Err((
            key,
            format!(
                "node {node:?} is a bridge; a bridge is neither stopped nor its ports set down here: give the other end"
            ),
        )),
        Some(_) => Ok(()),
        None if node == HOST => Err((key, format!("{HOST:?} is not a node of the lab"))),
        None => Err((key, format!("no node {node:?}"))),
    }
}

fn link_step(
    link: &str,
    state: Option<&Text>,
    nodes: &IndexMap<String, Node>,
    interfaces: &HashSet<(String, String)>,
    stopped: &HashSet<&str>,
) -> Result<StepAction, StepProblem> {
    let Some((node, iface)) = link
        .split_once(':')
        .filter(|(n, i)| !n.is_empty() && !i.is_empty())
    else {
        return Err(("link", format!("{link:?} is not NODE:IFACE")));
    };
    step_node(node, nodes, "link")?;
    if !interfaces.contains(&(node.to_owned(), iface.to_owned())) {
        return Err((
            "link",
            format!("{link:?}: {iface:?} is not an interface of node {node:?}"),
        ));
    }
    if stopped.contains(node) {
        return Err((
            "link",
            format!("node {node:?} is stopped by a step above; start it first"),
        ));
    }
    let state = match state {
        None => return Err(("state", "missing: up or down".into())),
        Some(Text(s)) => s.parse::<LinkState>().map_err(|e| ("state", e))?,
    };
    Ok(StepAction::Link {
        node: node.to_owned(),
        iface: iface.to_owned(),
        state,
    })
}

fn node_step(
    node: &str,
    action: Option<&Text>,
    nodes: &IndexMap<String, Node>,
    stopped: &HashSet<&str>,
) -> Result<StepAction, StepProblem> {
    step_node(node, nodes, "node")?;
    let action: NodeAction = match action {
        None => return Err(("action", "missing: stop, start or restart".into())),
        Some(Text(a)) => a.parse().map_err(|e| ("action", e))?,
    };
    let is_stopped = stopped.contains(node);
    match action {
        NodeAction::Start if !is_stopped => Err((
            "action",
            format!("node {node:?} is running here: start follows a stop"),
        )),
        NodeAction::Stop | NodeAction::Restart if is_stopped => Err((
            "action",
            format!("node {node:?} is stopped by a step above: start it"),
        )),
        _ => Ok(StepAction::Node {
            node: node.to_owned(),
            action,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::spec::{LinkState, NodeAction, StepAction, Topology};
    use crate::topology::parse_str;

    const FILE: &str = r#"
name: scn
topology:
  nodes: {a: {}, b: {}}
  links: [{endpoints: ["a:eth0", "b:eth0"]}]
scenario:
  - {at: 0s, check: true}
  - {at: 1.5s, link: "a:eth0", state: down}
  - {at: 1500ms, node: b, action: stop}
  - {at: 2s, node: b, action: start}
"#;

    #[test]
    fn a_file_and_the_builder_give_the_same_steps() {
        let file = parse_str(FILE, Path::new("scn.yml"), Path::new(".")).expect("valid");
        let built = Topology::builder("scn")
            .node("a")
            .node("b")
            .link(["a:eth0", "b:eth0"])
            .scenario_step(Duration::ZERO, StepAction::Check)
            .scenario_step(
                Duration::from_millis(1500),
                StepAction::Link {
                    node: "a".into(),
                    iface: "eth0".into(),
                    state: LinkState::Down,
                },
            )
            .scenario_step(
                Duration::from_millis(1500),
                StepAction::Node {
                    node: "b".into(),
                    action: NodeAction::Stop,
                },
            )
            .scenario_step(
                Duration::from_secs(2),
                StepAction::Node {
                    node: "b".into(),
                    action: NodeAction::Start,
                },
            )
            .build()
            .expect("valid");
        assert_eq!(file.scenario, built.scenario);
        assert_eq!(file.scenario.steps.len(), 4);
    }
}
