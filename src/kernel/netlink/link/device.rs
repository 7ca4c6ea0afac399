//! What every device request shares (see `macvlan.rs`, `vxlan.rs`,
//! `dummy.rs`): the interface born in its node's net namespace under its
//! final name, with its MAC and MTU, in one RTM_NEWLINK; and the error of
//! a kernel that lacks the kind.

use rtnetlink::LinkMessageBuilder;

use crate::kernel::netlink::{NetlinkError, errno};

/// The interface a device request makes.
#[derive(Debug, Clone)]
pub(crate) struct NewDevice {
    pub name: String,
    /// A process whose net namespace the interface is born in, when that
    /// is not the socket's (IFLA_NET_NS_PID): a device whose parent or
    /// tunnel is the host's is made from the host's socket.
    pub netns_pid: Option<u32>,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    /// How the device is named in errors, e.g. `macvlan a:mv0 on eth0`.
    pub label: String,
}

impl NewDevice {
    /// `builder` with this interface's namespace, MAC and MTU.
    pub(super) fn describe<T>(&self, builder: LinkMessageBuilder<T>) -> LinkMessageBuilder<T> {
        let mut builder = builder;
        if let Some(pid) = self.netns_pid {
            builder = builder.setns_by_pid(pid);
        }
        if let Some(mtu) = self.mtu {
            builder = builder.mtu(mtu);
        }
        if let Some(mac) = self.mac {
            builder = builder.address(mac.to_vec());
        }
        builder
    }

    /// The error of a refused request: a kernel without the kind (it
    /// answers EOPNOTSUPP, "Unknown device type", once it found no module
    /// to load) is named as such.
    pub(super) fn refused(
        &self,
        kind: &'static str,
    ) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
        let what = self.label.clone();
        move |source| match errno(&source) {
            Some(libc::EOPNOTSUPP) => NetlinkError::MissingLinkKind {
                what,
                kind,
                config: match kind {
                    "macvlan" => "CONFIG_MACVLAN",
                    "vxlan" => "CONFIG_VXLAN",
                    _ => "CONFIG_DUMMY",
                },
            },
            _ => NetlinkError::Request { what, source },
        }
    }
}
