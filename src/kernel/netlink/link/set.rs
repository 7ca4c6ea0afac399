//! Bringing a link up, optionally marking it with an alias in the same
//! request.

use rtnetlink::{Handle, LinkUnspec};

use crate::kernel::netlink::NetlinkError;

#[derive(Debug, Clone)]
pub struct SetUp {
    pub index: u32,
    pub label: String,
    pub alias: Option<String>,
}

impl SetUp {
    pub async fn execute(self, handle: &Handle) -> Result<(), NetlinkError> {
        handle
            .link()
            .set(match self.alias {
                Some(alias) => LinkUnspec::new_with_index(self.index)
                    .alias(alias)
                    .up()
                    .build(),
                None => LinkUnspec::new_with_index(self.index).up().build(),
            })
            .execute()
            .await
            .map_err(NetlinkError::request(format!("set {} up", self.label)))
    }
}
