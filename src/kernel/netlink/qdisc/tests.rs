//! Golden tests: nslab's qdisc options against the bytes iproute2's tc sent
//! for the same settings (and the kernel sent back), recorded in
//! `tests/fixtures/tc/` by `tests/fixtures/tc/capture` (strace of tc in a
//! throwaway net namespace; each fixture names its command, tc version and
//! /proc/net/psched). This kernel has no sch_netem, so for netem tc's own
//! message is the only reference there is.

use super::*;
use crate::plan::qdisc::{DEFAULT_LIMIT, max_limit, percent, probability, qdiscs_for};
use crate::spec::Impair;

fn fixture_text(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/tc/{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The TCA_OPTIONS bytes of a fixture: its one line that is not a
/// comment, in strace's C-string notation.
fn fixture(name: &str) -> Vec<u8> {
    let text = fixture_text(name);
    let line = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap_or_else(|| panic!("{name}: no data line"));
    unescape(line)
}

/// The qdisc and its arguments of the tc command a fixture was taken
/// with (its first line), e.g. `netem delay 10ms limit 1239`.
fn fixture_command(name: &str) -> String {
    let text = fixture_text(name);
    let first = text.lines().next().unwrap_or_default();
    first
        .strip_prefix("# tc qdisc add dev va root ")
        .unwrap_or_else(|| panic!("{name}: first line {first:?} is not its tc command"))
        .to_string()
}

/// strace's string notation: `\xNN`, C escapes and plain characters.
fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'x') => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                let hex = std::str::from_utf8(&hex).expect("hex digits");
                out.push(u8::from_str_radix(hex, 16).expect("hex byte"));
            }
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'0') => out.push(0),
            Some(other) => out.push(other),
            None => panic!("dangling backslash in {s:?}"),
        }
    }
    out
}

/// The psched clock the fixtures were taken with (their header says so).
const CLOCK: Psched = Psched::KERNEL;

fn impair(text: &str) -> Impair {
    let get = |key: &str| {
        text.split(',')
            .map(str::trim)
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix(' '))
    };
    crate::topology::parse_impair(&crate::topology::ImpairText {
        delay: get("delay"),
        jitter: get("jitter"),
        loss: get("loss"),
        rate: get("rate"),
        corrupt: get("corrupt"),
        duplicate: get("duplicate"),
    })
    .expect("valid impairment")
}

/// nslab's netem for `settings` on a 1500-byte MTU.
fn netem(settings: &str) -> Netem {
    qdiscs_for(&impair(settings), 1500).0.expect("netem")
}

#[test]
fn netem_options_are_tcs_bytes() {
    for (name, settings, limit) in [
        (
            "netem-all",
            "delay 20ms, jitter 5ms, loss 1%, corrupt 0.1%, duplicate 0.1%",
            3097,
        ),
        ("netem-delay", "delay 10ms", 1239),
        ("netem-loss", "loss 100%", DEFAULT_LIMIT),
    ] {
        let netem = netem(settings);
        assert_eq!(netem.limit, limit, "{name}: queue formula");
        let want = fixture(name);
        assert_eq!(netem.encode(&CLOCK), want, "{name}");
        // And tc's bytes read back to the same settings.
        assert_eq!(Netem::decode(&want, &CLOCK), Ok(netem), "{name}");
        // The tc arguments nslab explain writes are those that made them.
        assert_eq!(netem.tc_args(), fixture_command(name), "{name}");
    }
}

#[test]
fn netems_queue_holds_what_is_in_flight() {
    // No delay, or a short one: tc's 1000 packets.
    assert_eq!(netem("loss 1%").limit, DEFAULT_LIMIT);
    assert_eq!(netem("delay 1ms").limit, DEFAULT_LIMIT);
    // Without a rate: 1.5 x the full frames of 1 Gbit/s over the delay
    // and jitter. 100 ms: 12.5 MB, 8256.3 frames of 1514 bytes.
    assert_eq!(netem("delay 100ms").limit, 12_385);
    assert_eq!(netem("delay 80ms, jitter 20ms").limit, 12_385);
    // With a rate: the rate's traffic over the delay, plus tbf's queue.
    // 1 gbit over 100 ms is 12.5 MB, tbf holds 6.25 + 1.25 MB more.
    assert_eq!(netem("delay 100ms, rate 1gbit").limit, 19_816);
    // A slow rate needs little; jumbo frames fewer packets.
    assert_eq!(netem("delay 100ms, rate 10mbit").limit, DEFAULT_LIMIT);
    let jumbo = qdiscs_for(&impair("delay 100ms"), 9000).0.expect("netem");
    assert_eq!(jumbo.limit, 2_081);
    // Capped: 100 gbit over an hour would be billions of packets.
    assert_eq!(netem("delay 3600s, rate 100gbit").limit, max_limit(1500));
    assert_eq!(netem("delay 3600s").limit, max_limit(1500));
    // 1 gbit over a second (125 MB in flight) already needs more than the
    // cap allows.
    assert_eq!(netem("delay 1s").limit, max_limit(1500));
    let jumbo = qdiscs_for(&impair("delay 3600s"), 9000).0.expect("netem");
    assert_eq!(jumbo.limit, max_limit(9000));
}

