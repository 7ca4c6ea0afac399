//! `up`: plan → kernel objects, recorded in state as they are made, rolled
//! back when any step fails.
//!
//! Phases, each finished for every node before the next starts:
//! nodes (inits cloned by zygotes, one per core, then awaited) → sockets →
//! links (bridges, then veths born in place, then devices) → addresses and
//! ports → routes → impairments (qdiscs on the link ends that have one) →
//! sysctls that name an interface → exec. The /run/netns names are made on
//! a thread of their own alongside sockets, links, addresses and routes.

mod devices;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;

use super::seam::{Kernel, LateSysctls, RealKernel, Request};
use super::{LabError, Progress, down, fault, host_link_alias, runtime};
use crate::kernel::netlink::address::AddAddress;
use crate::kernel::netlink::link::{
    AttachPort, CreateBridge, CreateVeth, LinkInfo, MarkLink, SetLinkState, SetUp, VethEnd,
};
use crate::kernel::netlink::qdisc::{Previous, Psched, ReplaceRoot};
use crate::kernel::netlink::route::AddRoute;
use crate::kernel::netlink::{NetlinkError, Netns};
use crate::kernel::userns::IdRange;
use crate::plan::{EndpointPlan, Place, Plan};
use crate::spec::{LinkState, NodeKind, Sysctl};
use crate::state::{self, Entry, LabLock, StateDir, StateError};

/// How many netlink requests are in flight at once.
const IN_FLIGHT: usize = 128;

/// How long `up` waits for its links to be operationally up (the kernel
/// puts it off by a second at most).
const RUNNING_WITHIN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Tear an existing lab of the same name down first.
    pub reconfigure: bool,
    /// Told how each phase advances.
    pub progress: Progress,
    /// The nslab binary that runs as the node inits' zygote. `None`: the
    /// `NSLAB_EXE` environment variable, else this very executable (right
    /// for the `nslab` binary; a program that only links the library, a
    /// test for one, must name nslab here or in `NSLAB_EXE`).
    pub init_exe: Option<std::path::PathBuf>,
    /// Host ids (start, count) that user-namespaced nodes take their
    /// blocks from; `None`: nslab's `/etc/subuid` and `/etc/subgid` entry.
    pub userns_range: Option<(u32, u32)>,
    /// List the nodes in the host's `/etc/hosts` too, in a block of the
    /// lab's that `down` takes out (see [`Plan::host_entries`]).
    pub host_names: bool,
}

/// What `up` built and how long each phase took.
#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    pub lab: String,
    pub nodes: usize,
    pub links: usize,
    /// Devices (macvlan, vxlan, dummy interfaces of nodes).
    pub devices: usize,
    pub phases: Vec<(String, Duration)>,
    pub total: Duration,
    /// The open-file limit, when `up` had to raise it: (before, after).
    pub raised_open_files: Option<(u64, u64)>,
    /// Link ends (`node:iface`) that were still not operationally up when
    /// `up` stopped waiting for them.
    pub not_running: Vec<String>,
}

/// Builds the lab of `plan`. On failure everything built so far is removed
/// and the error names the failing object.
pub fn up(plan: &Plan, options: &UpOptions) -> Result<UpReport, LabError> {
    up_on(&RealKernel, plan, options)
}

