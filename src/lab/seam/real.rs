//! The real kernel behind the seam: each method makes the calls `up` and
//! `down` made before there was a seam, and the helpers that start inits
//! and run `exec:` steps.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Kernel, LateSysctls, Request};
use crate::kernel::cgroup::Cgroups;
use crate::kernel::enter::{self, NodeCommand, Stdio};
use crate::kernel::init::{InitConfig, InitError, Zygote};
use crate::kernel::namespace::{self, NamespaceFds, NetnsNameError, NsKind};
use crate::kernel::netlink::link::{LinkInfo, dump_links};
use crate::kernel::netlink::{NetlinkError, Netns, open_sockets};
use crate::kernel::process::{self, FoundInit, PinnedProcess};
use crate::kernel::sysctl::{self, NodeSysctls, SYSCTL_NAMESPACES};
use crate::lab::LabError;
use crate::lab::marks::{HostLinks, MarkedName};
use crate::plan::Plan;
use crate::spec::{Node, NodeKind};

/// How long `down` waits for a node's processes to leave its cgroups (the
/// kernel ends them with their pid namespace, not all at once).
const CGROUP_WAIT: Duration = Duration::from_secs(5);
use crate::kernel::userns::{IdMap, IdRange, IdmapProbe, SubidFiles, nslab_range};
use crate::state::{self, STATE_ROOT};

/// The kernel itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RealKernel;

impl Kernel for RealKernel {
    type Socket = rtnetlink::Handle;
    type Pinned = PinnedProcess;
    type HostLinks = HostLinks;

    fn state_root(&self) -> &Path {
        Path::new(STATE_ROOT)
    }

    fn find_inits(&self, lab: &str) -> io::Result<Vec<FoundInit>> {
        process::find_inits(Some(lab))
    }

    fn spawn_inits(
        &self,
        plan: &Plan,
        exe: Option<&Path>,
        ids: &[usize],
        maps: &[Option<IdMap>],
        started: &mut dyn FnMut(usize, i32) -> Result<(), LabError>,
    ) -> Result<Vec<i32>, LabError> {
        spawn_inits(plan, exe, ids, maps, started)
    }

    fn userns_range(&self, plan: &Plan, given: Option<(u32, u32)>) -> Result<IdRange, LabError> {
        // Every distinct bind source of a user-namespaced node, tried once.
        let sources: std::collections::BTreeSet<&Path> = plan
            .nodes
            .iter()
            .filter(|n| n.userns)
            .flat_map(|n| n.binds.iter().map(|b| b.source.as_path()))
            .collect();
        if !sources.is_empty() {
            let probe = IdmapProbe::start()?;
            for source in sources {
                probe.check(source)?;
            }
        }
        Ok(nslab_range(&SubidFiles::host(), given, true)?)
    }

    fn claim_ids(&self, lab: &str, nodes: &[&str], range: IdRange) -> Result<Vec<IdMap>, LabError> {
        Ok(state::claim_in(self.state_root(), lab, nodes, range)?)
    }

    fn release_ids(&self, lab: &str) -> (usize, Vec<String>) {
        match state::release_in(self.state_root(), lab) {
            Ok(released) => (released, Vec::new()),
            Err(e) => (0, vec![e.to_string()]),
        }
    }

