//! The packet scheduler's clock, as /proc/net/psched tells it. Older qdisc
//! fields (netem's delay, tbf's bucket size) are in scheduler ticks, and
//! tc converts to them from this file; nslab does the same, with tc's
//! rounding, so that its messages are tc's.

/// The first three fields of /proc/net/psched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Psched {
    /// Nanoseconds per microsecond (1000); tc calls it `t2us`.
    pub ns_per_usec: u32,
    /// Nanoseconds per tick (64 since Linux 2.6.31); tc calls it `us2t`.
    pub ns_per_tick: u32,
    /// The clock resolution the kernel reports (1000000).
    pub clock_res: u32,
}

impl Psched {
    /// What every kernel since 2.6.31 reports (`PSCHED_SHIFT` 6).
    pub const KERNEL: Psched = Psched {
        ns_per_usec: 1000,
        ns_per_tick: 64,
        clock_res: 1_000_000,
    };

    /// Parses the file's text (`000003e8 00000040 000f4240 3b9aca00`).
    pub fn parse(text: &str) -> Option<Psched> {
        let mut fields = text
            .split_whitespace()
            .map(|f| u32::from_str_radix(f, 16).ok());
        let psched = Psched {
            ns_per_usec: fields.next()??,
            ns_per_tick: fields.next()??,
            clock_res: fields.next()??,
        };
        (psched.ns_per_usec > 0 && psched.ns_per_tick > 0 && psched.clock_res > 0).then_some(psched)
    }

    /// The running kernel's, or [`Psched::KERNEL`] when the file cannot be
    /// read (every kernel nslab runs on has the same clock).
    pub fn read() -> Psched {
        std::fs::read_to_string("/proc/net/psched")
            .ok()
            .and_then(|t| Psched::parse(&t))
            .unwrap_or(Psched::KERNEL)
    }

    /// Ticks per microsecond, computed as tc's `tc_core_init` does (with
    /// its hack for a nanosecond clock resolution).
    fn ticks_per_usec(&self) -> f64 {
        let t2us = if self.clock_res == 1_000_000_000 {
            self.ns_per_tick
        } else {
            self.ns_per_usec
        };
        f64::from(t2us) / f64::from(self.ns_per_tick) * (f64::from(self.clock_res) / 1e6)
    }

    /// Microseconds → ticks, truncated like tc's `tc_core_time2tick`.
    pub fn usec_to_ticks(&self, usec: u64) -> u64 {
        (usec as f64 * self.ticks_per_usec()) as u64
    }

    /// Ticks → nanoseconds, as the kernel converts them (`PSCHED_TICKS2NS`).
    pub fn ticks_to_ns(&self, ticks: u64) -> u64 {
        ticks.saturating_mul(u64::from(self.ns_per_tick))
    }

    /// Ticks to send `size` bytes at `rate` bytes per second, as tc's
    /// `tc_calc_xmittime` computes them: whole microseconds first, then
    /// ticks, both truncated (and here saturated rather than wrapped).
    pub fn xmit_ticks(&self, rate: u64, size: u64) -> u32 {
        let usec = (1e6 * (size as f64 / rate.max(1) as f64)) as u32;
        (f64::from(usec) * self.ticks_per_usec()) as u32
    }

    /// The bytes sent in `ticks` at `rate` bytes per second (tc's
    /// `tc_calc_xmitsize`), rounded to the nearest byte.
    pub fn xmit_size(&self, rate: u64, ticks: u64) -> u64 {
        (rate as f64 * self.ticks_to_ns(ticks) as f64 / 1e9).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_psched() {
        // This machine's file, as the golden tests' fixtures were taken with.
        assert_eq!(
            Psched::parse("000003e8 00000040 000f4240 3b9aca00\n"),
            Some(Psched::KERNEL)
        );
        assert_eq!(Psched::parse("000003e8 00000040"), None);
        assert_eq!(Psched::parse("000003e8 0000004g 000f4240"), None);
        assert_eq!(Psched::parse("000003e8 00000000 000f4240"), None);
    }

    #[test]
    fn converts_as_tc_does() {
        let clock = Psched::KERNEL;
        assert_eq!(clock.ticks_per_usec(), 15.625);
        assert_eq!(clock.usec_to_ticks(20_000), 312_500);
        assert_eq!(clock.ticks_to_ns(312_500), 20_000_000);
        // tc: 4096 bytes at 1250000 B/s is 3276.8 us, truncated to 3276,
        // times 15.625 is 51187.5, truncated to 51187.
        assert_eq!(clock.xmit_ticks(1_250_000, 4096), 51_187);
        assert_eq!(clock.xmit_size(1_250_000, 156_250), 12_500);
        // A nanosecond clock resolution takes tc's compatibility path.
        let ns = Psched {
            clock_res: 1_000_000_000,
            ..clock
        };
        assert_eq!(ns.ticks_per_usec(), 1000.0);
    }
}