/// [`up`] through `kernel`.
pub(super) fn up_on<K: Kernel>(
    kernel: &K,
    plan: &Plan,
    options: &UpOptions,
) -> Result<UpReport, LabError> {
    let started = Instant::now();
    // A containerlab file's lab directory first: bind sources in it must
    // exist before they are checked.
    let all: Vec<usize> = (0..plan.nodes.len()).collect();
    super::lab_dir::make(plan, &all)?;
    // Checked before anything is built, the lab's lock file included: an
    // unusable range, or a bind that cannot be idmapped, fails here.
    let id_range = match plan.nodes.iter().any(|n| n.userns) {
        true => Some(kernel.userns_range(plan, options.userns_range)?),
        false => None,
    };
    let root = kernel.state_root();
    let lock = LabLock::acquire_in(root, &plan.lab, || {
        eprintln!(
            "nslab: waiting for another nslab working on lab {}",
            plan.lab
        )
    })?;
    if state::read_in(root, &plan.lab)?.is_some() {
        if !options.reconfigure {
            return Err(StateError::Exists(plan.lab.clone()).into());
        }
        down::teardown_locked(kernel, &plan.lab, &options.progress)?.into_result()?;
    }
    let leftovers = kernel
        .find_inits(&plan.lab)
        .map_err(|source| LabError::Io {
            what: "scan /proc".into(),
            source,
        })?;
    if !leftovers.is_empty() {
        return Err(LabError::Leftovers {
            lab: plan.lab.clone(),
            what: format!("{} node init(s) without state", leftovers.len()),
        });
    }

    let port_sockets = match kernel.prepare_host(plan) {
        Ok(sockets) => sockets,
        Err(e) => {
            // Nothing was built: no lock file is left either.
            lock.release_and_remove();
            state::remove_root_if_empty_in(root);
            return Err(e);
        }
    };
    super::lab_dir::rewrite_files(plan)?;
    let raised_open_files = raise_open_files(plan)?;
    let state = StateDir::create_in(root, plan)?;
    state.write_hosts(&plan.hosts_file())?;
    fault::step();
    let mut builder = Builder {
        kernel,
        plan,
        progress: &options.progress,
        init_exe: options.init_exe.as_deref(),
        id_range,
        state,
        nodes: Vec::new(),
        phases: Vec::new(),
        clock: Instant::now(),
        not_running: Vec::new(),
        port_sockets,
    };
    let mut built = builder.build();
    if built.is_ok() && options.host_names {
        // Last, so that an `up` killed before has nothing there to undo.
        built = kernel
            .set_host_names(&plan.lab, Some(&plan.host_entries()))
            .map(drop);
    }
    if let Some(steps) = fault::report() {
        eprintln!("nslab: fault injection armed: {steps} kernel-changing steps taken");
    }
    match built {
        Ok(()) => {
            builder.state.record(&[Entry::Ready])?;
            Ok(UpReport {
                lab: plan.lab.clone(),
                nodes: plan.nodes.len(),
                links: plan.links.len(),
                devices: plan.devices.len(),
                phases: builder.phases,
                total: started.elapsed(),
                raised_open_files,
                not_running: std::mem::take(&mut builder.not_running),
            })
        }
        Err(cause) => {
            // Our fds and sockets keep namespaces alive: close them first.
            drop(builder);
            let rollback = match down::teardown_locked(kernel, &plan.lab, &Progress::default()) {
                Ok(report) if report.errors.is_empty() => report.summary(),
                Ok(report) => format!("{}; errors: {}", report.summary(), report.errors.join("; ")),
                Err(e) => format!("incomplete: {e}"),
            };
            lock.release_and_remove();
            state::remove_root_if_empty_in(root);
            Err(LabError::RolledBack {
                cause: Box::new(cause),
                rollback,
            })
        }
    }
}

/// A node whose init is ready.
struct NodeHandle {
    pid: i32,
}

struct Builder<'a, K: Kernel> {
    kernel: &'a K,
    plan: &'a Plan,
    progress: &'a Progress,
    init_exe: Option<&'a std::path::Path>,
    id_range: Option<IdRange>,
    state: StateDir,
    nodes: Vec<NodeHandle>,
    phases: Vec<(String, Duration)>,
    clock: Instant,
    not_running: Vec<String>,
    /// The forwarded ports' sockets, until their relays start.
    port_sockets: Vec<std::os::fd::OwnedFd>,
}

