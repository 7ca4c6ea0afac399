//! `nslab capture TARGET`: packets of a node's interface as pcap, to a
//! file or a pipe, until a count, a duration or a signal.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::capture::{self, Capture, CaptureOptions, Destination, MAX_SNAPLEN, pcap::Precision};
use crate::spec::InterfaceRef;

use super::{EXIT_FAILED, Outcome, failed, invalid, parse_seconds, signals};

#[derive(Debug, Args)]
pub(super) struct CaptureArgs {
    /// LAB/NODE:IFACE, or NODE:IFACE when one running lab has the node
    target: String,
    /// Write to FILE; `-` (the default) is standard output, never a terminal
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    write: Option<PathBuf>,
    /// Stop after COUNT packets
    #[arg(short = 'c', long, value_name = "COUNT",
          value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Stop after SECS seconds
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    duration: Option<Duration>,
    /// Leave the interface out of promiscuous mode
    #[arg(short = 'p', long)]
    no_promiscuous: bool,
    /// Microsecond timestamps (the original pcap magic) instead of nanoseconds
    #[arg(long)]
    micro: bool,
    /// Bytes kept of each packet
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = MAX_SNAPLEN,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_SNAPLEN)))]
    snaplen: u32,
}

impl CaptureArgs {
    fn options(&self) -> CaptureOptions {
        CaptureOptions {
            count: self.count,
            duration: self.duration,
            promiscuous: !self.no_promiscuous,
            precision: if self.micro {
                Precision::Micros
            } else {
                Precision::Nanos
            },
            snaplen: self.snaplen,
        }
    }
}

pub(super) fn run(args: CaptureArgs) -> Outcome {
    super::need_privileges(EXIT_FAILED)?;
    let options = args.options();
    let destination = capture::destination(args.write.as_deref(), std::io::stdout().is_terminal())
        .map_err(invalid)?;
    let target: InterfaceRef = args.target.parse().map_err(failed)?;
    let capture = Capture::open(&target, options.promiscuous).map_err(failed)?;
    // Unbuffered: `run` buffers, and flushes whenever no frame is waiting
    // (a live reader such as `wireshark -k -i -` sees each frame at once
    // when traffic is sparse, in batches under load).
    let out: std::fs::File = match &destination {
        Destination::File(path) => {
            std::fs::File::create(path).map_err(|e| failed(format!("{}: {e}", path.display())))?
        }
        Destination::Stdout => std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(failed)?
            .into(),
    };
    let signals = signals::on_signals().map_err(failed)?;
    eprintln!(
        "nslab: capturing on {}, link-type EN10MB (Ethernet), snapshot length {} bytes",
        capture.target(),
        options.snaplen
    );
    let report = capture.run(out, &options, signals.flag()).map_err(failed)?;
    eprintln!("{}", report.summary());
    Ok(0)
}

impl CaptureArgs {
    /// The target as given (`LAB/NODE:IFACE`).
    pub(super) fn target(&self) -> &str {
        &self.target
    }
}
