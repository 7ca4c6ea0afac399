//! containerlab's node kinds, and what each is in nslab.

/// What a containerlab kind becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A node of its own namespaces (`linux`, and nslab's `node`).
    Node,
    /// A bridge of the lab's own (`bridge`, nslab's `bridge`).
    Bridge,
    /// The host itself: its links' ends are the host's (`host`).
    Host,
    /// A node running the host's FRR (`frr`, nslab's own: containerlab
    /// has no such kind).
    Frr,
}

/// containerlab's kinds that run a vendor's network OS from an image: no
/// host software stands in for them.
const IMAGE_ONLY: &[&str] = &[
    "nokia_srlinux",
    "nokia_sros",
    "nokia_srsim",
    "arista_ceos",
    "ceos",
    "arista_veos",
    "cisco_xrd",
    "cisco_xrv",
    "cisco_xrv9k",
    "cisco_csr1000v",
    "cisco_c8000",
    "cisco_c8000v",
    "cisco_cat9kv",
    "cisco_n9kv",
    "cisco_nxos",
    "cisco_iol",
    "cisco_ftdv",
    "cisco_vios",
    "juniper_crpd",
    "juniper_vmx",
    "juniper_vqfx",
    "juniper_vsrx",
    "juniper_vjunosrouter",
    "juniper_vjunosswitch",
    "juniper_vjunosevolved",
    "juniper_cjunosevolved",
    "sonic-vs",
    "sonic-vm",
    "dell_ftosv",
    "dell_sonic",
    "mikrotik_ros",
    "huawei_vrp",
    "ipinfusion_ocnos",
    "fortinet_fortigate",
    "paloalto_panos",
    "checkpoint_cloudguard",
    "keysight_ixia-c-one",
    "aruba_aoscx",
    "vr-sros",
    "vr-veos",
    "vr-xrv",
    "vr-xrv9k",
    "vr-vmx",
    "vr-csr",
    "vr-ros",
    "xrd",
    "crpd",
    "srl",
    "rare",
    "openbsd",
    "freebsd",
    "generic_vm",
    "cumulus_cvx",
    "nvidia_cumulusvx",
    "cisco_asav",
    "fdio_vpp",
    "openwrt",
    "juniper_csrx",
    "6wind_vsr",
    "arrcus_arcos",
];

/// Whether `name` is a kind only containerlab has (a file naming one is
/// containerlab's).
pub(super) fn is_clab_only(name: &str) -> bool {
    matches!(
        name,
        "linux" | "host" | "frr" | "ovs-bridge" | "ext-container" | "k8s-kind" | "border0"
    ) || IMAGE_ONLY.contains(&name)
}

/// The kind a containerlab `kind` value names, or why nslab has none.
pub(super) fn kind(name: &str) -> Result<Kind, String> {
    match name {
        "linux" | "node" => Ok(Kind::Node),
        "bridge" => Ok(Kind::Bridge),
        "host" => Ok(Kind::Host),
        "frr" => Ok(Kind::Frr),
        "ovs-bridge" => Err(
            "kind \"ovs-bridge\" needs Open vSwitch; nslab makes Linux bridges: use `kind: bridge`"
                .into(),
        ),
        "ext-container" | "k8s-kind" | "border0" => Err(format!(
            "kind {name:?} joins containerlab to other tooling (containers it did not make, Kubernetes, Border0); nslab has no equivalent"
        )),
        other if IMAGE_ONLY.contains(&other) => Err(format!(
            "kind {other:?} is a vendor's network OS that runs only from its image; nslab runs the host's own software and has no equivalent"
        )),
        other => Err(format!(
            "kind {other:?} is not known: nslab takes containerlab's linux, bridge and host"
        )),
    }
}