impl<K: Kernel> Builder<'_, K> {
    fn build(&mut self) -> Result<(), LabError> {
        self.start_nodes()?;
        self.lap("nodes");
        // /run/netns names need nothing from the wiring and the wiring
        // nothing from them: make them on a thread of their own meanwhile
        // (file creation in /run/netns costs real time on some hosts).
        let pids: Vec<(usize, i32)> = self.nodes.iter().map(|n| n.pid).enumerate().collect();
        let mut journal = self.state.try_clone()?;
        let (kernel, plan, progress) = (self.kernel, self.plan, self.progress);
        let runtime = runtime()?;
        let (wired, named) = std::thread::scope(|scope| {
            let names =
                scope.spawn(move || name_namespaces(kernel, plan, &pids, &mut journal, progress));
            let wired = runtime.block_on(|| self.wire(runtime.handle()));
            (wired, names.join())
        });
        drop(runtime);
        wired?;
        let took = named.map_err(|_| LabError::Panicked("the naming thread"))??;
        self.phases.push(("names (alongside links)".into(), took));
        self.write_sysctls()?;
        fault::step();
        self.lap("sysctls");
        self.run_exec_steps()?;
        self.lap("exec");
        self.start_relays()?;
        Ok(())
    }

    fn lap(&mut self, phase: &str) {
        let now = Instant::now();
        self.phases.push((phase.to_string(), now - self.clock));
        self.clock = now;
    }

    /// Clones every init first and only then waits for them, so they set
    /// themselves up in parallel.
    fn start_nodes(&mut self) -> Result<(), LabError> {
        // Cloning a node costs the kernel real work (a net namespace above
        // all), so spread it over the cores: one zygote each, one
        // contiguous share each.
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        let share = self.plan.nodes.len().div_ceil(workers).max(1);
        // Id blocks and every cgroup before any init: each init is mapped
        // to its ids and joins its own cgroups at once.
        let mut maps = vec![None; self.plan.nodes.len()];
        if let Some(range) = self.id_range {
            let (ids, names): (Vec<usize>, Vec<&str>) = (self.plan.nodes.iter().enumerate())
                .filter(|(_, n)| n.userns)
                .map(|(id, n)| (id, n.name.as_str()))
                .unzip();
            let claimed = self.kernel.claim_ids(&self.plan.lab, &names, range)?;
            fault::step();
            for (id, map) in ids.into_iter().zip(claimed) {
                maps[id] = Some(map);
            }
        }
        self.kernel.make_cgroups(self.plan)?;
        fault::step();
        let ids: Vec<usize> = (0..self.plan.nodes.len()).collect();
        let journals = ids
            .chunks(share)
            .map(|_| self.state.try_clone())
            .collect::<Result<Vec<_>, _>>()?;
        let cloned = self.progress.phase("nodes", ids.len());
        let (kernel, plan, cloned, exe, maps) =
            (self.kernel, self.plan, &cloned, self.init_exe, &maps);
        let shares: Vec<Result<Vec<i32>, LabError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = ids
                .chunks(share)
                .zip(journals)
                .map(|(ids, mut journal)| {
                    scope.spawn(move || {
                        // Each pid is journaled as soon as it is known.
                        let mut started = |id: usize, pid: i32| {
                            journal.record(&[Entry::Init {
                                node: plan.nodes[id].name.clone(),
                                pid,
                            }])?;
                            fault::step();
                            cloned.tick();
                            Ok(())
                        };
                        kernel.spawn_inits(plan, exe, ids, maps, &mut started)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or(Err(LabError::Panicked("a cloning thread")))
                })
                .collect()
        });
        for share in shares {
            self.nodes
                .extend(share?.into_iter().map(|pid| NodeHandle { pid }));
        }
        Ok(())
    }

    async fn wire(&mut self, runtime: &tokio::runtime::Handle) -> Result<(), LabError> {
        let (kernel, plan) = (self.kernel, self.plan);
        let uses_host = plan
            .links
            .iter()
            .flat_map(|l| &l.endpoints)
            .any(|e| e.place == Place::Host)
            || plan.devices.iter().any(|d| d.kind.uses_host());
        let mut targets: Vec<(String, Netns<'_>)> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(id, n)| (plan.netns_name(id), Netns::Pid(n.pid)))
            .collect();
        if uses_host {
            targets.push(("the host namespace".into(), Netns::Own));
        }
        let sockets = kernel.open_sockets(runtime, &targets)?;
        let wiring = Wiring {
            kernel,
            plan,
            progress: self.progress,
            sockets: &sockets,
            pids: self.nodes.iter().map(|n| n.pid).collect(),
            uses_host,
        };
        self.lap("sockets");

        wiring.create_bridges().await?;
        let host_links: Vec<Entry> = plan
            .links
            .iter()
            .flat_map(|l| &l.endpoints)
            .filter(|e| e.place == Place::Host)
            .map(|e| Entry::HostLink {
                name: e.ifname.clone(),
            })
            .collect();
        self.state.record(&host_links)?;
        let failures = wiring.create_veths().await;
        // Pairs that were not made: their host-side names are someone
        // else's, never to be touched by teardown. (A pair made whose mark
        // was refused is ours all the same.)
        let retracted: Vec<Entry> = failures
            .iter()
            .filter(|failure| !failure.made)
            .flat_map(|failure| &plan.links[failure.link].endpoints)
            .filter(|e| e.place == Place::Host)
            .map(|e| {
                Entry::Retracted(Box::new(Entry::HostLink {
                    name: e.ifname.clone(),
                }))
            })
            .collect();
        if let Some(first) = failures.into_iter().next() {
            self.state.record(&retracted)?;
            return Err(first.error.into());
        }
        wiring.create_devices().await?;
        self.lap("links");

        let indexes = wiring.link_indexes().await?;
        wiring.configure_interfaces(&indexes).await?;
        wiring.configure_devices(&indexes).await?;
        self.lap("addresses");
        wiring.add_routes(&indexes).await?;
        self.lap("routes");
        if plan.ends().any(|e| e.impair.is_some()) {
            wiring.impair(&indexes).await?;
            self.lap("impairments");
        }
        if plan.ends().any(|e| e.state == LinkState::Down) {
            wiring.set_down(&indexes).await?;
            self.lap("links down");
        }
        self.not_running = wiring.wait_until_running(RUNNING_WITHIN).await?;
        self.lap("links running");
        Ok(())
    }

    /// The sysctls that name an interface (the inits wrote the others).
    fn write_sysctls(&self) -> Result<(), LabError> {
        let interfaces = self.plan.interfaces_by_node();
        let late: Vec<Vec<Sysctl>> = (0..self.plan.nodes.len())
            .map(|id| self.plan.sysctl_stages(id, &interfaces[id]).1)
            .collect();
        let work = self
            .plan
            .nodes
            .iter()
            .zip(&self.nodes)
            .zip(&late)
            .filter(|(_, sysctls)| !sysctls.is_empty())
            .map(|((node, handle), sysctls)| LateSysctls {
                node: &node.name,
                pid: handle.pid,
                sysctls,
            })
            .collect();
        self.kernel.write_sysctls(work)
    }

    /// The forwarded ports' relays, in the management bridge's pid
    /// namespace: they end with it.
    fn start_relays(&mut self) -> Result<(), LabError> {
        let sockets = std::mem::take(&mut self.port_sockets);
        let Some(bridge) = self.plan.node_id(crate::spec::MGMT_BRIDGE) else {
            return Ok(());
        };
        if sockets.is_empty() {
            return Ok(());
        }
        let holder = self.nodes[bridge].pid;
        self.kernel
            .start_relays(self.plan, self.init_exe, holder, sockets)?;
        fault::step();
        self.lap("ports");
        Ok(())
    }

    fn run_exec_steps(&self) -> Result<(), LabError> {
        let all: Vec<usize> = (0..self.plan.nodes.len()).collect();
        super::steps::run_in_start_order(self.plan, &all, |id, command| {
            let (node, pid) = (&self.plan.nodes[id], self.nodes[id].pid);
            self.kernel.run_exec_step(node, pid, command)
        })
    }
}

