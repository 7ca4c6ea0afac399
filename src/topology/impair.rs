//! Impairment values as written in a topology or on the command line
//! (`20ms`, `1%`, `10mbit`), checked and turned into an [`Impair`].

use crate::spec::Impair;

/// The longest delay accepted (one hour).
pub(crate) const MAX_DELAY_US: u64 = 3_600_000_000;
/// The largest jitter accepted: netem draws the random part of the delay
/// as a signed 32-bit number of nanoseconds (`tabledist`'s sigma), so
/// Linux 5.10 and later cap jitter at `INT_MAX` ns (about 2.147 s) and
/// older kernels wrap around past it.
pub(crate) const MAX_JITTER_US: u64 = i32::MAX as u64 / 1000;
/// The lowest rate accepted, in bits per second.
pub(crate) const MIN_RATE_BITS: u64 = 1_000;
/// The highest rate accepted, in bits per second (100gbit: the token
/// bucket's queue, 50 ms at the rate, still fits its 32-bit byte limit).
pub(crate) const MAX_RATE_BITS: u64 = 100_000_000_000;

/// The impairment keys, in the order they are checked and shown.
pub(crate) const IMPAIR_KEYS: [&str; 6] =
    ["delay", "jitter", "loss", "rate", "corrupt", "duplicate"];

/// The impairment values of one end, as text (a YAML number becomes its text).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ImpairText<'a> {
    pub delay: Option<&'a str>,
    pub jitter: Option<&'a str>,
    pub loss: Option<&'a str>,
    pub rate: Option<&'a str>,
    pub corrupt: Option<&'a str>,
    pub duplicate: Option<&'a str>,
}

/// Checks every value; on failure returns each problem with the key it is
/// about (`""` for one about the whole).
///
/// A zero value (`0us`, `0%`) is the same as leaving the key out: it
/// impairs nothing, and the kernel keeps no trace of it. A plan whose
/// values are all zero is therefore empty: no impairment.
pub(crate) fn parse_impair(text: &ImpairText<'_>) -> Result<Impair, Vec<(&'static str, String)>> {
    let mut problems = Vec::new();
    let delay_us = checked(&mut problems, "delay", text.delay, parse_duration_us);
    let jitter_us = checked(&mut problems, "jitter", text.jitter, parse_jitter_us);
    let loss = checked(&mut problems, "loss", text.loss, parse_percent);
    let rate_bits = checked(&mut problems, "rate", text.rate, parse_rate_bits);
    let corrupt = checked(&mut problems, "corrupt", text.corrupt, parse_percent);
    let duplicate = checked(&mut problems, "duplicate", text.duplicate, parse_percent);
    let some_us = |us: Option<u64>| us.filter(|&us| us != 0);
    let some_percent = |p: Option<f64>| p.filter(|&p| p != 0.0);
    // (A zero jitter is nothing to vary; one that did not parse still
    // needs a delay.)
    if let (Some(j), false) = (text.jitter, jitter_us == Some(0)) {
        match (text.delay, delay_us) {
            (None, _) => problems.push((
                "jitter",
                format!("jitter {j:?} needs a delay: jitter varies the delay"),
            )),
            (Some(_), Some(0)) => problems.push((
                "jitter",
                format!("jitter {j:?} needs a delay above 0: jitter varies the delay"),
            )),
            _ => {}
        }
    }
    let plan = Impair {
        delay_us: some_us(delay_us),
        jitter_us: some_us(jitter_us),
        loss: some_percent(loss),
        corrupt: some_percent(corrupt),
        duplicate: some_percent(duplicate),
        rate_bits,
    };
    if *text == ImpairText::default() {
        problems.push((
            "",
            format!(
                "impair sets nothing: give at least one of {}",
                IMPAIR_KEYS.join(", ")
            ),
        ));
    }
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(problems)
    }
}

