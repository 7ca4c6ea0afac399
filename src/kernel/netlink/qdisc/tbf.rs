//! tbf's TCA_OPTIONS: a nest of TCA_TBF_PARMS (`struct tc_tbf_qopt`), the
//! bucket size in bytes (TCA_TBF_BURST), the rate in 64 bits when it does
//! not fit the struct's 32 (TCA_TBF_RATE64) and tc's rate table
//! (TCA_TBF_RTAB), in tc's order (linux/pkt_sched.h).
//! (linux/pkt_sched.h). The bucket's sizing is `plan::qdisc::Tbf`'s.

use super::psched::Psched;
use super::{attribute, attributes};
use crate::plan::qdisc::Tbf;

const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RTAB: u16 = 2;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
/// `sizeof(struct tc_tbf_qopt)`: two `tc_ratespec` of 12 bytes, then
/// limit, buffer and mtu.
const QOPT_LEN: usize = 36;
/// `TC_LINKLAYER_ETHERNET`: sizes are taken as they are (the kernel then
/// ignores the rate table).
const LINKLAYER_ETHERNET: u8 = 1;
/// The rate table's cell size, 2^3 bytes: what tc derives from its
/// default MTU of 2047 (the smallest cell that spans it in 256 cells).
const CELL_LOG: u8 = 3;

impl Tbf {
    /// The TCA_OPTIONS payload, byte for byte what tc (iproute2 6.1) sends
    /// for `tbf rate R burst B limit L`.
    pub fn encode(&self, clock: &Psched) -> Vec<u8> {
        let rate32 = u32::try_from(self.rate).unwrap_or(u32::MAX);
        let mut qopt = Vec::with_capacity(QOPT_LEN);
        // struct tc_ratespec rate.
        qopt.extend_from_slice(&[CELL_LOG, LINKLAYER_ETHERNET]);
        qopt.extend_from_slice(&0u16.to_ne_bytes()); // overhead
        qopt.extend_from_slice(&(-1i16).to_ne_bytes()); // cell_align
        qopt.extend_from_slice(&0u16.to_ne_bytes()); // mpu
        qopt.extend_from_slice(&rate32.to_ne_bytes());
        // struct tc_ratespec peakrate: none.
        qopt.extend_from_slice(&[0; 12]);
        qopt.extend_from_slice(&self.limit.to_ne_bytes());
        // The bucket in ticks; the kernel takes TCA_TBF_BURST instead.
        qopt.extend_from_slice(
            &clock
                .xmit_ticks(u64::from(rate32), u64::from(self.burst))
                .to_ne_bytes(),
        );
        qopt.extend_from_slice(&0u32.to_ne_bytes()); // mtu: no peak rate

        let mut out = Vec::with_capacity(1100);
        attribute(&mut out, TCA_TBF_PARMS, &qopt);
        attribute(&mut out, TCA_TBF_BURST, &self.burst.to_ne_bytes());
        if self.rate > u64::from(u32::MAX) {
            attribute(&mut out, TCA_TBF_RATE64, &self.rate.to_ne_bytes());
        }
        // Only kernels older than 3.8 (no link layer) read the table; tc
        // always sends it.
        let rtab: Vec<u8> = (0..256u64)
            .flat_map(|i| {
                clock
                    .xmit_ticks(u64::from(rate32), (i + 1) << CELL_LOG)
                    .to_ne_bytes()
            })
            .collect();
        attribute(&mut out, TCA_TBF_RTAB, &rtab);
        out
    }

    /// Reads a TCA_OPTIONS payload. The kernel's dump has no TCA_TBF_BURST:
    /// the bucket comes back from its size in ticks.
    pub fn decode(payload: &[u8], clock: &Psched) -> Result<Tbf, String> {
        let mut qopt = None;
        let mut rate64 = None;
        let mut burst = None;
        for (kind, value) in attributes(payload)? {
            match kind {
                TCA_TBF_PARMS => qopt = Some(value),
                TCA_TBF_RATE64 => {
                    rate64 = Some(u64::from_ne_bytes(
                        value
                            .try_into()
                            .map_err(|_| "TCA_TBF_RATE64 is not 8 bytes")?,
                    ))
                }
                TCA_TBF_BURST => {
                    burst = Some(u32::from_ne_bytes(
                        value
                            .try_into()
                            .map_err(|_| "TCA_TBF_BURST is not 4 bytes")?,
                    ))
                }
                _ => {}
            }
        }
        let qopt = qopt
            .filter(|q| q.len() >= QOPT_LEN)
            .ok_or("tbf options lack a whole TCA_TBF_PARMS")?;
        let field = |i: usize| u32::from_ne_bytes([qopt[i], qopt[i + 1], qopt[i + 2], qopt[i + 3]]);
        let rate = rate64.unwrap_or(u64::from(field(8)));
        let buffer = field(28);
        let burst = burst.unwrap_or_else(|| {
            u32::try_from(clock.xmit_size(rate, u64::from(buffer))).unwrap_or(u32::MAX)
        });
        Ok(Tbf {
            rate,
            burst,
            limit: field(24),
        })
    }
}
