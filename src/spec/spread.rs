//! A lab spread over several hosts (`hosts:`): the machines, which node
//! each given one is placed on, and the VXLAN settings of the links that
//! cross from one host to another. Where nodes go and what each host
//! builds is derived from this by the plan layer.

use std::net::IpAddr;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The UDP port of cross-host links when `vxlan.port` is not given (the
/// IANA port: the tunnels are nslab's own, between hosts it was given).
pub const SPREAD_VXLAN_PORT: u16 = 4789;

/// The bytes a VXLAN packet adds on an IPv4 underlay (outer Ethernet 14,
/// IPv4 20, UDP 8, VXLAN 8); an IPv6 underlay adds 20 more.
pub const VXLAN_OVERHEAD_V4: u32 = 50;
pub const VXLAN_OVERHEAD_V6: u32 = 70;

/// One machine of the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// What `ssh` is given to reach it: `user@address`, or a name of the
    /// user's `~/.ssh/config`; `None`: reached some other way (`nslab
    /// split` writes its part, `up` refuses it).
    pub ssh: Option<String>,
    /// Its address on the network between the hosts: the local end of its
    /// tunnels, the remote end of the others'.
    pub underlay: IpAddr,
    /// The nslab binary there (`nslab`: found on its `PATH`).
    pub nslab: String,
}

/// `hosts:` with what goes with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spread {
    /// The machines, by name, in file order.
    pub hosts: IndexMap<String, Machine>,
    /// Nodes given a host (`host:`), by node name.
    pub pinned: IndexMap<String, String>,
    /// The UDP port of every cross-host link.
    pub vxlan_port: u16,
    /// The VNI of the first cross-host link; the n-th has `first_vni + n`.
    pub first_vni: u32,
}

impl Spread {
    /// The first VNI when the file gives none: from the lab name, so that
    /// two labs spread over the same hosts use different ones. Blocks of
    /// 4096 from 8192 (below are the VNIs overlay networks of clusters
    /// commonly take, 1 and 4096): a lab has room for that many links.
    pub fn default_first_vni(lab: &str) -> u32 {
        // FNV-1a: stable across versions and machines, unlike std's hasher.
        let hash = lab.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        4096 * (2 + hash % 4000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_vnis_are_stable_distinct_blocks_within_24_bits() {
        let a = Spread::default_first_vni("lab-a");
        assert_eq!(a, Spread::default_first_vni("lab-a"));
        assert_ne!(a, Spread::default_first_vni("lab-b"));
        for lab in ["", "x", "a-very-long-lab-name-indeed"] {
            let first = Spread::default_first_vni(lab);
            assert!(first % 4096 == 0 && first >= 8192);
            assert!(first + 4095 <= super::super::MAX_VNI);
        }
    }
}
