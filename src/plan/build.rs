//! Topology → plan.
