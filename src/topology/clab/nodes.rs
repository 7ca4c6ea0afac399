//! containerlab's nodes: each level merged in (node, then its group, then
//! its kind, then `defaults`), magic variables replaced, containerlab's
//! keys mapped onto nslab's or refused by name.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::super::Problem;
use super::super::model::{
    DnsModel, ExtrasModel, Measure, NodeModel, Scalar, Seq, Text, TopologyModel, UMap,
};
use super::super::start_order::StagesModel;
use super::super::validate::{MAX_MERGED_DEFAULTS, sysctl_path};
use super::images;
use super::kinds::{Kind, kind};

/// Where a containerlab file's paths point.
pub(super) struct Context<'a> {
    /// `__clabDir__`.
    pub lab_dir: &'a Path,
    /// The file's folder: relative paths start there.
    pub base_dir: &'a Path,
}

impl Context<'_> {
    /// `text` with containerlab's magic variables of node `name`
    /// replaced: `__clabNodeName__`, `__clabNodeDir__`, `__clabDir__`,
    /// and `__clabLabName__` (the lab directory's name).
    fn magic(&self, text: &str, name: &str) -> String {
        let lab_dir = self.lab_dir.to_string_lossy();
        let lab_dir_name = self
            .lab_dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        text.replace("__clabNodeName__", name)
            .replace(
                "__clabNodeDir__",
                &self.lab_dir.join(name).to_string_lossy(),
            )
            .replace("__clabDir__", &lab_dir)
            .replace("__clabLabName__", &lab_dir_name)
    }
}

