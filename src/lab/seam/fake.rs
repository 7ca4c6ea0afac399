//! A recording fake of the kernel: it keeps what `up` makes (inits,
//! /run/netns names, links) as plain data with the kernel's rules for their
//! lifetimes, logs every change in order, and can refuse the K-th one. Its
//! state and lock files live in a folder of the test's own, so `up` and
//! `down` run whole on it without root.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::{Kernel, LateSysctls, Request};
use crate::kernel::init::InitError;
use crate::kernel::namespace::NetnsNameError;
use crate::kernel::netlink::link::{CreateDummy, CreateMacvlan, CreateVxlan, LinkInfo};
use crate::kernel::netlink::{NetlinkError, Netns};
use crate::kernel::process::FoundInit;
use crate::kernel::userns::{BLOCK, IdMap, IdRange};
use crate::lab::LabError;
use crate::lab::marks::{MarkedName, host_link_alias};
use crate::plan::Plan;
use crate::spec::Node;
use crate::state::{self, Recorded};

/// Fake pids start above any pid_max, so none equals the test's own pid
/// (the host namespace's id here, as in `up`).
const FIRST_PID: i32 = 1 << 22;

/// One change to the fake kernel, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// An init started (its namespaces with it).
    Init {
        node: String,
        pid: i32,
    },
    ReserveName(String),
    BindName(String),
    /// A netlink request, by what it makes (`veth a:eth0 <-> b:eth0`).
    Request(String),
    Sysctls(Vec<String>),
    Exec {
        node: String,
        command: String,
    },
    /// The step the fake refused, by what it would have made.
    Refused(String),
    /// Inits ended, all at once.
    Terminate(Vec<i32>),
    RemoveName(String),
    /// The cgroups of every node of a lab, made at once.
    MakeCgroups(String),
    /// The cgroups of a lab removed.
    RemoveCgroups(String),
    /// Id blocks claimed for the user-namespaced nodes of a lab.
    ClaimIds(String),
    /// The id blocks of a lab released.
    ReleaseIds(String),
    /// A host link deleted by `down` (false: it was already gone).
    DeleteHostLink {
        name: String,
        was_there: bool,
    },
}

/// A link in a fake namespace (named by the pid of its init; the host's
/// by the test's own pid).
#[derive(Debug, Clone)]
struct FakeLink {
    netns: u32,
    name: String,
    index: u32,
    alias: Option<String>,
    /// A veth's other end: its namespace and name.
    peer: Option<(u32, String)>,
}

impl FakeLink {
    /// The link as a dump of its namespace shows it.
    fn info(&self, kind: Option<&str>) -> LinkInfo {
        LinkInfo {
            index: self.index,
            name: self.name.clone(),
            kind: kind.map(String::from),
            mtu: None,
            mac: None,
            up: true,
            running: true,
            operstate: "up".into(),
            alias: self.alias.clone(),
            peer_index: None,
            controller: None,
            counters: None,
        }
    }
}

#[derive(Debug, Default)]
struct World {
    log: Vec<Change>,
    steps: usize,
    next_pid: i32,
    next_index: u32,
    /// Every init ever started: pid → (lab, node).
    started: BTreeMap<i32, (String, String)>,
    /// Inits still running.
    alive: Vec<i32>,
    /// /run/netns names: bound to an init's namespace, or only reserved.
    names: BTreeMap<String, Option<i32>>,
    links: Vec<FakeLink>,
    /// Labs whose cgroups exist.
    cgroups: BTreeSet<String>,
    /// Labs holding id blocks, with how many.
    id_blocks: BTreeMap<String, usize>,
    /// The journal each time `find_inits` looked (the last one is what the
    /// rollback found).
    journals: Vec<Recorded>,
}

impl World {
    /// A namespace lives while its init runs or a name is bound to it; its
    /// links die with it, and a veth's other end with them.
    fn collect(&mut self, host: u32) {
        let live = |netns: u32, world: &World| {
            netns == host
                || world.alive.contains(&(netns as i32))
                || world.names.values().any(|b| *b == Some(netns as i32))
        };
        let dead: Vec<(u32, String)> = self
            .links
            .iter()
            .filter(|l| !live(l.netns, self))
            .map(|l| (l.netns, l.name.clone()))
            .collect();
        self.links.retain(|l| {
            !dead.contains(&(l.netns, l.name.clone()))
                && !l.peer.as_ref().is_some_and(|p| dead.contains(p))
        });
    }

