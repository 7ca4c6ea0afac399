//! The stream behind [`Events`]: a thread with a small tokio runtime that
//! scans the labs' state for running nodes, opens a subscribed socket in
//! each node's net namespace and watches its init through a pidfd, one
//! task per node, and sends what it sees down a channel.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use tokio::io::unix::AsyncFd;
use tokio::task::JoinSet;

use super::{Change, Event, EventKind, LinkAction, NodeAction};
use crate::kernel::netlink::qdisc::{Psched, dump_qdiscs, root_qdisc};
use crate::kernel::netlink::watch::{self, LinkChange, Subscription};
use crate::lab::running::is_init_of;
use crate::lab::{Impairment, LabError, RunningNode};
use crate::spec::LabName;
use crate::state::{self, Entry};

/// How often the labs' state is read again, for nodes that started and
/// labs that went away.
const RESCAN: Duration = Duration::from_millis(500);
/// How often the stop flags are looked at.
const TICK: Duration = Duration::from_millis(100);
/// How long after a qdisc notification an interface's qdiscs are read: one
/// impairment is set in a few requests, and is reported once, whole.
const SETTLE: Duration = Duration::from_millis(50);

/// What is sent: an event, or a problem watching a node (the stream goes
/// on without it).
type Item = Result<Event, LabError>;

/// The events of running labs, as they happen: an [`Iterator`] whose
/// `next` blocks until the next event ([`into_stream`](Self::into_stream)
/// makes it a stream, for async code). It ends when the lab it watches is gone (after
/// [`EventKind::LabDown`]); one that watches every lab ends only when
/// dropped. Dropping it stops the watch and closes its sockets.
///
/// An `Err` item is a node that could not be watched (its namespace could
/// not be entered, say); the stream goes on with the others.
#[derive(Debug)]
pub struct Events {
    receiver: UnboundedReceiver<Item>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Iterator for Events {
    type Item = Result<Event, LabError>;

    /// Blocks until the next event (in async code, use the stream).
    fn next(&mut self) -> Option<Self::Item> {
        futures::executor::block_on(self.receiver.next())
    }
}

impl Events {
    /// The same events as a [`futures::Stream`], for async code.
    pub fn into_stream(self) -> EventStream {
        EventStream(self)
    }
}

/// [`Events`] as a [`futures::Stream`] (`StreamExt::next().await`), for
/// async code: waiting for an event then leaves the runtime free.
#[derive(Debug)]
pub struct EventStream(Events);

impl futures::Stream for EventStream {
    type Item = Result<Event, LabError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.receiver.poll_next_unpin(cx)
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.receiver.close();
        // Within a tick: its sockets keep the nodes' namespaces alive.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts watching `lab` (every lab with state when `None`); returns once
/// every running node is subscribed, so anything that happens after is
/// seen. The watch also stops when `also_stop` is raised (a signal).
pub(crate) fn watch(
    lab: Option<&LabName>,
    also_stop: Option<&'static AtomicBool>,
) -> Result<Events, LabError> {
    let (sender, receiver) = unbounded();
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let watcher = Watcher {
        scope: lab.map(|l| l.to_string()),
        sender,
        stop: Stop {
            own: stop.clone(),
            also: also_stop,
        },
        labs: HashSet::new(),
        watched: HashSet::new(),
        failed: HashSet::new(),
        steps: HashMap::new(),
        tasks: JoinSet::new(),
        clock: Psched::read(),
    };
    let thread = std::thread::Builder::new()
        .name("nslab-events".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(LabError::Runtime(e)));
                    return;
                }
            };
            // The node tasks hold rtnetlink request futures, which are not
            // provably Send: they run on this thread only.
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, watcher.run(ready_tx));
        })
        .map_err(LabError::Runtime)?;
    let events = Events {
        receiver,
        stop,
        thread: Some(thread),
    };
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(events),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(LabError::Panicked("the events thread")),
    }
}

/// The stop flags: the stream's own (raised on drop) and a caller's.
struct Stop {
    own: Arc<AtomicBool>,
    also: Option<&'static AtomicBool>,
}

impl Stop {
    fn raised(&self) -> bool {
        self.own.load(Ordering::Relaxed) || self.also.is_some_and(|f| f.load(Ordering::Relaxed))
    }
}

/// A node's init: (lab, node, pid).
type Key = (String, String, i32);

