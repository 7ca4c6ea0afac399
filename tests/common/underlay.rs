//! Simulated hosts for the multi-host tests: an "underlay" lab whose nodes
//! stand in for separate machines.
//!
//! ```text
//!            ctl 10.77.0.10/24 fd77::10/64   (the controller)
//!             |
//!   ul (bridge) ---- h1 10.77.0.11  fd77::11
//!             |----- h2 10.77.0.12  fd77::12
//!             `----- hN ...
//! ```
//!
//! A node is a full set of namespaces held by its own PID 1, so it can
//! play a host: each `hI` has its own network stack and address on the
//! underlay bridge; its own `/run` and `/tmp` (tmpfs), so an nslab run in
//! it keeps its own `/run/nslab` and `/run/netns`; its own `/root` (an
//! empty tmpfs: the bash of an ssh session reads no `~/.bashrc` of the
//! machine, and nothing run there writes the machine's root home); its
//! own pid namespace; and an sshd of its own, listening on its addresses
//! only. `ctl` reaches them with ssh over the bridge, with a key and a
//! client configuration made for this underlay; the machine's
//! `/root/.ssh` and `/etc/ssh` are neither read nor written. What the
//! nodes do not have of their own is the machine: they share its kernel,
//! CPUs and every file outside their tmpfs (so the nslab binary under test
//! runs in all of them, at the same path).
//!
//! Everything the underlay writes on the machine is in one folder,
//! `/tmp/nslab-underlay-LAB/` (keys, sshd and ssh configurations, and what
//! a test writes with [`Underlay::write`]), bound read-only into every node
//! at the same path. Dropping the [`Underlay`], pass or fail, takes down the
//! labs nslab left inside its nodes, then the underlay lab, then removes
//! the folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{nslab, skipped, unique_lab};

/// The program the harness runs in each host node.
const SSHD: &str = "/usr/sbin/sshd";

/// How long [`Underlay::start`] waits for each host's sshd to answer.
const SSHD_READY: Duration = Duration::from_secs(5);

/// At most this many hosts (their addresses are 10.77.0.11 upwards).
const MOST_HOSTS: usize = 200;

/// The path of the nslab binary under test, the one every node runs.
pub(crate) const NSLAB: &str = env!("CARGO_BIN_EXE_nslab");

/// A running underlay: the controller `ctl` and hosts `h1`..`hN` on the
/// bridge `ul`, each host running sshd. Brought down when dropped.
#[derive(Debug)]
pub(crate) struct Underlay {
    lab: String,
    dir: PathBuf,
    ssh_config: PathBuf,
    /// The hosts' IPv4 and IPv6 addresses (without prefix length), h1 first.
    addresses: Vec<(String, String)>,
}

impl Underlay {
    /// Brings up an underlay of `hosts` simulated hosts and waits until
    /// every host's sshd answers ssh from `ctl`. `None`, after a line
    /// `SKIPPED TEST: WHY` (on stderr and in the skip log, as every test
    /// says it is skipped), when this machine cannot: not root, or
    /// `/usr/sbin/sshd`, `ssh` or `ssh-keygen` missing. Panics when the
    /// underlay does not come up (what it made is removed as it unwinds).
    pub(crate) fn start(hosts: usize) -> Option<Underlay> {
        assert!(
            (1..=MOST_HOSTS).contains(&hosts),
            "an underlay has 1 to {MOST_HOSTS} hosts, not {hosts}"
        );
        let test = std::thread::current()
            .name()
            .unwrap_or("underlay")
            .to_string();
        if let Some(why) = missing() {
            skipped(format_args!("{test}: {why}"));
            return None;
        }
        let started = Instant::now();
        let lab = unique_lab("ul");
        let dir = Path::new("/tmp").join(format!("nslab-underlay-{lab}"));
        // A folder of an earlier run with the same name is not ours to keep.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        // From here on, a panic drops the underlay, which removes it all.
        let underlay = Underlay {
            ssh_config: dir.join("ssh_config"),
            addresses: (1..=hosts)
                .map(|i| (format!("10.77.0.{}", 10 + i), format!("fd77::{}", 10 + i)))
                .collect(),
            lab,
            dir,
        };
        underlay.write_keys_and_configs();
        let file = underlay.write("underlay.yml", &underlay.topology());
        let out = nslab().arg("up").arg(&file).output().expect("run nslab up");
        assert!(
            out.status.success(),
            "the underlay did not come up:\n{}",
            text(&out)
        );
        for i in 1..=hosts {
            if let Err(why) = underlay.wait_for_sshd(i) {
                skipped(format_args!("{test}: {why}"));
                return None;
            }
        }
        eprintln!(
            "{test}: underlay {} of {hosts} host(s) up in {:.2} s",
            underlay.lab,
            started.elapsed().as_secs_f64()
        );
        Some(underlay)
    }