/// The nodes in nslab's shape, and the names of `kind: host` nodes (whose
/// link ends are the host's).
pub(super) fn resolve(
    topo: &mut TopologyModel,
    context: &Context<'_>,
    problems: &mut Vec<Problem>,
    extras: &mut super::Derived,
) -> (Option<UMap<Option<NodeModel>>>, HashSet<String>) {
    let defaults = topo.defaults.take().unwrap_or_default();
    let kinds = topo.kinds.take().unwrap_or_default();
    let groups = topo.groups.take().unwrap_or_default();
    for (path, map) in [("topology.kinds", &kinds), ("topology.groups", &groups)] {
        for dup in &map.duplicates {
            problems.push(Problem::new(
                path,
                format!("key {dup:?} is given more than once"),
            ));
        }
    }
    for name in kinds.entries.keys() {
        if let Err(why) = kind(name) {
            problems.push(Problem::new(format!("topology.kinds.{name}"), why));
        }
    }
    let Some(mut nodes) = topo.nodes.take() else {
        return (None, HashSet::new());
    };
    // Every node gets a copy of its group's, kind's and the defaults'
    // settings: bounded as nslab bounds `defaults`.
    let inherited: u64 = [weight(&defaults)]
        .into_iter()
        .chain(kinds.entries.values().flatten().map(weight))
        .chain(groups.entries.values().flatten().map(weight))
        .sum();
    if inherited.saturating_mul(nodes.entries.len() as u64) > MAX_MERGED_DEFAULTS {
        problems.push(Problem::new(
            "topology",
            format!(
                "defaults, kinds and groups (about {inherited} bytes) copied into each of {} nodes would be more than the {} MiB allowed",
                nodes.entries.len(),
                MAX_MERGED_DEFAULTS >> 20
            ),
        ));
        return (Some(nodes), HashSet::new());
    }
    let empty = NodeModel::default();
    let mut hosts = HashSet::new();
    let mut images = Vec::new();
    for (name, own) in nodes.entries.iter_mut() {
        let path = format!("topology.nodes.{name}");
        let mine = own.take().unwrap_or_default();
        // containerlab's order: the group is the node's, else its kind's,
        // else the defaults'; the kind the node's, else its group's, else
        // the defaults' group's, else the defaults'.
        let first_kind = (mine.kind.as_ref()).or(defaults.kind.as_ref());
        let kind_group = (first_kind.and_then(|k| kinds.entries.get(&k.0.to_ascii_lowercase())))
            .and_then(|m| m.as_ref())
            .and_then(|m| m.group.as_ref());
        let group_name = mine
            .group
            .as_ref()
            .or(kind_group)
            .or(defaults.group.as_ref());
        let group = match group_name {
            None => &empty,
            Some(Text(g)) => match groups.entries.get(g) {
                Some(model) => model.as_ref().unwrap_or(&empty),
                None => {
                    problems.push(Problem::new(
                        format!("{path}.group"),
                        format!("group {g:?} is not defined under topology.groups"),
                    ));
                    &empty
                }
            },
        };
        let defaults_group = (defaults.group.as_ref())
            .and_then(|g| groups.entries.get(&g.0))
            .and_then(Option::as_ref)
            .and_then(|m| m.kind.as_ref());
        let kind_name = (mine.kind.as_ref())
            .or(group.kind.as_ref())
            .or(defaults_group)
            .or(defaults.kind.as_ref())
            .map_or("linux".to_owned(), |k| k.0.to_ascii_lowercase());
        let of_kind = (kinds.entries.get(&kind_name)).and_then(Option::as_ref);
        let mut merged = merge(&mine, group);
        merged = merge(&merged, of_kind.unwrap_or(&empty));
        merged = merge(&merged, &defaults);
        let resolved = kind(&kind_name);
        let is_frr = resolved == Ok(Kind::Frr);
        if resolved
            .as_ref()
            .is_ok_and(|k| matches!(k, Kind::Bridge | Kind::Host))
        {
            // A bridge or the host has no cgroup, user namespace, routes
            // or processes: what it would inherit is left out, and what it
            // gives itself is refused (by nslab's rules, or below).
            merged = NodeModel {
                image: merged.image.take(),
                labels: merged.labels.take(),
                ..mine.clone()
            };
        }
        if resolved == Ok(Kind::Host) {
            let given = [
                ("exec", mine.exec.is_some()),
                ("binds", mine.binds.is_some()),
                ("env", mine.env.is_some()),
                ("sysctls", mine.sysctls.is_some()),
                ("startup-delay", mine.startup_delay.is_some()),
                ("wait-for", mine.wait_for.is_some()),
                ("stages", mine.stages.is_some()),
            ];
            for (key, _) in given.iter().filter(|(_, given)| *given) {
                problems.push(Problem::new(
                    format!("{path}.{key}"),
                    format!("a `kind: host` node is the host itself: nslab changes nothing of the host's, so it takes no `{key}`"),
                ));
            }
        }
        merged.kind = match resolved {
            Ok(Kind::Node | Kind::Frr) => {
                add_docker_sysctls(&mut merged);
                Some(Text("node".into()))
            }
            Ok(Kind::Bridge) => Some(Text("bridge".into())),
            Ok(Kind::Host) => {
                hosts.insert(name.clone());
                None
            }
            Err(why) => {
                problems.push(Problem::new(format!("{path}.kind"), why));
                None
            }
        };
        // `kind: frr` takes these two (any other kind refuses them by
        // name), and runs the host's FRR whatever its image.
        let frr = is_frr.then(|| {
            merged.image = None;
            (merged.startup_config.take(), merged.extras.take())
        });
        map_keys(&mut merged, name, &path, context, problems, &mut images);
        if let Some((config, frr_extras)) = frr {
            let files = &mut extras.lab_files;
            let given = FrrGiven {
                config,
                extras: frr_extras,
            };
            run_frr(&mut merged, name, &path, context, given, problems, files);
        }
        if let Some(dns) = merged.dns.take() {
            let file = context.lab_dir.join(name).join("resolv.conf");
            let files = &mut extras.lab_files;
            bind_lab_file(
                &mut merged,
                files,
                file,
                resolv_conf(&dns),
                "/etc/resolv.conf",
            );
        }
        *own = Some(merged);
    }
    if !images.is_empty() {
        extras.notes.push(format!(
            "images not used (nslab runs the host's own software): {}",
            images_by_name(&images)
        ));
    }
    // A `kind: host` node is the host: not a node of the lab.
    nodes.entries.retain(|name, _| !hosts.contains(name));
    (Some(nodes), hosts)
}

/// A node's resolv.conf from containerlab's `dns:`. Without `servers`,
/// the host's own name servers, as containerlab takes them (those of
/// `/etc/resolv.conf` that are not on a loopback address).
fn resolv_conf(dns: &DnsModel) -> String {
    let servers: Vec<String> = match &dns.servers {
        Some(servers) => servers.0.iter().map(|s| s.0.clone()).collect(),
        None => host_name_servers(),
    };
    let mut out = String::from("# written by nslab from the topology's `dns:`\n");
    for server in servers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    for (key, list) in [("search", &dns.search), ("options", &dns.options)] {
        if let Some(list) = list.as_ref().filter(|l| !l.0.is_empty()) {
            let words: Vec<&str> = list.0.iter().map(|t| t.0.as_str()).collect();
            out.push_str(&format!("{key} {}\n", words.join(" ")));
        }
    }
    out
}

