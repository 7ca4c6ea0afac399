//! Command-line parsing and output. Everything real lives in the library.

mod signals;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use nslab::capture::{self, Capture, CaptureOptions, Destination, pcap::Precision};
use nslab::generate::Shape;
use nslab::graph::Format;
use nslab::lab::{self, DownReport, LabView, Progress, UpOptions, UpReport};
use nslab::plan::Plan;
use nslab::topology;

/// Exit code for bad input (the topology or the command line).
const EXIT_INVALID: i32 = 2;
/// Exit code for everything else that fails.
const EXIT_FAILED: i32 = 1;
/// `check`: an expectation failed (every probe ran).
const EXIT_CHECK_FAILED: i32 = 1;
/// `check`: the check could not run, or some probes could not (the result
/// is unknown), as for bad input.
const EXIT_CHECK_INCOMPLETE: i32 = 2;

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
    Up {
        file: PathBuf,
        /// Tear down an existing lab of the same name first
        #[arg(long)]
        reconfigure: bool,
        /// No progress line and no summary
        #[arg(long, short)]
        quiet: bool,
        /// Build nothing: print the script `explain` prints
        #[arg(long)]
        dry_run: bool,
    },
    /// Print a shell script that builds the lab by hand, step by step
    Explain { file: PathBuf },
    /// Remove a lab and everything it made
    #[command(visible_alias = "destroy")]
    Down {
        #[command(flatten)]
        target: DownArgs,
        /// With --all: only list the labs that would be removed
        #[arg(long, requires = "all")]
        dry_run: bool,
        /// No progress line and no report
        #[arg(long, short)]
        quiet: bool,
    },
    /// Run a command inside a node (a shell when no command is given)
    Exec {
        /// LAB/NODE, or NODE when one running lab has it; with --all, a LAB
        target: String,
        /// Run on every node of the lab, output prefixed by node name
        #[arg(long)]
        all: bool,
        /// The command and its arguments (after --)
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Capture packets on a node's interface as pcap (to a file or a pipe)
    Capture {
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
        duration: Option<std::time::Duration>,
        /// Leave the interface out of promiscuous mode
        #[arg(short = 'p', long)]
        no_promiscuous: bool,
        /// Microsecond timestamps (the original pcap magic) instead of nanoseconds
        #[arg(long)]
        micro: bool,
        /// Bytes kept of each packet
        #[arg(short = 's', long, value_name = "BYTES", default_value_t = nslab::capture::MAX_SNAPLEN,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(nslab::capture::MAX_SNAPLEN)))]
        snaplen: u32,
    },
    /// Show labs, nodes and interfaces, read live from the kernel
    Inspect {
        lab: Option<String>,
        /// Stable JSON output for scripts
        #[arg(long)]
        json: bool,
    },
    /// Set (replacing what it had), show or clear the impairments of an
    /// interface's egress
    Impair {
        /// LAB/NODE:IFACE, or NODE:IFACE when one running lab has NODE
        target: String,
        #[command(flatten)]
        values: ImpairArgs,
        /// Print what the interface has, read from the kernel
        #[arg(long, conflicts_with_all = ["clear", "delay", "jitter", "loss", "rate", "corrupt", "duplicate"])]
        show: bool,
        /// Remove the impairment
        #[arg(long, conflicts_with_all = ["delay", "jitter", "loss", "rate", "corrupt", "duplicate"])]
        clear: bool,
    },
    /// Check a topology file without touching anything
    Validate { file: PathBuf },
    /// Draw a topology: nodes, bridges, the host, and links labelled with
    /// interface names and addresses
    Graph {
        file: PathBuf,
        /// dot (Graphviz), mermaid, or svg (needs Graphviz's `dot`)
        #[arg(long, short, value_enum, default_value_t = FormatArg::Dot)]
        format: FormatArg,
        /// Write to this file instead of standard output
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Probe which node reaches which address; check the expectations
    ///
    /// Sends from every node an ICMP echo to every address of every other
    /// node, and checks the topology's `expect:` entries (without any, every
    /// pair must be reached).
    ///
    /// Exit codes: 0 every expectation passed; 1 an expectation failed; 2
    /// the check could not run, or some probes could not (a node not
    /// running, no socket), so the result is incomplete, or bad input.
    Check {
        /// The lab's name
        lab: String,
        /// Stable JSON output for scripts
        #[arg(long)]
        json: bool,
        /// How long each probe waits for an answer, in seconds (only pairs
        /// that do not answer wait that long)
        #[arg(long, default_value = "3", value_parser = parse_seconds)]
        timeout: std::time::Duration,
    },
    /// Write a topology of any size, ready for `up`
    Generate {
        #[command(subcommand)]
        shape: ShapeArg,
        /// The lab name (default: the shape, e.g. linear-200)
        #[arg(long, global = true)]
        name: Option<String>,
        /// Write to this file instead of standard output
        #[arg(short, long, global = true)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ShapeArg {
    /// A chain of N routers with routes so that every address is reachable
    Linear { n: usize },
    /// N hosts on a bridge (sharded over bridges past 1023 ports)
    Star { n: usize },
    /// Bridges DEPTH levels deep with FANOUT children each, hosts at the leaves
    Tree { depth: usize, fanout: usize },
    /// ROWS x COLS routers, each linked to its right and lower neighbour, XY-routed
    Grid { rows: usize, cols: usize },
}

impl From<&ShapeArg> for Shape {
    fn from(arg: &ShapeArg) -> Self {
        match *arg {
            ShapeArg::Linear { n } => Shape::Linear(n),
            ShapeArg::Star { n } => Shape::Star(n),
            ShapeArg::Tree { depth, fanout } => Shape::Tree { depth, fanout },
            ShapeArg::Grid { rows, cols } => Shape::Grid { rows, cols },
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Dot,
    Mermaid,
    Svg,
}

impl From<FormatArg> for Format {
    fn from(arg: FormatArg) -> Self {
        match arg {
            FormatArg::Dot => Format::Dot,
            FormatArg::Mermaid => Format::Mermaid,
            FormatArg::Svg => Format::Svg,
        }
    }
}

/// The impairment values, in the topology's units.
#[derive(Debug, Args)]
struct ImpairArgs {
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

impl ImpairArgs {
    fn text(&self) -> topology::ImpairText<'_> {
        topology::ImpairText {
            delay: self.delay.as_deref(),
            jitter: self.jitter.as_deref(),
            loss: self.loss.as_deref(),
            rate: self.rate.as_deref(),
            corrupt: self.corrupt.as_deref(),
            duplicate: self.duplicate.as_deref(),
        }
    }

    /// The impairment to set, or every problem with it (exit code 2).
    fn plan(&self) -> Result<nslab::spec::Impair, (i32, String)> {
        topology::parse_impair(&self.text()).map_err(|problems| {
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

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct DownArgs {
    /// The topology file of the lab
    file: Option<PathBuf>,
    /// The lab's name
    #[arg(long)]
    lab: Option<String>,
    /// Every lab on this host
    #[arg(long)]
    all: bool,
}

/// Parses the command line, runs it, and returns the process exit code.
pub fn main() -> i32 {
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

type Outcome = Result<i32, (i32, String)>;

fn failed(e: impl std::fmt::Display) -> (i32, String) {
    (EXIT_FAILED, e.to_string())
}

fn run(command: Command) -> Outcome {
    if let Command::Generate {
        shape,
        name,
        output,
    } = &command
    {
        return generate(shape.into(), name.as_deref(), output.as_deref());
    }
    match &command {
        Command::Explain { file }
        | Command::Up {
            file,
            dry_run: true,
            ..
        } => return explain(file),
        _ => {}
    }
    if let Command::Graph {
        file,
        format,
        output,
    } = &command
    {
        let plan = load(file)?;
        let format = Format::from(*format);
        let picture = nslab::graph::render(&plan, format).map_err(failed)?;
        let note = match format {
            Format::Mermaid => nslab::graph::mermaid::edge_limit_note(&plan),
            Format::Dot | Format::Svg => None,
        };
        if let Some(note) = note {
            eprintln!("nslab: note: {note}");
        }
        return write_out(&picture, output.as_deref());
    }
    let impairment = match &command {
        Command::Impair {
            values,
            show: false,
            clear: false,
            ..
        } => Some(values.plan()?),
        _ => None,
    };
    if let Command::Validate { file } = &command {
        let plan = load(file)?;
        println!(
            "{}: lab {} is valid: {} node(s), {} link(s)",
            file.display(),
            plan.lab,
            plan.nodes.len(),
            plan.links.len()
        );
        return Ok(0);
    }
    // Bad input is reported before privileges, so anyone can see it.
    let plan = match &command {
        Command::Up { file, .. } => Some(load(file)?),
        _ => None,
    };
    let cannot = if matches!(command, Command::Check { .. }) {
        EXIT_CHECK_INCOMPLETE
    } else {
        EXIT_FAILED
    };
    nslab::privileges::check().map_err(|e| (cannot, e))?;
    match command {
        Command::Up {
            reconfigure, quiet, ..
        } => {
            let plan = plan.ok_or_else(|| failed("no plan"))?;
            let options = UpOptions {
                reconfigure,
                progress: progress_line(quiet),
                init_exe: None,
            };
            let result = lab::up(&plan, &options);
            clear_progress_line(quiet);
            let report = result.map_err(failed)?;
            if !report.not_running.is_empty() {
                eprintln!(
                    "nslab: warning: these link ends were still not operationally up after waiting: {}",
                    report.not_running.join(", ")
                );
            }
            if !quiet {
                print_up(&plan, &report);
            }
            Ok(0)
        }
        Command::Impair {
            target,
            show,
            clear,
            ..
        } => {
            let interface: nslab::spec::InterfaceRef = target.parse().map_err(failed)?;
            let (node, iface, _) = lab::resolve_interface(&interface).map_err(failed)?;
            if clear {
                let removed = lab::impair_clear(&node, &iface).map_err(failed)?;
                println!(
                    "{target}: {}",
                    if removed {
                        "impairment removed"
                    } else {
                        "no impairment to remove"
                    }
                );
            } else if show {
                println!(
                    "{target}: {}",
                    lab::impair_show(&node, &iface).map_err(failed)?
                );
            } else {
                let plan = impairment.ok_or_else(|| failed("no impairment"))?;
                if let Some(warning) = plan.warning() {
                    eprintln!("nslab: warning: {target}: {warning}");
                }
                println!(
                    "{target}: {}",
                    lab::impair_set(&node, &iface, &plan).map_err(failed)?
                );
            }
            Ok(0)
        }
        Command::Down {
            target,
            dry_run,
            quiet,
        } => down(target, dry_run, quiet),
        Command::Exec {
            target,
            all,
            command,
        } => {
            let result = if all {
                target
                    .parse()
                    .map_err(nslab::lab::LabError::from)
                    .and_then(|lab| lab::exec_all(&lab, &command))
            } else {
                target
                    .parse()
                    .map_err(nslab::lab::LabError::from)
                    .and_then(|node| lab::exec(&node, &command))
            };
            result.map_err(|e| (e.exit_code(), e.to_string()))
        }
        Command::Capture {
            target,
            write,
            count,
            duration,
            no_promiscuous,
            micro,
            snaplen,
        } => {
            let options = CaptureOptions {
                count,
                duration,
                promiscuous: !no_promiscuous,
                precision: if micro {
                    Precision::Micros
                } else {
                    Precision::Nanos
                },
                snaplen,
            };
            capture(&target, write.as_deref(), &options)
        }
        Command::Inspect { lab, json } => {
            let views = lab::inspect(lab.as_deref()).map_err(failed)?;
            if json {
                let text = serde_json::to_string_pretty(&views).map_err(failed)?;
                println!("{text}");
            } else {
                print_inspect(&views);
            }
            Ok(0)
        }
        Command::Check { lab, json, timeout } => {
            let lab: nslab::spec::LabName = lab
                .parse()
                .map_err(|_| (EXIT_INVALID, format!("{lab:?} is not a valid lab name")))?;
            let cannot = |e: nslab::lab::LabError| (EXIT_CHECK_INCOMPLETE, e.to_string());
            let report = nslab::check::check(&lab, timeout).map_err(cannot)?;
            if json {
                let text = serde_json::to_string_pretty(&report)
                    .map_err(|e| (EXIT_CHECK_INCOMPLETE, e.to_string()))?;
                println!("{text}");
            } else {
                print!("{}", nslab::check::render_text(&report));
            }
            Ok(if report.passed {
                0
            } else if !report.errors.is_empty() {
                EXIT_CHECK_INCOMPLETE
            } else {
                EXIT_CHECK_FAILED
            })
        }
        Command::Validate { .. }
        | Command::Generate { .. }
        | Command::Explain { .. }
        | Command::Graph { .. } => Ok(0),
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

fn capture(target: &str, write: Option<&Path>, options: &CaptureOptions) -> Outcome {
    use std::io::IsTerminal;
    use std::os::fd::AsFd;
    let destination = capture::destination(write, std::io::stdout().is_terminal())
        .map_err(|e| (EXIT_INVALID, e.to_string()))?;
    let target = target.parse().map_err(failed)?;
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
    let report = capture.run(out, options, signals.flag()).map_err(failed)?;
    eprintln!("{}", report.summary());
    Ok(0)
}

fn generate(shape: Shape, name: Option<&str>, output: Option<&Path>) -> Outcome {
    let name = name.map_or_else(|| shape.default_name(), str::to_string);
    if !nslab::spec::is_valid_name(&name) {
        return Err((EXIT_INVALID, format!("{name:?} is not a valid lab name")));
    }
    let yaml =
        nslab::generate::generate(shape, &name).map_err(|e| (EXIT_INVALID, e.to_string()))?;
    match output {
        Some(path) => {
            std::fs::write(path, yaml).map_err(|e| failed(format!("{}: {e}", path.display())))?
        }
        None => print!("{yaml}"),
    }
    if let (Some(path), Some((node, address))) = (output, shape.far_ends()) {
        eprintln!(
            "wrote {}; after `nslab up {}`, try: nslab exec {name}/{node} -- ping -c 1 -t 255 {address}",
            path.display(),
            path.display()
        );
    }
    Ok(0)
}

/// Prints the script of `explain` (and `up --dry-run`); needs no privileges.
fn explain(file: &Path) -> Outcome {
    let plan = load(file)?;
    let script = nslab::explain::script(&plan).map_err(|e| (EXIT_INVALID, e.to_string()))?;
    print!("{script}");
    Ok(0)
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

fn load(file: &Path) -> Result<Plan, (i32, String)> {
    let topology = topology::load(file).map_err(|e| (EXIT_INVALID, e.to_string()))?;
    let mut plan = Plan::from_topology(&topology);
    // State outlives the caller's working directory.
    plan.source = plan.source.and_then(|p| std::path::absolute(p).ok());
    for end in plan.links.iter().flat_map(|l| &l.endpoints) {
        if let Some(warning) = end.impair.and_then(|i| i.warning()) {
            eprintln!("nslab: warning: {}: {warning}", plan.endpoint_label(end));
        }
    }
    Ok(plan)
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

fn down(args: DownArgs, dry_run: bool, quiet: bool) -> Outcome {
    if dry_run {
        for lab in lab::find_labs().map_err(failed)? {
            println!("{lab}");
        }
        return Ok(0);
    }
    let progress = progress_line(quiet);
    let reports: Vec<DownReport> = if args.all {
        let result = lab::down_all(&progress);
        clear_progress_line(quiet);
        result.map_err(failed)?
    } else {
        let name = match (args.lab, args.file) {
            (Some(name), _) => name,
            (None, Some(file)) => topology::lab_name_of(&file).ok_or_else(|| {
                (
                    EXIT_INVALID,
                    format!("{}: no lab name found (use --lab NAME)", file.display()),
                )
            })?,
            (None, None) => return Err((EXIT_INVALID, "say FILE, --lab NAME or --all".into())),
        };
        if !nslab::spec::is_valid_name(&name) {
            return Err((EXIT_INVALID, format!("{name:?} is not a valid lab name")));
        }
        let result = lab::down_with(&name, &progress);
        clear_progress_line(quiet);
        vec![result.map_err(failed)?]
    };
    if quiet {
        return Ok(0);
    }
    for report in &reports {
        if report.is_empty() {
            println!("lab {}: nothing to remove", report.lab);
        } else {
            println!("lab {}: {}", report.lab, report.summary());
        }
    }
    if args.all && reports.is_empty() {
        println!("no labs");
    }
    Ok(0)
}

fn print_up(plan: &Plan, report: &UpReport) {
    println!(
        "lab {} is up: {} node(s), {} link(s) in {:.3} s",
        report.lab,
        report.nodes,
        report.links,
        report.total.as_secs_f64()
    );
    let phases: Vec<String> = report
        .phases
        .iter()
        .map(|(name, took)| format!("{name} {:.3}", took.as_secs_f64()))
        .collect();
    println!("  phases (s): {}", phases.join(", "));
    if let Some((before, after)) = report.raised_open_files {
        println!("  raised the open-file limit from {before} to {after} for this lab");
    }
    if let Some(node) = plan
        .nodes
        .iter()
        .find(|n| n.kind == nslab::spec::NodeKind::Node)
    {
        println!("  try: nslab exec {}/{} -- ip address", plan.lab, node.name);
    }
}

fn print_inspect(views: &[LabView]) {
    if views.is_empty() {
        println!("no labs");
    }
    for view in views {
        println!(
            "lab {} ({}){}",
            view.name,
            view.status,
            view.topology
                .as_deref()
                .map(|t| format!(" from {t}"))
                .unwrap_or_default()
        );
        for node in &view.nodes {
            let pid = node.pid.map_or("-".to_string(), |p| p.to_string());
            println!(
                "  {:<12} {:<6} pid {:<8} hostname {:<12} netns {}  net:[{}]",
                node.name,
                node.kind,
                pid,
                node.hostname.as_deref().unwrap_or("-"),
                node.netns,
                node.namespaces
                    .get("net")
                    .map_or("-".into(), |i| i.to_string()),
            );
            for iface in &node.interfaces {
                let mut details = vec![if iface.up {
                    "up".to_string()
                } else {
                    "down".to_string()
                }];
                if let Some(mtu) = iface.mtu {
                    details.push(format!("mtu {mtu}"));
                }
                if let Some(peer) = &iface.peer {
                    details.push(format!("peer {peer}"));
                }
                if let Some(bridge) = &iface.bridge {
                    details.push(format!("bridge {bridge}"));
                }
                if let Some(impair) = &iface.impair {
                    details.push(format!("impair {impair}"));
                }
                println!(
                    "      {:<10} {:<40} {}",
                    iface.name,
                    iface.addresses.join(" "),
                    details.join(", ")
                );
            }
        }
    }
}
