//! The requests of a replacement, with the kernel's answers made up: the
//! undo after a refused tbf child, and which refusals name a missing
//! module. (This kernel has no sch_netem, so the netem-then-tbf path cannot
//! run for real here.)

use std::num::NonZeroI32;

use rtnetlink::packet_core::ErrorMessage;

use super::*;

const CLOCK: Psched = Psched::KERNEL;

/// A refusal with `errno`, and the kernel's words when `said`.
fn nack(errno: i32, said: Option<&str>) -> rtnetlink::Error {
    // The request (a bare 16-byte header), then NLMSGERR_ATTR_MSG.
    let mut header = 16u32.to_ne_bytes().to_vec();
    header.resize(16, 0);
    if let Some(said) = said {
        let value = [said.as_bytes(), &[0]].concat();
        let len = u16::try_from(4 + value.len()).expect("short");
        header.extend_from_slice(&len.to_ne_bytes());
        header.extend_from_slice(&1u16.to_ne_bytes());
        header.extend_from_slice(&value);
        header.resize(header.len().next_multiple_of(4), 0);
    }
    let mut message = ErrorMessage::default();
    message.code = NonZeroI32::new(-errno);
    message.header = header;
    rtnetlink::Error::NetlinkError(message)
}

/// Runs `replace` against answers given in order (then acks): the steps
/// sent and the result.
fn run(
    replace: ReplaceRoot,
    answers: Vec<Result<(), rtnetlink::Error>>,
) -> (Vec<Step>, Result<(), NetlinkError>) {
    let mut steps = Vec::new();
    let mut answers = answers.into_iter();
    let result = futures::executor::block_on(replace.run(&CLOCK, async |step: Step| {
        steps.push(step);
        answers.next().unwrap_or(Ok(()))
    }));
    (steps, result)
}

fn plan(delay_us: Option<u64>, rate_bits: Option<u64>) -> Impair {
    Impair {
        delay_us,
        rate_bits,
        ..Impair::default()
    }
}

fn replace(plan: &Impair, taken: Vec<u16>, previous: Previous) -> ReplaceRoot {
    ReplaceRoot::for_plan(2, plan, 1500, taken, previous, "lab/a:eth0".into()).expect("a qdisc")
}

/// (kind, parent, major) of each RTM_NEWQDISC; `del` for a deletion.
fn shape(steps: &[Step]) -> Vec<(String, u32, u16)> {
    steps
        .iter()
        .map(|s| match s {
            Step::New {
                kind,
                parent,
                major,
                ..
            } => (kind.clone(), *parent, *major),
            Step::DeleteRoot => ("del".into(), TC_H_ROOT, 0),
        })
        .collect()
}

fn new(kind: &str, parent: u32, major: u16) -> (String, u32, u16) {
    (kind.into(), parent, major)
}

#[test]
fn both_qdiscs_in_two_requests() {
    let both = plan(Some(20_000), Some(10_000_000));
    let (steps, result) = run(replace(&both, vec![0], Previous::Default), vec![]);
    result.expect("acked");
    assert_eq!(
        shape(&steps),
        [new("netem", TC_H_ROOT, 1), new("tbf", 0x0001_0001, 2)]
    );
    let (netem, tbf) = qdiscs_for(&both, 1500);
    let Step::New { options, flags, .. } = &steps[0] else {
        panic!("not a new qdisc")
    };
    assert_eq!(
        options.as_deref(),
        Some(&netem.expect("netem").encode(&CLOCK)[..])
    );
    assert_eq!(
        *flags,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
    );
    let Step::New { options, flags, .. } = &steps[1] else {
        panic!("not a new qdisc")
    };
    assert_eq!(
        options.as_deref(),
        Some(&tbf.expect("tbf").encode(&CLOCK)[..])
    );
    assert_eq!(
        *flags,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    );
}

