//! [`Lab`]: a lab as a Rust value, for tests and programs. It is brought up
//! by the same [`up`](crate::lab::up) as `nslab up`, runs commands the way `nslab
//! exec` does, and is torn down by [`down`](crate::lab::down) when dropped.
//!
//! Async code: every method blocks, and is safe to call from inside a
//! tokio runtime (the runtime nslab drives netlink with then runs on a
//! thread of its own); the calls that take long also have `_async` forms
//! that run on tokio's blocking pool. [`Lab`]'s documentation says which.

use std::collections::HashMap;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ipnet::IpNet;

use crate::check::CheckReport;
use crate::kernel::enter::{self, Stdio};
use crate::lab::events::{EventStream, Events};
use crate::lab::exec::{SpawnMode, dev_null, enter_error, pipe, spawn_in};
use crate::lab::{
    DownReport, Impairment, LabError, NodeChange, RunningNode, StatsReport, StatsSampler,
    UpOptions, UpReport, running_nodes,
};
use crate::plan::{Place, Plan};
use crate::privileges::MissingCapabilities;
use crate::spec::{Impair, LabName, LinkState, NodeRef, Topology};
use crate::topology::{self, TopologyError};

/// How long [`Process::kill`] waits after SIGTERM before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Why a [`Lab`] call failed. More variants may come.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error(transparent)]
    Privileges(#[from] MissingCapabilities),
    #[error("lab {lab} has no node {node:?}")]
    NoNode { lab: String, node: String },
    #[error("an empty command line")]
    EmptyCommand,
    #[error("impairment of {target}: {problems}")]
    Impair { target: String, problems: String },
    #[error(transparent)]
    Scenario(#[from] Box<crate::scenario::ScenarioError>),
    #[error(
        "lab {lab} is spread over hosts (`hosts:`): `nslab up` on the command line builds it; the Rust API builds labs of one host"
    )]
    Spread { lab: String },
}

/// How a lab is brought up: the fields, or the builder methods, then
/// [`up`](LabOptions::up), [`up_file`](LabOptions::up_file) or
/// [`up_yaml`](LabOptions::up_yaml), which block, or in async code their
/// `_async` forms, to `.await`.
#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    /// Run the lab under a name of its own, `<name>-<suffix>` (unique in
    /// this process and across processes), so that tests running at the
    /// same time never collide. Interface names at the `host` end of a link
    /// are not renamed.
    pub unique: bool,
    /// Tear down a running lab of the same name first.
    pub reconfigure: bool,
    /// The `nslab` binary, which runs as the node inits (see
    /// [`UpOptions::init_exe`]). A program that is not `nslab` itself, a
    /// test for instance, names it here or in `NSLAB_EXE`.
    pub nslab_exe: Option<PathBuf>,
    /// Host ids `(start, count)` that nodes with `userns: true` take their
    /// 65536-id blocks from; `None`: nslab's own `/etc/subuid` and
    /// `/etc/subgid` entry (user `nslab`, made on first use).
    pub userns_range: Option<(u32, u32)>,
}