    fn link_named(&self, netns: u32, name: &str) -> Option<usize> {
        self.links
            .iter()
            .position(|l| l.netns == netns && l.name == name)
    }

    fn remove_link(&mut self, at: usize) {
        let link = self.links.remove(at);
        if let Some((netns, name)) = link.peer
            && let Some(peer) = self.link_named(netns, &name)
        {
            self.links.remove(peer);
        }
    }
}

#[derive(Debug)]
pub(crate) struct FakeKernel {
    root: PathBuf,
    /// The kernel-changing step to refuse (1 is the first).
    refuse: Option<usize>,
    world: Mutex<World>,
}

impl FakeKernel {
    /// A fake with its state under a fresh folder of its own.
    pub(crate) fn new(test: &str, refuse: Option<usize>) -> Self {
        let root = std::env::temp_dir().join(format!(
            "nslab-fake-{}-{test}-{}",
            std::process::id(),
            refuse.unwrap_or(0)
        ));
        let _ = std::fs::remove_dir_all(&root);
        Self {
            root,
            refuse,
            world: Mutex::new(World {
                next_pid: FIRST_PID,
                next_index: 1000,
                ..World::default()
            }),
        }
    }

    fn host() -> u32 {
        std::process::id()
    }

    /// Gives the host an interface of its own (not the lab's), `name`:
    /// a device's parent.
    pub(crate) fn with_host_link(self, name: &str) -> Self {
        let mut world = self.world();
        world.next_index += 1;
        let index = world.next_index;
        world.links.push(FakeLink {
            netns: Self::host(),
            name: name.to_owned(),
            index,
            alias: None,
            peer: None,
        });
        drop(world);
        self
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one kernel-changing step; false (and logged) when it is the
    /// one to refuse.
    fn allow(&self, world: &mut World, what: &str) -> bool {
        world.steps += 1;
        if self.refuse == Some(world.steps) {
            world.log.push(Change::Refused(what.to_string()));
            return false;
        }
        true
    }

    pub(crate) fn log(&self) -> Vec<Change> {
        self.world().log.clone()
    }

    /// How many kernel-changing steps were taken (refused or not).
    pub(crate) fn steps(&self) -> usize {
        self.world().steps
    }

    /// The journal as the last `find_inits` (the rollback's) found it.
    pub(crate) fn last_journal(&self) -> Option<Recorded> {
        self.world().journals.last().cloned()
    }

    /// What is left of everything made: live inits, names, links.
    pub(crate) fn leftovers(&self) -> (Vec<i32>, Vec<String>, Vec<String>) {
        let world = self.world();
        (
            world.alive.clone(),
            world.names.keys().cloned().collect(),
            world
                .links
                .iter()
                .map(|l| format!("{}:{}", l.netns, l.name))
                .collect(),
        )
    }

    /// Labs whose cgroups are still there.
    pub(crate) fn cgroups_left(&self) -> Vec<String> {
        self.world().cgroups.iter().cloned().collect()
    }

    /// Labs still holding id blocks.
    pub(crate) fn id_blocks_left(&self) -> Vec<String> {
        self.world().id_blocks.keys().cloned().collect()
    }

    pub(crate) fn state_root_exists(&self) -> bool {
        self.root.exists()
    }

    fn refused(what: String) -> NetlinkError {
        NetlinkError::Request {
            what,
            source: rtnetlink::Error::RequestFailed,
        }
    }
}

impl Drop for FakeKernel {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// What a request makes, as the log names it.
fn describe(request: &Request) -> String {
    match request {
        Request::CreateBridge(r) => format!("bridge {}", r.name),
        Request::CreateVeth(r) => format!("veth {}", r.label),
        Request::CreateMacvlan(r) => r.device.label.clone(),
        Request::CreateVxlan(r) => r.device.label.clone(),
        Request::CreateDummy(r) => r.device.label.clone(),
        Request::MarkLink(r) => format!("mark host:{}", r.name),
        Request::AttachPort(r) => r.label.clone(),
        Request::AddAddress(r) => format!("address {} on {}", r.address, r.label),
        Request::SetUp(r) => format!("up {}", r.label),
        Request::SetLinkState(r) => format!("{} {}", r.state, r.label),
        Request::AddRoute(r) => r.label.clone(),
        Request::ReplaceRoot(r, _) => format!("qdisc on {}", r.label),
    }
}

impl Kernel for FakeKernel {
    type Socket = u32;
    type Pinned = i32;
    type HostLinks = ();

