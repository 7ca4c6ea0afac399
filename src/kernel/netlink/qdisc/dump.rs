//! Reading an interface's qdiscs back, and what impairment they make.

use futures::TryStreamExt;
use rtnetlink::Handle;
use rtnetlink::packet_core::Nla;
use rtnetlink::packet_route::tc::{TcAttribute, TcMessage, TcOption};

use super::{Netem, Psched, TC_H_ROOT, TCA_OPTIONS, Tbf};
use crate::kernel::netlink::NetlinkError;
use crate::spec::Impair;

/// One qdisc of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QdiscInfo {
    /// The interface's index.
    pub index: u32,
    pub handle: u32,
    pub parent: u32,
    pub kind: String,
    /// The raw TCA_OPTIONS payload.
    pub options: Option<Vec<u8>>,
}

impl QdiscInfo {
    /// The handle's major number (`1` of `1:0`).
    pub(crate) fn major(&self) -> u16 {
        (self.handle >> 16) as u16
    }

    fn from_message(message: &TcMessage) -> QdiscInfo {
        let mut info = QdiscInfo {
            index: message.header.index as u32,
            handle: message.header.handle.into(),
            parent: message.header.parent.into(),
            kind: String::new(),
            options: None,
        };
        for attribute in &message.attributes {
            match attribute {
                TcAttribute::Kind(kind) => info.kind = kind.clone(),
                // netlink-packet-route keeps options of kinds it does not
                // model (netem, tbf) as one raw attribute: the whole payload.
                TcAttribute::Options(options) => {
                    if let [TcOption::Other(raw)] = options.as_slice()
                        && raw.kind() & 0x3FFF == TCA_OPTIONS
                    {
                        let mut bytes = vec![0; raw.value_len()];
                        raw.emit_value(&mut bytes);
                        info.options = Some(bytes);
                    }
                }
                _ => {}
            }
        }
        info
    }
}

/// Lists the qdiscs of the interface `index`, or of every interface of the
/// socket's namespace (the kernel dumps them all: the filter is here).
pub(crate) async fn dump_qdiscs(
    handle: &Handle,
    index: Option<u32>,
    label: &str,
) -> Result<Vec<QdiscInfo>, NetlinkError> {
    let messages: Vec<TcMessage> = handle
        .clone()
        .qdisc()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(NetlinkError::request(format!("list the qdiscs of {label}")))?;
    Ok(messages
        .iter()
        .map(QdiscInfo::from_message)
        .filter(|q| index.is_none_or(|i| q.index == i))
        .collect())
}

/// What the root qdisc of an interface does.
#[derive(Debug, Clone, PartialEq)]
pub enum RootQdisc {
    /// The kernel's default (handle 0, such as noqueue): no impairment.
    Default,
    /// netem, tbf or netem with a tbf child, as nslab sets them.
    Impaired {
        plan: Impair,
        netem: Option<Netem>,
        tbf: Option<Tbf>,
    },
    /// A root qdisc nslab does not make, by kind.
    Other(String),
}

/// The root qdisc in the dump of one interface's qdiscs, unless it is the
/// kernel's default (handle 0, such as noqueue): one that nslab or someone
/// else set, and that deleting it would remove.
pub(crate) fn root(qdiscs: &[QdiscInfo]) -> Option<&QdiscInfo> {
    qdiscs
        .iter()
        .find(|q| q.parent == TC_H_ROOT && q.major() != 0)
}

/// Reads the root qdisc (and a tbf under a netem root) from the dump of
/// one interface's qdiscs.
pub(crate) fn root_qdisc(qdiscs: &[QdiscInfo], clock: &Psched) -> Result<RootQdisc, String> {
    let Some(root) = root(qdiscs) else {
        return Ok(RootQdisc::Default);
    };
    let options = |q: &QdiscInfo| {
        q.options
            .clone()
            .ok_or_else(|| format!("the {} qdisc has no options", q.kind))
    };
    match root.kind.as_str() {
        "netem" => {
            let netem = Netem::decode(&options(root)?, clock)?;
            let class = root.handle | 1;
            let tbf = match qdiscs.iter().find(|q| q.parent == class && q.kind == "tbf") {
                Some(child) => Some(Tbf::decode(&options(child)?, clock)?),
                None => None,
            };
            let plan = Impair {
                rate_bits: tbf.map(|t| t.rate_bits()),
                ..netem.to_plan()
            };
            Ok(RootQdisc::Impaired {
                plan,
                netem: Some(netem),
                tbf,
            })
        }
        "tbf" => {
            let tbf = Tbf::decode(&options(root)?, clock)?;
            Ok(RootQdisc::Impaired {
                plan: Impair {
                    rate_bits: Some(tbf.rate_bits()),
                    ..Impair::default()
                },
                netem: None,
                tbf: Some(tbf),
            })
        }
        other => Ok(RootQdisc::Other(other.to_string())),
    }
}