/// A running lab; dropping it tears it down.
///
/// Node names are those of the topology. See the crate documentation for
/// an example.
///
/// # Blocking and async
///
/// Every method blocks the calling thread until it is done, and works from
/// any thread, also one inside a tokio runtime (a `#[tokio::test]`, a
/// task): the tokio runtime nslab drives its netlink sockets with then runs
/// on a thread of its own, so there is no "Cannot start a runtime from
/// within a runtime" panic, in [`Drop`] neither.
///
/// Blocking a runtime's thread still stops that thread's tasks meanwhile.
/// On a current-thread runtime (`#[tokio::test]`'s default) that is every
/// task: a socket served by a task is not served while `lab.exec(...)`
/// waits for a command that talks to it. So async code `.await`s the
/// `_async` forms of the calls that take long, which run the same call on
/// tokio's blocking pool ([`tokio::task::spawn_blocking`]) and leave the
/// runtime free:
///
/// | blocking | to `.await` (in a tokio runtime) |
/// | --- | --- |
/// | [`LabOptions::up`], [`up_file`](LabOptions::up_file), [`up_yaml`](LabOptions::up_yaml) | [`LabOptions::up_async`], [`up_file_async`](LabOptions::up_file_async), [`up_yaml_async`](LabOptions::up_yaml_async) |
/// | [`Lab::up`] | [`Lab::up_async`] |
/// | [`Lab::exec`] | [`Lab::exec_async`] |
/// | [`Lab::check`] | [`Lab::check_async`] |
/// | [`Lab::stats`] | [`Lab::stats_async`] |
/// | [`Lab::events`] (and its iterator's `next`) | [`Lab::events_async`] (an [`EventStream`]) |
/// | [`Lab::impair`], [`impairment`](Lab::impairment), [`clear_impairment`](Lab::clear_impairment) | [`Lab::impair_async`], [`impairment_async`](Lab::impairment_async), [`clear_impairment_async`](Lab::clear_impairment_async) |
/// | [`Lab::link_down`], [`link_up`](Lab::link_up) | [`Lab::link_down_async`], [`link_up_async`](Lab::link_up_async) |
/// | [`Lab::down`], and [`Drop`] | [`Lab::down_async`] |
/// | [`Process::wait`], [`Process::kill`], and its [`Drop`] | [`Process::wait_async`], [`Process::kill_async`] |
///
/// The rest only block briefly, and have no async form:
/// [`Lab::spawn`] returns once the command is started, [`Lab::in_netns`]
/// takes as long as the work it is given (bind a socket there, and serve
/// it from a task), and the accessors ([`Lab::name`], [`Lab::addresses`],
/// ...) read what the lab already holds.
///
/// An `_async` future that is dropped before it is done does not stop its
/// call: it goes on to its end on the blocking pool, and a lab it brought
/// up is torn down there. tokio waits for the blocking pool when its
/// runtime shuts down, so a test's runtime does not end before that.
///
/// ```no_run
/// # async fn f(topology: nslab::spec::Topology) -> Result<(), Box<dyn std::error::Error>> {
/// let lab = nslab::LabOptions::new()
///     .unique()
///     .nslab_exe("/usr/local/bin/nslab") // in the crate's tests: env!("CARGO_BIN_EXE_nslab")
///     .up_async(&topology)
///     .await?;
/// let socket = lab.in_netns("h2", || std::net::UdpSocket::bind("0.0.0.0:7"))??;
/// socket.set_nonblocking(true)?;
/// let socket = tokio::net::UdpSocket::from_std(socket)?;
/// tokio::spawn(async move {
///     let mut buf = [0; 1500];
///     while let Ok((n, from)) = socket.recv_from(&mut buf).await {
///         let _ = socket.send_to(&buf[..n], from).await;
///     }
/// });
/// let h2 = lab.ipv4("h2", "eth0").ok_or("h2 has no IPv4 address")?;
/// // A command in h1 that talks to the task: awaited, so the task runs.
/// let echo = format!("import socket; s = socket.socket(2, 2); s.settimeout(2); s.sendto(b'hi', ('{h2}', 7)); print(s.recv(16).decode())");
/// let out = lab.exec_async("h1", ["python3", "-c", &echo]).await?;
/// assert_eq!(out.stdout_text(), "hi\n");
/// lab.down_async().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Lab {
    /// The plan's lab name, checked once.
    name: LabName,
    /// Shared with the `_async` calls on the blocking pool.
    plan: Arc<Plan>,
    report: UpReport,
    nodes: HashMap<String, RunningNode>,
    /// The nslab binary its inits run, for nodes started again.
    exe: Option<PathBuf>,
    /// The host ids of its user-namespaced nodes, for nodes `apply` adds.
    userns_range: Option<(u32, u32)>,
    /// Still to be torn down (false after [`Lab::down`]).
    live: bool,
}

/// What a command run with [`Lab::exec`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit code; 128 + N when the command was killed by signal N.
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// Did the command exit with code 0?
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Standard output as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

impl LabOptions {
    /// The defaults: the lab's own name, no reconfigure, `NSLAB_EXE` or
    /// this executable as the inits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`unique`](Self::unique).
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    /// Sets [`reconfigure`](Self::reconfigure).
    pub fn reconfigure(mut self) -> Self {
        self.reconfigure = true;
        self
    }

    /// Sets [`nslab_exe`](Self::nslab_exe).
    pub fn nslab_exe(mut self, path: impl Into<PathBuf>) -> Self {
        self.nslab_exe = Some(path.into());
        self
    }

    /// Sets [`userns_range`](Self::userns_range): `count` host ids from
    /// `start`, for both uids and gids.
    pub fn userns_range(mut self, start: u32, count: u32) -> Self {
        self.userns_range = Some((start, count));
        self
    }

    /// Brings up the lab of a validated topology (from a file,
    /// [`topology::parse_str`] or [`Topology::builder`]). Blocks until it is
    /// up; async code awaits [`up_async`](Self::up_async).
    pub fn up(&self, topology: &Topology) -> Result<Lab, ApiError> {
        if topology.spread.is_some() {
            return Err(ApiError::Spread {
                lab: topology.name.clone(),
            });
        }
        crate::privileges::check()?;
        let mut plan = Plan::from_topology(topology);
        if self.unique {
            plan.lab = unique_name(&plan.lab, std::process::id(), next_serial());
        }
        // State outlives the working directory; a topology built in code has
        // no file.
        plan.source = plan
            .source
            .filter(|p| p.is_file())
            .and_then(|p| std::path::absolute(p).ok());
        let up_options = UpOptions {
            reconfigure: self.reconfigure,
            init_exe: self.nslab_exe.clone(),
            userns_range: self.userns_range,
            ..UpOptions::default()
        };
        let name = LabName::new(plan.lab.clone()).map_err(LabError::from)?;
        let report = crate::lab::up(&plan, &up_options)?;
        // From here on, dropping `lab` (on any error too) tears it down.
        let mut lab = Lab {
            name,
            plan: Arc::new(plan),
            report,
            nodes: HashMap::new(),
            exe: self.nslab_exe.clone(),
            userns_range: self.userns_range,
            live: true,
        };
        lab.nodes = running_nodes(&lab.plan.lab)?
            .into_iter()
            .map(|n| (n.node.clone(), n))
            .collect();
        Ok(lab)
    }

