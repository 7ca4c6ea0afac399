//! The qdiscs behind an impairment, as plan data: netem for delay, jitter,
//! loss, corruption and duplication, tbf for the rate, with the sizes
//! nslab gives them. `up`, `impair` and `explain` all read this one
//! layout; the kernel layer only encodes it.

mod netem;
mod tbf;

pub(crate) use netem::Netem;
#[cfg(test)]
pub(crate) use netem::{DEFAULT_LIMIT, max_limit, percent, probability};
pub(crate) use tbf::Tbf;

use crate::spec::Impair;

/// Bytes of an Ethernet header, on top of the MTU.
const ETHERNET_HEADER: u64 = 14;

/// The qdiscs nslab sets for an impairment on a link of `mtu` bytes:
/// netem for everything but the rate, tbf for the rate.
pub(crate) fn qdiscs_for(plan: &Impair, mtu: u32) -> (Option<Netem>, Option<Tbf>) {
    let tbf = plan.rate_bits.map(|bits| Tbf::for_rate(bits, mtu));
    let netem = plan
        .needs_netem()
        .then(|| Netem::from_plan(plan, mtu, tbf.as_ref()));
    (netem, tbf)
}

/// The handle majors of a new root qdisc and of its child: the first two
/// that `taken` does not hold (`1:` and `2:` on a new interface).
pub(crate) fn free_majors(taken: &[u16]) -> (u16, u16) {
    let mut free = (1..=0x7FFF_u16).filter(|m| !taken.contains(m));
    (free.next().unwrap_or(1), free.next().unwrap_or(2))
}
