//! Typed references to what runs: a lab, a node of a lab, an interface of
//! a node. Parsed once at the edge (the command line, a [`crate::Lab`]'s
//! own names), so the library never splits `LAB/NODE:IFACE` strings.

use std::fmt;
use std::str::FromStr;

use super::names::{MAX_IFNAME_BYTES, is_valid_name, is_valid_node_name};

/// Why a reference does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error(
        "{0:?} is not a lab or node name: lowercase letters, digits, '_' and '-', starting with a letter or digit, at most 40 bytes"
    )]
    Name(String),
    #[error("{0}: say which interface, as LAB/NODE:IFACE or NODE:IFACE")]
    NoInterface(String),
    #[error("{spec}: {iface:?} is not an interface name (1 to 15 bytes, no '/')")]
    InterfaceName { spec: String, iface: String },
}

/// A lab's name, checked against the name rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabName(String);

impl LabName {
    pub fn new(name: impl Into<String>) -> Result<LabName, TargetError> {
        let name = name.into();
        if is_valid_name(&name) {
            Ok(LabName(name))
        } else {
            Err(TargetError::Name(name))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for LabName {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LabName::new(s)
    }
}

impl fmt::Display for LabName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for LabName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A node: `LAB/NODE`, or `NODE` alone when one running lab has it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeRef {
    /// `None`: whichever running lab has the node, if only one does.
    lab: Option<LabName>,
    node: String,
}

impl NodeRef {
    /// A node of a known lab.
    pub fn new(lab: LabName, node: impl Into<String>) -> Result<NodeRef, TargetError> {
        let node = node.into();
        if !is_valid_node_name(&node) {
            return Err(TargetError::Name(node));
        }
        Ok(NodeRef {
            lab: Some(lab),
            node,
        })
    }

    /// The lab, when one was named.
    pub fn lab(&self) -> Option<&LabName> {
        self.lab.as_ref()
    }

    /// The node's name (checked against the name rules).
    pub fn node(&self) -> &str {
        &self.node
    }
}

impl FromStr for NodeRef {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (lab, node) = match s.split_once('/') {
            Some((lab, node)) => (Some(LabName::new(lab)?), node),
            None => (None, s),
        };
        if !is_valid_node_name(node) {
            return Err(TargetError::Name(node.to_string()));
        }
        Ok(NodeRef {
            lab,
            node: node.to_string(),
        })
    }
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.lab {
            Some(lab) => write!(f, "{lab}/{}", self.node),
            None => f.write_str(&self.node),
        }
    }
}

/// An interface of a node: `LAB/NODE:IFACE` or `NODE:IFACE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InterfaceRef {
    node: NodeRef,
    iface: String,
}

impl InterfaceRef {
    pub fn new(node: NodeRef, iface: impl Into<String>) -> Result<InterfaceRef, TargetError> {
        let iface = iface.into();
        if iface.is_empty() || iface.len() > MAX_IFNAME_BYTES || iface.contains('/') {
            return Err(TargetError::InterfaceName {
                spec: format!("{node}:{iface}"),
                iface,
            });
        }
        Ok(InterfaceRef { node, iface })
    }

    pub fn node(&self) -> &NodeRef {
        &self.node
    }

    /// The interface's name (1 to 15 bytes, no '/').
    pub fn iface(&self) -> &str {
        &self.iface
    }
}

impl FromStr for InterfaceRef {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((node, iface)) = s.rsplit_once(':') else {
            return Err(TargetError::NoInterface(s.to_string()));
        };
        InterfaceRef::new(node.parse()?, iface)
    }
}

impl fmt::Display for InterfaceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.node, self.iface)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_once_and_print_back() {
        let node: NodeRef = "lab1/r1".parse().expect("valid");
        assert_eq!(node.lab.as_ref().map(LabName::as_str), Some("lab1"));
        assert_eq!(node.node, "r1");
        assert_eq!(node.to_string(), "lab1/r1");
        let bare: NodeRef = "r1".parse().expect("valid");
        assert_eq!(bare.lab, None);
        let iface: InterfaceRef = "lab1/r1:eth0".parse().expect("valid");
        assert_eq!(iface.node, node);
        assert_eq!(iface.iface, "eth0");
        assert_eq!(iface.to_string(), "lab1/r1:eth0");
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        assert!(matches!("Lab/r1".parse::<NodeRef>(), Err(TargetError::Name(n)) if n == "Lab"));
        assert!(matches!("lab/".parse::<NodeRef>(), Err(TargetError::Name(n)) if n.is_empty()));
        assert!(matches!(
            "lab/r1".parse::<InterfaceRef>(),
            Err(TargetError::NoInterface(_))
        ));
        assert!(matches!(
            "r1:".parse::<InterfaceRef>(),
            Err(TargetError::InterfaceName { .. })
        ));
        assert!(matches!(
            "r1:a-name-of-16-bytes".parse::<InterfaceRef>(),
            Err(TargetError::InterfaceName { .. })
        ));
        assert!("../etc".parse::<LabName>().is_err());
    }
}