    /// Loads, validates and brings up a topology file.
    pub fn up_file(&self, path: impl AsRef<Path>) -> Result<Lab, ApiError> {
        self.up(&topology::load(path.as_ref())?)
    }

    /// Validates and brings up topology YAML; relative bind sources are
    /// taken from the working directory.
    pub fn up_yaml(&self, yaml: &str) -> Result<Lab, ApiError> {
        self.up(&topology::parse_str(
            yaml,
            Path::new("(YAML text)"),
            Path::new("."),
        )?)
    }

    /// [`up`](Self::up) for async code: runs on tokio's blocking pool while
    /// the caller's runtime goes on. Needs a tokio runtime.
    pub async fn up_async(&self, topology: &Topology) -> Result<Lab, ApiError> {
        let (options, topology) = (self.clone(), topology.clone());
        unblocked(move || options.up(&topology)).await
    }

    /// [`up_file`](Self::up_file) for async code (see
    /// [`up_async`](Self::up_async)).
    pub async fn up_file_async(&self, path: impl AsRef<Path>) -> Result<Lab, ApiError> {
        let (options, path) = (self.clone(), path.as_ref().to_path_buf());
        unblocked(move || options.up_file(path)).await
    }

    /// [`up_yaml`](Self::up_yaml) for async code (see
    /// [`up_async`](Self::up_async)).
    pub async fn up_yaml_async(&self, yaml: &str) -> Result<Lab, ApiError> {
        let (options, yaml) = (self.clone(), yaml.to_string());
        unblocked(move || options.up_yaml(&yaml)).await
    }
}

/// Runs a blocking lab call on tokio's blocking pool and waits for it
/// without blocking the runtime, which meanwhile runs its other tasks (on
/// a current-thread runtime too). A panic in the call goes on here.
async fn unblocked<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(call).await {
        Ok(value) => value,
        Err(failed) => match failed.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Only a runtime shutting down cancels a blocking task, and
            // then nothing is left to poll this future.
            Err(failed) => panic!("a lab call on the blocking pool did not run: {failed}"),
        },
    }
}

impl Lab {
    /// Brings up the lab of a validated topology with the default
    /// [`LabOptions`]. Blocks until it is up; async code awaits
    /// [`up_async`](Self::up_async).
    pub fn up(topology: &Topology) -> Result<Lab, ApiError> {
        LabOptions::new().up(topology)
    }

    /// [`Lab::up`] under a unique name (see [`LabOptions::unique`]).
    pub fn up_unique(topology: &Topology) -> Result<Lab, ApiError> {
        LabOptions::new().unique().up(topology)
    }

    /// Loads, validates and brings up a topology file.
    pub fn up_file(path: impl AsRef<Path>) -> Result<Lab, ApiError> {
        LabOptions::new().up_file(path)
    }

    /// Validates and brings up topology YAML.
    pub fn up_yaml(yaml: &str) -> Result<Lab, ApiError> {
        LabOptions::new().up_yaml(yaml)
    }

    /// Brings up `topology` as `options` say (the same as
    /// [`LabOptions::up`]).
    pub fn up_with(topology: &Topology, options: &LabOptions) -> Result<Lab, ApiError> {
        options.up(topology)
    }

    /// [`Lab::up`] for async code: runs on tokio's blocking pool while the
    /// caller's runtime goes on. Needs a tokio runtime.
    pub async fn up_async(topology: &Topology) -> Result<Lab, ApiError> {
        LabOptions::new().up_async(topology).await
    }

    /// The lab's name (with its unique suffix, if any).
    pub fn name(&self) -> &str {
        &self.plan.lab
    }

    /// The plan the lab was built from.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// What `up` reported (phases and their times).
    pub fn up_report(&self) -> &UpReport {
        &self.report
    }