    fn state_root(&self) -> &Path {
        &self.root
    }

    fn find_inits(&self, lab: &str) -> io::Result<Vec<FoundInit>> {
        let journal = state::read_in(&self.root, lab).ok().flatten();
        let mut world = self.world();
        if let Some(journal) = journal {
            world.journals.push(journal);
        }
        Ok(world
            .alive
            .iter()
            .filter_map(|pid| {
                let (of, node) = world.started.get(pid)?;
                (of == lab).then(|| FoundInit {
                    pid: *pid,
                    lab: of.clone(),
                    node: node.clone(),
                })
            })
            .collect())
    }

    fn spawn_inits(
        &self,
        plan: &Plan,
        _exe: Option<&Path>,
        ids: &[usize],
        _maps: &[Option<IdMap>],
        started: &mut dyn FnMut(usize, i32) -> Result<(), LabError>,
    ) -> Result<Vec<i32>, LabError> {
        let mut pids = Vec::new();
        for &id in ids {
            let node = plan.nodes[id].name.clone();
            let pid = {
                let mut world = self.world();
                if !self.allow(&mut world, &format!("init of {node}")) {
                    return Err(InitError::Setup {
                        node,
                        message: "refused by the fake kernel".into(),
                    }
                    .into());
                }
                let pid = world.next_pid;
                world.next_pid += 1;
                world.started.insert(pid, (plan.lab.clone(), node.clone()));
                world.alive.push(pid);
                world.log.push(Change::Init { node, pid });
                pid
            };
            started(id, pid)?;
            pids.push(pid);
        }
        Ok(pids)
    }

    fn make_cgroups(&self, plan: &Plan) -> Result<(), LabError> {
        let mut world = self.world();
        if !self.allow(&mut world, &format!("cgroups of {}", plan.lab)) {
            return Err(LabError::Io {
                what: format!("cgroups of {}", plan.lab),
                source: io::Error::from_raw_os_error(libc::ENOSPC),
            });
        }
        world.cgroups.insert(plan.lab.clone());
        world.log.push(Change::MakeCgroups(plan.lab.clone()));
        Ok(())
    }

    fn userns_range(&self, _plan: &Plan, given: Option<(u32, u32)>) -> Result<IdRange, LabError> {
        let (uid, count) = given.unwrap_or((1 << 30, 4 * BLOCK));
        Ok(IdRange {
            uid,
            gid: uid,
            count,
        })
    }

    fn claim_ids(&self, lab: &str, nodes: &[&str], range: IdRange) -> Result<Vec<IdMap>, LabError> {
        let mut world = self.world();
        if !self.allow(&mut world, &format!("id blocks of {lab}")) {
            return Err(LabError::Io {
                what: format!("id blocks of {lab}"),
                source: io::Error::from_raw_os_error(libc::ENOSPC),
            });
        }
        world.id_blocks.insert(lab.to_string(), nodes.len());
        world.log.push(Change::ClaimIds(lab.to_string()));
        Ok((0..nodes.len() as u32).map(|n| range.block(n)).collect())
    }

    fn release_ids(&self, lab: &str) -> (usize, Vec<String>) {
        let mut world = self.world();
        match world.id_blocks.remove(lab) {
            Some(n) => {
                world.log.push(Change::ReleaseIds(lab.to_string()));
                (n, Vec::new())
            }
            None => (0, Vec::new()),
        }
    }

    fn remove_cgroups(&self, lab: &str) -> (usize, Vec<String>) {
        let mut world = self.world();
        if !world.cgroups.remove(lab) {
            return (0, Vec::new());
        }
        world.log.push(Change::RemoveCgroups(lab.to_string()));
        (1, Vec::new())
    }

    fn reserve_netns_name(&self, name: &str, _placeholder: &Path) -> Result<(), NetnsNameError> {
        let mut world = self.world();
        let exists = world.names.contains_key(name);
        if exists || !self.allow(&mut world, &format!("name {name}")) {
            return Err(NetnsNameError::Create {
                path: name.into(),
                source: io::Error::from_raw_os_error(libc::EEXIST),
            });
        }
        world.names.insert(name.to_string(), None);
        world.log.push(Change::ReserveName(name.to_string()));
        Ok(())
    }

