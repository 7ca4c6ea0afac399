//! Command-line parsing and output. Everything real lives in the library.
//!
//! One file per verb: its arguments and its `run`, a call into the library
//! and the printing of what comes back. This file holds what they share:
//! the command line as a whole, the exit codes and a few helpers.

mod apply;
mod capture;
mod check;
mod completions;
mod down;
mod events;
mod exec;
mod explain;
mod generate;
mod graph;
mod impair;
mod inspect;
mod link;
mod man;
mod node;
mod run_scenario;
mod schema;
mod signals;
mod split;
mod spread;
mod stats;
mod up;
mod validate;

use std::path::Path;

use clap::{Parser, Subcommand};

use crate::lab::Progress;
use crate::plan::Plan;
use crate::spec::LabName;

/// Exit code for bad input (the topology or the command line).
const EXIT_INVALID: i32 = 2;
/// Exit code for everything else that fails.
const EXIT_FAILED: i32 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "nslab",
    version,
    about = "Network labs on one Linux host from kernel namespaces alone"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a lab from a topology file
    #[command(visible_alias = "deploy")]
    Up(up::UpArgs),
    /// Change a running lab to what its edited file says, live (or bring it
    /// up): only the difference is made
    ///
    /// Exit codes: 0 applied (or, with --dry-run, listed); 1 a change
    /// failed (the lab keeps what was made: apply again, or down); 2 bad
    /// input, or a change that cannot be made live (nothing changed).
    Apply(apply::ApplyArgs),
    /// Print a shell script that builds the lab by hand, step by step
    Explain(explain::ExplainArgs),
    /// Remove a lab and everything it made
    #[command(visible_alias = "destroy")]
    Down(down::DownArgs),
    /// Run a command inside a node (a shell when no command is given)
    Exec(exec::ExecArgs),
    /// Capture packets on a node's interface as pcap (to a file or a pipe)
    Capture(capture::CaptureArgs),
    /// Show labs, nodes and interfaces, read live from the kernel
    Inspect(inspect::InspectArgs),
    /// Show what each node uses (CPU, memory, processes) and the counters
    /// of its interfaces
    Stats(stats::StatsArgs),
    /// Stream what happens in running labs (links, addresses, routes,
    /// impairments, nodes), one line per event, until the lab goes down
    Events(events::EventsArgs),
    /// Set (replacing what it had), show or clear the impairments of an
    /// interface's egress
    Impair(impair::ImpairArgs),
    /// Set a link end administratively down or up, or flap it
    Link(link::LinkArgs),
    /// Check a topology file without touching anything
    Validate(validate::ValidateArgs),
    /// Write the per-host parts of a lab spread over hosts (`hosts:`), one
    /// plan per host for `nslab up --plan`
    Split(split::SplitArgs),
    /// Print the JSON Schema of topology files (nslab's and containerlab's
    /// form), for editors
    Schema(schema::SchemaArgs),
    /// Draw a topology: nodes, bridges, the host, and links labelled with
    /// interface names and addresses
    Graph(graph::GraphArgs),
    /// Probe which node reaches which address; check the expectations
    ///
    /// Sends from every node an ICMP echo to every address of every other
    /// node, and checks the topology's `expect:` entries (without any, every
    /// pair must be reached).
    ///
    /// Exit codes: 0 every expectation passed; 1 an expectation failed; 2
    /// the check could not run, or some probes could not (a node not
    /// running, no socket), so the result is incomplete, or bad input.
    Check(check::CheckArgs),
    /// Write a topology of any size, ready for `up`
    Generate(generate::GenerateArgs),
    /// Stop, start or restart a node of a running lab, keeping its links
    Node(node::NodeArgs),
    /// Play the topology's `scenario:` on the running lab: timed link,
    /// node and check steps
    ///
    /// Exit codes: 0 every check step passed; 1 one failed, or a step
    /// could not be done; 2 bad input, an unknown lab or one without a
    /// scenario.
    RunScenario(run_scenario::RunScenarioArgs),
    /// Print a shell completion script for nslab
    Completions(completions::CompletionsArgs),
    /// Print the manual page nslab(1), or write one page per command
    Man(man::ManArgs),
}

/// Parses the command line, runs it, and returns the process exit code.
pub(crate) fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_INVALID } else { 0 };
        }
    };
    match run(cli.command) {
        Ok(code) => code,
        Err((code, message)) => {
            eprintln!("nslab: {message}");
            code
        }
    }
}

fn run(command: Command) -> Outcome {
    if let Some(outcome) = spread::route(&command) {
        return outcome;
    }
    match command {
        Command::Up(args) => up::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Down(args) => down::run(args),
        Command::Exec(args) => exec::run(args),
        Command::Capture(args) => capture::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Events(args) => events::run(args),
        Command::Impair(args) => impair::run(args),
        Command::Link(args) => link::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Split(args) => split::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Graph(args) => graph::run(args),
        Command::Check(args) => check::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Node(args) => node::run(args),
        Command::RunScenario(args) => run_scenario::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    }
}

/// The whole command line's definition, for completions and the manual.
fn definition() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// The exit code, or the exit code and the message for standard error.
type Outcome = Result<i32, (i32, String)>;

fn failed(e: impl std::fmt::Display) -> (i32, String) {
    (EXIT_FAILED, e.to_string())
}

fn invalid(e: impl std::fmt::Display) -> (i32, String) {
    (EXIT_INVALID, e.to_string())
}

