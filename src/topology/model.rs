//! Raw serde shapes of the topology file, before validation.
//!
//! Every string, list and map goes through the wrappers below, which charge a
//! per-parse budget before allocating. serde_yaml bounds nesting (128 levels)
//! and the number of alias jumps, but an alias to a large subtree (or a long
//! string) that is repeated many times would still expand quadratically; the
//! budget turns that into an error instead of a hang or an out-of-memory.

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use indexmap::IndexMap;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

thread_local! {
    /// Units left for the parse running on this thread (`None`: unlimited).
    static BUDGET: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Installs a budget for the current thread until dropped.
#[derive(Debug)]
pub(crate) struct BudgetGuard {
    previous: Option<u64>,
}

impl BudgetGuard {
    pub(crate) fn new(units: u64) -> BudgetGuard {
        let previous = BUDGET.with(|b| b.replace(Some(units)));
        BudgetGuard { previous }
    }
}

impl Drop for BudgetGuard {
    fn drop(&mut self) {
        BUDGET.with(|b| b.set(self.previous));
    }
}

/// The message of the error raised when the budget runs out.
pub(crate) const BUDGET_MESSAGE: &str =
    "the document expands (through YAML aliases) to far more data than the file holds; refusing it";

fn charge<E: de::Error>(units: u64) -> Result<(), E> {
    BUDGET.with(|b| match b.get() {
        None => Ok(()),
        Some(left) if left >= units => {
            b.set(Some(left - units));
            Ok(())
        }
        Some(_) => {
            b.set(Some(0));
            Err(E::custom(BUDGET_MESSAGE))
        }
    })
}

/// A string scalar (charged by length).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                charge(v.len() as u64 + 1)?;
                Ok(Text(v.to_owned()))
            }
        }
        d.deserialize_str(V)
    }
}