    fn bind_netns_name(&self, name: &str, pid: i32) -> Result<(), NetnsNameError> {
        let mut world = self.world();
        if !self.allow(&mut world, &format!("bind {name}")) {
            return Err(NetnsNameError::Bind {
                from: format!("/proc/{pid}/ns/net"),
                path: name.into(),
                source: nix::Error::EPERM,
            });
        }
        world.names.insert(name.to_string(), Some(pid));
        world.log.push(Change::BindName(name.to_string()));
        Ok(())
    }

    fn open_sockets(
        &self,
        _runtime: &tokio::runtime::Handle,
        namespaces: &[(String, Netns<'_>)],
    ) -> Result<Vec<Self::Socket>, NetlinkError> {
        namespaces
            .iter()
            .map(|(name, netns)| match netns {
                Netns::Pid(pid) => Ok(*pid as u32),
                Netns::Own => Ok(Self::host()),
                Netns::Fd(_) => Err(NetlinkError::Open {
                    netns: name.clone(),
                    reason: "the fake opens by pid only".into(),
                }),
            })
            .collect()
    }

    async fn request(&self, socket: &Self::Socket, request: Request) -> Result<(), NetlinkError> {
        let what = describe(&request);
        let mut world = self.world();
        if !self.allow(&mut world, &what) {
            return Err(Self::refused(what));
        }
        match &request {
            Request::CreateBridge(r) => {
                let index = world.next_index;
                world.next_index += 1;
                world.links.push(FakeLink {
                    netns: *socket,
                    name: r.name.clone(),
                    index,
                    alias: None,
                    peer: None,
                });
            }
            Request::CreateVeth(r) => {
                let [a, b] = &r.ends;
                if world.link_named(a.netns_pid, &a.name).is_some()
                    || world.link_named(b.netns_pid, &b.name).is_some()
                {
                    return Err(NetlinkError::Request {
                        what: r.label.clone(),
                        source: rtnetlink::Error::RequestFailed,
                    });
                }
                for (end, other) in [(a, b), (b, a)] {
                    let index = match end.index {
                        0 => {
                            world.next_index += 1;
                            world.next_index
                        }
                        given => given,
                    };
                    world.links.push(FakeLink {
                        netns: end.netns_pid,
                        name: end.name.clone(),
                        index,
                        alias: None,
                        peer: Some((other.netns_pid, other.name.clone())),
                    });
                }
            }
            Request::CreateMacvlan(CreateMacvlan { device, .. })
            | Request::CreateVxlan(CreateVxlan { device, .. })
            | Request::CreateDummy(CreateDummy { device }) => {
                // Born in the node, even when asked from the host.
                let netns = device.netns_pid.unwrap_or(*socket);
                if world.link_named(netns, &device.name).is_some() {
                    return Err(Self::refused(what));
                }
                world.next_index += 1;
                let index = world.next_index;
                world.links.push(FakeLink {
                    netns,
                    name: device.name.clone(),
                    index,
                    alias: None,
                    peer: None,
                });
            }
            Request::MarkLink(r) => {
                let Some(at) = world.link_named(*socket, &r.name) else {
                    return Err(Self::refused(what));
                };
                world.links[at].alias = Some(r.alias.clone());
            }
            // Inside a namespace: gone with it.
            Request::AttachPort(_)
            | Request::AddAddress(_)
            | Request::SetUp(_)
            | Request::SetLinkState(_)
            | Request::AddRoute(_)
            | Request::ReplaceRoot(..) => {}
        }
        world.log.push(Change::Request(what));
        Ok(())
    }

    async fn dump_links(
        &self,
        socket: &Self::Socket,
        _netns: &str,
    ) -> Result<Vec<LinkInfo>, NetlinkError> {
        let world = self.world();
        Ok(world
            .links
            .iter()
            .filter(|l| l.netns == *socket)
            .map(|l| l.info(None))
            .collect())
    }

    fn write_sysctls(&self, nodes: Vec<LateSysctls<'_>>) -> Result<(), LabError> {
        if nodes.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = nodes.iter().map(|n| n.node.to_string()).collect();
        let mut world = self.world();
        if !self.allow(&mut world, &format!("sysctls of {}", names.join(", "))) {
            return Err(LabError::Sysctl(crate::kernel::sysctl::SysctlError {
                node: names[0].clone(),
                key: "?".into(),
                value: "?".into(),
                reason: "refused by the fake kernel".into(),
            }));
        }
        world.log.push(Change::Sysctls(names));
        Ok(())
    }

    fn run_exec_step(&self, node: &Node, _pid: i32, command: &str) -> Result<(), LabError> {
        let mut world = self.world();
        if !self.allow(&mut world, &format!("exec {command:?} in {}", node.name)) {
            return Err(LabError::ExecStep {
                node: node.name.clone(),
                command: command.to_string(),
                code: 1,
                stderr: "refused by the fake kernel".into(),
            });
        }
        world.log.push(Change::Exec {
            node: node.name.clone(),
            command: command.to_string(),
        });
        Ok(())
    }

    fn pin_init(
        &self,
        pid: i32,
        lab: &str,
        node: &str,
        name: &str,
    ) -> io::Result<Option<(Self::Pinned, bool)>> {
        let world = self.world();
        let is_init = world.alive.contains(&pid)
            && world
                .started
                .get(&pid)
                .is_some_and(|(l, n)| l == lab && n == node);
        Ok(is_init.then(|| (pid, world.names.get(name) == Some(&Some(pid)))))
    }

    fn terminate(&self, inits: Vec<Self::Pinned>, _grace: Duration) -> (usize, Vec<String>) {
        let mut world = self.world();
        world.alive.retain(|pid| !inits.contains(pid));
        // Ending no process changes nothing (a rollback before any init).
        if !inits.is_empty() {
            world.log.push(Change::Terminate(inits.clone()));
        }
        world.collect(Self::host());
        (inits.len(), Vec::new())
    }

    fn netns_name_is_bound(&self, name: &str) -> bool {
        matches!(self.world().names.get(name), Some(Some(_)))
    }

    fn marked_netns_names(
        &self,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<MarkedName>, LabError> {
        let world = self.world();
        Ok(world
            .names
            .iter()
            .filter(|(name, _)| wanted(name))
            .filter_map(|(name, bound)| {
                let (lab, node) = world.started.get(&(*bound)?)?;
                Some(MarkedName {
                    name: name.clone(),
                    lab: lab.clone(),
                    node: node.clone(),
                })
            })
            .collect())
    }

    fn remove_netns_name(&self, name: &str) -> Result<bool, NetnsNameError> {
        let mut world = self.world();
        let removed = world.names.remove(name).is_some();
        if removed {
            world.log.push(Change::RemoveName(name.to_string()));
            world.collect(Self::host());
        }
        Ok(removed)
    }

    fn open_host_links(&self) -> Result<Self::HostLinks, LabError> {
        Ok(())
    }

    fn marked_host_links(&self, _host: &(), lab: &str) -> Result<Vec<LinkInfo>, LabError> {
        let alias = host_link_alias(lab);
        let host = Self::host();
        Ok(self
            .world()
            .links
            .iter()
            .filter(|l| l.netns == host && l.alias.as_deref() == Some(alias.as_str()))
            .map(|l| l.info(Some("veth")))
            .collect())
    }

    fn delete_host_link(&self, _host: &(), link: &LinkInfo) -> Result<bool, LabError> {
        let mut world = self.world();
        let at = world.link_named(Self::host(), &link.name);
        if let Some(at) = at {
            world.remove_link(at);
        }
        world.log.push(Change::DeleteHostLink {
            name: link.name.clone(),
            was_there: at.is_some(),
        });
        Ok(at.is_some())
    }

    fn wait_host_links_gone(
        &self,
        _host: &(),
        mut names: Vec<String>,
        _timeout: Duration,
    ) -> Result<Vec<String>, LabError> {
        let world = self.world();
        names.retain(|n| world.link_named(Self::host(), n).is_some());
        Ok(names)
    }

    fn prepare_host(&self, _plan: &Plan) -> Result<Vec<std::os::fd::OwnedFd>, LabError> {
        Ok(Vec::new())
    }

    fn start_relays(
        &self,
        _plan: &Plan,
        _exe: Option<&std::path::Path>,
        _holder: i32,
        _sockets: Vec<std::os::fd::OwnedFd>,
    ) -> Result<(), LabError> {
        Ok(())
    }

    fn set_host_names(&self, _lab: &str, _entries: Option<&str>) -> Result<bool, LabError> {
        Ok(false)
    }
}
