//! netem's TCA_OPTIONS: unlike most qdiscs' options it is not a nest. It is
//! a raw `struct tc_netem_qopt` (six u32: latency and jitter in ticks,
//! limit in packets, loss, gap, duplicate) followed by netlink attributes
//! (`TCA_NETEM_CORRUPT`, `TCA_NETEM_LATENCY64`, ...), so it is built and read
//! as bytes here (linux/pkt_sched.h).

use crate::spec::{Impair, format_duration_us};

use super::psched::Psched;
use super::{ETHERNET_HEADER, Tbf, attribute, attributes};

/// `sizeof(struct tc_netem_qopt)`.
const QOPT_LEN: usize = 24;
/// `struct tc_netem_corrupt { u32 probability; u32 correlation; }`.
const TCA_NETEM_CORRUPT: u16 = 4;
/// Delay and jitter in nanoseconds, as s64 (Linux 4.15 and later).
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;
/// tc's default queue length, in packets: the shortest nslab sets.
pub(super) const DEFAULT_LIMIT: u32 = 1000;
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
pub(super) fn probability(percent: f64) -> u32 {
    (percent / 100.0 * f64::from(u32::MAX)).round_ties_even() as u32
}

/// netem's probability as a percentage.
pub(super) fn percent(probability: u32) -> f64 {
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

    /// The TCA_OPTIONS payload, byte for byte what tc (iproute2 6.1) sends
    /// for the same settings: delay and jitter in ticks in the struct, and
    /// only when that overflows 32 bits also as nanoseconds in
    /// TCA_NETEM_LATENCY64/JITTER64 (which the kernel then prefers).
    pub fn encode(&self, clock: &Psched) -> Vec<u8> {
        let latency = clock.usec_to_ticks(self.delay_us);
        let jitter = clock.usec_to_ticks(self.jitter_us);
        let mut out = Vec::with_capacity(64);
        for field in [
            clamp(latency),
            self.limit,
            self.loss,
            0, // gap: no reordering
            self.duplicate,
            clamp(jitter),
        ] {
            out.extend_from_slice(&field.to_ne_bytes());
        }
        if latency > u64::from(u32::MAX) {
            let ns = self.delay_us.saturating_mul(1000) as i64;
            attribute(&mut out, TCA_NETEM_LATENCY64, &ns.to_ne_bytes());
        }
        if jitter > u64::from(u32::MAX) {
            let ns = self.jitter_us.saturating_mul(1000) as i64;
            attribute(&mut out, TCA_NETEM_JITTER64, &ns.to_ne_bytes());
        }
        if self.corrupt != 0 {
            let mut corrupt = self.corrupt.to_ne_bytes().to_vec();
            corrupt.extend_from_slice(&0u32.to_ne_bytes()); // no correlation
            attribute(&mut out, TCA_NETEM_CORRUPT, &corrupt);
        }
        out
    }

    /// Reads a TCA_OPTIONS payload (a request's or the kernel's dump, which
    /// always carries the 64-bit delay and jitter).
    pub fn decode(payload: &[u8], clock: &Psched) -> Result<Netem, String> {
        let Some(qopt) = payload.get(..QOPT_LEN) else {
            return Err(format!(
                "netem options are {} bytes, shorter than struct tc_netem_qopt",
                payload.len()
            ));
        };
        let field = |i: usize| u32::from_ne_bytes([qopt[i], qopt[i + 1], qopt[i + 2], qopt[i + 3]]);
        let ticks_us = |ticks: u32| (clock.ticks_to_ns(u64::from(ticks)) + 500) / 1000;
        let mut netem = Netem {
            delay_us: ticks_us(field(0)),
            limit: field(4),
            loss: field(8),
            duplicate: field(16),
            jitter_us: ticks_us(field(20)),
            corrupt: 0,
        };
        // Nanoseconds round to the nearest microsecond.
        let ns_us = |v: &[u8]| -> Result<u64, String> {
            let ns = i64::from_ne_bytes(
                v.try_into()
                    .map_err(|_| "a 64-bit netem time is not 8 bytes")?,
            );
            Ok((ns.max(0) as u64 + 500) / 1000)
        };
        for (kind, value) in attributes(&payload[QOPT_LEN..])? {
            match kind {
                TCA_NETEM_LATENCY64 => netem.delay_us = ns_us(value)?,
                TCA_NETEM_JITTER64 => netem.jitter_us = ns_us(value)?,
                TCA_NETEM_CORRUPT => {
                    let p = value
                        .get(..4)
                        .ok_or("TCA_NETEM_CORRUPT is shorter than 4 bytes")?;
                    netem.corrupt = u32::from_ne_bytes([p[0], p[1], p[2], p[3]]);
                }
                _ => {}
            }
        }
        Ok(netem)
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
pub fn limit(plan: &Impair, mtu: u32, tbf: Option<&Tbf>) -> u32 {
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
pub(super) fn max_limit(mtu: u32) -> u32 {
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

fn clamp(ticks: u64) -> u32 {
    u32::try_from(ticks).unwrap_or(u32::MAX)
}
