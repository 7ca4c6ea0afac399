//! containerlab's topology files (`*.clab.yml`), read by the same loader
//! as nslab's own: this module turns one into nslab's shape before the
//! usual validation, or names every key it cannot honour.
//!
//! What it does, in containerlab's order: variables (`$VAR`, `${VAR}`,
//! `${VAR:=default}`, ...) are expanded in the file's text (see `expand`);
//! each node's settings are its own, then its group's, then its kind's,
//! then `defaults`' (maps merged key by key, `exec` and `env-files` joined
//! in order, binds merged by target, everything else the first given);
//! `__clabNodeName__`, `__clabNodeDir__` and `__clabDir__` are replaced in
//! binds, `exec` and `env-files`; `kind: linux` is a node, `kind: bridge` a
//! bridge of the lab's own, `kind: host` the host; links in the brief form
//! and in the extended `veth` and `host` forms become nslab links. FRR's
//! image runs the host's FRR (see `images`); other images and `labels`
//! are accepted and not used (the images are listed as a note). A key or
//! kind with no host equivalent is a problem naming the node, the key and
//! why.

mod devices;
mod expand;
mod images;
mod kinds;
mod links;
mod nodes;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub(super) use expand::expand_env;

use super::Problem;
use super::model::{EndpointModel, FileModel, NodeModel};

/// What reading a containerlab file gives besides the nslab model.
#[derive(Debug, Default)]
pub(super) struct Derived {
    /// `clab-<name>` next to the file: `__clabDir__`, made by `up`.
    pub lab_dir: Option<PathBuf>,
    /// Things worth saying that are not problems (the images not used).
    pub notes: Vec<String>,
    /// Files `up` writes in the lab directory (nodes' `resolv.conf`).
    pub lab_files: Vec<(PathBuf, String)>,
    /// containerlab's names of the nodes begin with this (`clab-LAB-`).
    pub container_prefix: Option<String>,
}

/// Whether a file is containerlab's: by its name (`*.clab.yml` or
/// `*.clab.yaml`, as containerlab finds them), or by a key or kind only
/// containerlab has.
pub(super) fn is_containerlab(model: &FileModel, origin: &Path) -> bool {
    has_clab_name(origin) || uses_clab_keys(model)
}

/// `*.clab.yml` or `*.clab.yaml`.
pub(super) fn has_clab_name(origin: &Path) -> bool {
    origin
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".clab.yml") || n.ends_with(".clab.yaml"))
}

fn uses_clab_keys(model: &FileModel) -> bool {
    let Some(topo) = &model.topology else {
        return model.prefix.is_some();
    };
    let node_is_clab = |m: &NodeModel| {
        m.kind.as_ref().is_some_and(|k| kinds::is_clab_only(&k.0))
            || m.group.is_some()
            || m.image.is_some()
            || m.labels.is_some()
            || m.env_files.is_some()
            || m.cpu.is_some()
            || m.cpu_set.is_some()
            || m.cmd.is_some()
            || m.user.is_some()
            || m.dns.is_some()
            || !m.unsupported().is_empty()
    };
    let nodes = topo.nodes.iter().flat_map(|n| n.entries.values().flatten());
    let has_macvlan_node = (topo.nodes.iter()).any(|n| n.entries.contains_key("macvlan"));
    let link_is_clab = |l: &super::model::LinkModel| {
        l.kind.is_some()
            || l.endpoint.is_some()
            || l.host_interface.is_some()
            || l.vars.is_some()
            || l.labels.is_some()
            || l.remote.is_some()
            || l.vni.is_some()
            || l.dst_port.is_some()
            || l.udp_port.is_some()
            || l.src_port.is_some()
            || l.parent_interface.is_some()
            || l.mode.is_some()
            || l.endpoints.0.iter().any(|e| match e {
                EndpointModel::Fields(_) => true,
                // containerlab's macvlan end, unless a node has that name.
                EndpointModel::Text(t) => t.0.starts_with("macvlan:") && !has_macvlan_node,
            })
    };
    model.prefix.is_some()
        || topo.kinds.is_some()
        || topo.groups.is_some()
        || topo.defaults.as_ref().is_some_and(node_is_clab)
        || nodes.into_iter().any(node_is_clab)
        || topo.links.iter().flat_map(|l| &l.0).any(link_is_clab)
}

/// Turns a containerlab file into nslab's shape: nodes with every level
/// merged in and containerlab's keys mapped, links in nslab's form.
/// `base_dir` is the file's folder (the lab directory goes there).
pub(super) fn resolve(
    mut model: FileModel,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) -> (FileModel, Derived) {
    // As containerlab: `clab-<name>` in `$CLAB_LABDIR_BASE` (relative to
    // the file's folder), or next to the file.
    let base = match std::env::var_os("CLAB_LABDIR_BASE") {
        Some(base) if !base.is_empty() => super::validate::normalize(&base_dir.join(base)),
        _ => base_dir.to_path_buf(),
    };
    let lab_dir = base.join(format!("clab-{}", model.name.0));
    // containerlab's container names: `clab-LAB-NODE` by default, `NODE`
    // with an empty prefix, `LAB-NODE` with the prefix `__lab-name`.
    let container_prefix = match model.prefix.take().map(|p| p.0) {
        None => Some(format!("clab-{}-", model.name.0)),
        Some(p) if p.is_empty() => None,
        Some(p) if p == "__lab-name" => Some(format!("{}-", model.name.0)),
        // The names go into /etc/hosts files: a name's own characters only.
        Some(p)
            if !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
        {
            problems.push(Problem::new(
                "prefix",
                format!("{p:?}: a prefix is made of letters, digits, '-', '_' and '.' (it begins the nodes' names in /etc/hosts)"),
            ));
            None
        }
        Some(p) => Some(format!("{p}-{}-", model.name.0)),
    };
    let mut extras = Derived {
        lab_dir: Some(lab_dir.clone()),
        notes: Vec::new(),
        lab_files: Vec::new(),
        container_prefix,
    };
    // Every containerlab lab has its management network.
    model.mgmt.get_or_insert_default();
    let Some(mut topo) = model.topology.take() else {
        return (model, extras);
    };
    let context = nodes::Context {
        lab_dir: &lab_dir,
        base_dir,
    };
    let (nodes, hosts) = nodes::resolve(&mut topo, &context, problems, &mut extras);
    topo.nodes = nodes;
    if let Some(links) = topo.links.take() {
        topo.links = Some(links::resolve(links, &hosts, problems));
    }
    topo.defaults = None;
    topo.kinds = None;
    topo.groups = None;
    model.topology = Some(topo);
    (model, extras)
}