/// Raises the open-file limit to what the lab needs: per node a status
/// pipe while it starts, then a netlink socket while it is wired (veths
/// name namespaces by pid, so no namespace fd stays open). Returns (before,
/// after) when it had to.
fn raise_open_files(plan: &Plan) -> Result<Option<(u64, u64)>, LabError> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let need = plan.nodes.len() as u64 + 512;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| LabError::Io {
        what: "read the open-file limit".into(),
        source: e.into(),
    })?;
    if soft >= need {
        return Ok(None);
    }
    // Root may raise the hard limit too (up to fs.nr_open).
    let hard = if hard < need && setrlimit(Resource::RLIMIT_NOFILE, need, need).is_ok() {
        need
    } else {
        hard
    };
    if hard < need {
        return Err(LabError::Io {
            what: format!(
                "lab {} needs about {need} open files and the hard limit is {hard} (raise it with `ulimit -Hn {need}`)",
                plan.lab
            ),
            source: std::io::Error::from_raw_os_error(libc::EMFILE),
        });
    }
    setrlimit(Resource::RLIMIT_NOFILE, need, hard).map_err(|e| LabError::Io {
        what: "raise the open-file limit".into(),
        source: e.into(),
    })?;
    Ok(Some((soft, need)))
}

/// /run/netns/LAB-NODE for each node (id, init pid); returns how long it
/// took. Runs after every init exists, so no node's mount namespace holds
/// a copy of a sibling's name.
pub(super) fn name_namespaces(
    kernel: &impl Kernel,
    plan: &Plan,
    pids: &[(usize, i32)],
    journal: &mut StateDir,
    progress: &Progress,
) -> Result<Duration, LabError> {
    let started = Instant::now();
    let placeholder = journal.netns_placeholder()?;
    let named = progress.phase("names", pids.len());
    for &(id, pid) in pids {
        let name = plan.netns_name(id);
        // Recorded before it exists, so a crash right after creation leaves
        // a trace; retracted if the name turns out to be taken.
        let entry = Entry::NetnsName { name: name.clone() };
        journal.record(std::slice::from_ref(&entry))?;
        if let Err(e) = kernel.reserve_netns_name(&name, &placeholder) {
            journal.record(&[Entry::Retracted(Box::new(entry))])?;
            return Err(e.into());
        }
        fault::step();
        kernel.bind_netns_name(&name, pid)?;
        fault::step();
        named.tick();
    }
    Ok(started.elapsed())
}

