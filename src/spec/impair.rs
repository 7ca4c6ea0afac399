//! Link impairments: what one interface's egress is made to suffer.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Impairments on the egress of one interface. Delay, jitter, loss,
/// corruption and duplication are netem's; the rate is a token bucket's
/// (tbf). `None` leaves that impairment out.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Impair {
    /// Added delay, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_us: Option<u64>,
    /// Random variation of the delay (plus or minus), in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_us: Option<u64>,
    /// Percent of packets dropped (0 to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Percent of packets with one bit flipped (0 to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<f64>,
    /// Percent of packets sent twice (0 to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    /// Most bits per second sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_bits: Option<u64>,
}

impl Impair {
    /// True when a netem qdisc is needed (anything but the rate).
    pub fn needs_netem(&self) -> bool {
        self.delay_us.is_some()
            || self.jitter_us.is_some()
            || self.loss.is_some()
            || self.corrupt.is_some()
            || self.duplicate.is_some()
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        !self.needs_netem() && self.rate_bits.is_none()
    }

    /// What may surprise in a valid impairment: a jitter larger than the
    /// delay (tc allows it too). netem draws each packet's delay evenly
    /// from delay ± jitter; a packet cannot leave before it arrives, so
    /// draws below zero send it at once, and the delay is then no longer
    /// spread evenly around the one asked for.
    pub fn warning(&self) -> Option<String> {
        let (delay, jitter) = (self.delay_us?, self.jitter_us?);
        (jitter > delay).then(|| {
            format!(
                "jitter {} is larger than delay {}: a packet cannot be sent before it arrives, so the delays drawn below 0 are 0 (the delay is no longer spread evenly around {})",
                format_duration_us(jitter),
                format_duration_us(delay),
                format_duration_us(delay)
            )
        })
    }
}

/// `delay 20ms jitter 5ms loss 1% corrupt 0.1% duplicate 0.1% rate 10mbit`,
/// in the units the topology file takes; `nothing` when empty.
impl fmt::Display for Impair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(us) = self.delay_us {
            parts.push(format!("delay {}", format_duration_us(us)));
        }
        if let Some(us) = self.jitter_us {
            parts.push(format!("jitter {}", format_duration_us(us)));
        }
        for (name, value) in [
            ("loss", self.loss),
            ("corrupt", self.corrupt),
            ("duplicate", self.duplicate),
        ] {
            if let Some(p) = value {
                parts.push(format!("{name} {}", format_percent(p)));
            }
        }
        if let Some(bits) = self.rate_bits {
            parts.push(format!("rate {}", format_rate_bits(bits)));
        }
        if parts.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

/// `20ms`, `1500us`, `2s`: the largest unit that keeps it whole.
pub(crate) fn format_duration_us(us: u64) -> String {
    if us != 0 && us % 1_000_000 == 0 {
        format!("{}s", us / 1_000_000)
    } else if us != 0 && us % 1_000 == 0 {
        format!("{}ms", us / 1_000)
    } else {
        format!("{us}us")
    }
}

/// `1%`, `0.1%`: at most six decimals, trailing zeros dropped (a percentage
/// read back from the kernel is a 32-bit fraction, never exactly decimal).
pub(crate) fn format_percent(percent: f64) -> String {
    let text = format!("{percent:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// `10mbit`, `1500kbit`, `64000bit`: the largest unit that keeps it whole.
pub(crate) fn format_rate_bits(bits: u64) -> String {
    for (scale, unit) in [
        (1_000_000_000, "gbit"),
        (1_000_000, "mbit"),
        (1_000, "kbit"),
    ] {
        if bits != 0 && bits % scale == 0 {
            return format!("{}{unit}", bits / scale);
        }
    }
    format!("{bits}bit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_in_topology_units() {
        let all = Impair {
            delay_us: Some(20_000),
            jitter_us: Some(5_000),
            loss: Some(1.0),
            corrupt: Some(0.1),
            duplicate: Some(0.1),
            rate_bits: Some(10_000_000),
        };
        assert_eq!(
            all.to_string(),
            "delay 20ms jitter 5ms loss 1% corrupt 0.1% duplicate 0.1% rate 10mbit"
        );
        assert_eq!(Impair::default().to_string(), "nothing");
        assert!(all.needs_netem());
        let rate = Impair {
            rate_bits: Some(10_000_000),
            ..Impair::default()
        };
        assert!(!rate.needs_netem());
        assert!(!rate.is_empty());
        assert!(Impair::default().is_empty());
    }

    #[test]
    fn jitter_above_the_delay_is_a_warning() {
        let plan = |delay, jitter| Impair {
            delay_us: Some(delay),
            jitter_us: Some(jitter),
            ..Impair::default()
        };
        assert_eq!(plan(20_000, 5_000).warning(), None);
        assert_eq!(plan(20_000, 20_000).warning(), None);
        let warning = plan(5_000, 20_000).warning().expect("a warning");
        assert!(
            warning.starts_with("jitter 20ms is larger than delay 5ms: "),
            "{warning}"
        );
        assert_eq!(Impair::default().warning(), None);
    }

    #[test]
    fn units() {
        assert_eq!(format_duration_us(0), "0us");
        assert_eq!(format_duration_us(1_500), "1500us");
        assert_eq!(format_duration_us(2_000_000), "2s");
        assert_eq!(format_percent(100.0), "100%");
        assert_eq!(format_percent(0.0), "0%");
        // 0.1% as the kernel keeps it: 4294967 / (2^32 - 1).
        assert_eq!(
            format_percent(4_294_967.0 / 4_294_967_295.0 * 100.0),
            "0.1%"
        );
        assert_eq!(format_rate_bits(1_500_000), "1500kbit");
        assert_eq!(format_rate_bits(2_000_000_000), "2gbit");
        assert_eq!(format_rate_bits(1_001), "1001bit");
    }
}
