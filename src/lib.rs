//! nslab: network labs on one Linux host from kernel namespaces alone.
//!
//! The data flows one way: [`topology`] (parse, validate) → [`plan`] →
//! [`kernel`] (namespaces, netlink) → [`state`]; [`lab`] drives the flow and the
//! `nslab` binary is a thin CLI over it.

pub mod check;
pub mod generate;
pub mod kernel;
pub mod lab;
pub mod plan;
pub mod privileges;
pub mod state;
pub mod topology;
