//! The seam between `up`/`down` and the kernel: every namespace, process,
//! netlink and /run/netns call they make goes through [`Kernel`], at the
//! granularity they already work at (a batch of requests stays a batch, each
//! request one message on the namespace's one socket). `RealKernel` (`seam/real.rs`)
//! makes the calls; a recording fake (`seam::fake`, tests only) lets rollback
//! order and the journal be tested without root.
//!
//! `up` and `down` are generic over the trait, so the real kernel is
//! reached by static calls, as before the seam: no boxing, no dynamic
//! dispatch, no extra round trip.

#[cfg(test)]
pub(super) mod fake;
mod real;
#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use super::LabError;
use super::marks::MarkedName;
use crate::kernel::namespace::NetnsNameError;
use crate::kernel::netlink::address::AddAddress;
use crate::kernel::netlink::link::{
    AttachPort, CreateBridge, CreateDummy, CreateMacvlan, CreateVeth, CreateVxlan, LinkInfo,
    MarkLink, SetLinkState, SetUp,
};
use crate::kernel::netlink::qdisc::{Psched, ReplaceRoot};
use crate::kernel::netlink::route::AddRoute;
use crate::kernel::netlink::{NetlinkError, Netns};
use crate::kernel::process::FoundInit;
use crate::kernel::userns::{IdMap, IdRange};
use crate::plan::Plan;
use crate::spec::{Node, Sysctl};

pub(crate) use real::{RealKernel, init_config, run_exec_step, spawn_configs, spawn_inits_on};

/// One netlink request of `up` that changes the kernel.
#[derive(Debug, Clone)]
pub(crate) enum Request {
    CreateBridge(CreateBridge),
    CreateVeth(CreateVeth),
    CreateMacvlan(CreateMacvlan),
    CreateVxlan(CreateVxlan),
    CreateDummy(CreateDummy),
    MarkLink(MarkLink),
    AttachPort(AttachPort),
    AddAddress(AddAddress),
    SetUp(SetUp),
    SetLinkState(SetLinkState),
    AddRoute(AddRoute),
    /// With the clock that turns its times into ticks.
    ReplaceRoot(ReplaceRoot, Psched),
}

/// One node's sysctls that name an interface, written once the interface
/// exists.
#[derive(Debug)]
pub(crate) struct LateSysctls<'a> {
    pub node: &'a str,
    pub pid: i32,
    pub sysctls: &'a [Sysctl],
}

/// What `up` and `down` ask of the kernel.
pub(crate) trait Kernel: Sync {
    /// A netlink socket bound to one net namespace.
    type Socket: Clone;
    /// A node init pinned so that a signal reaches it and nothing else.
    type Pinned;
    /// The host namespace's links, opened once per teardown.
    type HostLinks;

    /// Where labs keep their state and lock files.
    fn state_root(&self) -> &Path;

    // `up`: nodes and their names.

    /// Node inits of `lab` that /proc shows.
    fn find_inits(&self, lab: &str) -> io::Result<Vec<FoundInit>>;
    /// Starts the inits of the nodes `ids`, calling `started` with each
    /// node's pid as soon as it is known (before the init is ready), and
    /// returns the pids once every one of them is ready.
    /// `maps` holds the id map of every user-namespaced node, by node id.
    fn spawn_inits(
        &self,
        plan: &Plan,
        exe: Option<&Path>,
        ids: &[usize],
        maps: &[Option<IdMap>],
        started: &mut dyn FnMut(usize, i32) -> Result<(), LabError>,
    ) -> Result<Vec<i32>, LabError>;
    /// The host ids that user-namespaced nodes take their blocks from:
    /// `given`, else nslab's `/etc/subuid` and `/etc/subgid` entry (made
    /// when missing), once every bind of those nodes is known to idmap.
    /// Called before anything of the lab is built.
    fn userns_range(&self, plan: &Plan, given: Option<(u32, u32)>) -> Result<IdRange, LabError>;
    /// Claims a block of `range` for each of `nodes` of `lab`.
    fn claim_ids(&self, lab: &str, nodes: &[&str], range: IdRange) -> Result<Vec<IdMap>, LabError>;
    /// Releases the id blocks of `lab`; how many, and what went wrong.
    fn release_ids(&self, lab: &str) -> (usize, Vec<String>);
    /// Makes the cgroup of every node (not bridges) with its limits, before
    /// any init starts: [`Kernel::spawn_inits`] places each init in its own.
    fn make_cgroups(&self, plan: &Plan) -> Result<(), LabError>;
    /// Creates /run/netns/NAME, which must not exist yet.
    fn reserve_netns_name(&self, name: &str, placeholder: &Path) -> Result<(), NetnsNameError>;
    /// Binds the net namespace of `pid` on the reserved name.
    fn bind_netns_name(&self, name: &str, pid: i32) -> Result<(), NetnsNameError>;

