//! The transport to the hosts: the user's own OpenSSH client, with their
//! keys and `~/.ssh/config`. nslab adds only `BatchMode` (a prompt would
//! hang a parallel run) and runs the remote nslab with `NSLAB_HERE=1`, so
//! that a host that is also the controller acts on its own part and never
//! forwards again.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::spec::Machine;

/// The environment variable naming the ssh command (split on white
/// space), e.g. `ssh -F ~/lab/ssh_config`; `ssh` when unset.
pub const SSH_ENV: &str = "NSLAB_SSH";

/// Set in the remote nslab's environment: act on this host's lab only.
pub const HERE_ENV: &str = "NSLAB_HERE";

/// A command for `machine`: `ssh [OPTIONS] DEST env NSLAB_HERE=1 NSLAB ARGS...`.
/// `tty`: give the remote command a terminal (an interactive `exec`).
pub(crate) fn command(machine: &Machine, args: &[String], tty: bool) -> std::io::Result<Command> {
    let Some(destination) = &machine.ssh else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "its `hosts:` entry has no `ssh:`",
        ));
    };
    let ssh = std::env::var(SSH_ENV).unwrap_or_default();
    let mut words = ssh.split_whitespace();
    let mut command = Command::new(words.next().unwrap_or("ssh"));
    command.args(words);
    // No prompt (a parallel run would hang on it); a host that drops
    // packets is given up after 10 s, not the TCP default of minutes.
    command.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]);
    command.arg(if tty { "-t" } else { "-T" });
    command.arg("--").arg(destination);
    // One string for the remote shell: every word quoted.
    let mut remote = format!("env {HERE_ENV}=1 {}", quote(&machine.nslab));
    for arg in args {
        remote.push(' ');
        remote.push_str(&quote(arg));
    }
    command.arg(remote);
    Ok(command)
}

/// Runs `nslab ARGS` on `machine`, `input` on its standard input; the
/// output is collected. An error is ssh that could not start at all.
pub(crate) fn run(
    machine: &Machine,
    args: &[String],
    input: Option<&[u8]>,
) -> std::io::Result<Output> {
    let mut command = command(machine, args, false)?;
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // A remote that exits before reading it all is reported by its
        // exit code, not as a broken pipe here.
        let _ = stdin.write_all(input);
    }
    child.wait_with_output()
}

/// What went wrong on a host, from its output: the last lines of its
/// standard error (ssh's own message, or nslab's), else its exit status.
pub(crate) fn failure(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(3)..].join("; ");
    match (tail.is_empty(), output.status.code()) {
        (false, _) => tail,
        (true, Some(code)) => format!("exit code {code}"),
        (true, None) => "killed by a signal".into(),
    }
}

/// `word` quoted for a POSIX shell: as is when it is made of safe
/// characters, else in single quotes.
pub(crate) fn quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_reach_the_remote_shell_as_they_were() {
        assert_eq!(quote("r1/eth0"), "r1/eth0");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's $HOME"), r"'it'\''s $HOME'");
        let machine = Machine {
            ssh: Some("root@192.0.2.1".into()),
            underlay: "192.0.2.1".parse().expect("ip"),
            nslab: "/opt/nslab dir/nslab".into(),
        };
        let command = command(
            &machine,
            &["exec".into(), "l/a".into(), "--".into(), "echo $x".into()],
            false,
        )
        .expect("a command");
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args.last().map(String::as_str),
            Some("env NSLAB_HERE=1 '/opt/nslab dir/nslab' exec l/a -- 'echo $x'")
        );
        assert!(args.windows(2).any(|w| w == ["--", "root@192.0.2.1"]));
    }
}