/// Parses one value when given; a problem names the key and the value.
fn checked<T>(
    problems: &mut Vec<(&'static str, String)>,
    key: &'static str,
    value: Option<&str>,
    parse: fn(&str) -> Result<T, String>,
) -> Option<T> {
    match parse(value?) {
        Ok(x) => Some(x),
        Err(why) => {
            problems.push((key, format!("{key} {:?}: {why}", value.unwrap_or_default())));
            None
        }
    }
}

/// `12`, `0.5`: digits with at most one decimal point, as (whole, fraction
/// digits). No sign, no exponent.
fn split_decimal(number: &str) -> Option<(&str, &str)> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    // A point needs digits after it: `5.` is refused, like `.5`.
    let point_ok = !number.contains('.') || !fraction.is_empty();
    (!whole.is_empty() && digits(whole) && digits(fraction) && point_ok)
        .then_some((whole, fraction))
}

/// `whole.fraction × scale` exactly, when it is a whole number that fits a
/// u64: `Err(true)` when a fraction is left, `Err(false)` when it is too big.
fn scale_decimal(whole: &str, fraction: &str, scale: u64) -> Result<u64, bool> {
    // Past 18 decimals no unit here leaves a whole number anyway.
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > 18 || whole.len() > 20 {
        return Err(fraction.len() > 18);
    }
    let ten_k = 10u128.pow(fraction.len() as u32);
    let whole: u128 = whole.parse().map_err(|_| false)?;
    let fraction: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| false)?
    };
    let product = (whole * ten_k + fraction)
        .checked_mul(u128::from(scale))
        .ok_or(false)?;
    if product % ten_k != 0 {
        return Err(true);
    }
    u64::try_from(product / ten_k).map_err(|_| false)
}

/// `20ms`, `1.5s`, `250us` → microseconds. At most [`MAX_DELAY_US`].
pub(crate) fn parse_duration_us(text: &str) -> Result<u64, String> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1_000)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000_000)
    } else {
        return Err("needs a unit: us, ms or s (e.g. 20ms)".into());
    };
    let (whole, fraction) =
        split_decimal(number).ok_or("is not a number with a unit (e.g. 20ms)")?;
    let us = scale_decimal(whole, fraction, scale).map_err(|fractional| {
        if fractional {
            "is not a whole number of microseconds".to_string()
        } else {
            "is too long".to_string()
        }
    })?;
    if us > MAX_DELAY_US {
        return Err("is too long: at most 3600s".into());
    }
    Ok(us)
}

/// A jitter: a duration (see [`parse_duration_us`]) of at most
/// [`MAX_JITTER_US`].
pub(crate) fn parse_jitter_us(text: &str) -> Result<u64, String> {
    let us = parse_duration_us(text)?;
    if us > MAX_JITTER_US {
        return Err(format!(
            "is too large: at most {MAX_JITTER_US}us (about 2.147s): netem takes jitter as a signed 32-bit number of nanoseconds (Linux 5.10 and later cap it there, older kernels wrap around)"
        ));
    }
    Ok(us)
}

/// `1%`, `0.1%` → a percentage from 0 to 100.
pub(crate) fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.strip_suffix('%').ok_or("needs a % sign (e.g. 1%)")?;
    split_decimal(number).ok_or("is not a percentage (e.g. 0.5%)")?;
    let value: f64 = number
        .parse()
        .map_err(|_| "is not a percentage (e.g. 0.5%)".to_string())?;
    if !(0.0..=100.0).contains(&value) {
        return Err("is out of range: use 0% to 100%".into());
    }
    Ok(value)
}

/// tc's rate units (case does not matter, as in tc): bits per second with
/// `bit`, `kbit`, `mbit`, `gbit`; bytes per second with `bps`, `kbps`,
/// `mbps`, `gbps`. Decimal multiples (k = 1000).
const RATE_UNITS: [(&str, u64); 8] = [
    ("kbit", 1_000),
    ("mbit", 1_000_000),
    ("gbit", 1_000_000_000),
    ("bit", 1),
    ("kbps", 8_000),
    ("mbps", 8_000_000),
    ("gbps", 8_000_000_000),
    ("bps", 8),
];