    fn make_cgroups(&self, plan: &Plan) -> Result<(), LabError> {
        let nodes: Vec<(&str, &crate::spec::Limits)> = plan
            .nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Node)
            .map(|n| (n.name.as_str(), &n.limits))
            .collect();
        let cgroups = Cgroups::detect()?;
        // Left by an `up` that died with no init started: empty, so they go
        // at once; a limit from that run must not stay.
        let (_, stale) = cgroups.remove_lab(&plan.lab, Duration::ZERO);
        if let Some(e) = stale.first() {
            return Err(LabError::Leftovers {
                lab: plan.lab.clone(),
                what: e.to_string(),
            });
        }
        cgroups.create_lab(&plan.lab, &nodes)?;
        Ok(())
    }

    fn reserve_netns_name(&self, name: &str, placeholder: &Path) -> Result<(), NetnsNameError> {
        namespace::reserve_netns_name(name, Some(placeholder))
    }

    fn bind_netns_name(&self, name: &str, pid: i32) -> Result<(), NetnsNameError> {
        namespace::bind_netns_name(name, pid)
    }

    fn open_sockets(
        &self,
        runtime: &tokio::runtime::Handle,
        namespaces: &[(String, Netns<'_>)],
    ) -> Result<Vec<Self::Socket>, NetlinkError> {
        open_sockets(runtime, namespaces)
    }

    async fn request(&self, socket: &Self::Socket, request: Request) -> Result<(), NetlinkError> {
        match request {
            Request::CreateBridge(r) => r.execute(socket).await,
            Request::CreateVeth(r) => r.execute(socket).await,
            Request::CreateMacvlan(r) => r.execute(socket).await,
            Request::CreateVxlan(r) => r.execute(socket).await,
            Request::CreateDummy(r) => r.execute(socket).await,
            Request::MarkLink(r) => r.execute(socket).await,
            Request::AttachPort(r) => r.execute(socket).await,
            Request::AddAddress(r) => r.execute(socket).await,
            Request::SetUp(r) => r.execute(socket).await,
            Request::SetLinkState(r) => r.execute(socket).await,
            Request::AddRoute(r) => r.execute(socket).await,
            Request::ReplaceRoot(r, clock) => r.execute(socket, &clock).await,
        }
    }

    async fn dump_links(
        &self,
        socket: &Self::Socket,
        netns: &str,
    ) -> Result<Vec<LinkInfo>, NetlinkError> {
        dump_links(socket, netns).await
    }

    fn write_sysctls(&self, nodes: Vec<LateSysctls<'_>>) -> Result<(), LabError> {
        let mut work = Vec::with_capacity(nodes.len());
        for node in nodes {
            let namespaces =
                NamespaceFds::open(node.pid, &SYSCTL_NAMESPACES).map_err(|source| {
                    LabError::Io {
                        what: format!("open the namespaces of node {}", node.node),
                        source,
                    }
                })?;
            work.push(NodeSysctls {
                node: node.node,
                namespaces,
                sysctls: node.sysctls,
            });
        }
        Ok(sysctl::write_all(work)?)
    }

    fn run_exec_step(&self, node: &Node, pid: i32, command: &str) -> Result<(), LabError> {
        run_exec_step(node, pid, command)
    }

    fn pin_init(
        &self,
        pid: i32,
        lab: &str,
        node: &str,
        name: &str,
    ) -> io::Result<Option<(Self::Pinned, bool)>> {
        let Some(pinned) = PinnedProcess::pin_init(pid, lab, node)? else {
            return Ok(None);
        };
        let own = namespace::ns_inode(pid, NsKind::Net).ok();
        let bound = own.is_some() && namespace::netns_name_inode(name) == own && pinned.is_alive();
        Ok(Some((pinned, bound)))
    }

    fn terminate(&self, inits: Vec<Self::Pinned>, grace: Duration) -> (usize, Vec<String>) {
        process::terminate(inits, grace)
    }

    fn netns_name_is_bound(&self, name: &str) -> bool {
        namespace::netns_name_inode(name).is_some()
    }

    fn marked_netns_names(
        &self,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<MarkedName>, LabError> {
        crate::lab::marks::marked_netns_names(wanted)
    }

    fn remove_cgroups(&self, lab: &str) -> (usize, Vec<String>) {
        match Cgroups::detect() {
            Ok(cgroups) => {
                let (removed, errors) = cgroups.remove_lab(lab, CGROUP_WAIT);
                (removed, errors.iter().map(ToString::to_string).collect())
            }
            Err(e) => (0, vec![e.to_string()]),
        }
    }

    fn remove_netns_name(&self, name: &str) -> Result<bool, NetnsNameError> {
        namespace::remove_netns_name(name)
    }

    fn open_host_links(&self) -> Result<Self::HostLinks, LabError> {
        HostLinks::open()
    }

    fn marked_host_links(
        &self,
        host: &Self::HostLinks,
        lab: &str,
    ) -> Result<Vec<LinkInfo>, LabError> {
        host.marked(lab)
    }

    fn delete_host_link(&self, host: &Self::HostLinks, link: &LinkInfo) -> Result<bool, LabError> {
        host.delete(link)
    }

    fn wait_host_links_gone(
        &self,
        host: &Self::HostLinks,
        names: Vec<String>,
        timeout: Duration,
    ) -> Result<Vec<String>, LabError> {
        host.wait_gone(names, timeout)
    }

    fn prepare_host(&self, plan: &Plan) -> Result<Vec<std::os::fd::OwnedFd>, LabError> {
        crate::lab::host_side::check_host(plan, &plan.links, true)?;
        crate::lab::devices::check_parents(plan, &plan.devices)?;
        crate::lab::host_side::bind_ports(plan)
    }

    fn start_relays(
        &self,
        plan: &Plan,
        exe: Option<&Path>,
        holder: i32,
        sockets: Vec<std::os::fd::OwnedFd>,
    ) -> Result<(), LabError> {
        crate::lab::host_side::start_relays(plan, exe, holder, sockets)
    }

    fn set_host_names(&self, lab: &str, entries: Option<&str>) -> Result<bool, LabError> {
        let hosts = Path::new(crate::lab::host_names::HOSTS);
        crate::lab::host_names::set_block(hosts, lab, entries)
    }
}

/// Starts the inits of some nodes through a zygote of their own, telling
/// `started` each pid as it comes; returns the pids once every init is
/// ready.
fn spawn_inits(
    plan: &Plan,
    exe: Option<&Path>,
    ids: &[usize],
    maps: &[Option<IdMap>],
    started: &mut dyn FnMut(usize, i32) -> Result<(), LabError>,
) -> Result<Vec<i32>, LabError> {
    let zygote = Zygote::start(&plan.lab, exe)?;
    let cgroups = Cgroups::detect()?;
    spawn_inits_on(zygote, plan, ids, maps, &cgroups, started)
}

/// [`spawn_inits`] through a zygote started earlier (its start-up then
/// overlaps the caller's other work).
pub(crate) fn spawn_inits_on(
    zygote: Zygote,
    plan: &Plan,
    ids: &[usize],
    maps: &[Option<IdMap>],
    cgroups: &Cgroups,
    started: &mut dyn FnMut(usize, i32) -> Result<(), LabError>,
) -> Result<Vec<i32>, LabError> {
    let interfaces = plan.interfaces_by_node();
    let configs: Vec<InitConfig> = ids
        .iter()
        .map(|&id| {
            init_config(
                plan,
                id,
                &interfaces[id],
                cgroups,
                maps.get(id).copied().flatten(),
            )
        })
        .collect();
    spawn_configs_on(zygote, plan, ids, &configs, started)
}

/// Starts one init per config (of the nodes `ids`) through a zygote of
/// their own; see [`spawn_inits`].
pub(crate) fn spawn_configs(
    plan: &Plan,
    exe: Option<&Path>,
    ids: &[usize],
    configs: &[InitConfig],
    started: &mut dyn FnMut(usize, i32) -> Result<(), LabError>,
) -> Result<Vec<i32>, LabError> {
    spawn_configs_on(Zygote::start(&plan.lab, exe)?, plan, ids, configs, started)
}

fn spawn_configs_on(
    mut zygote: Zygote,
    plan: &Plan,
    ids: &[usize],
    configs: &[InitConfig],
    started: &mut dyn FnMut(usize, i32) -> Result<(), LabError>,
) -> Result<Vec<i32>, LabError> {
    let input = zygote.take_input();
    let zygote_error = |message: String| InitError::Setup {
        node: format!("(zygote of {})", plan.lab),
        message,
    };
    std::thread::scope(|scope| {
        // Written on a thread of its own so that neither pipe can fill up.
        let writer = input.map(|input| scope.spawn(|| Zygote::send_all(input, configs)));
        let mut pids = Vec::with_capacity(ids.len());
        for &id in ids {
            let answer = zygote.answer()?;
            let pid: i32 = answer
                .strip_prefix("pid ")
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| zygote_error(answer.clone()))?;
            started(id, pid)?;
            pids.push(pid);
        }
        if let Some(writer) = writer {
            writer
                .join()
                .map_err(|_| zygote_error("the writer thread panicked".into()))?
                .map_err(|e| zygote_error(e.to_string()))?;
        }
        for (&id, &pid) in ids.iter().zip(&pids) {
            let answer = zygote.answer()?;
            if answer != format!("ok {pid}") {
                let message = answer
                    .strip_prefix(&format!("err {pid} "))
                    .unwrap_or(&answer)
                    .to_string();
                return Err(InitError::Setup {
                    node: plan.nodes[id].name.clone(),
                    message,
                }
                .into());
            }
        }
        zygote.finish();
        Ok(pids)
    })
}

/// What the init of node `id` is told; `map` for a new user namespace.
pub(crate) fn init_config(
    plan: &Plan,
    id: usize,
    interfaces: &[&str],
    cgroups: &Cgroups,
    map: Option<IdMap>,
) -> InitConfig {
    let node = &plan.nodes[id];
    InitConfig {
        lab: plan.lab.clone(),
        node: node.name.clone(),
        hostname: node.hostname.clone(),
        tmpfs: node.tmpfs.clone(),
        binds: with_hosts_file(plan, node),
        sysctls: plan.sysctl_stages(id, interfaces).0,
        cgroups: match node.kind {
            NodeKind::Node => cgroups.node_procs(&plan.lab, &node.name),
            NodeKind::Bridge => Vec::new(),
        },
        into_cgroup: match node.kind {
            NodeKind::Node => cgroups.node_v2_dir(&plan.lab, &node.name),
            NodeKind::Bridge => None,
        },
        userns: map,
        rejoin: None,
    }
}

/// A node's binds, and the lab's `/etc/hosts` over the host's unless the
/// node mounts its own there or over a folder above it (`/etc` bound or a
/// tmpfs: the user's tree is meant to be seen whole), or has a user
/// namespace, whose binds are idmapped trees and this file under the state
/// folder would need one too.
fn with_hosts_file(plan: &Plan, node: &Node) -> Vec<crate::spec::Bind> {
    let mut binds = node.binds.clone();
    let hosts = Path::new("/etc/hosts");
    let own = (binds.iter().map(|b| b.target.as_path()))
        .chain(node.tmpfs.iter().map(PathBuf::as_path))
        .any(|target| hosts.starts_with(target));
    if node.kind == NodeKind::Node && !node.userns && !own {
        binds.push(crate::spec::Bind {
            source: crate::state::hosts_path(&plan.lab),
            target: hosts.to_path_buf(),
            read_only: true,
        });
    }
    binds
}

/// Runs one `exec:` command of a node; its output goes to memory files, so
/// a daemon it leaves behind never blocks `up` by holding a pipe open.
pub(crate) fn run_exec_step(node: &Node, pid: i32, command: &str) -> Result<(), LabError> {
    let io = |what: &str| {
        let what = format!("node {}: {what}", node.name);
        move |source: std::io::Error| LabError::Io { what, source }
    };
    let namespaces = NamespaceFds::open_all(pid).map_err(io("open its namespaces"))?;
    let stderr = memory_file(c"nslab-exec-stderr").map_err(io("create an output buffer"))?;
    let stdout = memory_file(c"nslab-exec-stdout").map_err(io("create an output buffer"))?;
    let null = File::open("/dev/null").map_err(io("open /dev/null"))?;
    let spec = NodeCommand {
        argv: vec!["/bin/sh".into(), "-c".into(), command.to_string()],
        env: crate::lab::exec::node_environment(&node.env),
        cwd: None,
        foreground: false,
        own_group: false,
    };
    let stdio = [
        Stdio::Fd(null.into()),
        Stdio::Fd(stdout.into()),
        Stdio::Fd(stderr.try_clone().map_err(io("dup"))?.into()),
    ];
    let enter_error = |source| LabError::Enter {
        node: node.name.clone(),
        source,
    };
    let code = enter::spawn(&namespaces, &spec, stdio)
        .and_then(|running| running.wait())
        .map_err(enter_error)?;
    if code != 0 {
        return Err(LabError::ExecStep {
            node: node.name.clone(),
            command: command.to_string(),
            code,
            stderr: read_tail(stderr, 4096),
        });
    }
    Ok(())
}

fn memory_file(name: &std::ffi::CStr) -> std::io::Result<File> {
    let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    Ok(File::from(fd))
}

fn read_tail(mut file: File, limit: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.seek(SeekFrom::End(0)).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(limit)));
    let mut text = String::new();
    let _ = file.take(limit).read_to_string(&mut text);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_labs_hosts_file_is_bound_unless_the_node_mounts_its_own() {
        let yaml = "name: hf\ntopology:\n  nodes:\n    plain: {}\n    file: {binds: [\"/etc/hosts:/etc/hosts\"]}\n    etc: {binds: [\"/etc:/etc\"]}\n    tmp: {tmpfs: [/etc]}\n    other: {binds: [\"/etc/hosts:/etc/hostsx\"]}\n    u: {userns: true}\n";
        let topology =
            crate::topology::parse_str(yaml, "hf.yml".as_ref(), "/".as_ref()).expect("valid");
        let plan = Plan::from_topology(&topology);
        let bound = |name: &str| {
            let node = &plan.nodes[plan.node_id(name).expect("node")];
            with_hosts_file(&plan, node)
                .iter()
                .any(|b| b.source == crate::state::hosts_path("hf"))
        };
        assert!(bound("plain") && bound("other"));
        assert!(!bound("file") && !bound("etc") && !bound("tmp") && !bound("u"));
    }
}
