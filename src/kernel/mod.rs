//! Everything that touches the kernel: namespaces, the node init, processes,
//! netlink and sysctls. Callers hand in plan data; nothing here reads YAML.

pub mod enter;
mod fds;
pub mod init;
pub mod namespace;
pub mod netlink;
pub mod process;
pub(crate) mod sockopt;
pub mod sysctl;
