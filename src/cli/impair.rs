//! `nslab impair TARGET`: set, show or clear the impairments of an
//! interface's egress.

use clap::Args;

use crate::lab;
use crate::spec::{Impair, InterfaceRef};
use crate::topology::{ImpairText, parse_impair};

use super::{EXIT_FAILED, EXIT_INVALID, Outcome, failed};

#[derive(Debug, Args)]
pub(super) struct ImpairArgs {
    /// LAB/NODE:IFACE, or NODE:IFACE when one running lab has NODE
    target: String,
    #[command(flatten)]
    values: ImpairValues,
    /// Print what the interface has, read from the kernel
    #[arg(long, conflicts_with_all = ["clear", "delay", "jitter", "loss", "rate", "corrupt", "duplicate"])]
    show: bool,
    /// Remove the impairment
    #[arg(long, conflicts_with_all = ["delay", "jitter", "loss", "rate", "corrupt", "duplicate"])]
    clear: bool,
}

/// The impairment values, in the topology's units.
#[derive(Debug, Args)]
struct ImpairValues {
    /// Added delay: 20ms, 500us, 1s
    #[arg(long)]
    delay: Option<String>,
    /// Delay variation, plus or minus (needs --delay): 5ms
    #[arg(long)]
    jitter: Option<String>,
    /// Packets dropped: 1%
    #[arg(long)]
    loss: Option<String>,
    /// Most sent per second: 10mbit, 1gbit, 500kbps (bytes)
    #[arg(long)]
    rate: Option<String>,
    /// Packets with a bit flipped: 0.1%
    #[arg(long)]
    corrupt: Option<String>,
    /// Packets sent twice: 0.1%
    #[arg(long)]
    duplicate: Option<String>,
}

impl ImpairValues {
    /// The impairment to set, or every problem with it, each named by its
    /// option (exit code 2).
    fn plan(&self) -> Result<Impair, (i32, String)> {
        let text = ImpairText {
            delay: self.delay.as_deref(),
            jitter: self.jitter.as_deref(),
            loss: self.loss.as_deref(),
            rate: self.rate.as_deref(),
            corrupt: self.corrupt.as_deref(),
            duplicate: self.duplicate.as_deref(),
        };
        parse_impair(&text).map_err(|problems| {
            let lines: Vec<String> = problems
                .into_iter()
                .map(|(key, message)| match key {
                    "" => "say what to set (--delay, --jitter, --loss, --rate, --corrupt, --duplicate), or --show or --clear".to_string(),
                    key => format!("--{key}: {message}"),
                })
                .collect();
            (EXIT_INVALID, lines.join("\n"))
        })
    }
}

/// What to do to the interface.
enum Action {
    Show,
    Clear,
    Set(Impair),
}

pub(super) fn run(args: ImpairArgs) -> Outcome {
    // Bad values are reported before privileges, so anyone can see them.
    let action = if args.show {
        Action::Show
    } else if args.clear {
        Action::Clear
    } else {
        Action::Set(args.values.plan()?)
    };
    super::need_privileges(EXIT_FAILED)?;
    let target = args.target.as_str();
    let interface: InterfaceRef = target.parse().map_err(failed)?;
    let (node, _) = lab::resolve_node(interface.node()).map_err(failed)?;
    let iface = interface.iface();
    match action {
        Action::Show => {
            println!(
                "{target}: {}",
                lab::impair_show(&node, iface).map_err(failed)?
            );
        }
        Action::Clear => {
            let removed = lab::impair_clear(&node, iface).map_err(failed)?;
            println!(
                "{target}: {}",
                if removed {
                    "impairment removed"
                } else {
                    "no impairment to remove"
                }
            );
        }
        Action::Set(plan) => {
            if let Some(warning) = plan.warning() {
                eprintln!("nslab: warning: {target}: {warning}");
            }
            println!(
                "{target}: {}",
                lab::impair_set(&node, iface, &plan).map_err(failed)?
            );
        }
    }
    Ok(0)
}

impl ImpairArgs {
    /// The target as given (`LAB/NODE:IFACE`).
    pub(super) fn target(&self) -> &str {
        &self.target
    }
}
