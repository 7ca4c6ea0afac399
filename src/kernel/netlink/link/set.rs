//! Changing an existing link: bringing it up or down, marking it with an
//! alias.

use rtnetlink::{Handle, LinkUnspec};

use crate::kernel::netlink::NetlinkError;
use crate::spec::LinkState;

#[derive(Debug, Clone)]
pub(crate) struct SetUp {
    pub index: u32,
    pub label: String,
}

impl SetUp {
    pub(crate) async fn execute(self, handle: &Handle) -> Result<(), NetlinkError> {
        handle
            .link()
            .set(LinkUnspec::new_with_index(self.index).up().build())
            .execute()
            .await
            .map_err(NetlinkError::request(format!("set {} up", self.label)))
    }
}

/// Sets a link administratively up or down (IFF_UP) in one RTM_NEWLINK
/// request. A veth end set down takes its peer's carrier with it.
#[derive(Debug, Clone)]
pub(crate) struct SetLinkState {
    pub index: u32,
    pub state: LinkState,
    pub label: String,
}

impl SetLinkState {
    pub(crate) async fn execute(self, handle: &Handle) -> Result<(), NetlinkError> {
        let link = LinkUnspec::new_with_index(self.index);
        let message = match self.state {
            LinkState::Up => link.up(),
            LinkState::Down => link.down(),
        };
        handle
            .link()
            .set(message.build())
            .execute()
            .await
            .map_err(NetlinkError::request(format!(
                "set {} {}",
                self.label, self.state
            )))
    }
}

/// Sets the alias of a link found by name.
#[derive(Debug, Clone)]
pub(crate) struct MarkLink {
    pub name: String,
    pub alias: String,
}

impl MarkLink {
    pub(crate) async fn execute(self, handle: &Handle) -> Result<(), NetlinkError> {
        handle
            .link()
            .set(
                LinkUnspec::new_with_name(&self.name)
                    .alias(self.alias.clone())
                    .build(),
            )
            .execute()
            .await
            .map_err(NetlinkError::request(format!(
                "mark host:{} as {}",
                self.name, self.alias
            )))
    }
}

/// Sets the MTU of a link.
#[derive(Debug, Clone)]
pub(crate) struct SetMtu {
    pub index: u32,
    pub mtu: u32,
    pub label: String,
}

impl SetMtu {
    pub(crate) async fn execute(self, handle: &Handle) -> Result<(), NetlinkError> {
        handle
            .link()
            .set(LinkUnspec::new_with_index(self.index).mtu(self.mtu).build())
            .execute()
            .await
            .map_err(NetlinkError::request(format!(
                "set the MTU of {} to {}",
                self.label, self.mtu
            )))
    }
}