/// The host's name servers that are not on a loopback address.
fn host_name_servers() -> Vec<String> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .filter(|s| {
            s.parse::<std::net::IpAddr>()
                .is_ok_and(|a| !a.is_loopback())
        })
        .map(str::to_owned)
        .collect()
}

/// `IMAGE (node, node), IMAGE (node)`, in file order.
fn images_by_name(images: &[(String, String)]) -> String {
    let mut by_image: indexmap::IndexMap<&str, Vec<&str>> = indexmap::IndexMap::new();
    for (image, node) in images {
        by_image.entry(image).or_default().push(node);
    }
    let parts: Vec<String> = (by_image.iter())
        .map(|(image, nodes)| format!("{image} ({})", nodes.join(", ")))
        .collect();
    parts.join(", ")
}

/// What a containerlab node has unless its file says otherwise: on a
/// Docker host IPv4 forwarding is on (Docker turns it on, and a new net
/// namespace takes the host's IPv4 settings), so containerlab's routers
/// route without asking (its `frr01` example relies on it); and
/// containerlab turns IPv6 on in `linux` nodes.
/// A sysctl the file gives in either spelling (`net/ipv4/ip_forward`)
/// is the file's.
fn add_docker_sysctls(m: &mut NodeModel) {
    let sysctls = m.sysctls.get_or_insert_with(UMap::default);
    let given: HashSet<_> = (sysctls.entries.keys())
        .filter_map(|k| sysctl_path(k).ok())
        .collect();
    for (key, value) in [
        ("net.ipv4.ip_forward", 1),
        ("net.ipv6.conf.all.disable_ipv6", 0),
    ] {
        if !sysctl_path(key).is_ok_and(|p| given.contains(&p)) {
            sysctls.entries.insert(key.into(), Scalar::Int(value));
        }
    }
}

/// `high` over `low`, as containerlab merges a node's levels: maps key by
/// key, `exec`, `env-files` and the waits of `wait-for` and `stages` one
/// after the other (`low`'s first, each once), binds by target, any other
/// key the first given.
fn merge(high: &NodeModel, low: &NodeModel) -> NodeModel {
    macro_rules! first {
        ($($field:ident),* $(,)?) => {
            NodeModel {
                $($field: high.$field.clone().or_else(|| low.$field.clone()),)*
                sysctls: merge_maps(&high.sysctls, &low.sysctls),
                env: merge_maps(&high.env, &low.env),
                labels: merge_maps(&high.labels, &low.labels),
                binds: merge_binds(&high.binds, &low.binds),
                exec: merge_lists(&high.exec, &low.exec),
                env_files: merge_lists(&high.env_files, &low.env_files),
                wait_for: merge_lists(&high.wait_for, &low.wait_for),
                stages: StagesModel::merge(&high.stages, &low.stages),
            }
        };
    }
    first!(
        kind,
        hostname,
        routes,
        tmpfs,
        cpus,
        cpuset,
        memory,
        pids,
        userns,
        host_bridge,
        host,
        group,
        image,
        cpu,
        cpu_set,
        network_mode,
        cmd,
        user,
        mgmt_ipv4,
        mgmt_ipv6,
        ports,
        dns,
        startup_config,
        startup_delay,
        extras,
        node_type,
        entrypoint,
        license,
        publish,
        runtime,
        cap_add,
        devices,
        shm_size,
        aliases,
        healthcheck,
        certificate,
        restart_policy,
        auto_remove,
        image_pull_policy,
        enforce_startup_config,
        suppress_startup_config,
        components,
        config,
        volumes,
        credentials,
        privileged,
        cgroupns_mode,
        cgroup_parent,
        pid_mode,
        security_opts,
        link_apply_mode,
        position,
    )
}

fn merge_maps<V: Clone>(high: &Option<UMap<V>>, low: &Option<UMap<V>>) -> Option<UMap<V>> {
    match (high, low) {
        (Some(h), Some(l)) => {
            let mut out = l.clone();
            for (k, v) in &h.entries {
                out.entries.insert(k.clone(), v.clone());
            }
            out.duplicates.extend(h.duplicates.iter().cloned());
            Some(out)
        }
        (h, l) => h.clone().or_else(|| l.clone()),
    }
}

