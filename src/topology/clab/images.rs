//! Images whose software the host has: a node of such an image runs the
//! host's own instead, started the way the image starts it.

use std::path::Path;

/// Host software that stands in for an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HostSoftware {
    /// What the note calls it.
    pub name: &'static str,
    /// The program the start needs, to be on the host.
    pub needs: &'static str,
    /// The Debian package that has it.
    pub package: &'static str,
    /// Run in the node before its `exec` steps, as the image's entrypoint
    /// runs before containerlab's.
    pub start: &'static str,
    /// Folders the software writes that must be the node's own (its
    /// tmpfs, on top of `/tmp` and `/run`).
    pub own_folders: &'static [&'static str],
}

/// FRR's images (`quay.io/frrouting/frr`, `frrouting/frr`, any tag): their
/// entrypoint, `docker-start`, runs `frrinit.sh start`, which starts
/// `watchfrr` with the daemons `/etc/frr/daemons` names and applies
/// `/etc/frr/frr.conf`. The node runs as the host's root: its `/etc/frr`
/// (where FRR may write a missing config or `write memory`), `/run`
/// (sockets, pid files) and `/var/tmp` (crash logs) must be its own, so
/// that FRR never touches the host's; the binds into `/etc/frr` land on
/// the node's tmpfs there.
pub(super) const FRR: HostSoftware = HostSoftware {
    name: "FRR",
    needs: "/usr/lib/frr/frrinit.sh",
    package: "frr",
    start: "/usr/lib/frr/frrinit.sh start",
    own_folders: &["/run", "/var/tmp", "/etc/frr"],
};

/// The host software that stands in for `image`, if any.
pub(super) fn host_software(image: &str) -> Option<HostSoftware> {
    // `registry/path/name:tag` or `...@digest`: the repository's path.
    let repository = image.split(['@']).next().unwrap_or(image);
    let repository = match repository.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => repository,
    };
    let path = repository
        .strip_prefix("docker.io/")
        .or_else(|| repository.strip_prefix("quay.io/"))
        .unwrap_or(repository);
    matches!(path, "frrouting/frr" | "frrouting/frr-debian").then_some(FRR)
}

/// Whether the host has what `software` needs.
pub(super) fn installed(software: &HostSoftware) -> bool {
    Path::new(software.needs).exists()
}
