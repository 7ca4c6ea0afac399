//! `nslab stats [LAB] [--json] [--watch]`: CPU, memory, processes and
//! interface counters of each node, like `docker stats`.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;

use crate::lab::{NodeStats, StatsReport, StatsSampler};

use super::{EXIT_FAILED, Outcome, failed};

/// How often `--watch` redraws.
const PERIOD: Duration = Duration::from_secs(1);

#[derive(Debug, Args)]
pub(super) struct StatsArgs {
    /// The lab (every lab when left out)
    lab: Option<String>,
    /// Stable JSON output for scripts (with --watch, one line per second)
    #[arg(long)]
    json: bool,
    /// Redraw once a second until Ctrl-C
    #[arg(long)]
    watch: bool,
}

pub(super) fn run(args: StatsArgs) -> Outcome {
    super::need_privileges(EXIT_FAILED)?;
    let lab = super::running_lab_name(args.lab.as_deref())?;
    let mut sampler = StatsSampler::new(lab.as_ref());
    if !args.watch {
        let reports = sampler.sample().map_err(failed)?;
        let text = if args.json {
            serde_json::to_string_pretty(&reports).map_err(failed)? + "\n"
        } else {
            render(&reports)
        };
        return super::write_out(text.as_bytes(), None);
    }
    let signals = super::signals::on_signals().map_err(|e| failed(format!("signals: {e}")))?;
    let stop = signals.flag();
    let redraw = !args.json && std::io::stdout().is_terminal();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let reports = sampler.sample().map_err(failed)?;
        let text = if args.json {
            serde_json::to_string(&reports).map_err(failed)? + "\n"
        } else if redraw {
            // Home, clear the screen, then the table.
            format!("\x1b[H\x1b[2J{}", render(&reports))
        } else {
            render(&reports) + "\n"
        };
        let mut out = std::io::stdout().lock();
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            // A closed pipe (`| head`) ends the watch.
            break;
        }
        drop(out);
        while !stop.load(Ordering::Relaxed) && started.elapsed() < PERIOD {
            std::thread::sleep(
                Duration::from_millis(50).min(PERIOD - started.elapsed().min(PERIOD)),
            );
        }
    }
    Ok(0)
}

/// The reports as tables, one per lab: a node's figures on the row of its
/// first interface, one row per interface.
fn render(reports: &[StatsReport]) -> String {
    if reports.is_empty() {
        return "no labs\n".into();
    }
    let mut out = String::new();
    for (i, report) in reports.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out += &format!(
            "lab {} (CPU % over {:.2} s)\n",
            report.lab, report.interval_seconds
        );
        let mut rows = vec![HEADER.map(String::from).to_vec()];
        for node in &report.nodes {
            rows.extend(node_rows(node));
        }
        out += &table(&rows);
    }
    out
}

const HEADER: [&str; 11] = [
    "NODE",
    "CPU %",
    "MEM USAGE / LIMIT",
    "PIDS",
    "IFACE",
    "RX BYTES",
    "RX PKTS",
    "RX DROP",
    "TX BYTES",
    "TX PKTS",
    "TX DROP",
];

/// Columns aligned to the right (the figures).
const RIGHT: [bool; 11] = [
    false, true, false, true, false, true, true, true, true, true, true,
];

fn node_rows(node: &NodeStats) -> Vec<Vec<String>> {
    let dash = || "-".to_string();
    let figures = if node.running {
        vec![
            node.name.clone(),
            node.cpu_percent.map_or_else(dash, |c| format!("{c:.1}%")),
            format!(
                "{} / {}",
                node.memory_bytes.map_or_else(dash, bytes),
                node.memory_limit_bytes.map_or_else(|| "none".into(), bytes)
            ),
            node.processes.map_or_else(dash, |p| p.to_string()),
        ]
    } else {
        vec![node.name.clone(), dash(), "not running".into(), dash()]
    };
    if node.interfaces.is_empty() {
        let mut row = figures;
        row.extend(std::iter::repeat_with(dash).take(7));
        return vec![row];
    }
    node.interfaces
        .iter()
        .enumerate()
        .map(|(i, iface)| {
            let mut row = if i == 0 {
                figures.clone()
            } else {
                vec![String::new(); 4]
            };
            row.extend([
                iface.name.clone(),
                bytes(iface.rx_bytes),
                iface.rx_packets.to_string(),
                iface.rx_dropped.to_string(),
                bytes(iface.tx_bytes),
                iface.tx_packets.to_string(),
                iface.tx_dropped.to_string(),
            ]);
            row
        })
        .collect()
}