/// `low`'s lines, then `high`'s, each once.
fn merge_lists(high: &Option<Seq<Text>>, low: &Option<Seq<Text>>) -> Option<Seq<Text>> {
    let (Some(h), Some(l)) = (high, low) else {
        return high.clone().or_else(|| low.clone());
    };
    let mut seen = HashSet::new();
    let all = l.0.iter().chain(&h.0);
    Some(Seq(all.filter(|t| seen.insert(&t.0)).cloned().collect()))
}

/// The binds of both, one per target (`high`'s wins), sorted by target,
/// so that a folder is mounted before the files in it (as Docker orders
/// them).
fn merge_binds(high: &Option<Seq<Text>>, low: &Option<Seq<Text>>) -> Option<Seq<Text>> {
    let (Some(h), Some(l)) = (high, low) else {
        return high.clone().or_else(|| low.clone());
    };
    let target = |b: &Text| b.0.split(':').nth(1).map(str::to_owned);
    let taken: HashSet<Option<String>> = h.0.iter().map(target).collect();
    let mut out: Vec<Text> = (l.0.iter())
        .filter(|b| !taken.contains(&target(b)))
        .cloned()
        .collect();
    out.extend(h.0.iter().cloned());
    out.sort_by_key(target);
    Some(Seq(out))
}

/// About how many bytes a copy of a model's lists and maps takes.
fn weight(m: &NodeModel) -> u64 {
    let texts = |s: &Option<Seq<Text>>| -> u64 {
        s.iter()
            .flat_map(|s| &s.0)
            .map(|t| t.0.len() as u64 + 32)
            .sum()
    };
    let maps = |m: &Option<UMap<Scalar>>| -> u64 {
        m.iter()
            .flat_map(|m| &m.entries)
            .map(|(k, v)| {
                k.len() as u64
                    + 64
                    + match v {
                        Scalar::Str(s) => s.len() as u64,
                        _ => 0,
                    }
            })
            .sum()
    };
    texts(&m.binds)
        + texts(&m.exec)
        + texts(&m.routes)
        + texts(&m.tmpfs)
        + texts(&m.env_files)
        + texts(&m.wait_for)
        + m.stages.as_ref().map_or(0, StagesModel::weight)
        + maps(&m.env)
        + maps(&m.sysctls)
        + maps(&m.labels)
}

