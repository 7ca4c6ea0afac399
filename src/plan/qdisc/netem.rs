//! netem's settings for an impairment: delay, jitter, loss, corruption and
//! duplication in the kernel's units, and the queue length nslab gives it.
//! The bytes the kernel takes are built in `kernel::netlink::qdisc`.

use super::{ETHERNET_HEADER, Tbf};
use crate::spec::{Impair, format_duration_us};

/// tc's default queue length, in packets: the shortest nslab sets.
pub(crate) const DEFAULT_LIMIT: u32 = 1000;
/// The kernel memory a full netem queue may hold, counted in full-size
/// frames: 64 MiB (see [`max_limit`]).
const QUEUE_BUDGET_BYTES: u64 = 64 << 20;
/// Without a rate, the queue is sized for this much traffic through the
/// delay: 1 Gbit/s, in bytes per second.
const NOMINAL_RATE_BYTES: u64 = 125_000_000;

/// netem's settings in the kernel's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Netem {
    pub delay_us: u64,
    pub jitter_us: u64,
    /// Probabilities as the kernel keeps them: a fraction of `u32::MAX`.
    pub loss: u32,
    pub corrupt: u32,
    pub duplicate: u32,
    /// Packets netem holds at most (delayed ones included).
    pub limit: u32,
}

/// A percentage as netem's probability, rounded as tc's `get_percent`
/// does (`rint(fraction * UINT32_MAX)`).
pub(crate) fn probability(percent: f64) -> u32 {
    (percent / 100.0 * f64::from(u32::MAX)).round_ties_even() as u32
}

/// netem's probability as a percentage.
pub(crate) fn percent(probability: u32) -> f64 {
    f64::from(probability) / f64::from(u32::MAX) * 100.0
}
impl Netem {
    /// The netem part of an impairment (everything but the rate) on a link
    /// of `mtu` bytes, above `tbf` when the impairment has a rate (see
    /// `limit`).
    pub fn from_plan(plan: &Impair, mtu: u32, tbf: Option<&Tbf>) -> Netem {
        Netem {
            delay_us: plan.delay_us.unwrap_or(0),
            jitter_us: plan.jitter_us.unwrap_or(0),
            loss: plan.loss.map_or(0, probability),
            corrupt: plan.corrupt.map_or(0, probability),
            duplicate: plan.duplicate.map_or(0, probability),
            limit: limit(plan, mtu, tbf),
        }
    }

    /// The same settings as `tc qdisc ... netem` arguments: `netem delay
    /// 20ms 5ms loss 1% limit 3097`, which make tc send [`Netem::encode`]'s
    /// bytes (the golden tests check it).
    pub fn tc_args(&self) -> String {
        let mut words = String::from("netem");
        if self.delay_us != 0 || self.jitter_us != 0 {
            words.push_str(&format!(" delay {}", format_duration_us(self.delay_us)));
            if self.jitter_us != 0 {
                words.push_str(&format!(" {}", format_duration_us(self.jitter_us)));
            }
        }
        for (name, p) in [
            ("loss", self.loss),
            ("corrupt", self.corrupt),
            ("duplicate", self.duplicate),
        ] {
            if p != 0 {
                words.push_str(&format!(" {name} {}", tc_percent(p)));
            }
        }
        words.push_str(&format!(" limit {}", self.limit));
        words
    }

    /// What it does, as an impairment: the values that are not zero.
    pub fn to_plan(self) -> Impair {
        let nonzero = |v: u64| (v != 0).then_some(v);
        let chance = |p: u32| (p != 0).then(|| percent(p));
        Impair {
            delay_us: nonzero(self.delay_us),
            jitter_us: nonzero(self.jitter_us),
            loss: chance(self.loss),
            corrupt: chance(self.corrupt),
            duplicate: chance(self.duplicate),
            rate_bits: None,
        }
    }
}

/// netem's queue length, in packets, for an impairment on a link of `mtu`
/// bytes. Every packet netem holds counts, those in its delay line and,
/// with a rate, those waiting in the tbf below it. tc's default of 1000
/// packets would cap the throughput through a delay at 1000 frames per
/// delay (about 120 Mbit/s at 100 ms), so the queue holds 1.5 times the
/// full-size frames of the traffic in flight: the rate (or, without one,
/// 1 Gbit/s) over delay + jitter, plus tbf's queue; at least
/// [`DEFAULT_LIMIT`], at most [`max_limit`]. Smaller packets fill it
/// sooner: it counts packets, not bytes.
pub(crate) fn limit(plan: &Impair, mtu: u32, tbf: Option<&Tbf>) -> u32 {
    let rate = u128::from(tbf.map_or(NOMINAL_RATE_BYTES, |t| t.rate));
    let held_us = u128::from(plan.delay_us.unwrap_or(0)) + u128::from(plan.jitter_us.unwrap_or(0));
    let queued = u128::from(tbf.map_or(0, |t| t.limit));
    // 1.5 × (rate × held_us / 1e6 + queued) / frame, rounded up.
    let frame = u128::from(mtu) + u128::from(ETHERNET_HEADER);
    let packets = (3 * (rate * held_us + queued * 1_000_000)).div_ceil(2 * frame * 1_000_000);
    u32::try_from(packets)
        .unwrap_or(u32::MAX)
        .clamp(DEFAULT_LIMIT, max_limit(mtu))
}

/// The longest queue nslab sets on a link of `mtu` bytes: as many
/// full-size frames as [`QUEUE_BUDGET_BYTES`] holds (44,325 at a 1500-byte
/// MTU), never fewer than [`DEFAULT_LIMIT`]. A full queue pins that much
/// kernel memory per impaired interface (a little more: each packet's
/// buffer is larger than its frame), so a long delay at a high rate costs
/// drops, not gigabytes.
pub(crate) fn max_limit(mtu: u32) -> u32 {
    let frames = QUEUE_BUDGET_BYTES / (u64::from(mtu) + ETHERNET_HEADER);
    u32::try_from(frames).unwrap_or(u32::MAX).max(DEFAULT_LIMIT)
}

/// A probability as a percentage that tc reads back to the same
/// probability: six decimals when they do, more when they do not.
fn tc_percent(p: u32) -> String {
    let mut text = String::new();
    for decimals in 6..=12 {
        let fixed = format!("{:.*}", decimals, percent(p));
        text = fixed
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string();
        if text.parse().is_ok_and(|v: f64| probability(v) == p) {
            break;
        }
    }
    format!("{text}%")
}