#[test]
fn netems_queue_is_capped_by_memory() {
    // 64 MiB of full-size frames (MTU + 14 bytes).
    assert_eq!(max_limit(1500), 44_325);
    assert_eq!(max_limit(9000), 7_444);
    for mtu in [68, 1500, 9000, 65_535] {
        let bytes = u64::from(max_limit(mtu)) * (u64::from(mtu) + 14);
        assert!(bytes <= 64 << 20, "mtu {mtu}: {bytes} bytes");
    }
    // Never below tc's default, however large the frames.
    assert_eq!(max_limit(65_535), 1_023);
    assert_eq!(max_limit(1_000_000), DEFAULT_LIMIT);
}

#[test]
fn tc_arguments_keep_every_probability() {
    // A percentage with more decimals than six is written with enough of
    // them for tc to send the same probability.
    for percent in ["0.0000001%", "0.00001234%", "33.3333333%", "1%", "100%"] {
        let netem = netem(&format!("loss {percent}"));
        let args = netem.tc_args();
        let written = args
            .strip_prefix("netem loss ")
            .and_then(|a| a.strip_suffix("% limit 1000"))
            .unwrap_or_else(|| panic!("{args}"));
        let back: f64 = written.parse().expect("a number");
        assert_eq!(probability(back), netem.loss, "{percent}: {args}");
    }
    assert_eq!(netem("loss 1%").tc_args(), "netem loss 1% limit 1000");
}

#[test]
fn tbf_options_are_tcs_bytes() {
    for (name, rate_bits, burst, limit) in [
        ("tbf-10mbit", 10_000_000, 12_500, 75_000),
        ("tbf-50mbit", 50_000_000, 62_500, 375_000),
        // Above 2^32 bytes per second: TCA_TBF_RATE64.
        ("tbf-50gbit", 50_000_000_000, 62_500_000, 375_000_000),
    ] {
        let tbf = Tbf::for_rate(rate_bits, 1500);
        assert_eq!((tbf.burst, tbf.limit), (burst, limit), "{name}: formula");
        let want = fixture(name);
        assert_eq!(tbf.encode(&CLOCK), want, "{name}");
        assert_eq!(Tbf::decode(&want, &CLOCK), Ok(tbf), "{name}");
        assert_eq!(tbf.tc_args(), fixture_command(name), "{name}");
    }
}

#[test]
fn tbf_reads_the_kernels_dump() {
    // The kernel dumps no TCA_TBF_BURST: the bucket comes from its ticks.
    let tbf = Tbf::decode(&fixture("tbf-10mbit-dump"), &CLOCK).expect("decodes");
    assert_eq!(tbf, Tbf::for_rate(10_000_000, 1500));
    assert_eq!(tbf.rate_bits(), 10_000_000);
}

#[test]
fn bucket_formula() {
    // Slow link: two full frames, not 10 ms.
    let slow = Tbf::for_rate(1_000_000, 1500);
    assert_eq!(
        (slow.rate, slow.burst, slow.limit),
        (125_000, 3028, 6250 + 3028)
    );
    // Jumbo frames raise the floor.
    assert_eq!(Tbf::for_rate(1_000_000, 9000).burst, 18_028);
    // Fast link: 10 ms of traffic.
    assert_eq!(Tbf::for_rate(1_000_000_000, 1500).burst, 1_250_000);
    // The fastest rate allowed still fits the 32-bit byte fields.
    let fastest = Tbf::for_rate(crate::topology::MAX_RATE_BITS, 65535);
    assert_eq!(fastest.burst, 125_000_000);
    assert_eq!(fastest.limit, 750_000_000);
}