    /// Node names, in topology order.
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.plan.nodes.iter().map(|n| n.name.as_str())
    }

    /// The node's `/run/netns` name (`<lab>-<node>`), for `ip -n` and the like.
    pub fn netns_name(&self, node: &str) -> String {
        crate::plan::netns_name(&self.plan.lab, node)
    }

    fn node(&self, node: &str) -> Result<&RunningNode, ApiError> {
        if let Some(running) = self.nodes.get(node) {
            return Ok(running);
        }
        if self.plan.node_id(node).is_some() {
            return Err(LabError::NotRunning {
                node: format!("{}/{node}", self.plan.lab),
            }
            .into());
        }
        Err(ApiError::NoNode {
            lab: self.plan.lab.clone(),
            node: node.to_string(),
        })
    }

    /// Runs `argv` in every namespace of `node` (as `nslab exec` does, with
    /// the node's `env`) and waits for it, collecting its output; stdin is
    /// `/dev/null`. A command that is not found is an error, not a status.
    /// As with `std::process::Command::output`, a daemon left running with
    /// the command's stdout or stderr open keeps this waiting.
    ///
    /// Blocks until the command ends; async code awaits
    /// [`exec_async`](Self::exec_async), above all when a task of its own
    /// serves what the command talks to.
    pub fn exec<I, S>(&self, node: &str, argv: I) -> Result<Output, ApiError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        exec_in(self.node(node)?, &self.plan, command_line(argv)?)
    }

    /// [`exec`](Self::exec) for async code: the command runs and is waited
    /// for on tokio's blocking pool while the caller's runtime goes on, so a
    /// task of the caller's can serve what the command talks to. Needs a
    /// tokio runtime.
    pub async fn exec_async<I, S>(&self, node: &str, argv: I) -> Result<Output, ApiError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let running_node = self.node(node)?.clone();
        let argv = command_line(argv)?;
        let plan = Arc::clone(&self.plan);
        unblocked(move || exec_in(&running_node, &plan, argv)).await
    }

    /// Starts `argv` in `node` in the background (a server, say) and
    /// returns once it has been exec'd. It runs in a process group of its
    /// own, which is ended when the [`Process`] is dropped (as
    /// [`Process::kill`] does): the whole group, also what the command left
    /// running in it after exiting itself. Its stdout and
    /// stderr are pipes ([`Process::take_stdout`]); read them, or a
    /// talkative command blocks once a pipe is full.
    pub fn spawn<I, S>(&self, node: &str, argv: I) -> Result<Process, ApiError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let running_node = self.node(node)?;
        let argv = command_line(argv)?;
        let (stdio, out_read, err_read) = piped_stdio()?;
        let mode = SpawnMode {
            foreground: false,
            own_group: true,
        };
        let mut running = spawn_in(running_node, Some(&self.plan), argv, stdio, mode)?;
        let pid = running.started().map_err(enter_error(running_node))?;
        Ok(Process {
            running: Some(running),
            pid,
            label: running_node.label(),
            stdout: Some(out_read.into()),
            stderr: Some(err_read.into()),
        })
    }

    /// Runs `work` on a thread inside `node`'s net namespace and returns
    /// its result. Sockets made there stay in the node's namespace after
    /// `work` returns, so a test can bind a socket in a node and serve on it
    /// from any thread:
    ///
    /// ```no_run
    /// # fn f(lab: &nslab::Lab) -> Result<(), Box<dyn std::error::Error>> {
    /// let socket = lab.in_netns("h2", || std::net::UdpSocket::bind("0.0.0.0:7"))??;
    /// # Ok(()) }
    /// ```
    pub fn in_netns<T: Send>(
        &self,
        node: &str,
        work: impl FnOnce() -> T + Send,
    ) -> Result<T, ApiError> {
        Ok(self.node(node)?.in_netns(work)?)
    }

    /// The node's planned addresses with their interface names, IPv4 before
    /// IPv6 on each interface, in link order, then its devices'. Empty for
    /// an unknown node.
    pub fn addresses(&self, node: &str) -> Vec<(String, IpNet)> {
        let Some(id) = self.plan.node_id(node) else {
            return Vec::new();
        };
        self.plan
            .ends()
            .filter(|e| e.place == Place::Node(id))
            .flat_map(|e| e.addresses.iter().map(|a| (e.ifname.clone(), *a)))
            .collect()
    }

    /// The first planned address of `node`'s interface `iface` (IPv4 when
    /// it has one).
    pub fn address(&self, node: &str, iface: &str) -> Option<IpAddr> {
        self.interface_addresses(node, iface).next()
    }

    /// The planned IPv4 address of `node`'s interface `iface`.
    pub fn ipv4(&self, node: &str, iface: &str) -> Option<Ipv4Addr> {
        self.interface_addresses(node, iface).find_map(|a| match a {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
    }

    /// The planned IPv6 address of `node`'s interface `iface`.
    pub fn ipv6(&self, node: &str, iface: &str) -> Option<Ipv6Addr> {
        self.interface_addresses(node, iface).find_map(|a| match a {
            IpAddr::V6(v6) => Some(v6),
            IpAddr::V4(_) => None,
        })
    }

    fn interface_addresses(&self, node: &str, iface: &str) -> impl Iterator<Item = IpAddr> {
        self.addresses(node)
            .into_iter()
            .filter(move |(name, _)| name == iface)
            .map(|(_, net)| net.addr())
    }

    /// Probes the lab as `nslab check` does: the topology's `expect:`
    /// entries (or every node to every address, when it has none), each
    /// unanswered probe waiting at most `timeout`. `report.passed` says
    /// whether all held; [`render_text`](crate::check::render_text)
    /// prints it as the command does. Blocks until every probe is answered
    /// or timed out; async code awaits [`check_async`](Self::check_async).
    pub fn check(&self, timeout: Duration) -> Result<CheckReport, ApiError> {
        Ok(crate::check::check(&self.name, timeout)?)
    }

    /// [`check`](Self::check) for async code: the probes run on tokio's
    /// blocking pool while the caller's runtime goes on (serving what they
    /// probe, say). Needs a tokio runtime.
    pub async fn check_async(&self, timeout: Duration) -> Result<CheckReport, ApiError> {
        let lab = self.name.clone();
        unblocked(move || Ok(crate::check::check(&lab, timeout)?)).await
    }

    /// What each node of the lab uses now, as `nslab stats` shows it: CPU %
    /// (measured over 0.5 s, so this takes that long), memory in use and
    /// its limit, process count, and the counters of every interface.
    /// Blocks; async code awaits [`stats_async`](Self::stats_async).
    pub fn stats(&self) -> Result<StatsReport, ApiError> {
        lab_stats(&self.name)
    }

    /// [`stats`](Self::stats) for async code: it samples on tokio's
    /// blocking pool while the caller's runtime goes on. Needs a tokio
    /// runtime.
    pub async fn stats_async(&self) -> Result<StatsReport, ApiError> {
        let lab = self.name.clone();
        unblocked(move || lab_stats(&lab)).await
    }

    /// What happens in the lab from now on, as `nslab events` shows it:
    /// links going up or down, addresses and routes added or deleted,
    /// impairments set or cleared, nodes stopped or started, read from the
    /// kernel as they happen. Returns once every running node is watched;
    /// the [`Events`] iterator's `next` blocks until the next event, and
    /// ends after [`LabDown`](crate::events::EventKind::LabDown), when the
    /// lab is torn down. Dropping it stops the watch.
    ///
    /// ```no_run
    /// # fn f(lab: &nslab::Lab) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut events = lab.events()?;
    /// lab.exec("r1", ["ip", "link", "set", "eth0", "down"])?;
    /// let event = events.next().ok_or("the stream ended")??;
    /// println!("{event}"); // ... lab/r1 link eth0 down (down, admin down)
    /// # Ok(()) }
    /// ```
    pub fn events(&self) -> Result<Events, ApiError> {
        Ok(crate::lab::events::watch(Some(&self.name), None)?)
    }

    /// [`events`](Self::events) for async code: the watch starts on
    /// tokio's blocking pool, and the [`EventStream`] it returns is a
    /// [`Stream`](futures::Stream) to `.await` (`StreamExt::next`). Needs a
    /// tokio runtime.
    pub async fn events_async(&self) -> Result<EventStream, ApiError> {
        let lab = self.name.clone();
        unblocked(move || Ok(crate::lab::events::watch(Some(&lab), None)?.into_stream())).await
    }

    /// Impairs the egress of `node`'s `iface` now, as `nslab impair` does,
    /// with the settings of a topology's `impair:`, e.g.
    /// `[("delay", "20ms"), ("loss", "1%"), ("rate", "10mbit")]`. The
    /// settings replace the interface's impairment; all of them zero clears
    /// it. A root qdisc that nslab did not set is left alone and is an
    /// error ([`LabError::ForeignQdisc`]). Returns what the kernel then has.
    /// Blocks; async code awaits [`impair_async`](Self::impair_async).
    pub fn impair<'a>(
        &self,
        node: &str,
        iface: &str,
        settings: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Impairment, ApiError> {
        let (running, plan) = self.impair_request(node, iface, settings)?;
        Ok(crate::lab::impair_set(running, iface, &plan)?)
    }

    /// [`impair`](Self::impair) for async code (see
    /// [`exec_async`](Self::exec_async)).
    pub async fn impair_async<'a>(
        &self,
        node: &str,
        iface: &str,
        settings: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Impairment, ApiError> {
        let (running, plan) = self.impair_request(node, iface, settings)?;
        let (running, iface) = (running.clone(), iface.to_string());
        unblocked(move || Ok(crate::lab::impair_set(&running, &iface, &plan)?)).await
    }

    /// The running node and the impairment that `settings` ask for, checked.
    fn impair_request<'a>(
        &self,
        node: &str,
        iface: &str,
        settings: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(&RunningNode, Impair), ApiError> {
        let running = self.node(node)?;
        let target = format!("{}:{iface}", running.label());
        let mut fields = topology::ImpairFields::default();
        let mut problems = Vec::new();
        for (key, value) in settings {
            if !fields.set(key, value) {
                problems.push(format!(
                    "unknown impairment {key:?}; expected one of {}",
                    topology::IMPAIR_KEYS.join(", ")
                ));
            }
        }
        let plan = topology::parse_impair(&fields.as_text()).map_err(|found| {
            problems.extend(found.into_iter().map(|(key, message)| match key {
                "" => "nothing to set (use clear_impairment to remove one)".to_string(),
                key => format!("{key}: {message}"),
            }));
        });
        match plan {
            Ok(plan) if problems.is_empty() => Ok((running, plan)),
            _ => Err(ApiError::Impair {
                target,
                problems: problems.join("; "),
            }),
        }
    }

    /// What the egress of `node`'s `iface` suffers now, read from the kernel.
    /// Blocks; async code awaits [`impairment_async`](Self::impairment_async).
    pub fn impairment(&self, node: &str, iface: &str) -> Result<Impairment, ApiError> {
        Ok(crate::lab::impair_show(self.node(node)?, iface)?)
    }

    /// [`impairment`](Self::impairment) for async code (see
    /// [`exec_async`](Self::exec_async)).
    pub async fn impairment_async(&self, node: &str, iface: &str) -> Result<Impairment, ApiError> {
        let (running, iface) = (self.node(node)?.clone(), iface.to_string());
        unblocked(move || Ok(crate::lab::impair_show(&running, &iface)?)).await
    }

    /// Removes the impairment of `node`'s `iface`; false when it had none.
    /// Blocks; async code awaits
    /// [`clear_impairment_async`](Self::clear_impairment_async).
    pub fn clear_impairment(&self, node: &str, iface: &str) -> Result<bool, ApiError> {
        Ok(crate::lab::impair_clear(self.node(node)?, iface)?)
    }

    /// [`clear_impairment`](Self::clear_impairment) for async code (see
    /// [`exec_async`](Self::exec_async)).
    pub async fn clear_impairment_async(&self, node: &str, iface: &str) -> Result<bool, ApiError> {
        let (running, iface) = (self.node(node)?.clone(), iface.to_string());
        unblocked(move || Ok(crate::lab::impair_clear(&running, &iface)?)).await
    }

    /// Stops a node as a powered-off router would go: its links set down
    /// (its peers lose carrier), every process of it ended; its net
    /// namespace and links kept for [`start_node`](Self::start_node). The
    /// other nodes are untouched. Blocks.
    pub fn stop_node(&mut self, node: &str) -> Result<NodeChange, ApiError> {
        let target = self.node_ref(node)?;
        self.node(node)?;
        let change = crate::lab::stop_node(&target)?;
        self.nodes.remove(node);
        Ok(change)
    }

    /// Starts a node stopped with [`stop_node`](Self::stop_node) again: a
    /// new init in its kept net namespace, then its addresses, routes,
    /// sysctls and `exec` steps as `up` makes them. Blocks.
    pub fn start_node(&mut self, node: &str) -> Result<NodeChange, ApiError> {
        let target = self.node_ref(node)?;
        let change = crate::lab::start_node(&target, self.exe.as_deref())?;
        self.nodes.insert(
            node.to_string(),
            RunningNode {
                lab: change.lab.clone(),
                node: change.node.clone(),
                pid: change.pid,
            },
        );
        Ok(change)
    }

    /// [`stop_node`](Self::stop_node), then
    /// [`start_node`](Self::start_node).
    pub fn restart_node(&mut self, node: &str) -> Result<NodeChange, ApiError> {
        self.stop_node(node)?;
        self.start_node(node)
    }

    /// Plays the topology's `scenario:` as `nslab run-scenario` does,
    /// each check step's probes waiting at most `timeout`; blocks until
    /// the last step is done. `report.passed` says whether every check
    /// step passed, and each [`StepReport`](crate::scenario::StepReport)
    /// holds its check's report. The nodes the steps stopped or started
    /// are followed, as [`stop_node`](Self::stop_node) does.
    pub fn run_scenario(
        &mut self,
        timeout: Duration,
    ) -> Result<crate::scenario::ScenarioReport, ApiError> {
        let result = crate::scenario::run(&self.name, timeout, self.exe.as_deref(), |_| {});
        let running = running_nodes(self.name.as_str())?;
        self.nodes = running.into_iter().map(|n| (n.node.clone(), n)).collect();
        Ok(result.map_err(Box::new)?)
    }

    /// Changes the running lab to `topology`, live, as `nslab apply` does:
    /// only the difference is made (nodes, links, addresses, routes,
    /// sysctls, impairments, link states), and what did not change is not
    /// touched. `recreate` names nodes to build again whatever changed (the
    /// way to change a hostname, binds, `exec`, ...). A change that cannot
    /// be made live fails before anything changes
    /// ([`LabError::NotLive`]). The change is made to this lab whatever
    /// `topology`'s `name` (a lab built with [`LabOptions::unique`] has a
    /// name of its own). Blocks.
    pub fn apply(
        &mut self,
        topology: &Topology,
        recreate: &[&str],
    ) -> Result<crate::lab::ApplyReport, ApiError> {
        let mut plan = Plan::from_topology(topology);
        plan.lab = self.name.as_str().to_string();
        plan.source = self.plan.source.clone();
        let options = crate::lab::ApplyOptions {
            recreate: recreate.iter().map(|n| n.to_string()).collect(),
            init_exe: self.exe.clone(),
            userns_range: self.userns_range,
            ..Default::default()
        };
        let report = crate::lab::apply(&plan, &options)?;
        let running = running_nodes(self.name.as_str())?;
        self.nodes = running.into_iter().map(|n| (n.node.clone(), n)).collect();
        self.plan = Arc::new(plan);
        Ok(report)
    }

    /// `LAB/NODE` of a node of this lab's plan.
    fn node_ref(&self, node: &str) -> Result<NodeRef, ApiError> {
        if self.plan.node_id(node).is_none() {
            return Err(ApiError::NoNode {
                lab: self.plan.lab.clone(),
                node: node.to_string(),
            });
        }
        Ok(NodeRef::new(self.name.clone(), node).map_err(LabError::from)?)
    }

    /// Sets `node`'s `iface` administratively down now, as `nslab link
    /// down` does: its veth peer loses its carrier. Blocks; async code
    /// awaits [`link_down_async`](Self::link_down_async).
    pub fn link_down(&self, node: &str, iface: &str) -> Result<(), ApiError> {
        self.link_set(node, iface, LinkState::Down)
    }

    /// Sets `node`'s `iface` up again, as `nslab link up` does, with the
    /// addresses and routes the topology gives it (the kernel drops an
    /// end's IPv6 addresses and the routes through it when it goes down).
    /// Blocks; async code awaits [`link_up_async`](Self::link_up_async).
    pub fn link_up(&self, node: &str, iface: &str) -> Result<(), ApiError> {
        self.link_set(node, iface, LinkState::Up)
    }

    /// [`link_down`](Self::link_down) for async code (see
    /// [`exec_async`](Self::exec_async)).
    pub async fn link_down_async(&self, node: &str, iface: &str) -> Result<(), ApiError> {
        self.link_set_async(node, iface, LinkState::Down).await
    }

    /// [`link_up`](Self::link_up) for async code (see
    /// [`exec_async`](Self::exec_async)).
    pub async fn link_up_async(&self, node: &str, iface: &str) -> Result<(), ApiError> {
        self.link_set_async(node, iface, LinkState::Up).await
    }

    fn link_set(&self, node: &str, iface: &str, state: LinkState) -> Result<(), ApiError> {
        Ok(crate::lab::link_set(
            self.node(node)?,
            Some(&self.plan),
            iface,
            state,
        )?)
    }

    async fn link_set_async(
        &self,
        node: &str,
        iface: &str,
        state: LinkState,
    ) -> Result<(), ApiError> {
        let (running, iface) = (self.node(node)?.clone(), iface.to_string());
        let plan = Arc::clone(&self.plan);
        unblocked(move || Ok(crate::lab::link_set(&running, Some(&plan), &iface, state)?)).await
    }

    /// Tears the lab down now, reporting what was removed or what failed.
    /// Dropping the lab does the same, without the report. Both block (and
    /// neither panics inside a tokio runtime); async code awaits
    /// [`down_async`](Self::down_async).
    pub fn down(mut self) -> Result<DownReport, ApiError> {
        self.live = false;
        Ok(crate::lab::down(&self.name)?)
    }

    /// [`down`](Self::down) for async code: the teardown runs on tokio's
    /// blocking pool while the caller's runtime goes on. Needs a tokio
    /// runtime. In async code, prefer it to dropping the lab, which tears
    /// it down too but blocks the caller's thread meanwhile.
    pub async fn down_async(self) -> Result<DownReport, ApiError> {
        unblocked(move || self.down()).await
    }
}

/// One sample of a lab's figures (see [`Lab::stats`]).
fn lab_stats(lab: &LabName) -> Result<StatsReport, ApiError> {
    let mut reports = StatsSampler::new(Some(lab)).sample()?;
    match reports.pop() {
        Some(report) if reports.is_empty() => Ok(report),
        _ => Err(LabError::NoLab {
            lab: lab.to_string(),
        }
        .into()),
    }
}

/// Runs `argv` in `node` and collects its output (see [`Lab::exec`]).
fn exec_in(node: &RunningNode, plan: &Plan, argv: Vec<String>) -> Result<Output, ApiError> {
    let (stdio, out_read, err_read) = piped_stdio()?;
    let running = spawn_in(node, Some(plan), argv, stdio, SpawnMode::default())?;
    let (stdout, stderr) = std::thread::scope(|scope| {
        let stderr = scope.spawn(|| read_all(err_read.into()));
        let stdout = read_all(out_read.into());
        (stdout, stderr.join().unwrap_or_default())
    });
    let status = running.wait().map_err(enter_error(node))?;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// A command's stdio: stdin `/dev/null`, stdout and stderr pipes whose read
/// ends are returned.
fn piped_stdio() -> Result<([Stdio; 3], std::os::fd::OwnedFd, std::os::fd::OwnedFd), ApiError> {
    let (out_read, out_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    let stdio = [
        Stdio::Fd(dev_null()?),
        Stdio::Fd(out_write),
        Stdio::Fd(err_write),
    ];
    Ok((stdio, out_read, err_read))
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.live
            && let Err(e) = crate::lab::down(&self.name)
        {
            eprintln!("nslab: tearing down lab {}: {e}", self.plan.lab);
        }
    }
}

/// A command started with [`Lab::spawn`]; it and its process group are
/// ended when it is dropped, as [`Process::kill`] does (blocking for up to
/// its grace; async code awaits [`Process::kill_async`] instead).
#[derive(Debug)]
pub struct Process {
    /// `None` once waited for.
    running: Option<enter::Running>,
    pid: i32,
    label: String,
    stdout: Option<File>,
    stderr: Option<File>,
}

impl Process {
    /// The command's pid as this process sees it (the host's pid
    /// namespace; inside the node it has another).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The read end of the command's stdout (once).
    pub fn take_stdout(&mut self) -> Option<File> {
        self.stdout.take()
    }

    /// The read end of the command's stderr (once).
    pub fn take_stderr(&mut self) -> Option<File> {
        self.stderr.take()
    }

    /// The exit code if the command has ended, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<i32>, ApiError> {
        match self.running.as_mut() {
            Some(running) => running.try_wait().map_err(|e| self.error(e)),
            None => Ok(None),
        }
    }

    /// Waits for the command to end; returns its exit code. Processes it
    /// left running in its group are not waited for, and keep running.
    /// Blocks; async code awaits [`wait_async`](Self::wait_async).
    pub fn wait(mut self) -> Result<i32, ApiError> {
        self.finish(None)
    }

    /// Ends the command's process group: SIGTERM and SIGCONT to every
    /// process in it, also when the command itself has already exited (for
    /// what it left running), then SIGKILL to whatever is still there after
    /// 2 s. Returns the command's exit code (143 for SIGTERM; its own when
    /// it had already exited).
    ///
    /// Signals go through a pidfd of the command, so never to a process
    /// that reused its pid; on Linux 6.9 and later the group is signalled
    /// through it too, so never a group that reused its id. Before 6.9 the
    /// group is signalled by its id while the command has not been reaped
    /// (what it left in its group after that is not reached), with a narrow
    /// race: the command reaped, its group emptied and the id reused
    /// between the check and the signal.
    ///
    /// Blocks, up to the grace; async code awaits
    /// [`kill_async`](Self::kill_async). Dropping the process does the same
    /// as `kill`, blocking too.
    pub fn kill(mut self) -> Result<i32, ApiError> {
        self.finish(Some(KILL_GRACE))
    }

    /// [`wait`](Self::wait) for async code: waits on tokio's blocking pool
    /// while the caller's runtime goes on. Needs a tokio runtime.
    pub async fn wait_async(self) -> Result<i32, ApiError> {
        unblocked(move || self.wait()).await
    }

    /// [`kill`](Self::kill) for async code (up to 2 s of grace): ends the
    /// group on tokio's blocking pool while the caller's runtime goes on.
    /// Needs a tokio runtime.
    pub async fn kill_async(self) -> Result<i32, ApiError> {
        unblocked(move || self.kill()).await
    }

    /// Ends the command's group first when `kill_after` says so, then
    /// reaps the helper on every path, so no child of ours is left unreaped.
    fn finish(&mut self, kill_after: Option<Duration>) -> Result<i32, ApiError> {
        let Some(mut running) = self.running.take() else {
            return Ok(0);
        };
        if let Some(grace) = kill_after
            && let Err(e) = running.terminate(grace)
        {
            // It could not be signalled, and waiting for it might then
            // never return: end and reap the helper that waits for it.
            running.abandon();
            return Err(self.error(e));
        }
        running.wait().map_err(|e| self.error(e))
    }

    fn error(&self, source: enter::EnterError) -> ApiError {
        LabError::Enter {
            node: self.label.clone(),
            source,
        }
        .into()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.running.is_some()
            && let Err(e) = self.finish(Some(KILL_GRACE))
        {
            eprintln!("nslab: ending process {}: {e}", self.pid);
        }
    }
}

fn command_line<I, S>(argv: I) -> Result<Vec<String>, ApiError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let argv: Vec<String> = argv.into_iter().map(|a| a.as_ref().to_string()).collect();
    if argv.is_empty() {
        return Err(ApiError::EmptyCommand);
    }
    Ok(argv)
}

