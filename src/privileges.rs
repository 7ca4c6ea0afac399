//! Can this process build labs? It needs CAP_SYS_ADMIN (namespaces, mounts)
//! and CAP_NET_ADMIN (netlink changes); root has both.

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// The capabilities this process lacks to build labs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "nslab needs root (or {}) to create namespaces and interfaces; run it with sudo",
    .0.join(" and ")
)]
pub struct MissingCapabilities(pub Vec<&'static str>);

/// `Err` naming the capabilities that are missing.
pub fn check() -> Result<(), MissingCapabilities> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = effective_capabilities(&status).unwrap_or(0);
    let missing: Vec<&str> = [
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
    ]
    .into_iter()
    .filter(|(bit, _)| effective & (1 << bit) == 0)
    .map(|(_, name)| name)
    .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MissingCapabilities(missing))
    }
}

fn effective_capabilities(status: &str) -> Option<u64> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_set() {
        assert_eq!(
            effective_capabilities("Name:\tx\nCapEff:\t0000000000201000\n"),
            Some(0x201000)
        );
        assert_eq!(effective_capabilities("Name:\tx\n"), None);
    }
}