/// Fails with `code` unless this process may build labs. Verbs call it
/// after reporting bad input, so anyone can see that.
fn need_privileges(code: i32) -> Result<(), (i32, String)> {
    crate::privileges::check().map_err(|e| (code, e.to_string()))
}

/// A lab name given on the command line, checked.
fn lab_name(text: &str) -> Result<LabName, (i32, String)> {
    text.parse()
        .map_err(|_| invalid(format_args!("{text:?} is not a valid lab name")))
}

/// An optional LAB argument of a verb that reads running labs: a bad name
/// fails as a lab that is not there does (exit 1), as in `inspect`.
fn running_lab_name(text: Option<&str>) -> Result<Option<LabName>, (i32, String)> {
    text.map(lab_name)
        .transpose()
        .map_err(|(_, message)| (EXIT_FAILED, message))
}

/// A failure of a verb on a running lab's node or interface: unknown names
/// (lab, node, interface) exit 2, as bad input does; anything else 1.
fn lab_failure(e: crate::lab::LabError) -> (i32, String) {
    use crate::lab::LabError;
    match e {
        LabError::NoLab { .. }
        | LabError::NoNode { .. }
        | LabError::NoLabHasNode { .. }
        | LabError::NodeInSeveralLabs { .. }
        | LabError::NoInterface { .. }
        | LabError::Target(_) => invalid(e),
        e => failed(e),
    }
}

/// The plan of a topology file, its impairment warnings printed.
fn load(file: &Path) -> Result<Plan, (i32, String)> {
    let plan = Plan::from_file(file).map_err(invalid)?;
    print_warnings(&plan);
    Ok(plan)
}

/// The topology of a file, its plan's warnings printed (`up`, which
/// drives the hosts of a file with `hosts:` rather than plan it here).
fn load_topology(file: &Path) -> Result<crate::spec::Topology, (i32, String)> {
    let topology = crate::topology::load(file).map_err(invalid)?;
    print_warnings(&Plan::from_topology(&topology));
    Ok(topology)
}

/// A plan in JSON, from a file or (`-`) standard input.
fn read_plan(path: &Path) -> Result<Plan, (i32, String)> {
    let bytes = match path.as_os_str() == "-" {
        true => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map(|_| bytes)
        }
        false => std::fs::read(path),
    }
    .map_err(|e| invalid(format_args!("{}: {e}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format_args!("{}: not a plan: {e}", path.display())))
}

fn print_warnings(plan: &Plan) {
    for warning in plan.impairment_warnings() {
        eprintln!("nslab: warning: {warning}");
    }
    for note in &plan.notes {
        eprintln!("nslab: note: {note}");
    }
}

/// With `--strict`, what [`load`] only notes (a containerlab file's images
/// that nslab does not use) is bad input.
fn refuse_notes(plan: &Plan, strict: bool) -> Result<(), (i32, String)> {
    match plan.notes.first() {
        Some(note) if strict => Err(invalid(format_args!(
            "{}: {note} (--strict)",
            plan.source.as_deref().unwrap_or(Path::new("?")).display()
        ))),
        _ => Ok(()),
    }
}

/// A duration in seconds (fractions allowed), above zero.
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    std::time::Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?}: give a number of seconds above 0"))
}

/// Writes `bytes` to `output`, or to standard output.
fn write_out(bytes: &[u8], output: Option<&Path>) -> Outcome {
    use std::io::Write;
    match output {
        Some(path) => {
            std::fs::write(path, bytes).map_err(|e| failed(format!("{}: {e}", path.display())))?
        }
        None => std::io::stdout()
            .lock()
            .write_all(bytes)
            .map_err(|e| failed(format!("standard output: {e}")))?,
    }
    Ok(0)
}

/// A progress line on the terminal, redrawn at most every 50 ms; nothing
/// when stderr is not a terminal or under --quiet.
fn progress_line(quiet: bool) -> Progress {
    use std::io::{IsTerminal, Write};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    if quiet || !std::io::stderr().is_terminal() {
        return Progress::default();
    }
    let last = Mutex::new(Instant::now() - Duration::from_secs(1));
    Progress::new(move |phase, done, total| {
        let Ok(mut last) = last.lock() else { return };
        if done < total && last.elapsed() < Duration::from_millis(50) {
            return;
        }
        *last = Instant::now();
        let _ = write!(std::io::stderr(), "\r\x1b[K  {phase} {done}/{total}");
    })
}

fn clear_progress_line(quiet: bool) {
    use std::io::IsTerminal;
    if !quiet && std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
}

/// `--userns-range START:COUNT`, of `up` and `explain`.
#[derive(Debug, clap::Args)]
pub(super) struct UsernsRange {
    /// Host ids for nodes with `userns: true`, a 65536-id block each
    /// (default: user nslab's entry in /etc/subuid and /etc/subgid, made
    /// on first use)
    #[arg(
        long = "userns-range",
        value_name = "START:COUNT",
        value_parser = parse_range,
        env = "NSLAB_USERNS_RANGE"
    )]
    range: Option<(u32, u32)>,
}

/// `START:COUNT`, both whole numbers.
fn parse_range(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{text:?} is not START:COUNT (such as 2000000000:655360)");
    let (start, count) = text.split_once(':').ok_or_else(bad)?;
    Ok((
        start.parse().map_err(|_| bad())?,
        count.parse().map_err(|_| bad())?,
    ))
}