/// Rows as columns two spaces apart, without trailing spaces.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if RIGHT.get(c).copied().unwrap_or(false) {
                    format!("{cell:>w$}", w = widths[c])
                } else {
                    format!("{cell:<w$}", w = widths[c])
                }
            })
            .collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    out
}

/// Bytes in binary units: `512B`, `1.5KiB`, `3.2MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

impl StatsArgs {
    /// The lab, if one is named; `--json`; `--watch`.
    pub(super) fn lab(&self) -> (Option<&str>, bool, bool) {
        (self.lab.as_deref(), self.json, self.watch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::InterfaceStats;

    fn iface(name: &str, rx: [u64; 3], tx: [u64; 3]) -> InterfaceStats {
        InterfaceStats {
            name: name.into(),
            rx_bytes: rx[0],
            rx_packets: rx[1],
            rx_dropped: rx[2],
            tx_bytes: tx[0],
            tx_packets: tx[1],
            tx_dropped: tx[2],
        }
    }

    fn report() -> StatsReport {
        StatsReport {
            lab: "pair".into(),
            interval_seconds: 0.5,
            nodes: vec![
                NodeStats {
                    name: "h1".into(),
                    kind: "node".into(),
                    running: true,
                    pid: Some(4242),
                    cpu_percent: Some(99.84),
                    memory_bytes: Some(3_250_000),
                    memory_limit_bytes: None,
                    processes: Some(2),
                    interfaces: vec![
                        iface("lo", [0; 3], [0; 3]),
                        iface("eth0", [98_000, 1001, 3], [512, 1001, 0]),
                    ],
                },
                NodeStats {
                    name: "h2".into(),
                    kind: "node".into(),
                    running: false,
                    pid: None,
                    cpu_percent: None,
                    memory_bytes: None,
                    memory_limit_bytes: None,
                    processes: None,
                    interfaces: vec![],
                },
            ],
        }
    }

    #[test]
    fn renders_one_row_per_interface_with_the_node_on_the_first() {
        let text = render(&[report()]);
        let expected = "\
lab pair (CPU % over 0.50 s)
NODE  CPU %  MEM USAGE / LIMIT  PIDS  IFACE  RX BYTES  RX PKTS  RX DROP  TX BYTES  TX PKTS  TX DROP
h1    99.8%  3.1MiB / none         2  lo           0B        0        0        0B        0        0
                                      eth0    95.7KiB     1001        3      512B     1001        0
h2        -  not running           -  -             -        -        -         -        -        -
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn renders_no_labs_and_several_labs() {
        assert_eq!(render(&[]), "no labs\n");
        let two = render(&[report(), report()]);
        assert_eq!(two.matches("lab pair").count(), 2);
        assert!(two.contains("\n\nlab pair"), "a blank line between labs");
    }

    #[test]
    fn bytes_in_binary_units() {
        assert_eq!(bytes(0), "0B");
        assert_eq!(bytes(1023), "1023B");
        assert_eq!(bytes(1536), "1.5KiB");
        assert_eq!(bytes(5 * 1024 * 1024), "5.0MiB");
        assert_eq!(bytes(u64::MAX), "16384.0PiB");
    }

    #[test]
    fn the_json_has_the_documented_fields() {
        let value = serde_json::to_value([report()]).expect("serialize");
        let lab = &value[0];
        assert_eq!(lab["lab"], "pair");
        assert_eq!(lab["interval_seconds"], 0.5);
        let node = &lab["nodes"][0];
        for field in [
            "name",
            "kind",
            "running",
            "pid",
            "cpu_percent",
            "memory_bytes",
            "memory_limit_bytes",
            "processes",
            "interfaces",
        ] {
            assert!(node.get(field).is_some(), "{field} missing in {node}");
        }
        assert!(node["memory_limit_bytes"].is_null());
        let iface = &node["interfaces"][1];
        for field in [
            "name",
            "rx_bytes",
            "rx_packets",
            "rx_dropped",
            "tx_bytes",
            "tx_packets",
            "tx_dropped",
        ] {
            assert!(iface.get(field).is_some(), "{field} missing in {iface}");
        }
    }
}
