//! The text form of a [`CheckReport`]: a matrix table (or, for big labs, a
//! summary with the failing pairs), then each expectation with PASS or FAIL.

use std::collections::HashMap;
use std::fmt::Write;

use super::{CheckReport, ExpectResult, Expectations, Probed};

/// Most nodes shown as a table; a bigger lab gets a summary instead.
pub(crate) const MAX_TABLE_NODES: usize = 20;
/// Most failing lines listed before "... and N more".
const MAX_LISTED: usize = 50;

/// The report as text for a terminal.
pub fn render_text(report: &CheckReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lab {}: probed from {} node(s) in {} ms (timeout {} ms)",
        report.lab,
        report.nodes.len(),
        report.elapsed_ms,
        report.timeout_ms
    );
    for e in &report.errors {
        let _ = writeln!(out, "  node {}: could not probe: {}", e.node, e.error);
    }
    out.push('\n');
    if report.nodes.len() <= MAX_TABLE_NODES {
        table(&mut out, report);
    } else {
        summary(&mut out, report);
    }
    out.push('\n');
    expectations(&mut out, report);
    let failed = report.expectations.iter().filter(|e| !e.passed).count();
    if report.passed {
        out.push_str("check: PASS\n");
    } else {
        let mut why = Vec::new();
        if failed > 0 {
            why.push(format!(
                "{failed} of {} {} failed",
                report.expectations.len(),
                match report.expectations_from {
                    Expectations::Topology => "expectations",
                    Expectations::Pingall => "pairs",
                }
            ));
        }
        let mut nodes: Vec<&str> = report.errors.iter().map(|e| e.node.as_str()).collect();
        nodes.dedup();
        if !nodes.is_empty() {
            why.push(format!(
                "{} node(s) could not probe, the check is incomplete",
                nodes.len()
            ));
        }
        let _ = writeln!(out, "check: FAIL ({})", why.join("; "));
    }
    out
}

/// Reached, total and not probed per family of one (from, to) pair.
#[derive(Debug, Default, Clone, Copy)]
struct Cell {
    v4: (usize, usize, usize),
    v6: (usize, usize, usize),
}

impl Cell {
    fn add(&mut self, p: &Probed) {
        let slot = if p.family == 4 {
            &mut self.v4
        } else {
            &mut self.v6
        };
        slot.1 += 1;
        if p.reached {
            slot.0 += 1;
        }
        if !p.probed {
            slot.2 += 1;
        }
    }

    fn text(&self) -> String {
        let mark = |(reached, total, unknown): (usize, usize, usize)| match reached {
            _ if unknown > 0 => "?",
            _ if reached == total => "✓",
            0 => "✗",
            _ => "~",
        };
        let mut parts = Vec::new();
        if self.v4.1 > 0 {
            parts.push(format!("4{}", mark(self.v4)));
        }
        if self.v6.1 > 0 {
            parts.push(format!("6{}", mark(self.v6)));
        }
        parts.join(" ")
    }
}

/// Pads by characters (the marks are one column wide but three bytes).
fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(n)))
}

