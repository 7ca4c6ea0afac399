//! netem's TCA_OPTIONS: unlike most qdiscs' options it is not a nest. It is
//! a raw `struct tc_netem_qopt` (six u32: latency and jitter in ticks,
//! limit in packets, loss, gap, duplicate) followed by netlink attributes
//! (`TCA_NETEM_CORRUPT`, `TCA_NETEM_LATENCY64`, ...), so it is built and read
//! as bytes here (linux/pkt_sched.h).

use crate::plan::qdisc::Netem;

use super::attribute;
use super::attributes;
use super::psched::Psched;

/// `sizeof(struct tc_netem_qopt)`.
const QOPT_LEN: usize = 24;
/// `struct tc_netem_corrupt { u32 probability; u32 correlation; }`.
const TCA_NETEM_CORRUPT: u16 = 4;
/// Delay and jitter in nanoseconds, as s64 (Linux 4.15 and later).
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;

impl Netem {
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

fn clamp(ticks: u64) -> u32 {
    u32::try_from(ticks).unwrap_or(u32::MAX)
}