    // `up`: the wiring, over one socket per namespace.

    /// One socket in each namespace, in order, its connection spawned on
    /// `runtime`.
    fn open_sockets(
        &self,
        runtime: &tokio::runtime::Handle,
        namespaces: &[(String, Netns<'_>)],
    ) -> Result<Vec<Self::Socket>, NetlinkError>;
    /// Sends one request and waits for its answer. Many are in flight on a
    /// socket at once.
    async fn request(&self, socket: &Self::Socket, request: Request) -> Result<(), NetlinkError>;
    /// The links of the socket's namespace (`netns` names it in errors).
    async fn dump_links(
        &self,
        socket: &Self::Socket,
        netns: &str,
    ) -> Result<Vec<LinkInfo>, NetlinkError>;

    // `up`: the last steps.

    fn write_sysctls(&self, nodes: Vec<LateSysctls<'_>>) -> Result<(), LabError>;
    /// Runs one `exec:` command of a node to its end.
    fn run_exec_step(&self, node: &Node, pid: i32, command: &str) -> Result<(), LabError>;

    // `down`.

    /// Pins the init `pid` if it still is the init of `lab/node`; with it,
    /// whether /run/netns/`name` is bound to that init's net namespace.
    fn pin_init(
        &self,
        pid: i32,
        lab: &str,
        node: &str,
        name: &str,
    ) -> io::Result<Option<(Self::Pinned, bool)>>;
    /// Ends the inits (SIGTERM, then SIGKILL after `grace`); how many ended
    /// and what went wrong.
    fn terminate(&self, inits: Vec<Self::Pinned>, grace: Duration) -> (usize, Vec<String>);
    /// Whether /run/netns/NAME is bound to a namespace (not a bare
    /// reservation, not missing).
    fn netns_name_is_bound(&self, name: &str) -> bool;
    /// Names under /run/netns accepted by `wanted` whose namespace's `lo`
    /// carries a node's mark.
    fn marked_netns_names(
        &self,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<MarkedName>, LabError>;
    /// Removes the lab's cgroups (found by its name) once their processes
    /// are gone; how many node cgroups went, and what went wrong.
    fn remove_cgroups(&self, lab: &str) -> (usize, Vec<String>);
    /// Detaches and removes /run/netns/NAME; false when it was gone.
    fn remove_netns_name(&self, name: &str) -> Result<bool, NetnsNameError>;
    fn open_host_links(&self) -> Result<Self::HostLinks, LabError>;
    /// The host links carrying the mark of `lab`.
    fn marked_host_links(
        &self,
        host: &Self::HostLinks,
        lab: &str,
    ) -> Result<Vec<LinkInfo>, LabError>;
    /// Deletes a host link if it is still there; false when it was gone.
    fn delete_host_link(&self, host: &Self::HostLinks, link: &LinkInfo) -> Result<bool, LabError>;
    /// Waits until none of `names` is a host link any more; returns those
    /// still there at `timeout`.
    fn wait_host_links_gone(
        &self,
        host: &Self::HostLinks,
        names: Vec<String>,
        timeout: Duration,
    ) -> Result<Vec<String>, LabError>;

    // `up`: the host's side of the management network.
    /// Checks the addresses the lab gives host interfaces against the
    /// host's own and binds the sockets of its forwarded ports, which are
    /// held until [`start_relays`](Self::start_relays).
    fn prepare_host(&self, plan: &Plan) -> Result<Vec<OwnedFd>, LabError>;
    /// Starts the relays of the forwarded ports in the pid namespace of
    /// `holder`, so that they end with it.
    fn start_relays(
        &self,
        plan: &Plan,
        exe: Option<&Path>,
        holder: i32,
        sockets: Vec<OwnedFd>,
    ) -> Result<(), LabError>;
    /// Sets the lab's block of the host's `/etc/hosts` to `entries`
    /// (`None`: takes it out); true when the file changed.
    fn set_host_names(&self, lab: &str, entries: Option<&str>) -> Result<bool, LabError>;
}