struct Watcher {
    /// One lab, or every lab.
    scope: Option<String>,
    sender: UnboundedSender<Item>,
    stop: Stop,
    /// Labs seen with state, until they are gone.
    labs: HashSet<String>,
    /// Inits with a task.
    watched: HashSet<Key>,
    /// Inits that could not be watched, reported once.
    failed: HashSet<Key>,
    /// Per lab, how many `apply` steps its journal had at the last scan.
    steps: HashMap<String, usize>,
    tasks: JoinSet<Key>,
    clock: Psched,
}

impl Watcher {
    async fn run(mut self, ready: std::sync::mpsc::SyncSender<Result<(), LabError>>) {
        if let Some(lab) = &self.scope {
            match state::read(lab) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    let _ = ready.send(Err(LabError::NoLab { lab: lab.clone() }));
                    return;
                }
                Err(e) => {
                    let _ = ready.send(Err(e.into()));
                    return;
                }
            }
        }
        if let Err(e) = self.scan(false).await {
            let _ = ready.send(Err(e));
            return;
        }
        let _ = ready.send(Ok(()));
        let mut scanned = Instant::now();
        loop {
            if self.stop.raised() || self.sender.is_closed() {
                return;
            }
            tokio::select! {
                Some(done) = self.tasks.join_next() => {
                    if let Ok(key) = done {
                        self.watched.remove(&key);
                    }
                }
                () = tokio::time::sleep(TICK) => {}
            }
            if scanned.elapsed() >= RESCAN {
                scanned = Instant::now();
                if let Err(e) = self.scan(true).await {
                    self.send(Err(e));
                }
                if self.scope.is_some() && self.labs.is_empty() {
                    // The one lab watched is gone.
                    return;
                }
            }
        }
    }

    fn send(&self, item: Item) {
        let _ = self.sender.unbounded_send(item);
    }

    /// Reads the labs' state: watches the nodes not watched yet (reporting
    /// them as started unless this is the first scan), and reports the labs
    /// that are gone.
    async fn scan(&mut self, later: bool) -> Result<(), LabError> {
        let labs = match &self.scope {
            Some(lab) => vec![lab.clone()],
            None => state::list_labs()?,
        };
        let mut present = HashSet::new();
        for lab in labs {
            // A lab being removed reads as gone, or fails: seen next time.
            let Ok(Some(recorded)) = state::read(&lab) else {
                continue;
            };
            present.insert(lab.clone());
            self.labs.insert(lab.clone());
            self.report_steps(&lab, &recorded, later);
            for (node, pid) in recorded.init_pids() {
                let key = (lab.clone(), node.clone(), pid);
                if self.watched.contains(&key)
                    || self.failed.contains(&key)
                    || !is_init_of(pid, &lab, &node)
                {
                    continue;
                }
                let running = RunningNode {
                    lab: lab.clone(),
                    node,
                    pid,
                };
                match self.start(&running).await {
                    Ok(node) => {
                        if later {
                            self.send(Ok(event(
                                &key,
                                EventKind::Node {
                                    action: NodeAction::Started,
                                    pid,
                                },
                            )));
                        }
                        self.watched.insert(key);
                        self.tasks.spawn_local(node.run(self.sender.clone()));
                    }
                    // It stopped meanwhile: nothing to report.
                    Err(_) if !is_init_of(pid, &lab, &running.node) => {}
                    Err(e) => {
                        self.failed.insert(key);
                        self.send(Err(e));
                    }
                }
            }
        }
        let gone: Vec<String> = self
            .labs
            .iter()
            .filter(|lab| !present.contains(*lab) && !self.watched.iter().any(|k| &k.0 == *lab))
            .cloned()
            .collect();
        for lab in gone {
            self.labs.remove(&lab);
            self.failed.retain(|k| k.0 != lab);
            self.send(Ok(Event {
                time: SystemTime::now(),
                lab,
                node: None,
                kind: EventKind::LabDown,
            }));
        }
        Ok(())
    }

    /// Sends the `apply` steps journaled since the last scan (none on the
    /// first: they happened before the stream began), at their own times.
    fn report_steps(&mut self, lab: &str, recorded: &state::Recorded, later: bool) {
        let steps: Vec<(&String, u64)> = (recorded.entries.iter())
            .filter_map(|e| match e {
                Entry::Step { text, at_ms } => Some((text, *at_ms)),
                _ => None,
            })
            .collect();
        let seen = self.steps.insert(lab.to_string(), steps.len());
        let seen = match (seen, later) {
            (Some(seen), _) => seen,
            (None, true) => 0,
            (None, false) => steps.len(),
        };
        for (text, at_ms) in steps.into_iter().skip(seen) {
            self.send(Ok(Event {
                time: SystemTime::UNIX_EPOCH + Duration::from_millis(at_ms),
                lab: lab.to_string(),
                node: None,
                kind: EventKind::Apply { step: text.clone() },
            }));
        }
    }

    /// Subscribes in the node's net namespace and reads what it has now.
    async fn start(&self, running: &RunningNode) -> Result<NodeWatch, LabError> {
        let runtime = tokio::runtime::Handle::current();
        let label = running.label();
        let (pinned, subscription) =
            running.pinned_in_netns(|| watch::subscribe(&runtime, &label))?;
        let subscription = subscription?;
        let pidfd: OwnedFd =
            pinned
                .as_fd()
                .try_clone_to_owned()
                .map_err(|source| LabError::Io {
                    what: format!("watch the init of {label}"),
                    source,
                })?;
        // SAFETY: an OwnedFd is a valid open fd that stays the same until
        // it is dropped, with the AsyncFd that owns it.
        let pidfd = unsafe { AsyncFd::register(pidfd) }.map_err(|e| LabError::Io {
            what: format!("watch the init of {label}"),
            source: e.into(),
        })?;
        let links: HashMap<u32, LinkChange> = subscription
            .links(&label)
            .await?
            .into_iter()
            .map(|l| (l.index, l))
            .collect();
        let mut node = NodeWatch {
            key: (running.lab.clone(), running.node.clone(), running.pid),
            label,
            pidfd,
            subscription,
            links,
            impairments: HashMap::new(),
            dirty: HashSet::new(),
            clock: self.clock,
        };
        node.dirty = node.links.keys().copied().collect();
        node.impairments = node.read_impairments().await?;
        node.dirty.clear();
        Ok(node)
    }
}

