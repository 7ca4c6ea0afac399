//! `nslab link down|up|flap TARGET`: set a link end administratively down
//! or up, once or in turns.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use crate::lab::{self, RunningNode};
use crate::plan::Plan;
use crate::spec::{InterfaceRef, LinkState};
use crate::topology::parse_duration_us;

use super::{EXIT_FAILED, Outcome, failed, invalid};

#[derive(Debug, Args)]
pub(super) struct LinkArgs {
    #[command(subcommand)]
    action: LinkAction,
}

#[derive(Debug, Subcommand)]
enum LinkAction {
    /// Set the interface administratively down: its veth peer sees no
    /// carrier
    Down(Target),
    /// Set the interface up again, with the addresses and routes the
    /// topology gives it
    Up(Target),
    /// Down, then up, COUNT times; Ctrl-C leaves the link up
    Flap(FlapArgs),
}

#[derive(Debug, Args)]
struct Target {
    /// LAB/NODE:IFACE, or NODE:IFACE when one running lab has NODE
    target: String,
}

#[derive(Debug, Args)]
struct FlapArgs {
    #[command(flatten)]
    target: Target,
    /// How long the link stays down each time: 500ms, 2s
    #[arg(long, value_parser = parse_duration)]
    down: Duration,
    /// How long it stays up between two downs: 500ms, 2s
    #[arg(long, value_parser = parse_duration)]
    up: Duration,
    /// How many times it goes down
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    count: u32,
}

/// `500ms`, `2s`, `250us`: above zero.
fn parse_duration(text: &str) -> Result<Duration, String> {
    match parse_duration_us(text) {
        Ok(0) => Err(format!("{text:?}: give a duration above 0")),
        Ok(us) => Ok(Duration::from_micros(us)),
        Err(why) => Err(format!("{text:?} {why}")),
    }
}

pub(super) fn run(args: LinkArgs) -> Outcome {
    super::need_privileges(EXIT_FAILED)?;
    match args.action {
        LinkAction::Down(target) => once(&target, LinkState::Down),
        LinkAction::Up(target) => once(&target, LinkState::Up),
        LinkAction::Flap(flap) => self::flap(&flap),
    }
}

/// The running node of `LAB/NODE:IFACE` and its lab's plan; a bad or
/// unknown name (lab, node) is bad input.
fn resolve(target: &Target) -> Result<(RunningNode, Option<Plan>, String), (i32, String)> {
    let interface: InterfaceRef = target.target.parse().map_err(invalid)?;
    let (node, plan) = lab::resolve_node(interface.node()).map_err(super::lab_failure)?;
    Ok((node, plan, interface.iface().to_string()))
}

fn once(target: &Target, state: LinkState) -> Outcome {
    let (node, plan, iface) = resolve(target)?;
    lab::link_set(&node, plan.as_ref(), &iface, state).map_err(super::lab_failure)?;
    println!("{}: {state}", target.target);
    Ok(0)
}

fn flap(args: &FlapArgs) -> Outcome {
    let (node, plan, iface) = resolve(&args.target)?;
    let label = &args.target.target;
    let signals = super::signals::on_signals().map_err(|e| failed(format!("signals: {e}")))?;
    let stop = signals.flag();
    let start = Instant::now();
    let set = |state: LinkState| -> Outcome {
        lab::link_set(&node, plan.as_ref(), &iface, state).map_err(super::lab_failure)?;
        println!("{} {label}: {state}", timestamp(start));
        Ok(0)
    };
    // Sleeps until `deadline`, a few ms at a time; false once a signal came.
    let wait_until = |deadline: Instant| {
        while !stop.load(Ordering::Relaxed) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
        false
    };
    // Deadlines count from the start, so the requests' own time does not
    // add up over the turns.
    let mut at = start;
    for turn in 0..args.count {
        if turn > 0 {
            at += args.up;
            if !wait_until(at) {
                break;
            }
        }
        set(LinkState::Down)?;
        at += args.down;
        // A signal while down: the link is put back up all the same.
        wait_until(at);
        set(LinkState::Up)?;
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    if stop.load(Ordering::Relaxed) {
        eprintln!("nslab: stopped; {label} left up");
    }
    Ok(0)
}

/// Wall-clock time of day (UTC, to the millisecond) and the time since the
/// flap started: `12:34:56.789 +1.500s`.
fn timestamp(start: Instant) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let day = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}Z +{:.3}s",
        day / 3600,
        day / 60 % 60,
        day % 60,
        now.subsec_millis(),
        start.elapsed().as_secs_f64()
    )
}

impl LinkArgs {
    /// The target as given (`LAB/NODE:IFACE`).
    pub(super) fn target(&self) -> &str {
        match &self.action {
            LinkAction::Down(t) | LinkAction::Up(t) => &t.target,
            LinkAction::Flap(args) => &args.target.target,
        }
    }
}