fn read_all(mut file: File) -> Vec<u8> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    bytes
}

/// A serial number for unique names, one per lab in this process.
fn next_serial() -> usize {
    static SERIAL: AtomicUsize = AtomicUsize::new(0);
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// `<name>-<pid>x<serial>` in hex, the name shortened so the whole fits the
/// 40 bytes a lab name may have. The pid keeps processes apart, the serial
/// the labs of one process.
fn unique_name(name: &str, pid: u32, serial: usize) -> String {
    let suffix = format!("-{pid:x}x{serial:x}");
    let room = crate::spec::MAX_NAME_BYTES.saturating_sub(suffix.len());
    let base: String = name.chars().take(room).collect();
    format!("{base}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_and_distinct() {
        let a = unique_name("chain3", 4242, 0);
        let b = unique_name("chain3", 4242, 1);
        let c = unique_name("chain3", 4243, 0);
        assert_eq!(a, "chain3-1092x0");
        assert!(a != b && a != c && b != c);
        for name in [a, b, c] {
            assert!(crate::spec::is_valid_name(&name), "{name}");
        }
    }

    #[test]
    fn a_long_name_is_shortened_to_fit() {
        let long = "a".repeat(40);
        let name = unique_name(&long, u32::MAX, usize::MAX);
        assert_eq!(name.len(), crate::spec::MAX_NAME_BYTES);
        assert!(
            name.ends_with(&format!("-ffffffffx{:x}", usize::MAX)),
            "{name}"
        );
        assert!(crate::spec::is_valid_name(&name), "{name}");
    }

    #[test]
    fn output_text_and_success() {
        let out = Output {
            status: 0,
            stdout: b"ok\n".to_vec(),
            stderr: vec![0xff],
        };
        assert!(out.success());
        assert_eq!(out.stdout_text(), "ok\n");
        assert_eq!(out.stderr_text(), "\u{fffd}");
    }

    #[test]
    fn empty_command_is_refused() {
        assert!(matches!(
            command_line(Vec::<String>::new()),
            Err(ApiError::EmptyCommand)
        ));
    }
}