#[test]
fn a_refused_child_puts_the_old_impairment_back() {
    let old_plan = plan(None, Some(10_000_000));
    let old_tbf = qdiscs_for(&old_plan, 1500).1.expect("tbf");
    let previous = Previous::Impaired {
        plan: old_plan,
        root: NewRoot::Tbf(old_tbf),
    };
    // The old tbf is 1:, so the new qdiscs are 2: and 3:, the old one
    // comes back as 4:.
    let (steps, result) = run(
        replace(&plan(Some(20_000), Some(5_000_000)), vec![0, 1], previous),
        vec![Ok(()), Err(nack(libc::EINVAL, Some("Invalid burst")))],
    );
    assert_eq!(
        shape(&steps),
        [
            new("netem", TC_H_ROOT, 2),
            new("tbf", 0x0002_0001, 3),
            new("tbf", TC_H_ROOT, 4)
        ]
    );
    let Step::New { options, .. } = &steps[2] else {
        panic!("not a new qdisc")
    };
    assert_eq!(options.as_deref(), Some(&old_tbf.encode(&CLOCK)[..]));
    let error = result.expect_err("refused");
    assert!(matches!(error, NetlinkError::Restored { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with(
            "impairment on lab/a:eth0 (tbf qdisc below netem, the kernel says \"Invalid burst\"): "
        ),
        "{text}"
    );
    assert!(
        text.ends_with("; its old impairment (rate 10mbit) is back"),
        "{text}"
    );
}

#[test]
fn a_refused_child_with_nothing_before_deletes_the_new_root() {
    let (steps, result) = run(
        replace(
            &plan(Some(20_000), Some(5_000_000)),
            vec![0],
            Previous::Default,
        ),
        vec![Ok(()), Err(nack(libc::EINVAL, None))],
    );
    assert_eq!(
        shape(&steps),
        [
            new("netem", TC_H_ROOT, 1),
            new("tbf", 0x0001_0001, 2),
            ("del".into(), TC_H_ROOT, 0)
        ]
    );
    let text = result.expect_err("refused").to_string();
    assert!(
        text.ends_with("; the interface has no impairment, as before"),
        "{text}"
    );
}

#[test]
fn a_refused_child_and_a_refused_undo_report_both() {
    let previous = Previous::Other {
        kind: "pfifo".into(),
        options: Some(vec![1, 0, 0, 0]),
    };
    let (steps, result) = run(
        replace(&plan(Some(20_000), Some(5_000_000)), vec![0, 1], previous),
        vec![
            Ok(()),
            Err(nack(libc::EINVAL, None)),
            Err(nack(libc::ENOMEM, None)),
        ],
    );
    assert_eq!(
        shape(&steps),
        [
            new("netem", TC_H_ROOT, 2),
            new("tbf", 0x0002_0001, 3),
            new("pfifo", TC_H_ROOT, 4)
        ]
    );
    let Step::New { options, .. } = &steps[2] else {
        panic!("not a new qdisc")
    };
    assert_eq!(options.as_deref(), Some(&[1, 0, 0, 0][..]));
    let error = result.expect_err("refused");
    assert!(
        matches!(error, NetlinkError::NotRestored { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("(tbf qdisc below netem): ")
            && text.contains(
                "; putting back what it had (root qdisc pfifo) failed too: put back root qdisc pfifo on lab/a:eth0: "
            ),
        "{text}"
    );
}

#[test]
fn a_refused_root_changes_nothing() {
    // The old root stays: nothing to undo.
    let (steps, result) = run(
        replace(
            &plan(Some(20_000), Some(5_000_000)),
            vec![0],
            Previous::Other {
                kind: "pfifo".into(),
                options: None,
            },
        ),
        vec![Err(nack(libc::EINVAL, None))],
    );
    assert_eq!(shape(&steps), [new("netem", TC_H_ROOT, 1)]);
    assert!(matches!(result, Err(NetlinkError::Request { .. })));
}

#[test]
fn only_an_unknown_kind_names_a_missing_module() {
    let missing = |result: Result<(), NetlinkError>| match result {
        Err(NetlinkError::MissingQdisc { module, .. }) => Some(module),
        _ => None,
    };
    let delay = plan(Some(20_000), None);
    let both = plan(Some(20_000), Some(5_000_000));
    let unknown = || nack(libc::ENOENT, Some(UNKNOWN_KIND));
    let no_parent = || nack(libc::ENOENT, Some("Failed to find specified qdisc"));
    // The root's request: ENOENT is the kind, with or without the words.
    let (_, result) = run(
        replace(&delay, vec![], Previous::Default),
        vec![Err(unknown())],
    );
    assert_eq!(missing(result), Some("sch_netem"));
    let (_, result) = run(
        replace(&delay, vec![], Previous::Default),
        vec![Err(nack(libc::ENOENT, None))],
    );
    assert_eq!(missing(result), Some("sch_netem"));
    let (_, result) = run(
        replace(&plan(None, Some(1_000_000)), vec![], Previous::Default),
        vec![Err(unknown())],
    );
    assert_eq!(missing(result), Some("sch_tbf"));
    // The child's: only when the kernel says the kind is unknown.
    let child = |error| {
        let (_, result) = run(
            replace(&both, vec![], Previous::Default),
            vec![Ok(()), Err(error)],
        );
        match result {
            Err(NetlinkError::Restored { cause, .. }) => Err(*cause),
            other => other,
        }
    };
    assert_eq!(missing(child(unknown())), Some("sch_tbf"));
    let text = child(no_parent()).expect_err("refused").to_string();
    assert!(
        text.contains(
            "(tbf qdisc below netem, the kernel says \"Failed to find specified qdisc\")"
        ),
        "{text}"
    );
    assert_eq!(missing(child(nack(libc::ENOENT, None))), None);
}

#[test]
fn previous_reads_the_dump() {
    let info = |handle: u32, parent: u32, kind: &str, options: Option<Vec<u8>>| QdiscInfo {
        index: 2,
        handle,
        parent,
        kind: kind.into(),
        options,
    };
    assert_eq!(Previous::read(&[], &CLOCK), Previous::Default);
    let tbf = Tbf::for_rate(10_000_000, 1500);
    assert_eq!(
        Previous::read(
            &[info(
                0x0001_0000,
                TC_H_ROOT,
                "tbf",
                Some(tbf.encode(&CLOCK))
            )],
            &CLOCK
        ),
        Previous::Impaired {
            plan: plan(None, Some(10_000_000)),
            root: NewRoot::Tbf(tbf),
        }
    );
    for (kind, options) in [("pfifo", Some(vec![1, 2, 3, 4])), ("netem", None)] {
        // Another kind, or options that cannot be read: as they are.
        assert_eq!(
            Previous::read(
                &[info(0x0001_0000, TC_H_ROOT, kind, options.clone())],
                &CLOCK
            ),
            Previous::Other {
                kind: kind.into(),
                options,
            }
        );
    }
}

#[test]
fn an_empty_plan_makes_no_replacement() {
    let request = ReplaceRoot::for_plan(
        2,
        &Impair::default(),
        1500,
        vec![],
        Previous::Default,
        "lab/a:eth0".into(),
    );
    assert!(request.is_none(), "{request:?}");
}

#[test]
fn undoing_a_new_root_is_one_deletion_as_clear_does() {
    let both = plan(Some(20_000), Some(5_000_000));
    // The new root already gone (ENOENT) is the default back all the same.
    let (steps, result) = run(
        replace(&both, vec![0], Previous::Default),
        vec![
            Ok(()),
            Err(nack(libc::EINVAL, None)),
            Err(nack(libc::ENOENT, None)),
        ],
    );
    assert_eq!(shape(&steps)[2], ("del".into(), TC_H_ROOT, 0));
    assert!(
        matches!(result, Err(NetlinkError::Restored { .. })),
        "{result:?}"
    );
    // A refused deletion: both errors, in clear's words.
    let (steps, result) = run(
        replace(&both, vec![0], Previous::Default),
        vec![
            Ok(()),
            Err(nack(libc::EINVAL, None)),
            Err(nack(libc::EPERM, None)),
        ],
    );
    assert_eq!(steps.len(), 3);
    let error = result.expect_err("refused");
    assert!(
        matches!(error, NetlinkError::NotRestored { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains(
            "; putting back what it had (no impairment) failed too: remove the impairment on lab/a:eth0: "
        ),
        "{text}"
    );
}