/// A scalar value of a map (`sysctls`, `env`): string, integer or boolean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scalar {
    Str(String),
    Int(i128),
    Bool(bool),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, an integer or a boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                charge(v.len() as u64 + 1)?;
                Ok(Scalar::Str(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                charge(1)?;
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                charge(1)?;
                Ok(Scalar::Int(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                charge(1)?;
                Ok(Scalar::Int(v.into()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Scalar, E> {
                charge(1)?;
                Ok(Scalar::Int(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar, E> {
                charge(1)?;
                i128::try_from(v)
                    .map(Scalar::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A value with a unit (`20ms`, `1%`, `10mbit`): a string, or a number
/// kept as its text so that validation can say what unit it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Measure(pub String);

impl<'de> Deserialize<'de> for Measure {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Measure;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value with a unit, such as 20ms, 1% or 10mbit")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Measure, E> {
                charge(v.len() as u64 + 1)?;
                Ok(Measure(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Measure, E> {
                charge(1)?;
                Ok(Measure(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Measure, E> {
                charge(1)?;
                Ok(Measure(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Measure, E> {
                charge(1)?;
                Ok(Measure(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A list (each element charged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seq<T>(pub Vec<T>);

impl<T> Default for Seq<T> {
    fn default() -> Self {
        Seq(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Seq<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Seq<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Seq<T>, A::Error> {
                let mut out = Vec::new();
                loop {
                    charge::<A::Error>(1)?;
                    match seq.next_element()? {
                        Some(x) => out.push(x),
                        None => return Ok(Seq(out)),
                    }
                }
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// A mapping with string keys, in file order. Duplicate keys are not an
/// error here: they are kept in `duplicates` so that validation reports them
/// with the other problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UMap<V> {
    pub entries: IndexMap<String, V>,
    pub duplicates: Vec<String>,
}

impl<V> Default for UMap<V> {
    fn default() -> Self {
        UMap {
            entries: IndexMap::new(),
            duplicates: Vec::new(),
        }
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = UMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UMap<V>, A::Error> {
                let mut out = UMap::default();
                // The keys already in `duplicates`: a list search would make a
                // map of many repeated keys quadratic.
                let mut seen_twice = HashSet::new();
                loop {
                    charge::<A::Error>(1)?;
                    let Some(Text(key)) = map.next_key::<Text>()? else {
                        return Ok(out);
                    };
                    let value = map.next_value::<V>()?;
                    if out.entries.contains_key(&key) {
                        if seen_twice.insert(key.clone()) {
                            out.duplicates.push(key);
                        }
                    } else {
                        out.entries.insert(key, value);
                    }
                }
            }
        }
        d.deserialize_map(Vis(PhantomData))
    }
}

/// The whole file: nslab's own keys, and containerlab's (see `clab`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileModel {
    pub name: Text,
    /// containerlab's prefix of node and lab directory names.
    #[serde(default)]
    pub prefix: Option<Text>,
    /// The management network: containerlab's, which nslab's own files
    /// opt in to.
    #[serde(default)]
    pub mgmt: Option<MgmtModel>,
    #[serde(default)]
    pub topology: Option<TopologyModel>,
    #[serde(default)]
    pub expect: Option<Seq<ExpectModel>>,
    #[serde(default)]
    pub scenario: Option<Seq<StepModel>>,
    /// The machines a lab is spread over.
    #[serde(default)]
    pub hosts: Option<UMap<Option<MachineModel>>>,
    /// The cross-host links' VXLAN settings.
    #[serde(default)]
    pub vxlan: Option<SpreadVxlanModel>,
}

/// One machine of `hosts:`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MachineModel {
    #[serde(default)]
    pub ssh: Option<Text>,
    #[serde(default)]
    pub underlay: Option<Text>,
    #[serde(default)]
    pub nslab: Option<Text>,
}

/// Top-level `vxlan:` of a spread lab.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpreadVxlanModel {
    #[serde(default)]
    pub port: Option<i64>,
    #[serde(default)]
    pub vni: Option<i64>,
}

/// `topology:`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopologyModel {
    #[serde(default)]
    pub defaults: Option<NodeModel>,
    /// containerlab's settings per kind.
    #[serde(default)]
    pub kinds: Option<UMap<Option<NodeModel>>>,
    /// containerlab's settings per group.
    #[serde(default)]
    pub groups: Option<UMap<Option<NodeModel>>>,
    #[serde(default)]
    pub nodes: Option<UMap<Option<NodeModel>>>,
    #[serde(default)]
    pub links: Option<Seq<LinkModel>>,
}

/// One node, or `defaults`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeModel {
    #[serde(default)]
    pub kind: Option<Text>,
    #[serde(default)]
    pub hostname: Option<Text>,
    #[serde(default)]
    pub sysctls: Option<UMap<Scalar>>,
    #[serde(default)]
    pub routes: Option<Seq<Text>>,
    #[serde(default)]
    pub binds: Option<Seq<Text>>,
    #[serde(default)]
    pub tmpfs: Option<Seq<Text>>,
    #[serde(default)]
    pub env: Option<UMap<Scalar>>,
    #[serde(default)]
    pub exec: Option<Seq<Text>>,
    #[serde(default)]
    pub cpus: Option<Measure>,
    #[serde(default)]
    pub cpuset: Option<Scalar>,
    #[serde(default)]
    pub memory: Option<Measure>,
    #[serde(default)]
    pub pids: Option<Scalar>,
    #[serde(default)]
    pub userns: Option<Scalar>,
    /// A `kind: bridge` node that is the host's bridge of that name, which
    /// exists already: the lab's ends on it are host ends, its ports.
    #[serde(default, rename = "host-bridge")]
    pub host_bridge: Option<bool>,
    /// The machine of `hosts:` the node is placed on.
    #[serde(default)]
    pub host: Option<Text>,
    // containerlab's keys (see `clab`): mapped onto the ones above, or
    // accepted and not used (`image`, `labels`), or refused by name.
    #[serde(default)]
    pub group: Option<Text>,
    #[serde(default)]
    pub image: Option<Text>,
    #[serde(default)]
    pub labels: Option<UMap<Scalar>>,
    #[serde(default, rename = "env-files")]
    pub env_files: Option<Seq<Text>>,
    #[serde(default)]
    pub cpu: Option<Measure>,
    #[serde(default, rename = "cpu-set")]
    pub cpu_set: Option<Scalar>,
    #[serde(default, rename = "network-mode")]
    pub network_mode: Option<Text>,
    // containerlab's node keys that nslab has no equivalent for yet:
    // each refused by name (see `NodeModel::unsupported`).
    /// containerlab's main process of the node: started before `exec`.
    #[serde(default)]
    pub cmd: Option<Text>,
    /// containerlab's user of the node's processes (`cmd`, `exec`).
    #[serde(default)]
    pub user: Option<Scalar>,
    /// The node's address on the management network.
    #[serde(default, rename = "mgmt-ipv4")]
    pub mgmt_ipv4: Option<Text>,
    #[serde(default, rename = "mgmt-ipv6")]
    pub mgmt_ipv6: Option<Text>,
    /// Ports of the host forwarded to the node (`[IP:]HOST_PORT:PORT[/PROTO]`).
    #[serde(default)]
    pub ports: Option<Seq<Text>>,
    /// containerlab's resolver settings of the node.
    #[serde(default)]
    pub dns: Option<DnsModel>,
    /// `kind: frr`'s frr.conf.
    #[serde(default, rename = "startup-config")]
    pub startup_config: Option<Text>,
    /// Seconds before the node's `exec` steps (see `start_order`).
    #[serde(default, rename = "startup-delay")]
    pub startup_delay: Option<Scalar>,
    /// Nodes whose `exec` steps run before this node's.
    #[serde(default, rename = "wait-for")]
    pub wait_for: Option<Seq<Text>>,
    /// containerlab's stages: their `wait-for`.
    #[serde(default, rename = "stages")]
    pub stages: Option<super::start_order::StagesModel>,
    /// `kind: frr`'s `extras.frr.daemons`.
    #[serde(default)]
    pub extras: Option<ExtrasModel>,
    #[serde(default, rename = "type")]
    pub node_type: Option<de::IgnoredAny>,
    #[serde(default, rename = "entrypoint")]
    pub entrypoint: Option<de::IgnoredAny>,
    #[serde(default, rename = "license")]
    pub license: Option<de::IgnoredAny>,
    #[serde(default, rename = "publish")]
    pub publish: Option<de::IgnoredAny>,
    #[serde(default, rename = "runtime")]
    pub runtime: Option<de::IgnoredAny>,
    #[serde(default, rename = "cap-add")]
    pub cap_add: Option<de::IgnoredAny>,
    #[serde(default, rename = "devices")]
    pub devices: Option<de::IgnoredAny>,
    #[serde(default, rename = "shm-size")]
    pub shm_size: Option<de::IgnoredAny>,
    #[serde(default, rename = "aliases")]
    pub aliases: Option<de::IgnoredAny>,
    #[serde(default, rename = "healthcheck")]
    pub healthcheck: Option<de::IgnoredAny>,
    #[serde(default, rename = "certificate")]
    pub certificate: Option<de::IgnoredAny>,
    #[serde(default, rename = "restart-policy")]
    pub restart_policy: Option<de::IgnoredAny>,
    #[serde(default, rename = "auto-remove")]
    pub auto_remove: Option<de::IgnoredAny>,
    #[serde(default, rename = "image-pull-policy")]
    pub image_pull_policy: Option<de::IgnoredAny>,
    #[serde(default, rename = "enforce-startup-config")]
    pub enforce_startup_config: Option<de::IgnoredAny>,
    #[serde(default, rename = "suppress-startup-config")]
    pub suppress_startup_config: Option<de::IgnoredAny>,
    #[serde(default, rename = "components")]
    pub components: Option<de::IgnoredAny>,
    #[serde(default, rename = "config")]
    pub config: Option<de::IgnoredAny>,
    #[serde(default, rename = "volumes")]
    pub volumes: Option<de::IgnoredAny>,
    #[serde(default, rename = "credentials")]
    pub credentials: Option<de::IgnoredAny>,
    #[serde(default, rename = "privileged")]
    pub privileged: Option<de::IgnoredAny>,
    #[serde(default, rename = "cgroupns-mode")]
    pub cgroupns_mode: Option<de::IgnoredAny>,
    #[serde(default, rename = "cgroup-parent")]
    pub cgroup_parent: Option<de::IgnoredAny>,
    #[serde(default, rename = "pid-mode")]
    pub pid_mode: Option<de::IgnoredAny>,
    #[serde(default, rename = "security-opts")]
    pub security_opts: Option<de::IgnoredAny>,
    #[serde(default, rename = "link-apply-mode")]
    pub link_apply_mode: Option<de::IgnoredAny>,
    #[serde(default, rename = "position")]
    pub position: Option<de::IgnoredAny>,
}

impl NodeModel {
    /// The containerlab keys given here that nslab cannot honour.
    pub(crate) fn unsupported(&self) -> Vec<&'static str> {
        [
            ("startup-config", self.startup_config.is_some()),
            ("extras", self.extras.is_some()),
            ("type", self.node_type.is_some()),
            ("entrypoint", self.entrypoint.is_some()),
            ("license", self.license.is_some()),
            ("publish", self.publish.is_some()),
            ("runtime", self.runtime.is_some()),
            ("cap-add", self.cap_add.is_some()),
            ("devices", self.devices.is_some()),
            ("shm-size", self.shm_size.is_some()),
            ("aliases", self.aliases.is_some()),
            ("healthcheck", self.healthcheck.is_some()),
            ("certificate", self.certificate.is_some()),
            ("restart-policy", self.restart_policy.is_some()),
            ("auto-remove", self.auto_remove.is_some()),
            ("image-pull-policy", self.image_pull_policy.is_some()),
            (
                "enforce-startup-config",
                self.enforce_startup_config.is_some(),
            ),
            (
                "suppress-startup-config",
                self.suppress_startup_config.is_some(),
            ),
            ("components", self.components.is_some()),
            ("config", self.config.is_some()),
            ("volumes", self.volumes.is_some()),
            ("credentials", self.credentials.is_some()),
            ("privileged", self.privileged.is_some()),
            ("cgroupns-mode", self.cgroupns_mode.is_some()),
            ("cgroup-parent", self.cgroup_parent.is_some()),
            ("pid-mode", self.pid_mode.is_some()),
            ("security-opts", self.security_opts.is_some()),
            ("link-apply-mode", self.link_apply_mode.is_some()),
            ("position", self.position.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, given)| given.then_some(key))
        .collect()
    }
}

/// `mgmt:`, containerlab's management network settings.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MgmtModel {
    /// containerlab's Docker network name: accepted, not used.
    #[serde(default, rename = "network")]
    pub _network: Option<de::IgnoredAny>,
    /// The name of the host's interface on the management network.
    #[serde(default)]
    pub bridge: Option<Text>,
    #[serde(default, rename = "ipv4-subnet")]
    pub ipv4_subnet: Option<Text>,
    #[serde(default, rename = "ipv4-gw")]
    pub ipv4_gw: Option<Text>,
    #[serde(default, rename = "ipv4-range")]
    pub ipv4_range: Option<Text>,
    #[serde(default, rename = "ipv6-subnet")]
    pub ipv6_subnet: Option<Text>,
    #[serde(default, rename = "ipv6-gw")]
    pub ipv6_gw: Option<Text>,
    #[serde(default, rename = "ipv6-range")]
    pub ipv6_range: Option<Text>,
    #[serde(default)]
    pub mtu: Option<i64>,
    /// containerlab's firewall rules for the network: nslab makes none.
    #[serde(default, rename = "external-access")]
    pub _external_access: Option<bool>,
    #[serde(default, rename = "driver-opts")]
    pub driver_opts: Option<de::IgnoredAny>,
}

/// containerlab's `extras:` of a node: `frr.daemons` for `kind: frr`;
/// any other key is kept by name, to be refused.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub(crate) struct ExtrasModel {
    #[serde(default)]
    pub frr: Option<FrrExtras>,
    #[serde(flatten)]
    pub other: IndexMap<String, de::IgnoredAny>,
}

/// `extras.frr`: the FRR daemons a `kind: frr` node starts.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FrrExtras {
    #[serde(default)]
    pub daemons: Option<Seq<Text>>,
}

/// containerlab's `dns:` of a node: its resolv.conf.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DnsModel {
    #[serde(default)]
    pub servers: Option<Seq<Text>>,
    #[serde(default)]
    pub search: Option<Seq<Text>>,
    #[serde(default)]
    pub options: Option<Seq<Text>>,
}

/// One link, in nslab's form or either of containerlab's.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkModel {
    #[serde(default)]
    pub endpoints: Seq<EndpointModel>,
    /// containerlab's extended form: `veth`, `host`, `mgmt-net`, ...
    #[serde(default, rename = "type")]
    pub kind: Option<Text>,
    /// containerlab's single end of a `host`, `mgmt-net` or `macvlan` link.
    #[serde(default)]
    pub endpoint: Option<EndpointModel>,
    #[serde(default, rename = "host-interface")]
    pub host_interface: Option<Text>,
    #[serde(default)]
    pub vars: Option<de::IgnoredAny>,
    #[serde(default)]
    pub labels: Option<de::IgnoredAny>,
    /// The keys of containerlab's macvlan and vxlan links, which `clab`
    /// turns into nslab's `macvlan:` and `vxlan:`.
    #[serde(default)]
    pub remote: Option<Text>,
    #[serde(default)]
    pub vni: Option<Scalar>,
    #[serde(default, rename = "dst-port")]
    pub dst_port: Option<Scalar>,
    /// containerlab's older name of `dst-port`.
    #[serde(default, rename = "udp-port")]
    pub udp_port: Option<Scalar>,
    #[serde(default, rename = "src-port")]
    pub src_port: Option<Scalar>,
    #[serde(default, rename = "parent-interface")]
    pub parent_interface: Option<Text>,
    #[serde(default)]
    pub mode: Option<Text>,
    /// nslab's devices, links of one endpoint (see `devices`): a macvlan,
    /// a vxlan or a dummy.
    #[serde(default)]
    pub macvlan: Option<MacvlanModel>,
    #[serde(default)]
    pub vxlan: Option<VxlanModel>,
    #[serde(default)]
    pub dummy: Option<Scalar>,
    /// The keys a containerlab device was written with (set by `clab`).
    #[serde(skip)]
    pub device_keys: Option<super::devices::DeviceKeys>,
    #[serde(default)]
    pub ipv4: Option<Seq<Option<Text>>>,
    #[serde(default)]
    pub ipv6: Option<Seq<Option<Text>>>,
    #[serde(default)]
    pub mtu: Option<i64>,
    #[serde(default)]
    pub mac: Option<Seq<Option<Text>>>,
    #[serde(default)]
    pub impair: Option<ImpairModel>,
    #[serde(default)]
    pub state: Option<Seq<Option<Text>>>,
}

/// `macvlan:` of a link: the host's interface it sits on, and its mode.
/// Both optional here, so that a missing one is a problem with its path.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MacvlanModel {
    #[serde(default)]
    pub parent: Option<Text>,
    #[serde(default)]
    pub mode: Option<Text>,
}

/// `vxlan:` of a link: where the tunnel goes, and how.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VxlanModel {
    #[serde(default)]
    pub remote: Option<Text>,
    #[serde(default)]
    pub vni: Option<Scalar>,
    #[serde(default)]
    pub port: Option<Scalar>,
    #[serde(default, rename = "src-port")]
    pub src_port: Option<Scalar>,
    #[serde(default)]
    pub parent: Option<Text>,
}

/// One end of a link: `node:iface`, or containerlab's
/// `{node, interface, mac}`.
#[derive(Debug, Clone)]
pub(crate) enum EndpointModel {
    Text(Text),
    Fields(EndpointFields),
}

/// containerlab's extended endpoint.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointFields {
    pub node: Text,
    #[serde(default)]
    pub interface: Option<Text>,
    #[serde(default)]
    pub mac: Option<Text>,
    #[serde(default)]
    pub ipv4: Option<Text>,
    #[serde(default)]
    pub ipv6: Option<Text>,
    /// Accepted, not used.
    #[serde(default, rename = "vars")]
    pub _vars: Option<de::IgnoredAny>,
}

impl<'de> Deserialize<'de> for EndpointModel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EndpointModel;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"NODE:IFACE\" or a mapping {node, interface, mac}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EndpointModel, E> {
                charge(v.len() as u64 + 1)?;
                Ok(EndpointModel::Text(Text(v.to_owned())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EndpointModel, A::Error> {
                EndpointFields::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(EndpointModel::Fields)
            }
        }
        d.deserialize_any(V)
    }
}

/// `impair:` of a link: one map for both ends, or one entry per endpoint.
#[derive(Debug)]
pub(crate) enum ImpairModel {
    Both(ImpairFields),
    Each(Seq<Option<ImpairFields>>),
}

impl<'de> Deserialize<'de> for ImpairModel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ImpairModel;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping (for both ends) or a list with one entry per endpoint")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ImpairModel, A::Error> {
                ImpairFields::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ImpairModel::Both)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ImpairModel, A::Error> {
                Seq::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(ImpairModel::Each)
            }
        }
        d.deserialize_any(V)
    }
}

/// The impairments of one end (or of both).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImpairFields {
    #[serde(default)]
    pub delay: Option<Measure>,
    #[serde(default)]
    pub jitter: Option<Measure>,
    #[serde(default)]
    pub loss: Option<Measure>,
    #[serde(default)]
    pub rate: Option<Measure>,
    #[serde(default)]
    pub corrupt: Option<Measure>,
    #[serde(default)]
    pub duplicate: Option<Measure>,
}

impl ImpairFields {
    /// Sets the value of `key` (one of [`IMPAIR_KEYS`](super::IMPAIR_KEYS));
    /// false for any other key.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> bool {
        let slot = match key {
            "delay" => &mut self.delay,
            "jitter" => &mut self.jitter,
            "loss" => &mut self.loss,
            "rate" => &mut self.rate,
            "corrupt" => &mut self.corrupt,
            "duplicate" => &mut self.duplicate,
            _ => return false,
        };
        *slot = Some(Measure(value.to_owned()));
        true
    }

    /// The values as text, for [`parse_impair`](super::parse_impair).
    pub(crate) fn as_text(&self) -> super::ImpairText<'_> {
        fn text(v: &Option<Measure>) -> Option<&str> {
            v.as_ref().map(|m| m.0.as_str())
        }
        super::ImpairText {
            delay: text(&self.delay),
            jitter: text(&self.jitter),
            loss: text(&self.loss),
            rate: text(&self.rate),
            corrupt: text(&self.corrupt),
            duplicate: text(&self.duplicate),
        }
    }
}

/// One entry of `expect:`. `port` is a scalar so that `port: 80` is
/// reported with the other problems (it lacks the protocol), not as a type
/// error that stops the parse.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectModel {
    pub from: Text,
    pub to: Text,
    #[serde(default)]
    pub port: Option<Scalar>,
    #[serde(default)]
    pub reach: Option<bool>,
}

/// One step of `scenario:`: `at` and one of `link` (with `state`),
/// `node` (with `action`) or `check`. Every key is optional here so that a
/// missing one is reported with its key path.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepModel {
    #[serde(default)]
    pub at: Option<Measure>,
    #[serde(default)]
    pub link: Option<Text>,
    #[serde(default)]
    pub state: Option<Text>,
    #[serde(default)]
    pub node: Option<Text>,
    #[serde(default)]
    pub action: Option<Text>,
    #[serde(default)]
    pub check: Option<bool>,
}

/// Only the lab name, ignoring everything else (for [`super::lab_name_of`]).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct NameOnly {
    pub name: String,
}
