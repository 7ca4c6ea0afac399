//! `capture`: the frames of a node's interface, as a pcap stream.
//!
//! [`Capture::open`] resolves `LAB/NODE:IFACE` and opens a packet socket
//! inside the node's net namespace (it stays there); [`Capture::run`] then
//! writes every frame, both directions, to a [`pcap::PcapWriter`] until a
//! count, a duration, a stop flag, the reader going away, the lab going
//! down, or the interface going down or away.

mod output;
pub(crate) mod packet;
pub(crate) mod pcap;
mod source;

use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::capture::packet::{CaptureSocket, CaptureStats, PacketError};
use crate::kernel::process::PinnedProcess;
use crate::lab::{LabError, resolve_node};
use crate::spec::InterfaceRef;
use pcap::{PcapWriter, Precision};
use source::{Event, Source};

/// The most bytes kept of one frame (tcpdump's default): more than a
/// veth's largest GSO frame.
pub(crate) const MAX_SNAPLEN: u32 = 262_144;
/// How often the loop looks at the stop flag and the clock when no frame
/// comes.
const TICK: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub(crate) enum CaptureError {
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error("{target}: {source}")]
    Socket { target: String, source: PacketError },
    #[error("write the capture: {0}")]
    Write(io::Error),
    #[error(
        "refusing to write binary pcap data to a terminal; use -w FILE, or pipe it: `| tcpdump -r -` or `| wireshark -k -i -`"
    )]
    Terminal,
}

/// When to stop and what to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CaptureOptions {
    /// Stop after this many frames.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Put the interface in promiscuous mode while capturing.
    pub promiscuous: bool,
    pub precision: Precision,
    /// Bytes kept of each frame, at most [`MAX_SNAPLEN`].
    pub snaplen: u32,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self {
            count: None,
            duration: None,
            promiscuous: true,
            precision: Precision::Nanos,
            snaplen: MAX_SNAPLEN,
        }
    }
}

/// Why a capture ended, and what it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CaptureReport {
    /// Frames written.
    pub captured: u64,
    /// The kernel's counters, when readable: every frame queued for the
    /// socket since it was opened (each frame once, `lo` included), those
    /// still queued at the end and those dropped for want of room
    /// included.
    pub kernel: Option<CaptureStats>,
    pub ended_by: EndedBy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndedBy {
    Count,
    /// The duration passed (a reader that stopped reading is given a
    /// second more, then the rest is dropped).
    Duration,
    /// The stop flag (a signal), with the same grace.
    Stopped,
    /// The reader closed its end of the pipe.
    ReaderGone,
    /// The node's init exited: the lab went down.
    LabGone,
    /// The interface went down or was deleted.
    InterfaceDown,
}

/// Where the pcap stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    File(PathBuf),
    Stdout,
}

/// `-w FILE`, `-w -` or nothing (standard output); never binary data onto
/// a terminal.
pub(crate) fn destination(
    write: Option<&Path>,
    stdout_is_terminal: bool,
) -> Result<Destination, CaptureError> {
    match write {
        Some(path) if path != Path::new("-") => Ok(Destination::File(path.to_path_buf())),
        _ if stdout_is_terminal => Err(CaptureError::Terminal),
        _ => Ok(Destination::Stdout),
    }
}

/// A capture socket open on a node's interface.
#[derive(Debug)]
pub(crate) struct Capture {
    socket: CaptureSocket,
    /// The node's init: the capture ends when it does.
    init: PinnedProcess,
    target: String,
}

impl Capture {
    /// Opens a capture on an interface of a running node. Frames are
    /// queued from here on.
    pub(crate) fn open(target: &InterfaceRef, promiscuous: bool) -> Result<Self, CaptureError> {
        let (node, _) = resolve_node(target.node())?;
        let iface = target.iface();
        let target = format!("{}:{iface}", node.label());
        let (init, socket) = node.pinned_in_netns(|| CaptureSocket::open(iface, promiscuous))?;
        let socket = socket.map_err(|source| CaptureError::Socket {
            target: target.clone(),
            source,
        })?;
        Ok(Self {
            socket,
            init,
            target,
        })
    }

