//! Steps inside nodes: the namespaces and their PID 1, what nslab's init
//! does as it starts (src/kernel/init: mounts, hostname, loopback, IPv6
//! DAD, sysctls), the sysctls that wait for interfaces, and `exec`.

use std::path::{Path, PathBuf};

use super::quote::{comment, delimiter, quote};
use super::{ExplainError, MAX_HIDDEN_SOURCES, Script};
use crate::kernel::userns::IdRange;
use crate::plan::Plan;
use crate::spec::{Bind, Node, Sysctl};

/// The shell variable holding each node's PID 1: `pid_NODE` with `-` as
/// `_`, made unique when two names meet (`a-b` and `a_b`).
pub(super) fn pid_vars(plan: &Plan) -> Vec<String> {
    let mut vars: Vec<String> = Vec::with_capacity(plan.nodes.len());
    let mut taken = std::collections::HashSet::new();
    for node in &plan.nodes {
        let base = format!(
            "pid_{}",
            node.name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        let mut var = base.clone();
        let mut n = 1;
        while !taken.insert(var.clone()) {
            n += 1;
            var = format!("{base}_{n}");
        }
        vars.push(var);
    }
    vars
}

pub(super) fn nodes(
    s: &mut Script,
    plan: &Plan,
    vars: &[String],
    range: Option<IdRange>,
) -> Result<(), ExplainError> {
    s.section("Nodes: namespaces, and what nslab's init does in them");
    s.raw(
        "# unshare makes the new namespaces and forks `sleep infinity` as PID 1 of\n\
# the new pid namespace: it holds them all. --mount-proc gives it a /proc of\n\
# that pid namespace; --propagation private keeps every mount it makes from\n\
# reaching the host. `nsenter -t PID -a` then runs commands in all of them.",
    );
    let interfaces = plan.interfaces_by_node();
    let mut blocks = 0..;
    for (id, node) in plan.nodes.iter().enumerate() {
        let name = &node.name;
        s.raw("");
        match range.filter(|_| node.userns) {
            None => s.step(
                &format!("{name}: six new namespaces, held by sleep as their PID 1"),
                &[
                    "unshare --net --uts --ipc --cgroup --mount --pid --fork --mount-proc --propagation private sleep infinity </dev/null >/dev/null 2>>\"$RUN/log\" &".into(),
                    format!("{}=$(pid1_of $! {})", vars[id], quote(name)),
                ],
            ),
            Some(range) => {
                let map = range.block(blocks.next().unwrap_or(0));
                let var = &vars[id];
                s.step(
                    &format!(
                        "{name}: a user namespace owning six new namespaces, held by sleep as their PID 1; its root is host uid {} and gid {} (nslab lends a block of {} ids of its range, the first free one)",
                        map.uid, map.gid, map.count
                    ),
                    &[
                        "unshare --user --net --uts --ipc --cgroup --mount --pid --fork --mount-proc --propagation private sleep infinity </dev/null >/dev/null 2>>\"$RUN/log\" &".into(),
                        format!("{var}=$(pid1_of $! {})", quote(name)),
                        format!(
                            "# the id maps: what `unshare --map-users={uid},0,{count} --map-groups={gid},0,{count}` asks newuidmap to write, which allows only ranges /etc/subuid gives the caller; root of the parent namespace (nslab, and this script) writes them itself",
                            uid = map.uid,
                            gid = map.gid,
                            count = map.count
                        ),
                        format!("echo '0 {} {}' > \"/proc/${var}/uid_map\"", map.uid, map.count),
                        format!("echo '0 {} {}' > \"/proc/${var}/gid_map\"", map.gid, map.count),
                    ],
                );
            }
        }
        let early = plan.sysctl_stages(id, &interfaces[id]).0;
        let body = init_body(node, &early)?;
        s.step(
            &format!("{name}: inside all of its namespaces, what nslab's init does as it starts"),
            &[in_node(&vars[id], &body)],
        );
    }
    Ok(())
}

/// `nsenter` into all of a node's namespaces running `body` with `sh -eu`.
fn in_node(var: &str, body: &str) -> String {
    let end = delimiter(body);
    format!("nsenter -t \"${var}\" -a sh -eu <<'{end}'\n{body}{end}")
}

/// The commands of a node's init, as lines of a shell script run inside it.
fn init_body(node: &Node, early: &[Sysctl]) -> Result<String, ExplainError> {
    let mut body = String::new();
    let mut line = |text: String| {
        body.push_str(&text);
        body.push('\n');
    };
    let hidden = hidden_sources(node);
    if hidden.len() > MAX_HIDDEN_SOURCES {
        return Err(ExplainError::TooManyHiddenSources {
            node: node.name.clone(),
            count: hidden.len(),
        });
    }
    // fd of each bind, when its source is hidden by the node's own mounts.
    let mut fds: Vec<Option<usize>> = vec![None; node.binds.len()];
    for (n, &i) in hidden.iter().enumerate() {
        fds[i] = Some(3 + n);
        line(format!(
            "# open bind source {} now: the node's own mounts below will hide its path",
            comment(&shown(&node.binds[i].source))
        ));
        line(format!(
            "exec {}< {}",
            3 + n,
            path_word(&node.binds[i].source)
        ));
    }
    line("# detach the copies of other namespaces' /run/netns names that a new mount namespace inherits: each would keep its namespace alive (one removed on the host meanwhile is out of reach: skipped, as nslab does)".into());
    line("umount -a -l -t nsfs 2>/dev/null || true".into());
    line("# a /sys of the node's net namespace, and a cgroup2 of its cgroup namespace when the host uses cgroup2".into());
    line("host_cgroup=$(stat -fc %T /sys/fs/cgroup)".into());
    if node.userns {
        line("# (in a user namespace the inherited /sys is locked in place: the new one goes on top)".into());
    } else {
        line("umount -l /sys".into());
    }
    line("mount -t sysfs -o nosuid,nodev,noexec sysfs /sys".into());
    line("if [ \"$host_cgroup\" = cgroup2fs ]; then mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup; fi".into());
    if !node.tmpfs.is_empty() {
        let paths: Vec<String> = node.tmpfs.iter().map(|p| shown(p)).collect();
        line(format!(
            "# a private tmpfs on {}, so daemons' files never collide between nodes",
            comment(&paths.join(", "))
        ));
    }
    for path in &node.tmpfs {
        let mode = if path == Path::new("/tmp") || path == Path::new("/var/tmp") {
            "1777"
        } else {
            "755"
        };
        line(format!(
            "mount -t tmpfs -o nosuid,nodev,mode={mode} tmpfs {}",
            path_word(path)
        ));
    }
    if node.userns && !node.binds.is_empty() {
        line("# nslab makes each bind idmapped through the node's user namespace (mount_setattr with MOUNT_ATTR_IDMAP, which mount(8) of util-linux 2.39 offers as X-mount.idmap), so host root's files show as the node root's; these plain binds show them as nobody's".into());
    }
    for (bind, fd) in node.binds.iter().zip(&fds) {
        bind_lines(bind, *fd, &node.tmpfs, &mut line);
    }
    line(format!(
        "# hostname {} in the node's uts namespace",
        comment(&node.hostname)
    ));
    if hostname_tool_accepts(&node.hostname) {
        line(format!("hostname {}", quote(&node.hostname)));
    } else {
        line("# (hostname(1) refuses this name; the kernel takes it as nslab gives it)".into());
        line(write_proc(&node.hostname, "/proc/sys/kernel/hostname"));
    }
    line("# loopback up in the node's net namespace".into());
    line("ip link set dev lo up".into());
    line("# no IPv6 duplicate address detection: planned addresses work at once (interfaces made later inherit default)".into());
    line("echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad".into());
    line("echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad".into());
    for sysctl in early {
        line(format!(
            "# sysctl {} = {}, in the node's namespaces only",
            comment(&sysctl.key),
            comment(&sysctl.value)
        ));
        line(write_sysctl(sysctl));
    }
    Ok(body)
}

/// What hostname(1) accepts: dot-separated labels of letters, digits and
/// `-`, each starting and ending with a letter or digit. nslab also allows
/// `_` (a node name is the default hostname).
fn hostname_tool_accepts(name: &str) -> bool {
    name.split('.').all(|label| {
        let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        ends(label.chars().next())
            && ends(label.chars().last())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// Indexes of the binds whose source path the node's own mounts hide by
/// the time it is bound: /proc and /sys (mounted afresh), its tmpfs, and an
/// earlier bind's target. nslab's init opens every source first; the script
/// opens these on a file descriptor before mounting anything.
fn hidden_sources(node: &Node) -> Vec<usize> {
    let fixed = [
        Path::new("/proc"),
        Path::new("/sys"),
        Path::new("/run/netns"),
    ];
    (0..node.binds.len())
        .filter(|&i| {
            let source = &node.binds[i].source;
            fixed.iter().any(|p| source.starts_with(p))
                || node.tmpfs.iter().any(|p| source.starts_with(p))
                || node.binds[..i]
                    .iter()
                    .any(|b| source.starts_with(&b.target))
        })
        .collect()
}

fn bind_lines(bind: &Bind, fd: Option<usize>, tmpfs: &[PathBuf], line: &mut impl FnMut(String)) {
    let target = path_word(&bind.target);
    let source = match fd {
        Some(fd) => format!("/proc/self/fd/{fd}"),
        None => path_word(&bind.source),
    };
    line(format!(
        "# bind the host's {} on {}{}",
        comment(&shown(&bind.source)),
        comment(&shown(&bind.target)),
        if bind.read_only { ", read-only" } else { "" }
    ));
    if let Some(root) = enclosing_tmpfs(&bind.target, tmpfs) {
        let parent = bind.target.parent().unwrap_or(root);
        line(format!(
            "# when {} is missing, make it on the node's own tmpfs {} (a folder for a folder)",
            comment(&shown(&bind.target)),
            comment(&shown(root))
        ));
        line(format!(
            "if [ ! -e {target} ]; then if [ -d {source} ]; then mkdir -p {target}; else mkdir -p {}; touch {target}; fi; fi",
            path_word(parent)
        ));
    }
    match fd {
        // -c: pass the fd's path to the kernel as it is, which finds the
        // opened file through it.
        Some(fd) => {
            line(format!("mount -c --rbind {source} {target}"));
            line(format!("exec {fd}<&-"));
        }
        None => line(format!("mount --rbind {source} {target}")),
    }
    if bind.read_only {
        line(format!("mount -o remount,bind,ro {target}"));
    }
}

/// The tmpfs of the node that `path` lies strictly inside, if any (nslab
/// makes a missing bind target only there).
fn enclosing_tmpfs<'a>(path: &Path, tmpfs: &'a [PathBuf]) -> Option<&'a PathBuf> {
    tmpfs
        .iter()
        .filter(|root| path.starts_with(root) && path != root.as_path())
        .max_by_key(|root| root.components().count())
}

fn write_sysctl(sysctl: &Sysctl) -> String {
    let path = path_word(&Path::new("/proc/sys").join(&sysctl.path));
    write_proc(&sysctl.value, &path)
}

/// `echo VALUE > PATH`; printf when echo could mangle the value (a
/// backslash, or a leading `-` that echo takes for an option).
fn write_proc(value: &str, path: &str) -> String {
    let word = quote(value);
    if value.contains('\\') || value.starts_with('-') {
        format!("printf '%s\\n' {word} > {path}")
    } else {
        format!("echo {word} > {path}")
    }
}

pub(super) fn late_sysctls(s: &mut Script, plan: &Plan, vars: &[String]) {
    let interfaces = plan.interfaces_by_node();
    let late: Vec<(usize, Vec<Sysctl>)> = (0..plan.nodes.len())
        .map(|id| (id, plan.sysctl_stages(id, &interfaces[id]).1))
        .filter(|(_, late)| !late.is_empty())
        .collect();
    if late.is_empty() {
        return;
    }
    s.section("Sysctls that name an interface, now that it exists");
    for (id, sysctls) in late {
        let body: String = sysctls
            .iter()
            .map(|sysctl| format!("{}\n", write_sysctl(sysctl)))
            .collect();
        let keys: Vec<String> = sysctls
            .iter()
            .map(|s| format!("{} = {}", s.key, s.value))
            .collect();
        s.step(
            &format!("{}: {}", plan.nodes[id].name, keys.join(", ")),
            &[in_node(&vars[id], &body)],
        );
    }
}

pub(super) fn exec(s: &mut Script, plan: &Plan, vars: &[String]) {
    if plan.nodes.iter().all(|n| n.exec.is_empty()) {
        return;
    }
    s.section("exec: each node's commands in all of its namespaces, nodes in start order (wait-for, startup-delay)");
    let all: Vec<usize> = (0..plan.nodes.len()).collect();
    let order = crate::plan::exec_order(plan, &all);
    if order.iter().any(|(_, at)| !at.is_zero()) {
        s.step(
            "startup-delay counts from here",
            &["exec_start=$(date +%s)".to_owned()],
        );
    }
    for (id, at) in order {
        let (node, var) = (&plan.nodes[id], &vars[id]);
        if !at.is_zero() {
            let secs = at.as_secs();
            s.step(
                &format!("{}: not before {secs} s into this phase (startup-delay)", node.name),
                &[format!(
                    "left=$((exec_start + {secs} - $(date +%s))); if [ \"$left\" -gt 0 ]; then sleep \"$left\"; fi"
                )],
            );
        }
        let env: String = node
            .env
            .iter()
            .map(|(k, v)| format!(" {}", quote(&format!("{k}={v}"))))
            .collect();
        let env = if env.is_empty() {
            String::new()
        } else {
            format!(" env{env}")
        };
        for command in &node.exec {
            s.step(
                &format!("{}: {command}", node.name),
                &[format!(
                    "nsenter -t \"${var}\" -a{env} /bin/sh -c {} </dev/null",
                    quote(command)
                )],
            );
        }
    }
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn path_word(path: &Path) -> String {
    quote(&shown(path)).into_owned()
}
