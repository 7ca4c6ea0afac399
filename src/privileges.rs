//! Can this process build labs? It needs CAP_SYS_ADMIN (namespaces, mounts)
//! and CAP_NET_ADMIN (netlink changes); root has both.

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// `Err` with a one-line explanation when a capability is missing.
pub fn check() -> Result<(), String> {
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
        Err(format!(
            "nslab needs root (or {}) to create namespaces and interfaces; run it with sudo",
            missing.join(" and ")
        ))
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
