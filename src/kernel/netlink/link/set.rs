//! Changing an existing link: bringing it up or down, marking it with an
//! alias.

use rtnetlink::{Handle, LinkUnspec};

use crate::kernel::netlink::NetlinkError;

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

/// Sets a link administratively down (its veth peer loses carrier).
#[derive(Debug, Clone)]
pub(crate) struct SetDown {
    pub index: u32,
    pub label: String,
}

impl SetDown {
    pub(crate) async fn execute(self, handle: &Handle) -> Result<(), NetlinkError> {
        handle
            .link()
            .set(LinkUnspec::new_with_index(self.index).down().build())
            .execute()
            .await
            .map_err(NetlinkError::request(format!("set {} down", self.label)))
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