fn event(key: &Key, kind: EventKind) -> Event {
    Event {
        time: SystemTime::now(),
        lab: key.0.clone(),
        node: Some(key.1.clone()),
        kind,
    }
}

/// One node being watched: its socket, its init, and what it has now.
struct NodeWatch {
    key: Key,
    label: String,
    /// The init's pidfd: readable once it exited.
    pidfd: AsyncFd<OwnedFd>,
    subscription: Subscription,
    /// Its links by index, as last seen.
    links: HashMap<u32, LinkChange>,
    /// Its interfaces' impairments by index, as last read.
    impairments: HashMap<u32, Impairment>,
    /// Interfaces whose qdiscs changed, to read once they settle.
    dirty: HashSet<u32>,
    clock: Psched,
}

impl NodeWatch {
    /// Reports what changes until the init exits (then reports that) or
    /// nobody listens; returns the node's key.
    async fn run(mut self, sender: UnboundedSender<Item>) -> Key {
        let mut settle: Option<tokio::time::Instant> = None;
        // When the qdiscs being settled first changed: their event's time.
        let mut changed = SystemTime::now();
        loop {
            let mut events = Vec::new();
            // Now, after the wait, unless settled qdiscs say otherwise.
            let mut time = None;
            tokio::select! {
                // The init first: after it exited, what the namespace
                // does (its links going away) is not news.
                biased;
                _ = self.pidfd.readable() => break,
                change = self.subscription.next() => match change {
                    Some(change) => {
                        if self.apply(change, &mut events) && settle.is_none() {
                            changed = SystemTime::now();
                            settle = Some(tokio::time::Instant::now() + SETTLE);
                        }
                    }
                    // The socket failed: only the init is left to watch.
                    None => {
                        let _ = self.pidfd.readable().await;
                        break;
                    }
                },
                () = sleep_until(settle), if settle.is_some() => {
                    settle = None;
                    time = Some(changed);
                    self.impairments_changed(&mut events).await;
                }
            }
            let time = time.unwrap_or_else(SystemTime::now);
            for kind in events {
                let event = Event {
                    time,
                    ..event(&self.key, kind)
                };
                if sender.unbounded_send(Ok(event)).is_err() {
                    return self.key;
                }
            }
        }
        // A change of qdiscs not read yet is read now: the namespace is
        // still there, held by the socket.
        if settle.is_some() {
            let mut events = Vec::new();
            self.impairments_changed(&mut events).await;
            for kind in events {
                let event = Event {
                    time: changed,
                    ..event(&self.key, kind)
                };
                let _ = sender.unbounded_send(Ok(event));
            }
        }
        let pid = self.key.2;
        let stopped = EventKind::Node {
            action: NodeAction::Stopped,
            pid,
        };
        let _ = sender.unbounded_send(Ok(event(&self.key, stopped)));
        self.key
    }

