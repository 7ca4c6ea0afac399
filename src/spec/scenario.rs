//! A lab's scenario (`scenario:` in the topology): timed steps that
//! `nslab run-scenario` plays on the running lab, for failure tests in CI.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::LinkState;

/// The steps, in time order (validation refuses a step timed before the
/// one above it). Empty when the topology has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    pub steps: Vec<Step>,
}

impl Scenario {
    /// No steps (serde's `skip_serializing_if`).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// One step: what to do, and when, from the start of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub at: Duration,
    pub action: StepAction,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepAction {
    /// Sets a link end down or up (`nslab link down|up`).
    Link {
        node: String,
        iface: String,
        state: LinkState,
    },
    /// Stops, starts or restarts a node (`nslab node ...`).
    Node { node: String, action: NodeAction },
    /// Runs the expectations (`nslab check`).
    Check,
}

/// What a node step does to its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeAction {
    Stop,
    Start,
    Restart,
}

impl std::str::FromStr for NodeAction {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "stop" => Ok(NodeAction::Stop),
            "start" => Ok(NodeAction::Start),
            "restart" => Ok(NodeAction::Restart),
            other => Err(format!("action {other:?} is not stop, start or restart")),
        }
    }
}

impl fmt::Display for NodeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeAction::Stop => "stop",
            NodeAction::Start => "start",
            NodeAction::Restart => "restart",
        })
    }
}

/// `link r1:eth0 down`, `node r2 restart`, `check`.
impl fmt::Display for StepAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepAction::Link { node, iface, state } => write!(f, "link {node}:{iface} {state}"),
            StepAction::Node { node, action } => write!(f, "node {node} {action}"),
            StepAction::Check => f.write_str("check"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_display_as_commands() {
        let link = StepAction::Link {
            node: "r1".into(),
            iface: "eth0".into(),
            state: LinkState::Down,
        };
        assert_eq!(link.to_string(), "link r1:eth0 down");
        let node = StepAction::Node {
            node: "r2".into(),
            action: NodeAction::Restart,
        };
        assert_eq!(node.to_string(), "node r2 restart");
        assert_eq!("start".parse(), Ok(NodeAction::Start));
        assert!("reboot".parse::<NodeAction>().is_err());
    }
}