/// Maps containerlab's keys of one merged node onto nslab's, or refuses
/// them by name.
fn map_keys(
    m: &mut NodeModel,
    name: &str,
    path: &str,
    context: &Context<'_>,
    problems: &mut Vec<Problem>,
    images: &mut Vec<(String, String)>,
) {
    let magic = |text: &str| context.magic(text, name);
    for list in [&mut m.binds, &mut m.exec].into_iter().flatten() {
        for line in &mut list.0 {
            line.0 = magic(&line.0);
        }
    }
    if let Some(files) = m.env_files.take() {
        let mut from_files = UMap::default();
        for (i, Text(file)) in files.0.iter().enumerate() {
            let file = context.base_dir.join(magic(file));
            match read_env_file(&file) {
                Ok(pairs) => {
                    for (k, v) in pairs {
                        from_files.entries.insert(k, Scalar::Str(v));
                    }
                }
                Err(why) => problems.push(Problem::new(format!("{path}.env-files[{i}]"), why)),
            }
        }
        // `env` wins over `env-files`.
        m.env = merge_maps(&m.env, &Some(from_files));
    }
    // containerlab's `user` runs the node's processes: here its `exec`
    // steps and `cmd` (taken in, below), each through setpriv as that
    // user (a name of the host's, or a number) with its groups.
    let user = match m.user.take() {
        None => None,
        Some(Scalar::Str(u)) if is_user_name(&u) => Some(u),
        Some(Scalar::Int(n)) if (0..=i128::from(u32::MAX)).contains(&n) => Some(n.to_string()),
        Some(other) => {
            problems.push(Problem::new(
                format!("{path}.user"),
                format!("user {other:?} is not a user name or number (`user:group` is not taken)"),
            ));
            None
        }
    };
    let as_user = |command: &str| match &user {
        Some(user) => format!(
            "setpriv --reuid={user} --regid=\"$(id -g {user})\" --init-groups -- /bin/sh -c {}",
            shell_quote(command)
        ),
        None => command.to_owned(),
    };
    let mut steps: Vec<Text> = Vec::new();
    if let Some(Text(cmd)) = m.cmd.take() {
        // The main process of containerlab's node: started in the
        // background before the `exec` steps, its output in the node's
        // own /run (the lab directory may be hidden in the node by its
        // tmpfs), which therefore is the node's own.
        steps.push(Text(format!(
            "exec >>{CMD_LOG} 2>&1 </dev/null; {} &",
            as_user(&cmd)
        )));
        own_folders(m, &["/run"]);
    }
    for Text(step) in m.exec.take().map(|e| e.0).unwrap_or_default() {
        steps.push(Text(match user {
            Some(_) => format!("exec {}", as_user(&step)),
            None => step,
        }));
    }
    if !steps.is_empty() {
        m.exec = Some(Seq(steps));
    }
    match m.image.take() {
        None => {}
        // An image whose software the host has: that runs instead.
        Some(Text(image))
            if let Some(software) = images::host_software(&image)
                && m.kind.as_ref().is_some_and(|k| k.0 == "node") =>
        {
            use_host_software(m, &software, &format!("image {image:?}"), path, problems);
        }
        Some(Text(image)) => images.push((image, name.to_owned())),
    }
    m.group = None;
    m.labels = None;
    match (m.cpu.take(), &m.cpus) {
        (Some(cpu), None) => m.cpus = Some(Measure(cpu.0)),
        (Some(_), Some(_)) => problems.push(Problem::new(
            format!("{path}.cpu"),
            "give the CPU limit once: `cpu` (containerlab's) or `cpus` (nslab's)",
        )),
        (None, _) => {}
    }
    match (m.cpu_set.take(), &m.cpuset) {
        (Some(set), None) => m.cpuset = Some(set),
        (Some(_), Some(_)) => problems.push(Problem::new(
            format!("{path}.cpu-set"),
            "give the CPU set once: `cpu-set` (containerlab's) or `cpuset` (nslab's)",
        )),
        (None, _) => {}
    }
    for key in m.unsupported() {
        problems.push(Problem::new(format!("{path}.{key}"), unsupported(key)));
    }
}

/// What a `kind: frr` node gives of its FRR.
struct FrrGiven {
    /// `startup-config`: its frr.conf.
    config: Option<Text>,
    /// `extras.frr.daemons`: the daemons it starts.
    extras: Option<ExtrasModel>,
}

/// FRR's daemons that `extras.frr.daemons` may name (zebra and staticd
/// always run).
const FRR_DAEMONS: &[&str] = &[
    "bgpd", "ospfd", "ospf6d", "ripd", "ripngd", "isisd", "pimd", "pim6d", "ldpd", "nhrpd",
    "eigrpd", "babeld", "sharpd", "pbrd", "bfdd", "fabricd", "vrrpd", "pathd",
];

/// nslab's `kind: frr`: the host's FRR, as for FRR's image, with
/// `startup-config` as its `/etc/frr/frr.conf` and a `daemons` file (in
/// the node's folder of the lab directory) starting zebra, staticd and
/// `extras.frr.daemons`.
fn run_frr(
    m: &mut NodeModel,
    name: &str,
    path: &str,
    context: &Context<'_>,
    given: FrrGiven,
    problems: &mut Vec<Problem>,
    lab_files: &mut Vec<(PathBuf, String)>,
) {
    use_host_software(m, &images::FRR, "kind \"frr\"", path, problems);
    if let Some(Text(config)) = given.config {
        let bind = format!("{}:/etc/frr/frr.conf", context.magic(&config, name));
        m.binds.get_or_insert_with(Seq::default).0.push(Text(bind));
    }
    let mut daemons = vec!["zebra", "staticd"];
    if let Some(extras) = &given.extras {
        for key in extras.other.keys() {
            problems.push(Problem::new(
                format!("{path}.extras.{key}"),
                "a `kind: frr` node takes `extras.frr` alone",
            ));
        }
        let listed = (extras.frr.iter()).flat_map(|f| f.daemons.iter().flat_map(|d| &d.0));
        for Text(daemon) in listed {
            match FRR_DAEMONS.iter().find(|d| **d == daemon.as_str()) {
                Some(known) => daemons.push(known),
                None => problems.push(Problem::new(
                    format!("{path}.extras.frr.daemons"),
                    format!(
                        "{daemon:?} is not one of FRR's daemons: {}",
                        FRR_DAEMONS.join(", ")
                    ),
                )),
            }
        }
    }
    let mut file = String::from("# written by nslab for kind: frr\n");
    for daemon in &daemons {
        file.push_str(&format!("{daemon}=yes\n"));
    }
    file.push_str("vtysh_enable=yes\n");
    let at = context.lab_dir.join(name).join("daemons");
    bind_lab_file(m, lab_files, at, file, "/etc/frr/daemons");
}

