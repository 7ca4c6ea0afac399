//! Everything that touches the kernel: namespaces, the node init, processes,
//! netlink and sysctls. Callers hand in plan data; nothing here reads YAML.

pub(crate) mod cgroup;
pub(crate) mod enter;
mod fds;
pub(crate) mod forward;
pub(crate) mod init;
mod mount_api;
pub(crate) mod namespace;
pub(crate) mod netlink;
pub(crate) mod process;
pub(crate) mod sockopt;
pub(crate) mod sysctl;
pub(crate) mod userns;