#[test]
fn long_delays_go_in_64_bits() {
    // 300 s is past the 32-bit tick field (274.9 s at 64 ns a tick): the
    // field saturates and TCA_NETEM_LATENCY64 carries nanoseconds.
    let netem = netem("delay 300s, jitter 1ms");
    let bytes = netem.encode(&CLOCK);
    assert_eq!(&bytes[..4], &u32::MAX.to_ne_bytes());
    assert_eq!(bytes.len(), 24 + 12);
    assert_eq!(&bytes[24..28], &[12, 0, 10, 0]);
    assert_eq!(&bytes[28..36], &300_000_000_000i64.to_ne_bytes());
    assert_eq!(Netem::decode(&bytes, &CLOCK), Ok(netem));
}

#[test]
fn percentages_round_as_tc() {
    assert_eq!(probability(1.0), 42_949_673);
    assert_eq!(probability(0.1), 4_294_967);
    assert_eq!(probability(100.0), u32::MAX);
    assert_eq!(probability(0.0), 0);
    assert!((percent(probability(0.5)) - 0.5).abs() < 1e-7);
}

#[test]
fn netem_decode_refuses_short_or_broken_options() {
    assert!(Netem::decode(&[0; 20], &CLOCK).is_err());
    let mut bytes = fixture("netem-all");
    bytes[24] = 200; // an attribute longer than the payload
    assert!(Netem::decode(&bytes, &CLOCK).is_err());
    assert!(Tbf::decode(&[], &CLOCK).is_err());
}

fn qdisc(handle: u32, parent: u32, kind: &str, options: Option<Vec<u8>>) -> QdiscInfo {
    QdiscInfo {
        index: 2,
        handle,
        parent,
        kind: kind.into(),
        options,
    }
}

#[test]
fn the_root_is_the_root_qdisc_that_is_not_the_default() {
    assert_eq!(root(&[]), None);
    // The kernel's default (handle 0), and qdiscs that are not the root.
    let default = qdisc(0, TC_H_ROOT, "noqueue", None);
    let ingress = qdisc(0xFFFF_0000, 0xFFFF_FFF1, "ingress", None);
    assert_eq!(root(&[default.clone(), ingress.clone()]), None);
    let pfifo = qdisc(0x0007_0000, TC_H_ROOT, "pfifo", None);
    let child = qdisc(0x0008_0000, 0x0007_0001, "tbf", None);
    assert_eq!(root(&[ingress, child, pfifo.clone()]), Some(&pfifo));
}

#[test]
fn the_root_qdisc_tells_the_impairment() {
    assert_eq!(root_qdisc(&[], &CLOCK), Ok(RootQdisc::Default));
    assert_eq!(
        root_qdisc(&[qdisc(0, TC_H_ROOT, "noqueue", None)], &CLOCK),
        Ok(RootQdisc::Default)
    );
    assert_eq!(
        root_qdisc(&[qdisc(0x8001_0000, TC_H_ROOT, "fq_codel", None)], &CLOCK),
        Ok(RootQdisc::Other("fq_codel".into()))
    );
    // tbf alone (its inner bfifo is not a child nslab cares about).
    let Ok(RootQdisc::Impaired { plan, netem, tbf }) = root_qdisc(
        &[
            qdisc(
                0x0001_0000,
                TC_H_ROOT,
                "tbf",
                Some(fixture("tbf-10mbit-dump")),
            ),
            qdisc(0x8002_0000, 0x0001_0001, "bfifo", None),
        ],
        &CLOCK,
    ) else {
        panic!("tbf root not read");
    };
    assert_eq!(plan, impair("rate 10mbit"));
    assert_eq!((netem, tbf), (None, Some(Tbf::for_rate(10_000_000, 1500))));
    // netem at the root with tbf on its class 1.
    let Ok(RootQdisc::Impaired { plan, .. }) = root_qdisc(
        &[
            qdisc(0x0003_0000, TC_H_ROOT, "netem", Some(fixture("netem-all"))),
            qdisc(0x0004_0000, 0x0003_0001, "tbf", Some(fixture("tbf-50mbit"))),
        ],
        &CLOCK,
    ) else {
        panic!("netem root not read");
    };
    assert_eq!(
        plan.to_string(),
        "delay 20ms jitter 5ms loss 1% corrupt 0.1% duplicate 0.1% rate 50mbit"
    );
    assert!(
        root_qdisc(&[qdisc(0x0001_0000, TC_H_ROOT, "netem", None)], &CLOCK).is_err(),
        "netem without options"
    );
}

#[test]
fn attributes_pad_to_four_bytes() {
    let mut out = Vec::new();
    attribute(&mut out, 1, &[0xAA]);
    attribute(&mut out, 2, &[]);
    assert_eq!(out, [5, 0, 1, 0, 0xAA, 0, 0, 0, 4, 0, 2, 0]);
    assert_eq!(attributes(&out), Ok(vec![(1, &[0xAA][..]), (2, &[][..])]));
}