/// Runs `software` in a node of an image that has it: its start before
/// the node's `exec` steps, the folders it writes the node's own.
fn use_host_software(
    m: &mut NodeModel,
    software: &images::HostSoftware,
    what: &str,
    path: &str,
    problems: &mut Vec<Problem>,
) {
    if !images::installed(software) {
        problems.push(Problem::new(
            path,
            format!(
                "{what} runs {}, which nslab takes from the host: {} is missing (install the Debian package {})",
                software.name, software.needs, software.package
            ),
        ));
        return;
    }
    let mut exec = vec![Text(software.start.to_owned())];
    exec.extend(m.exec.take().map(|e| e.0).unwrap_or_default());
    m.exec = Some(Seq(exec));
    own_folders(m, software.own_folders);
}

/// Makes each of `folders` a tmpfs of the node's own, on top of its
/// tmpfs list (nslab's default one when it gives none).
fn own_folders(m: &mut NodeModel, folders: &[&str]) {
    let mut tmpfs = m.tmpfs.take().map_or_else(default_tmpfs, |t| t.0);
    for folder in folders {
        if !tmpfs.iter().any(|t| t.0 == *folder) {
            tmpfs.push(Text((*folder).to_owned()));
        }
    }
    m.tmpfs = Some(Seq(tmpfs));
}

/// A file nslab writes in the node's folder of the lab directory, bound
/// over `target` in the node.
fn bind_lab_file(
    m: &mut NodeModel,
    lab_files: &mut Vec<(PathBuf, String)>,
    file: PathBuf,
    contents: String,
    target: &str,
) {
    let mut binds = m.binds.take().map(|b| b.0).unwrap_or_default();
    binds.push(Text(format!("{}:{target}", file.display())));
    m.binds = Some(Seq(binds));
    lab_files.push((file, contents));
}

/// Where a node's `cmd` writes its output, in the node.
const CMD_LOG: &str = "/run/cmd.log";

/// nslab's tmpfs of a node that names none.
fn default_tmpfs() -> Vec<Text> {
    (super::super::validate::DEFAULT_TMPFS.iter())
        .map(|p| Text((*p).to_owned()))
        .collect()
}

/// A user name as `useradd` takes one (so safe in a shell word unquoted).
fn is_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// `text` as one word of `sh`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Why nslab refuses a containerlab node key.
fn unsupported(key: &str) -> String {
    let why = match key {
        "entrypoint" => "a node of nslab runs the host's programs, not an image's entrypoint",
        "startup-config"
        | "enforce-startup-config"
        | "suppress-startup-config"
        | "type"
        | "license"
        | "components"
        | "extras"
        | "credentials" => "it configures a kind nslab does not have",
        "volumes" => "write a bind (`binds`) instead of a container volume",
        "position" => "it places a node in containerlab's graph",
        _ => "it configures the container runtime, and nslab runs no containers",
    };
    format!("containerlab's `{key}` is not supported: {why}")
}

/// `KEY=VALUE` lines; blank lines and `#` comments are skipped, and one
/// pair of quotes around a value is taken off. A regular file of at most
/// 1 MiB; a line that is not KEY=VALUE is named by its number alone (the
/// file may be anyone's).
fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    use std::io::Read;
    const MAX_ENV_FILE: u64 = 1 << 20;
    let bad = |why: String| format!("env file {}: {why}", path.display());
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let meta = file.metadata().map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let mut text = String::new();
    file.take(MAX_ENV_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| bad(e.to_string()))?;
    if text.len() as u64 > MAX_ENV_FILE {
        return Err(bad("larger than 1 MiB".into()));
    }
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(bad(format!("line {} is not KEY=VALUE", n + 1)));
        };
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|&q| value.strip_prefix(q).and_then(|v| v.strip_suffix(q)))
            .unwrap_or(value);
        pairs.push((key.trim().to_owned(), unquoted.to_owned()));
    }
    Ok(pairs)
}
