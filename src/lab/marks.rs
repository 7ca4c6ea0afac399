//! Finding what a lab made by the marks the kernel itself keeps, for when
//! the state is gone: node inits by their command line (see
//! [`process::find_inits`](crate::kernel::process::find_inits)), node net
//! namespaces by the alias of their `lo`, host-side veth ends by their alias.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use super::{CallRuntime, LabError, runtime};
use crate::kernel::namespace::{self, NETNS_DIR};
use crate::kernel::netlink::link::{DeleteLink, LinkInfo, dump_links};
use crate::kernel::netlink::{Netns, open_each_socket, open_sockets};
use crate::kernel::process::parse_netns_mark;

/// The prefix of every nslab alias, on host links and on nodes' `lo`.
const MARK_PREFIX: &str = "nslab:";

/// The mark (interface alias) of a lab's veth ends in the host namespace.
pub(crate) fn host_link_alias(lab: &str) -> String {
    format!("{MARK_PREFIX}{lab}")
}

/// A /run/netns name bound to a node's net namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MarkedName {
    pub name: String,
    pub lab: String,
    pub node: String,
}

/// Names under /run/netns accepted by `wanted` whose namespace's `lo`
/// carries a node's mark.
pub(super) fn marked_netns_names(
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<MarkedName>, LabError> {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return Ok(Vec::new());
    };
    let names: Vec<(String, OwnedFd)> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| wanted(name) && namespace::netns_name_inode(name).is_some())
        .filter_map(|name| {
            let fd = File::open(std::path::Path::new(NETNS_DIR).join(&name)).ok()?;
            Some((name, fd.into()))
        })
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let runtime = runtime()?;
    runtime.block_on(|| async {
        let targets: Vec<_> = names
            .iter()
            .map(|(n, fd)| (n.clone(), Netns::Fd(fd.as_fd())))
            .collect();
        let mut marked = Vec::new();
        for ((name, _), socket) in names
            .iter()
            .zip(open_each_socket(runtime.handle(), &targets))
        {
            // A name bound to something we cannot enter is not ours.
            let Ok(socket) = socket else { continue };
            let links = dump_links(&socket, name).await?;
            let mark = links
                .iter()
                .find(|l| l.name == "lo")
                .and_then(|l| l.alias.as_deref());
            if let Some((lab, node)) = mark.and_then(parse_netns_mark) {
                marked.push(MarkedName {
                    name: name.clone(),
                    lab,
                    node,
                });
            }
        }
        Ok(marked)
    })
}

/// The host namespace's links, for finding and removing a lab's ends.
pub(crate) struct HostLinks {
    runtime: CallRuntime,
    socket: rtnetlink::Handle,
}

impl HostLinks {
    pub(super) fn open() -> Result<Self, LabError> {
        let runtime = runtime()?;
        let socket = open_sockets(
            runtime.handle(),
            &[("the host namespace".to_string(), Netns::Own)],
        )?
        .remove(0);
        Ok(Self { runtime, socket })
    }

    pub(super) fn all(&self) -> Result<Vec<LinkInfo>, LabError> {
        Ok(self
            .runtime
            .block_on(|| dump_links(&self.socket, "the host namespace"))?)
    }

    /// Links carrying the mark of `lab`.
    pub(super) fn marked(&self, lab: &str) -> Result<Vec<LinkInfo>, LabError> {
        let alias = host_link_alias(lab);
        Ok(self
            .all()?
            .into_iter()
            .filter(|l| l.alias.as_deref() == Some(alias.as_str()))
            .collect())
    }

    /// Labs that have a marked link in the host namespace.
    pub(super) fn marked_labs(&self) -> Result<Vec<String>, LabError> {
        Ok(self
            .all()?
            .into_iter()
            .filter_map(|l| Some(l.alias?.strip_prefix(MARK_PREFIX)?.to_string()))
            // An alias is anyone's to set: only a valid lab name is a lab.
            .filter(|lab| crate::spec::is_valid_name(lab))
            .collect())
    }

    /// Deletes a link if it is still there; false when it was gone.
    pub(super) fn delete(&self, link: &LinkInfo) -> Result<bool, LabError> {
        let request = DeleteLink {
            index: link.index,
            label: format!("host:{}", link.name),
        };
        Ok(self.runtime.block_on(|| request.execute(&self.socket))?)
    }

    /// Waits until none of `names` exists any more (the kernel removes a
    /// host end once its peer's namespace is gone); returns those still
    /// there at `timeout`.
    pub(super) fn wait_gone(
        &self,
        mut names: Vec<String>,
        timeout: Duration,
    ) -> Result<Vec<String>, LabError> {
        let deadline = Instant::now() + timeout;
        loop {
            let present = self.all()?;
            names.retain(|n| present.iter().any(|l| &l.name == n));
            if names.is_empty() || Instant::now() >= deadline {
                return Ok(names);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
