//! Name rules: labs, nodes, interfaces, hostnames, environment variables.

/// Longest lab or node name, in bytes.
pub const MAX_NAME_BYTES: usize = 40;
/// Longest interface name (IFNAMSIZ - 1).
pub const MAX_IFNAME_BYTES: usize = 15;
/// Longest hostname (HOST_NAME_MAX).
pub const MAX_HOSTNAME_BYTES: usize = 64;

/// Lab names: `[a-z0-9][a-z0-9_-]*`, at most 40 bytes. Such a name cannot
/// hold `/` or `.`, so it can never escape a folder under /run.
pub fn is_valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_BYTES
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

/// Node names: containerlab's rule, `[A-Za-z0-9][A-Za-z0-9._-]*`, at most
/// 40 bytes (so `PC1` of containerlab's examples is one). Such a name
/// cannot hold `/`, nor be `.` or `..`, so it can never escape a folder
/// under /run or /sys/fs/cgroup.
pub fn is_valid_node_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_BYTES
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// Why `s` is not a valid node name (`None` when it is).
pub(crate) fn node_name_problem(s: &str) -> Option<&'static str> {
    problem(
        s,
        is_valid_node_name,
        "may hold only letters, digits, '_', '-' and '.', and must start with a letter or digit",
    )
}

/// Why `s` is not a valid lab name (`None` when it is).
pub(crate) fn name_problem(s: &str) -> Option<&'static str> {
    problem(
        s,
        is_valid_name,
        "may hold only lowercase letters, digits, '_' and '-', and must start with a letter or digit",
    )
}

/// Why `s` fails `valid`, whose character rule `rule` says.
fn problem(s: &str, valid: fn(&str) -> bool, rule: &'static str) -> Option<&'static str> {
    if valid(s) {
        None
    } else if s.is_empty() {
        Some("is empty")
    } else if s.len() > MAX_NAME_BYTES {
        Some("is longer than 40 bytes")
    } else {
        Some(rule)
    }
}

/// Why `s` is not a valid interface name (`None` when it is).
pub(crate) fn ifname_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        Some("is empty")
    } else if s.len() > MAX_IFNAME_BYTES {
        Some("is longer than 15 bytes")
    } else if s == "." || s == ".." {
        Some("is not allowed")
    } else if s == "lo" {
        Some("is reserved for the loopback interface")
    } else if s
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        Some("may not hold '/', ':', whitespace or control characters")
    } else {
        None
    }
}

/// Hostnames: 1 to 64 bytes of letters, digits, '-' and '.'.
pub(crate) fn is_valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_HOSTNAME_BYTES
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
}

/// Environment variable names: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_valid_env_key(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "r1", "0", "a_b-c", &"x".repeat(40)] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "-a",
            "_a",
            "a.b",
            "a/b",
            "a b",
            "é",
            &"x".repeat(41),
            "..",
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn ifnames() {
        for ok in ["eth0", "p1", "eth0.10", "a-b_c", &"x".repeat(15)] {
            assert_eq!(ifname_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "lo",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "a\u{7f}",
            &"x".repeat(16),
        ] {
            assert!(ifname_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn hostnames_and_env() {
        assert!(is_valid_hostname("r1.lab-x"));
        assert!(!is_valid_hostname("r_1"));
        assert!(!is_valid_hostname(""));
        assert!(!is_valid_hostname(&"x".repeat(65)));
        assert!(is_valid_env_key("_A1"));
        assert!(!is_valid_env_key("1A"));
        assert!(!is_valid_env_key("A-B"));
        assert!(!is_valid_env_key(""));
    }
}