/// The netlink half of `up`: sockets and fds of every place, borrowed.
struct Wiring<'a, K: Kernel> {
    kernel: &'a K,
    plan: &'a Plan,
    progress: &'a Progress,
    sockets: &'a [K::Socket],
    /// Init pid of each node.
    pids: Vec<i32>,
    uses_host: bool,
}

/// A veth pair that failed: not made, or made and then refused its mark.
struct VethFailure {
    /// The link's index in the plan.
    link: usize,
    error: NetlinkError,
    made: bool,
}

/// Interface name → ifindex, per place.
struct Indexes {
    nodes: Vec<HashMap<String, u32>>,
    host: HashMap<String, u32>,
}

impl Indexes {
    fn get(&self, place: Place, name: &str) -> Option<u32> {
        match place {
            Place::Host => self.host.get(name).copied(),
            Place::Node(id) => self.nodes[id].get(name).copied(),
        }
    }
}

impl<K: Kernel> Wiring<'_, K> {
    fn socket(&self, place: Place) -> &K::Socket {
        &self.sockets[self.socket_index(place)]
    }

    /// The index in `sockets` of a place: nodes in order, then the host.
    fn socket_index(&self, place: Place) -> usize {
        match place {
            Place::Node(id) => id,
            Place::Host => self.plan.nodes.len(),
        }
    }

    /// Waits until every link end is operationally up, and returns those
    /// still not at the deadline. An end is up at once, but the kernel
    /// gives it its transmit queue (and IPv6 its multicast groups) only when
    /// its link-watch work runs, which it may put off for up to a second
    /// when link events come in bursts, as they do here. Until then the end
    /// drops what it sends: a lab is not ready before that.
    async fn wait_until_running(&self, within: Duration) -> Result<Vec<String>, NetlinkError> {
        let deadline = Instant::now() + within;
        let mut pending: Vec<Vec<&EndpointPlan>> = vec![Vec::new(); self.sockets.len()];
        // A link with an end set down (`state: down`) never runs: neither
        // end has a carrier.
        let links: Vec<_> = self
            .plan
            .links
            .iter()
            .filter(|l| l.endpoints.iter().all(|e| e.state == LinkState::Up))
            .collect();
        let devices = self.plan.devices.iter().map(|d| &d.end);
        let devices = devices.filter(|e| e.state == LinkState::Up);
        for end in links.iter().flat_map(|l| &l.endpoints).chain(devices) {
            pending[self.socket_index(end.place)].push(end);
        }
        let waiting = self.progress.phase("links running", links.len() * 2);
        loop {
            let dumps = pending
                .iter()
                .enumerate()
                .filter(|(_, ends)| !ends.is_empty())
                .map(|(i, _)| async move {
                    let netns = match self.plan.nodes.get(i) {
                        Some(_) => self.plan.netns_name(i),
                        None => "the host namespace".to_string(),
                    };
                    let links = self.kernel.dump_links(&self.sockets[i], &netns).await?;
                    Ok::<_, NetlinkError>((i, links))
                });
            let dumped: Vec<(usize, Vec<LinkInfo>)> = stream::iter(dumps)
                .buffer_unordered(IN_FLIGHT)
                .try_collect()
                .await?;
            for (i, links) in dumped {
                pending[i].retain(|end| {
                    let running = links.iter().any(|l| l.name == end.ifname && l.passes());
                    if running {
                        waiting.tick();
                    }
                    !running
                });
            }
            let late: Vec<String> = pending
                .iter()
                .flatten()
                .map(|end| self.plan.endpoint_label(end))
                .collect();
            if late.is_empty() || Instant::now() >= deadline {
                return Ok(late);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A process in the place's net namespace.
    fn netns_pid(&self, place: Place) -> u32 {
        match place {
            Place::Node(id) => self.pids[id] as u32,
            Place::Host => std::process::id(),
        }
    }

    async fn create_bridges(&self) -> Result<(), NetlinkError> {
        let bridges = self
            .plan
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.kind == NodeKind::Bridge);
        in_flight(
            self.progress,
            "bridges",
            bridges.map(|(id, node)| {
                let request = Request::CreateBridge(CreateBridge {
                    name: node.name.clone(),
                });
                self.kernel.request(&self.sockets[id], request)
            }),
        )
        .await
    }

    /// Creates every veth pair, and marks each host-side end as the lab's
    /// in its own request right away (the kernel ignores an alias at
    /// creation). Returns every link that failed.
    async fn create_veths(&self) -> Vec<VethFailure> {
        let alias = host_link_alias(&self.plan.lab);
        let indexes = veth_indexes(self.plan);
        let requests = self.plan.links.iter().enumerate().map(|(i, link)| {
            let end = |end: usize| {
                let e = &link.endpoints[end];
                VethEnd {
                    name: e.ifname.clone(),
                    netns_pid: self.netns_pid(e.place),
                    mac: e.mac,
                    index: indexes[i][end],
                }
            };
            let create = CreateVeth {
                ends: [end(0), end(1)],
                mtu: link.mtu,
                label: format!("link {}", self.plan.link_label(link)),
            };
            let alias = alias.clone();
            async move {
                let socket = self.socket(link.endpoints[0].place);
                self.kernel
                    .request(socket, Request::CreateVeth(create))
                    .await
                    .map_err(|error| VethFailure {
                        link: i,
                        error,
                        made: false,
                    })?;
                fault::step();
                for end in link.endpoints.iter().filter(|e| e.place == Place::Host) {
                    let mark = MarkLink {
                        name: end.ifname.clone(),
                        alias: alias.clone(),
                    };
                    self.kernel
                        .request(self.socket(Place::Host), Request::MarkLink(mark))
                        .await
                        .map_err(|error| VethFailure {
                            link: i,
                            error,
                            made: true,
                        })?;
                    fault::step();
                }
                Ok(())
            }
        });
        let made = self.progress.phase("links", self.plan.links.len());
        stream::iter(requests)
            .buffer_unordered(IN_FLIGHT)
            .filter_map(|result| {
                made.tick();
                async move { result.err() }
            })
            .collect()
            .await
    }

    /// One link dump per namespace instead of a lookup per interface.
    async fn link_indexes(&self) -> Result<Indexes, NetlinkError> {
        let dumps = (0..self.plan.nodes.len()).map(|id| async move {
            let netns = self.plan.netns_name(id);
            let links = self.kernel.dump_links(&self.sockets[id], &netns).await?;
            Ok::<_, NetlinkError>(links.into_iter().map(|l| (l.name, l.index)).collect())
        });
        let nodes: Vec<HashMap<String, u32>> = stream::iter(dumps)
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        let host = match self.uses_host {
            true => self
                .kernel
                .dump_links(self.socket(Place::Host), "the host namespace")
                .await?
                .into_iter()
                .map(|l| (l.name, l.index))
                .collect(),
            false => HashMap::new(),
        };
        Ok(Indexes { nodes, host })
    }

    /// Bridge ports join their bridge; other ends get their addresses; all
    /// come up.
    async fn configure_interfaces(&self, indexes: &Indexes) -> Result<(), NetlinkError> {
        let mut requests = Vec::new();
        for link in &self.plan.links {
            for end in &link.endpoints {
                let label = self.plan.endpoint_label(end);
                let index = indexes
                    .get(end.place, &end.ifname)
                    .ok_or_else(|| missing(&label))?;
                let socket = self.socket(end.place).clone();
                let bridge = match (end.place, &end.master) {
                    (Place::Node(id), _) if self.plan.nodes[id].kind == NodeKind::Bridge => Some(
                        indexes
                            .get(end.place, &self.plan.nodes[id].name)
                            .ok_or_else(|| missing(&label))?,
                    ),
                    // A port of one of the host's own bridges.
                    (Place::Host, Some(master)) => Some(
                        indexes
                            .get(Place::Host, master)
                            .ok_or_else(|| missing(&format!("the host's bridge {master}")))?,
                    ),
                    _ => None,
                };
                let kernel = self.kernel;
                requests.push(Box::pin(async move {
                    if let Some(bridge) = bridge {
                        let attach = AttachPort {
                            port: index,
                            bridge,
                            label: format!("bridge port {label}"),
                        };
                        return kernel.request(&socket, Request::AttachPort(attach)).await;
                    }
                    for address in &end.addresses {
                        let add = AddAddress {
                            index,
                            address: *address,
                            label: label.clone(),
                        };
                        kernel.request(&socket, Request::AddAddress(add)).await?;
                    }
                    let up = SetUp { index, label };
                    kernel.request(&socket, Request::SetUp(up)).await
                }));
            }
        }
        in_flight(self.progress, "addresses", requests).await
    }

    async fn add_routes(&self, indexes: &Indexes) -> Result<(), NetlinkError> {
        let mut requests = Vec::new();
        for (id, node) in self.plan.nodes.iter().enumerate() {
            for route in &node.routes {
                let label = format!("node {}: route {}", node.name, route.text);
                let output_index = match &route.device {
                    Some(dev) => Some(
                        indexes
                            .get(Place::Node(id), dev)
                            .ok_or_else(|| missing(&label))?,
                    ),
                    None => None,
                };
                let add = AddRoute::of(&node.name, route, output_index);
                requests.push(
                    self.kernel
                        .request(&self.sockets[id], Request::AddRoute(add)),
                );
            }
        }
        in_flight(self.progress, "routes", requests).await
    }
}

/// The ifindex of each link end in a node: the two ends of a pair never
/// share one. The kernel treats a link event of an interface whose ifindex
/// equals its peer's as not urgent, and puts it off by up to a second; in
/// fresh namespaces that both count from 2, such pairs are common. Ends on
/// the host are left to the kernel (0).
fn veth_indexes(plan: &Plan) -> Vec<[u32; 2]> {
    // Next free ifindex per node: 1 is lo, and a bridge node's bridge
    // device (made first) takes 2.
    let mut next: Vec<u32> = plan
        .nodes
        .iter()
        .map(|n| match n.kind {
            NodeKind::Bridge => 3,
            NodeKind::Node => 2,
        })
        .collect();
    plan.links
        .iter()
        .map(|link| {
            let mut pick = |end: usize| match link.endpoints[end].place {
                Place::Host => 0,
                Place::Node(id) => next_end_index(&mut next[id], end),
            };
            [pick(0), pick(1)]
        })
        .collect()
}

/// The ifindex for end `end` (0 or 1) of a pair in a node whose next
/// free one is `next`, which moves past it: the first end of a pair gets an
/// odd one, the second an even one, so the two are never equal.
pub(super) fn next_end_index(next: &mut u32, end: usize) -> u32 {
    let parity = end as u32 ^ 1;
    let index = *next + ((*next & 1) ^ parity);
    *next = index + 1;
    index
}

impl<K: Kernel> Wiring<'_, K> {
    /// Sets the ends with `state: down` down, once everything else is
    /// wired: routes through them were added while they were up, as they
    /// would be on a lab whose link went down later (the kernel removes
    /// them with the end's IPv6 addresses, and `nslab link up` puts them
    /// back).
    async fn set_down(&self, indexes: &Indexes) -> Result<(), NetlinkError> {
        let mut requests = Vec::new();
        for end in self.plan.ends() {
            if end.state != LinkState::Down {
                continue;
            }
            let label = self.plan.endpoint_label(end);
            let index = indexes
                .get(end.place, &end.ifname)
                .ok_or_else(|| missing(&label))?;
            let down = SetLinkState {
                index,
                state: LinkState::Down,
                label,
            };
            requests.push(
                self.kernel
                    .request(self.socket(end.place), Request::SetLinkState(down)),
            );
        }
        in_flight(self.progress, "links down", requests).await
    }

    /// The root qdiscs of every link end with an impairment. The ends are
    /// new, so nothing of theirs is replaced.
    async fn impair(&self, indexes: &Indexes) -> Result<(), NetlinkError> {
        let clock = Psched::read();
        let mut requests = Vec::new();
        for (end, mtu) in self.plan.ends_with_mtu() {
            let Some(impair) = &end.impair else { continue };
            let label = self.plan.endpoint_label(end);
            let index = indexes
                .get(end.place, &end.ifname)
                .ok_or_else(|| missing(&label))?;
            // An impairment of all zeros sets nothing (validate makes it
            // none).
            let Some(request) =
                ReplaceRoot::for_plan(index, impair, mtu, Vec::new(), Previous::Default, label)
            else {
                continue;
            };
            let socket = self.socket(end.place);
            requests.push(
                self.kernel
                    .request(socket, Request::ReplaceRoot(request, clock)),
            );
        }
        in_flight(self.progress, "impairments", requests).await
    }
}