fn table(out: &mut String, report: &CheckReport) {
    let mut cells: HashMap<(&str, &str), Cell> = HashMap::new();
    for p in &report.matrix {
        if let Some(to) = &p.to {
            cells
                .entry((p.from.as_str(), to.as_str()))
                .or_default()
                .add(p);
        }
    }
    // Columns: the probing nodes that have addresses, in file order.
    let columns: Vec<&str> = report
        .nodes
        .iter()
        .map(String::as_str)
        .filter(|n| report.matrix.iter().any(|p| p.to.as_deref() == Some(*n)))
        .collect();
    if columns.is_empty() {
        out.push_str("no node has an address another node could probe\n");
        return;
    }
    out.push_str(
        "reachability (rows: from, columns: to; 4/6: IPv4/IPv6; ✓ every address reached, ✗ none, ~ some, ? not probed)\n",
    );
    let corner = "from \\ to";
    let first = report
        .nodes
        .iter()
        .map(|n| n.chars().count())
        .chain([corner.len()])
        .max()
        .unwrap_or(0);
    let text = |from: &str, to: &str| -> String {
        if from == to {
            "-".to_string()
        } else {
            cells.get(&(from, to)).map_or(String::new(), Cell::text)
        }
    };
    let widths: Vec<usize> = columns
        .iter()
        .map(|to| {
            report
                .nodes
                .iter()
                .map(|from| text(from, to).chars().count())
                .chain([to.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut line = pad(corner, first);
    for (to, w) in columns.iter().zip(&widths) {
        line.push_str("  ");
        line.push_str(&pad(to, *w));
    }
    out.push_str(line.trim_end());
    out.push('\n');
    for from in &report.nodes {
        let mut line = pad(from, first);
        for (to, w) in columns.iter().zip(&widths) {
            line.push_str("  ");
            line.push_str(&pad(&text(from, to), *w));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn summary(out: &mut String, report: &CheckReport) {
    let reached = report.matrix.iter().filter(|p| p.reached).count();
    let unknown = report.matrix.iter().filter(|p| !p.probed).count();
    let _ = write!(
        out,
        "reachability: {} node(s), {} probe(s) (every node to every address of every other node): {reached} reached, {} not",
        report.nodes.len(),
        report.matrix.len(),
        report.matrix.len() - reached - unknown
    );
    if unknown > 0 {
        let _ = write!(out, ", {unknown} not probed");
    }
    out.push('\n');
    // Failing probes grouped by pair, in matrix order.
    let mut pairs: Vec<((&str, &str), Vec<&Probed>)> = Vec::new();
    for p in report.matrix.iter().filter(|p| !p.reached) {
        let key = (p.from.as_str(), p.to.as_deref().unwrap_or("?"));
        match pairs.last_mut() {
            Some((k, list)) if *k == key => list.push(p),
            _ => pairs.push((key, vec![p])),
        }
    }
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(out, "failing pairs ({}):", pairs.len());
    for ((from, to), probes) in pairs.iter().take(MAX_LISTED) {
        let what: Vec<String> = probes.iter().map(|p| describe(p)).collect();
        let _ = writeln!(out, "  {from} -> {to}: {}", what.join(", "));
    }
    more(out, pairs.len());
}

fn more(out: &mut String, total: usize) {
    if total > MAX_LISTED {
        let _ = writeln!(
            out,
            "  ... and {} more (--json lists every probe)",
            total - MAX_LISTED
        );
    }
}

/// `10.0.2.2 reached (0.081 ms)`, `10.0.9.9 not reached (timeout)`.
fn describe(p: &Probed) -> String {
    if !p.probed {
        return format!(
            "{} not probed ({})",
            p.address,
            p.error.as_deref().unwrap_or("unknown")
        );
    }
    match (p.reached, p.rtt_ms, &p.error) {
        (true, Some(rtt), _) => format!("{} reached ({rtt} ms)", p.address),
        (true, None, Some(note)) => format!("{} reached ({note})", p.address),
        (true, None, None) => format!("{} reached", p.address),
        (false, _, Some(why)) => format!("{} not reached ({why})", p.address),
        (false, _, None) => format!("{} not reached", p.address),
    }
}

fn expectation_line(e: &ExpectResult) -> String {
    let mut line = format!(
        "  {} {} -> {}",
        if e.passed { "PASS" } else { "FAIL" },
        e.from,
        e.to
    );
    if let Some(port) = &e.port {
        let _ = write!(line, " port {port}");
    }
    if !e.reach {
        line.push_str(" (must not reach)");
    }
    if e.probes.is_empty() {
        line.push_str(": nothing to probe");
    } else {
        let what: Vec<String> = e.probes.iter().map(describe).collect();
        let _ = write!(line, ": {}", what.join(", "));
    }
    line
}

fn expectations(out: &mut String, report: &CheckReport) {
    let passed = report.expectations.iter().filter(|e| e.passed).count();
    let total = report.expectations.len();
    match report.expectations_from {
        Expectations::Topology => {
            let _ = writeln!(out, "expectations: {passed} of {total} passed");
            for e in &report.expectations {
                out.push_str(&expectation_line(e));
                out.push('\n');
            }
        }
        Expectations::Pingall => {
            let _ = writeln!(
                out,
                "no expect: entries in the topology, so every node must reach every address of every other node (pingall): {passed} of {total} pairs passed"
            );
            let failing: Vec<&ExpectResult> =
                report.expectations.iter().filter(|e| !e.passed).collect();
            for e in failing.iter().take(MAX_LISTED) {
                out.push_str(&expectation_line(e));
                out.push('\n');
            }
            more(out, failing.len());
        }
    }
}