    /// The underlay lab's name (its nodes are `ul`, `ctl`, `h1`..`hN`).
    pub(crate) fn lab(&self) -> &str {
        &self.lab
    }

    /// How many simulated hosts there are.
    pub(crate) fn hosts(&self) -> usize {
        self.addresses.len()
    }

    /// The underlay's own folder on the machine, seen at the same path
    /// (read-only) in every node.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Host `i`'s (1-based: `h1` is 1) IPv4 address, `10.77.0.1I`.
    pub(crate) fn host_address(&self, i: usize) -> &str {
        &self.host(i).0
    }

    /// Host `i`'s IPv6 address, `fd77::1I`.
    pub(crate) fn host_address6(&self, i: usize) -> &str {
        &self.host(i).1
    }

    /// The controller's IPv4 address.
    pub(crate) fn ctl_address(&self) -> &str {
        "10.77.0.10"
    }

    /// The ssh command the controller uses, `ssh -F CONFIG`: the value of
    /// `NSLAB_SSH` (split on white space by the multi-host code).
    pub(crate) fn ssh_command(&self) -> String {
        format!("ssh -F {}", self.ssh_config.display())
    }

    /// Runs the nslab under test in `ctl` with `NSLAB_SSH` set:
    /// `nslab exec LAB/ctl -- env NSLAB_SSH='ssh -F CONFIG' NSLAB ARGS...`.
    pub(crate) fn ctl(&self, args: &[&str]) -> Output {
        let ssh = format!("NSLAB_SSH={}", self.ssh_command());
        let mut cmd = vec!["env", ssh.as_str(), NSLAB];
        cmd.extend_from_slice(args);
        self.in_node("ctl", &cmd)
    }

    /// Runs `cmd` (a program and its arguments) in `ctl`.
    pub(crate) fn in_ctl(&self, cmd: &[&str]) -> Output {
        self.in_node("ctl", cmd)
    }

    /// Runs `cmd` in host node `hI` (1-based), directly (not over ssh).
    pub(crate) fn in_host(&self, i: usize, cmd: &[&str]) -> Output {
        self.host(i);
        self.in_node(&format!("h{i}"), cmd)
    }

    /// Runs `cmd` on host `i` the way the controller reaches it: over ssh
    /// from `ctl` (`ssh -F CONFIG root@10.77.0.1I 'cmd'`, each argument
    /// quoted for the remote shell).
    pub(crate) fn ssh(&self, i: usize, cmd: &[&str]) -> Output {
        let target = format!("root@{}", self.host_address(i));
        let remote = cmd.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
        let config = self.ssh_config.to_string_lossy();
        self.in_ctl(&["ssh", "-F", &config, &target, "--", &remote])
    }

