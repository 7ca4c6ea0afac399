//! A veth pair with both ends born in their target namespaces, under their
//! final names, in one RTM_NEWLINK: no create-then-move. (The kernel ignores
//! IFLA_IFALIAS here; marks are set afterwards with [`SetUp`](super::SetUp).)

use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth};

use crate::kernel::netlink::NetlinkError;

/// One end of the pair.
#[derive(Debug, Clone)]
pub(crate) struct VethEnd {
    pub name: String,
    /// A process whose net namespace the end is born in (IFLA_NET_NS_PID:
    /// no fd per node needs to stay open).
    pub netns_pid: u32,
    pub mac: Option<[u8; 6]>,
    /// The ifindex to give the end (0: the kernel's choice).
    pub index: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct CreateVeth {
    pub ends: [VethEnd; 2],
    pub mtu: Option<u32>,
    /// How the pair is named in errors, e.g. `link h1:eth0 <-> r1:eth0`.
    pub label: String,
}

impl CreateVeth {
    pub(crate) async fn execute(self, handle: &Handle) -> Result<(), NetlinkError> {
        let [a, b] = self.ends;
        let peer = describe(LinkUnspec::new_with_name(&b.name), &b, self.mtu).build();
        let message = describe(
            LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth).name(a.name.clone()),
            &a,
            self.mtu,
        )
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
        handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(NetlinkError::request(self.label))
    }
}

fn describe<T>(
    builder: LinkMessageBuilder<T>,
    end: &VethEnd,
    mtu: Option<u32>,
) -> LinkMessageBuilder<T> {
    let mut builder = builder.setns_by_pid(end.netns_pid);
    if end.index != 0 {
        builder = builder.index(end.index);
    }
    if let Some(mtu) = mtu {
        builder = builder.mtu(mtu);
    }
    if let Some(mac) = end.mac {
        builder = builder.address(mac.to_vec());
    }
    builder
}