    /// `LAB/NODE:IFACE`.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// Writes the pcap header to `out` (a file or a pipe, buffered here),
    /// then each frame as it comes, flushed as soon as no other frame is
    /// waiting: at once when traffic is sparse, in batches under load (a
    /// write per frame costs enough to make the kernel drop frames). Ends
    /// as [`EndedBy`] tells; every end is a clean one, with the stream
    /// complete unless the reader stopped reading.
    pub(crate) fn run<F: Write + AsFd>(
        &self,
        out: F,
        options: &CaptureOptions,
        stop: &AtomicBool,
    ) -> Result<CaptureReport, CaptureError> {
        let snaplen = options.snaplen.clamp(1, MAX_SNAPLEN);
        let deadline = options.duration.map(|d| Instant::now() + d);
        let report = |captured, ended_by| CaptureReport {
            captured,
            kernel: self.socket.stats().ok(),
            ended_by,
        };
        let out =
            BufWriter::new(output::Output::new(out, stop, deadline).ending_with(self.init.as_fd()));
        let mut writer = match PcapWriter::new(out, options.precision, snaplen) {
            Ok(w) => w,
            Err(e) => return Ok(report(0, write_end(e, interrupted(stop, &self.init))?)),
        };
        let mut source = Source::new(&self.socket, &self.init);
        let mut buf = vec![0u8; snaplen as usize];
        let mut unflushed = false;
        let ended_by = loop {
            if options.count.is_some_and(|c| writer.packets() >= c) {
                break EndedBy::Count;
            }
            if stop.load(Ordering::Relaxed) {
                break EndedBy::Stopped;
            }
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(TICK),
                    _ => break EndedBy::Duration,
                },
                None => TICK,
            };
            let wait = if unflushed { Duration::ZERO } else { wait };
            let event = source
                .next(&mut buf, wait)
                .map_err(|source| CaptureError::Socket {
                    target: self.target.clone(),
                    source,
                })?;
            let written = match event {
                Event::Frame(frame) => {
                    unflushed = true;
                    writer.write_packet(frame.timestamp, &buf[..frame.captured], frame.length)
                }
                Event::Idle if unflushed => {
                    unflushed = false;
                    writer.flush()
                }
                Event::Idle => Ok(()),
                Event::End(ended_by) => break ended_by,
            };
            if let Err(e) = written {
                break write_end(e, interrupted(stop, &self.init))?;
            }
        };
        // Over: what is buffered goes out, if the reader takes it within
        // the grace.
        writer.get_mut().get_mut().finish();
        let ended_by = match writer.flush() {
            Ok(()) => ended_by,
            Err(e) => write_end(e, ended_by)?,
        };
        Ok(report(writer.packets(), ended_by))
    }
}

/// Why a write was given up while capturing: the stop flag, the lab gone
/// (the init exited) or the deadline ends a wait for the reader then.
fn interrupted(stop: &AtomicBool, init: &PinnedProcess) -> EndedBy {
    if stop.load(Ordering::Relaxed) {
        EndedBy::Stopped
    } else if crate::kernel::process::exited_within(init.as_fd(), Duration::ZERO) {
        EndedBy::LabGone
    } else {
        EndedBy::Duration
    }
}

/// A write error that is a clean end: the reader closed the pipe, or it
/// stopped reading when the capture was over anyway (`gave_up_as`).
fn write_end(e: io::Error, gave_up_as: EndedBy) -> Result<EndedBy, CaptureError> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(EndedBy::ReaderGone)
    } else if output::gave_up(&e) {
        Ok(gave_up_as)
    } else {
        Err(CaptureError::Write(e))
    }
}

impl CaptureReport {
    /// tcpdump's closing lines, after a line saying why when the capture
    /// ended on its own.
    pub(crate) fn summary(&self) -> String {
        let mut text = match self.ended_by {
            EndedBy::LabGone => "nslab: the lab went down (the node's init exited)\n".to_string(),
            EndedBy::InterfaceDown => "nslab: the interface went down or was deleted\n".to_string(),
            _ => String::new(),
        };
        text += &format!("{} packets captured", self.captured);
        if let Some(k) = self.kernel {
            text += &format!(
                "\n{} packets received by filter\n{} packets dropped by kernel",
                k.received, k.dropped
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdout_unless_a_file_is_named_and_never_a_terminal() {
        let file = Path::new("out.pcap");
        assert_eq!(
            destination(Some(file), true).expect("a file is fine"),
            Destination::File(file.into())
        );
        assert_eq!(
            destination(None, false).expect("a pipe"),
            Destination::Stdout
        );
        assert_eq!(
            destination(Some(Path::new("-")), false).expect("a pipe"),
            Destination::Stdout
        );
        assert!(matches!(
            destination(None, true),
            Err(CaptureError::Terminal)
        ));
        assert!(matches!(
            destination(Some(Path::new("-")), true),
            Err(CaptureError::Terminal)
        ));
    }

    #[test]
    fn summary_reads_like_tcpdump() {
        let report = CaptureReport {
            captured: 2,
            kernel: Some(CaptureStats {
                received: 3,
                dropped: 1,
            }),
            ended_by: EndedBy::Count,
        };
        assert_eq!(
            report.summary(),
            "2 packets captured\n3 packets received by filter\n1 packets dropped by kernel"
        );
        let gone = CaptureReport {
            captured: 0,
            kernel: None,
            ended_by: EndedBy::LabGone,
        };
        assert_eq!(
            gone.summary(),
            "nslab: the lab went down (the node's init exited)\n0 packets captured"
        );
    }
}