    /// The events of one change; true when qdiscs changed (to be read
    /// once they settle).
    fn apply(&mut self, change: watch::Change, events: &mut Vec<EventKind>) -> bool {
        match change {
            watch::Change::Link { link, removed } => self.link(link, removed, events),
            watch::Change::Address {
                added,
                index,
                address,
            } => events.push(EventKind::Address {
                interface: self.name(index),
                action: if added { Change::Add } else { Change::Delete },
                address,
            }),
            watch::Change::Route(route) => events.push(EventKind::Route {
                action: if route.added {
                    Change::Add
                } else {
                    Change::Delete
                },
                destination: route.destination,
                gateway: route.gateway,
                interface: route.oif.map(|i| self.name(i)),
                protocol: route.protocol,
                table: route.table,
                route_type: route.kind,
            }),
            watch::Change::Qdisc { index } => {
                self.dirty.insert(index);
                return true;
            }
        }
        false
    }

    fn link(&mut self, mut link: LinkChange, removed: bool, events: &mut Vec<EventKind>) {
        let kind = |link: &LinkChange, action| EventKind::Link {
            interface: link.name.clone(),
            action,
            admin_up: link.state.admin_up,
            carrier: link.state.carrier,
            operstate: link.state.operstate.clone(),
        };
        if removed {
            self.impairments.remove(&link.index);
            if let Some(old) = self.links.remove(&link.index) {
                if link.name.is_empty() {
                    link.name = old.name;
                }
                events.push(kind(&link, LinkAction::Delete));
            }
            return;
        }
        match self.links.get(&link.index) {
            None => events.push(kind(&link, LinkAction::Add)),
            Some(old) => {
                if link.name.is_empty() {
                    link.name = old.name.clone();
                }
                // Up to down or back, or another operational state: not
                // the flag of a link set up that is not up yet.
                if old.state.is_up() != link.state.is_up()
                    || old.state.operstate != link.state.operstate
                {
                    let action = if link.state.is_up() {
                        LinkAction::Up
                    } else {
                        LinkAction::Down
                    };
                    events.push(kind(&link, action));
                }
            }
        }
        self.links.insert(link.index, link);
    }

    /// An interface's name, or `if<INDEX>` for one not seen.
    fn name(&self, index: u32) -> String {
        self.links
            .get(&index)
            .map_or_else(|| format!("if{index}"), |l| l.name.clone())
    }

    /// Reads the impairments of the interfaces whose qdiscs changed and
    /// reports those that differ from what they were.
    async fn impairments_changed(&mut self, events: &mut Vec<EventKind>) {
        let Ok(now) = self.read_impairments().await else {
            // The namespace is going away, or the dump failed: the next
            // qdisc change reads again.
            return;
        };
        for (index, impairment) in now {
            if self.impairments.get(&index) == Some(&impairment) {
                continue;
            }
            self.impairments.insert(index, impairment.clone());
            if let Some(link) = self.links.get(&index) {
                events.push(EventKind::Impairment {
                    interface: link.name.clone(),
                    impairment,
                });
            }
        }
        self.dirty.clear();
    }

    /// The impairments of the `dirty` interfaces now.
    async fn read_impairments(&self) -> Result<HashMap<u32, Impairment>, LabError> {
        let qdiscs = dump_qdiscs(&self.subscription.handle, None, &self.label).await?;
        Ok(self
            .dirty
            .iter()
            .map(|&index| {
                let own: Vec<_> = qdiscs
                    .iter()
                    .filter(|q| q.index == index)
                    .cloned()
                    .collect();
                let impairment = root_qdisc(&own, &self.clock)
                    .map(Impairment::from)
                    .unwrap_or_else(|_| {
                        Impairment::Other(
                            crate::kernel::netlink::qdisc::root(&own)
                                .map_or_else(String::new, |q| q.kind.clone()),
                        )
                    });
                (index, impairment)
            })
            .collect())
    }
}

/// Sleeps until `deadline` (forever without one: the branch is disabled).
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
