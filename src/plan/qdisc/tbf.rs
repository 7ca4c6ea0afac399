//! tbf's settings for a rate: a token bucket sized for an accurate
//! long-run rate. The bytes the kernel takes are built in
//! `kernel::netlink::qdisc`.
//!
//! Bucket and queue are sized for an accurate long-run rate:
//!
//! - burst = max(rate × 10 ms, 2 × (MTU + 14)) bytes. At least two
//!   full-size frames (an Ethernet header is 14 bytes), so no frame is ever
//!   bigger than the bucket (the kernel drops such frames). And 10 ms
//!   worth of tokens, so that the bucket still has room when the
//!   scheduler's timer fires late on a loaded machine: tokens that arrive
//!   while the bucket is full are lost, and lost tokens lower the rate.
//! - limit = rate × 50 ms + burst bytes: tc's `latency 50ms`. The queue
//!   keeps the link busy while TCP backs off after a drop, without growing
//!   into seconds of delay.
//!
//! Over a transfer of T seconds the rate can be above the target by at most
//! burst / T (the bucket starts full): 1 % for 10 ms of burst over 1 s.

use super::ETHERNET_HEADER;
use crate::spec::format_rate_bits;

/// How much traffic the bucket holds: 10 ms (1/100 s) at the rate.
const BURST_PER_SECOND: u64 = 100;
/// How much traffic may wait: 50 ms (1/20 s) at the rate, plus the bucket.
const LATENCY_PER_SECOND: u64 = 20;

/// tbf's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tbf {
    /// Bytes per second.
    pub rate: u64,
    /// Bucket size in bytes: the most sent at once.
    pub burst: u32,
    /// Bytes that may wait in the queue.
    pub limit: u32,
}

impl Tbf {
    /// The bucket for a rate in bits per second on a link of `mtu` bytes
    /// (see the module comment for the formula).
    pub fn for_rate(rate_bits: u64, mtu: u32) -> Tbf {
        let rate = (rate_bits / 8).max(1);
        let burst = (rate / BURST_PER_SECOND).max(2 * (u64::from(mtu) + ETHERNET_HEADER));
        let limit = rate / LATENCY_PER_SECOND + burst;
        Tbf {
            rate,
            burst: u32::try_from(burst).unwrap_or(u32::MAX),
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        }
    }

    /// Bits per second.
    pub fn rate_bits(&self) -> u64 {
        self.rate.saturating_mul(8)
    }

    /// The same settings as `tc qdisc ... tbf` arguments: `tbf rate
    /// 10mbit burst 12500 limit 75000`, which make tc send
    /// [`Tbf::encode`]'s bytes (the golden tests check it).
    pub fn tc_args(&self) -> String {
        format!(
            "tbf rate {} burst {} limit {}",
            format_rate_bits(self.rate_bits()),
            self.burst,
            self.limit
        )
    }
}