    /// Writes `contents` to `relative` in the underlay's folder (seen at
    /// the same path in every node) and returns its path.
    pub(crate) fn write(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// The names of the labs nslab keeps in node `node`'s own /run/nslab.
    pub(crate) fn labs_in(&self, node: &str) -> Vec<String> {
        let out = self.in_node(node, &["ls", "-A", "/run/nslab"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|n| !n.starts_with('.') && !n.ends_with(".lock"))
            .map(String::from)
            .collect()
    }

    fn host(&self, i: usize) -> &(String, String) {
        assert!(
            (1..=self.hosts()).contains(&i),
            "host {i} is not one of h1..h{}",
            self.hosts()
        );
        &self.addresses[i - 1]
    }

    fn in_node(&self, node: &str, cmd: &[&str]) -> Output {
        let target = format!("{}/{node}", self.lab);
        nslab()
            .args(["exec", &target, "--"])
            .args(cmd)
            .output()
            .expect("run nslab exec")
    }

    /// The controller's key pair, each host's key, its authorized_keys,
    /// the sshd configurations and the controller's ssh configuration.
    fn write_keys_and_configs(&self) {
        let key = |name: &str, comment: &str| -> PathBuf {
            let path = self.dir.join(name);
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                .arg(&path)
                .output()
                .expect("run ssh-keygen");
            assert!(out.status.success(), "ssh-keygen {name}:\n{}", text(&out));
            path
        };
        let ctl_key = key("ctl_key", &format!("nslab-underlay {} ctl", self.lab));
        let public = ctl_key.with_extension("pub");
        let public = std::fs::read_to_string(&public)
            .unwrap_or_else(|e| panic!("read {}: {e}", public.display()));
        let authorized = self.write("authorized_keys", &public);
        for i in 1..=self.hosts() {
            let host_key = key(
                &format!("h{i}_host_key"),
                &format!("nslab-underlay {} h{i}", self.lab),
            );
            let (v4, v6) = self.host(i);
            // sshd logs with -E to the node's own /run, not to syslog; no
            // tty, so no login records (utmp, wtmp, lastlog) are written.
            self.write(
                &format!("sshd_h{i}.conf"),
                &format!(
                    "# sshd of simulated host h{i} of underlay {lab}\n\
                     ListenAddress {v4}\n\
                     ListenAddress [{v6}]\n\
                     HostKey {host_key}\n\
                     AuthorizedKeysFile {authorized}\n\
                     PermitRootLogin prohibit-password\n\
                     PasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\n\
                     UsePAM no\n\
                     StrictModes no\n\
                     PidFile /run/sshd.pid\n\
                     PermitTTY no\n\
                     PrintMotd no\n\
                     PrintLastLog no\n\
                     X11Forwarding no\n\
                     UseDNS no\n\
                     MaxStartups 100\n\
                     MaxSessions 100\n\
                     AcceptEnv NSLAB_*\n",
                    lab = self.lab,
                    host_key = host_key.display(),
                    authorized = authorized.display(),
                ),
            );
        }
        self.write(
            "ssh_config",
            &format!(
                "# the controller's ssh, underlay {lab}\n\
                 Host *\n\
                 \x20 User root\n\
                 \x20 IdentityFile {key}\n\
                 \x20 IdentitiesOnly yes\n\
                 \x20 IdentityAgent none\n\
                 \x20 UserKnownHostsFile /dev/null\n\
                 \x20 GlobalKnownHostsFile /dev/null\n\
                 \x20 StrictHostKeyChecking no\n\
                 \x20 UpdateHostKeys no\n\
                 \x20 LogLevel ERROR\n\
                 \x20 BatchMode yes\n\
                 \x20 ConnectTimeout 5\n",
                lab = self.lab,
                key = ctl_key.display(),
            ),
        );
    }

    /// The underlay lab's topology.
    fn topology(&self) -> String {
        let dir = self.dir.display();
        let mut nodes = format!(
            "    ul:\n      kind: bridge\n\
             \x20   ctl:\n\
             \x20     tmpfs: [/run, /tmp, /root]\n\
             \x20     binds: [\"{dir}:{dir}:ro\"]\n\
             \x20     env: {{NSLAB_SSH: \"{ssh}\"}}\n",
            ssh = self.ssh_command()
        );
        let mut links = String::from(
            "    - endpoints: [\"ctl:eth0\", \"ul:p0\"]\n\
             \x20     ipv4: [10.77.0.10/24, null]\n\
             \x20     ipv6: [\"fd77::10/64\", null]\n",
        );
        for i in 1..=self.hosts() {
            let (v4, v6) = self.host(i);
            nodes.push_str(&format!(
                "    h{i}:\n\
                 \x20     tmpfs: [/run, /tmp, /root]\n\
                 \x20     binds: [\"{dir}:{dir}:ro\"]\n\
                 \x20     exec:\n\
                 \x20       - \"mkdir -p /run/sshd\"\n\
                 \x20       - \"{SSHD} -f {dir}/sshd_h{i}.conf -E /run/sshd.log\"\n"
            ));
            links.push_str(&format!(
                "    - endpoints: [\"h{i}:eth0\", \"ul:p{i}\"]\n\
                 \x20     ipv4: [{v4}/24, null]\n\
                 \x20     ipv6: [\"{v6}/64\", null]\n"
            ));
        }
        format!(
            "# The underlay of tests/common/underlay.rs: a controller and {n} simulated host(s).\n\
             name: {lab}\n\
             topology:\n\
             \x20 nodes:\n{nodes}\
             \x20 links:\n{links}",
            n = self.hosts(),
            lab = self.lab,
        )
    }

    /// Polls `ssh HOST true` from `ctl` until it succeeds, for up to
    /// [`SSHD_READY`]; panics with the sshd's log if it never does, but
    /// `Err` (why the test cannot run here) when sshd refuses root's
    /// locked account.
    fn wait_for_sshd(&self, i: usize) -> Result<(), String> {
        let deadline = Instant::now() + SSHD_READY;
        loop {
            let out = self.ssh(i, &["true"]);
            if out.status.success() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let log = self.in_host(i, &["cat", "/run/sshd.log"]);
                let log = String::from_utf8_lossy(&log.stdout).into_owned();
                if log.contains("account is locked") {
                    return Err(format!(
                        "sshd refuses root's locked account (its password field \
                         starts with '!', which sshd checks with UsePAM no):\n{log}"
                    ));
                }
                panic!(
                    "h{i}'s sshd did not answer ssh from ctl within {SSHD_READY:?}; \
                     the last try:\n{}\nh{i}:/run/sshd.log:\n{log}",
                    text(&out)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Underlay {
    fn drop(&mut self) {
        // Labs that a test's nslab left inside a node live in that node's
        // /run: take them down before the node goes (their node inits die
        // with the node's pid namespace anyway, their cgroups would not).
        let nodes = std::iter::once("ctl".to_string())
            .chain((1..=self.hosts()).map(|i| format!("h{i}")))
            .collect::<Vec<_>>();
        for node in &nodes {
            for lab in self.labs_in(node) {
                let out = self.in_node(node, &[NSLAB, "down", "--quiet", "--lab", &lab]);
                if !out.status.success() {
                    eprintln!(
                        "underlay {}: down of lab {lab} in {node} failed:\n{}",
                        self.lab,
                        text(&out)
                    );
                }
            }
        }
        match nslab().args(["down", "--lab", &self.lab]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("underlay {}: down failed:\n{}", self.lab, text(&out)),
            Err(e) => eprintln!("underlay {}: cannot run nslab down: {e}", self.lab),
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("underlay {}: remove {}: {e}", self.lab, self.dir.display());
        }
    }
}

/// What this machine lacks to run an underlay, if anything.
fn missing() -> Option<String> {
    if let Err(why) = nslab::test_support::check_privileges() {
        return Some(why.to_string());
    }
    if !is_executable(Path::new(SSHD)) {
        return Some(format!("{SSHD} is missing (Debian package openssh-server)"));
    }
    for program in ["ssh", "ssh-keygen"] {
        if on_path(program).is_none() {
            return Some(format!(
                "{program} is not on the PATH (Debian package openssh-client)"
            ));
        }
    }
    None
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

/// `arg` quoted for a POSIX shell (the remote end of ssh).
pub(crate) fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@,+%".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// An output's exit status, stdout and stderr, for failure messages.
pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
