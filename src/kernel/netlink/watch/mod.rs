//! Watching a net namespace: one rtnetlink socket subscribed to the
//! multicast groups of links, addresses, routes and qdiscs (`ip monitor`),
//! its messages decoded into [`Change`]s. The socket belongs to the netns
//! it was opened in, so [`subscribe`] is called on a thread inside it.

mod change;

pub(crate) use change::{Change, LinkChange, decode};

use futures::channel::mpsc::UnboundedReceiver;
use futures::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use rtnetlink::{Handle, MulticastGroup};

use super::NetlinkError;

/// The groups watched: what a lab's events are made of.
const GROUPS: [MulticastGroup; 6] = [
    MulticastGroup::Link,
    MulticastGroup::Tc,
    MulticastGroup::Ipv4Ifaddr,
    MulticastGroup::Ipv6Ifaddr,
    MulticastGroup::Ipv4Route,
    MulticastGroup::Ipv6Route,
];

/// A socket's receive buffer: room for a burst (a routing daemon adding a
/// table at once) before the kernel drops notifications.
const RECEIVE_BUFFER: usize = 1 << 20;

type Messages = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// A subscribed socket in one net namespace. Dropping it closes the socket,
/// which otherwise keeps the namespace (and its links) alive.
#[derive(Debug)]
pub(crate) struct Subscription {
    /// For requests over the same socket (the dumps of the current state).
    pub handle: Handle,
    messages: Messages,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// Opens a socket in the calling thread's net namespace (run it on a
/// thread inside a node's, see `kernel::namespace::in_netns`), bound to
/// the watched groups, its connection task spawned on `runtime`. It is
/// subscribed before any dump is asked for, so no change after a dump is
/// missed.
pub(crate) fn subscribe(
    runtime: &tokio::runtime::Handle,
    label: &str,
) -> Result<Subscription, NetlinkError> {
    // The socket registers with the runtime's I/O driver.
    let _guard = runtime.enter();
    let (mut connection, handle, messages) =
        rtnetlink::new_multicast_connection(&GROUPS).map_err(|e| NetlinkError::Open {
            netns: label.to_string(),
            reason: e.to_string(),
        })?;
    // Best effort: the default buffer only drops sooner.
    let _ = connection
        .socket_mut()
        .socket_ref()
        .set_rx_buf_sz(RECEIVE_BUFFER);
    let connection = runtime.spawn(connection);
    Ok(Subscription {
        handle,
        messages,
        connection,
    })
}

impl Subscription {
    /// The next change the kernel announced; `None` once the socket is
    /// closed (the connection failed).
    pub(crate) async fn next(&mut self) -> Option<Change> {
        loop {
            let (message, _) = self.messages.next().await?;
            if let NetlinkPayload::InnerMessage(inner) = message.payload
                && let Some(change) = decode(&inner)
            {
                return Some(change);
            }
        }
    }

    /// Every link of the namespace now, with its state.
    pub(crate) async fn links(&self, label: &str) -> Result<Vec<LinkChange>, NetlinkError> {
        let messages: Vec<_> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(NetlinkError::request(format!("list links in {label}")))?;
        Ok(messages.iter().map(LinkChange::from_message).collect())
    }
}