/// `10mbit`, `1.5gbit`, `500kbps` → bits per second, from
/// [`MIN_RATE_BITS`] to [`MAX_RATE_BITS`], a whole number of bytes per
/// second (tbf counts bytes: `1.5kbit`, 187.5 bytes, would become 1496
/// bits).
pub(crate) fn parse_rate_bits(text: &str) -> Result<u64, String> {
    let lower = text.to_ascii_lowercase();
    let Some((number, scale)) = RATE_UNITS
        .iter()
        .find_map(|(unit, scale)| lower.strip_suffix(unit).map(|n| (n, *scale)))
    else {
        return Err("needs a unit: bit, kbit, mbit, gbit (bits per second) or bps, kbps, mbps, gbps (bytes per second), e.g. 10mbit".into());
    };
    let (whole, fraction) =
        split_decimal(number).ok_or("is not a number with a unit (e.g. 10mbit)")?;
    let bits = scale_decimal(whole, fraction, scale).map_err(|fractional| {
        if fractional {
            "is not a whole number of bits per second".to_string()
        } else {
            "is too fast: at most 100gbit".to_string()
        }
    })?;
    if bits < MIN_RATE_BITS {
        return Err("is too slow: at least 1kbit".into());
    }
    if bits > MAX_RATE_BITS {
        return Err("is too fast: at most 100gbit".into());
    }
    if bits % 8 != 0 {
        return Err(format!(
            "is not a whole number of bytes per second: the kernel counts bytes, so use a multiple of 8 bits ({}bit or {}bit)",
            bits / 8 * 8,
            bits / 8 * 8 + 8
        ));
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, us) in [
            ("20ms", 20_000),
            ("5ms", 5_000),
            ("250us", 250),
            ("1.5s", 1_500_000),
            ("0.5ms", 500),
            ("0us", 0),
            ("3600s", MAX_DELAY_US),
            ("1.000s", 1_000_000),
        ] {
            assert_eq!(parse_duration_us(text), Ok(us), "{text}");
        }
        for (text, want) in [
            ("20", "needs a unit"),
            ("20sec", "needs a unit"),
            ("20 ms", "not a number"),
            ("-5ms", "not a number"),
            ("ms", "not a number"),
            (".5ms", "not a number"),
            ("5.ms", "not a number"),
            ("1e3ms", "not a number"),
            ("1.5us", "whole number of microseconds"),
            ("3601s", "at most 3600s"),
            ("99999999999999999999999s", "too long"),
        ] {
            let e = parse_duration_us(text).expect_err(text);
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("1%"), Ok(1.0));
        assert_eq!(parse_percent("0.1%"), Ok(0.1));
        assert_eq!(parse_percent("100%"), Ok(100.0));
        assert_eq!(parse_percent("0%"), Ok(0.0));
        for (text, want) in [
            ("1", "needs a % sign"),
            ("0.5", "needs a % sign"),
            ("101%", "out of range"),
            ("-1%", "not a percentage"),
            ("nan%", "not a percentage"),
            ("1e1%", "not a percentage"),
            ("%", "not a percentage"),
        ] {
            let e = parse_percent(text).expect_err(text);
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn rates_use_tc_units() {
        for (text, bits) in [
            ("10mbit", 10_000_000),
            ("10Mbit", 10_000_000),
            ("1.5gbit", 1_500_000_000),
            ("64kbit", 64_000),
            ("1000bit", 1_000),
            ("1kbps", 8_000),
            ("1MBps", 8_000_000),
            ("2mbps", 16_000_000),
            ("1gbps", 8_000_000_000),
            ("125bps", 1_000),
            ("100gbit", MAX_RATE_BITS),
        ] {
            assert_eq!(parse_rate_bits(text), Ok(bits), "{text}");
        }
        for (text, want) in [
            ("10", "needs a unit"),
            ("10mb", "needs a unit"),
            ("10 mbit", "not a number"),
            ("mbit", "not a number"),
            ("0.5bit", "whole number"),
            ("999bit", "at least 1kbit"),
            ("0mbit", "at least 1kbit"),
            ("101gbit", "at most 100gbit"),
            ("99999999999999999999gbit", "at most 100gbit"),
            // tbf counts bytes: 187.5 bytes per second would be 1496bit.
            (
                "1.5kbit",
                "whole number of bytes per second: the kernel counts bytes, so use a multiple of 8 bits (1496bit or 1504bit)",
            ),
            ("1001bit", "multiple of 8 bits"),
            ("10.000001mbit", "multiple of 8 bits"),
        ] {
            let e = parse_rate_bits(text).expect_err(text);
            assert!(e.contains(want), "{text}: {e}");
        }
        assert_eq!(parse_rate_bits("1.504kbit"), Ok(1_504));
    }

    #[test]
    fn jitter_stays_within_netems_32_bits() {
        assert_eq!(MAX_JITTER_US, 2_147_483);
        assert_eq!(parse_jitter_us("2147483us"), Ok(2_147_483));
        assert_eq!(parse_jitter_us("2s"), Ok(2_000_000));
        for text in ["2147484us", "2.2s", "3600s"] {
            let e = parse_jitter_us(text).expect_err(text);
            assert!(
                e.contains("at most 2147483us") && e.contains("Linux 5.10"),
                "{text}: {e}"
            );
        }
        // A delay may be longer: its 64-bit field has room.
        assert_eq!(parse_duration_us("3s"), Ok(3_000_000));
        let problems = parse_impair(&ImpairText {
            delay: Some("10s"),
            jitter: Some("3s"),
            ..ImpairText::default()
        })
        .expect_err("jitter too large");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "jitter");
        assert!(
            problems[0].1.starts_with("jitter \"3s\": is too large"),
            "{problems:?}"
        );
    }

    #[test]
    fn zero_values_impair_nothing() {
        // A zero value is left out; all zero is no impairment at all.
        let plan = parse_impair(&ImpairText {
            delay: Some("20ms"),
            jitter: Some("0us"),
            loss: Some("0%"),
            corrupt: Some("0.0%"),
            ..ImpairText::default()
        })
        .expect("valid");
        assert_eq!(
            plan,
            Impair {
                delay_us: Some(20_000),
                ..Impair::default()
            }
        );
        let zero = parse_impair(&ImpairText {
            delay: Some("0ms"),
            loss: Some("0%"),
            duplicate: Some("0%"),
            ..ImpairText::default()
        })
        .expect("valid");
        assert!(zero.is_empty(), "{zero:?}");
        assert_eq!(zero.to_string(), "nothing");
        // A jitter needs a delay that is not zero.
        let problems = parse_impair(&ImpairText {
            delay: Some("0us"),
            jitter: Some("5ms"),
            ..ImpairText::default()
        })
        .expect_err("jitter without a delay");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].1.contains("needs a delay above 0"),
            "{problems:?}"
        );
        // A zero jitter without a delay is nothing, not a problem.
        let plan = parse_impair(&ImpairText {
            jitter: Some("0us"),
            loss: Some("1%"),
            ..ImpairText::default()
        })
        .expect("valid");
        assert_eq!(plan.to_string(), "loss 1%");
    }

    #[test]
    fn a_whole_impairment() {
        let plan = parse_impair(&ImpairText {
            delay: Some("20ms"),
            jitter: Some("5ms"),
            loss: Some("1%"),
            rate: Some("10mbit"),
            corrupt: Some("0.1%"),
            duplicate: Some("0.1%"),
        })
        .expect("valid");
        assert_eq!(
            plan,
            Impair {
                delay_us: Some(20_000),
                jitter_us: Some(5_000),
                loss: Some(1.0),
                corrupt: Some(0.1),
                duplicate: Some(0.1),
                rate_bits: Some(10_000_000),
            }
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let problems = parse_impair(&ImpairText {
            jitter: Some("5"),
            loss: Some("200%"),
            rate: Some("fast"),
            corrupt: Some("x"),
            duplicate: Some("1"),
            ..ImpairText::default()
        })
        .expect_err("invalid");
        let keys: Vec<&str> = problems.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            ["jitter", "loss", "rate", "corrupt", "duplicate", "jitter"],
            "{problems:?}"
        );
        assert!(problems[5].1.contains("needs a delay"), "{problems:?}");
        let nothing = parse_impair(&ImpairText::default()).expect_err("empty");
        assert_eq!(nothing.len(), 1);
        assert_eq!(nothing[0].0, "");
        assert!(nothing[0].1.contains("sets nothing"), "{nothing:?}");
    }
}
