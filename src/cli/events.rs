//! `nslab events [LAB] [--json]`: what happens in running labs, one line
//! per event, until the lab goes down or a signal.

use std::io::Write;

use clap::Args;

use super::{EXIT_FAILED, Outcome, failed, signals};

#[derive(Debug, Args)]
pub(super) struct EventsArgs {
    /// The lab (every lab, until Ctrl-C, when left out)
    lab: Option<String>,
    /// Stable JSON output for scripts: one object per line
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: EventsArgs) -> Outcome {
    super::need_privileges(EXIT_FAILED)?;
    let lab = super::running_lab_name(args.lab.as_deref())?;
    let signals = signals::on_signals().map_err(|e| failed(format!("signals: {e}")))?;
    // The watch ends within a tick of a signal, which ends the loop.
    let events = crate::lab::events::watch(lab.as_ref(), Some(signals.flag())).map_err(failed)?;
    // On stderr, so stdout stays events only: from here on nothing is missed.
    match &lab {
        Some(lab) => eprintln!("nslab: watching lab {lab}"),
        None => eprintln!("nslab: watching every lab"),
    }
    for item in events {
        let event = match item {
            Ok(event) => event,
            Err(e) => {
                eprintln!("nslab: {e}");
                continue;
            }
        };
        let line = if args.json {
            serde_json::to_string(&event).map_err(failed)?
        } else {
            event.to_string()
        };
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            // A closed pipe (`| head`) ends the stream.
            break;
        }
    }
    Ok(0)
}

impl EventsArgs {
    /// The lab, if one is named, and `--json`.
    pub(super) fn lab(&self) -> (Option<&str>, bool) {
        (self.lab.as_deref(), self.json)
    }
}