/// Runs requests with up to [`IN_FLIGHT`] of them in flight together; each
/// one that succeeds is a kernel-changing step.
async fn in_flight<E>(
    progress: &Progress,
    phase: &'static str,
    requests: impl IntoIterator<Item = impl Future<Output = Result<(), E>>>,
) -> Result<(), E> {
    let requests: Vec<_> = requests.into_iter().collect();
    let phase = progress.phase(phase, requests.len());
    stream::iter(requests)
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|()| {
            fault::step();
            phase.tick();
            async { Ok(()) }
        })
        .await
}

fn missing(label: &str) -> NetlinkError {
    NetlinkError::Missing(label.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology;

    #[test]
    fn the_ends_of_a_pair_never_share_an_ifindex() {
        let text = r#"
name: idx
topology:
  nodes:
    a: {}
    b: {}
    sw: {kind: bridge}
  links:
    - endpoints: ["a:e0", "b:e0"]
    - endpoints: ["a:e1", "b:e1"]
    - endpoints: ["b:e2", "a:e2"]
    - endpoints: ["a:e3", "sw:p0"]
    - endpoints: ["b:e3", "sw:p1"]
    - endpoints: ["a:e4", "host:idx0"]
"#;
        let topology = topology::parse_str(text, "idx.yml".as_ref(), ".".as_ref()).expect("valid");
        let plan = Plan::from_topology(&topology);
        let indexes = veth_indexes(&plan);
        let mut seen: Vec<(Place, u32)> = Vec::new();
        for (link, pair) in plan.links.iter().zip(&indexes) {
            assert_ne!(pair[0], pair[1], "{}", plan.link_label(link));
            for (end, &index) in link.endpoints.iter().zip(pair) {
                match end.place {
                    Place::Host => assert_eq!(index, 0, "the host's are the kernel's"),
                    Place::Node(id) => {
                        // Above lo (1), and above the bridge device (2).
                        let lowest = if plan.nodes[id].kind == NodeKind::Bridge {
                            3
                        } else {
                            2
                        };
                        assert!(index >= lowest, "{index}");
                        assert!(!seen.contains(&(end.place, index)), "unique in its node");
                        seen.push((end.place, index));
                    }
                }
            }
        }
    }
}
