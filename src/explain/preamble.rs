//! The script's head (usage, `$LAB`, its record, `down`, the helper that
//! finds a node's PID 1) and its tail.

use super::quote::{comment, quote};
use super::{RECORD_ROOT, Script};
use crate::plan::Plan;

pub(super) fn header(s: &mut Script, plan: &Plan) {
    // A validated lab name is a plain word; quoted all the same.
    let lab = comment(&plan.lab);
    let default = quote(&plan.lab);
    let from = plan
        .source
        .as_ref()
        .map(|p| format!(" for {}", comment(&p.display().to_string())))
        .unwrap_or_default();
    s.raw(&format!(
        r#"#!/bin/sh
# Lab {lab} by hand: the kernel steps `nslab up` takes{from},
# as plain commands (written by `nslab explain`). As root, with util-linux and iproute2:
#   sh {lab}.sh               build the lab
#   LAB=other sh {lab}.sh     build it under another name (netns names other-NODE)
#   sh {lab}.sh down          remove it (with the same LAB)
#
# A node is six new namespaces (net, uts, ipc, cgroup, mount, pid) held by a
# PID 1: nslab's small init, here `sleep infinity`. Links are veth pairs; a
# `kind: bridge` node holds one Linux bridge.
set -eu

LAB=${{LAB:-{default}}}
case $LAB in
  ''|[!a-z0-9]*|*[!a-z0-9_-]*) echo "$0: bad lab name: $LAB" >&2; exit 2 ;;
esac
# This script's record of the lab (node PID 1s, netns names), for `down`.
RUN={RECORD_ROOT}/$LAB
"#
    ));
    s.raw(&HELPERS.replace("{RECORD_ROOT}", RECORD_ROOT));
}

/// `down`, the start of `up`, and the helper that finds a node's PID 1.
const HELPERS: &str = r#"
# Removes the lab: kills each node's PID 1 (the kernel then ends every process
# of its pid namespace and frees its namespaces once unused) and removes the
# /run/netns names (the net namespaces go, and their veths and bridges with
# them). Touches only what $RUN records.
down() {
  if [ ! -d "$RUN" ]; then echo "lab $LAB: nothing to remove"; return 0; fi
  for file in "$RUN"/*.pid; do
    [ -e "$file" ] || continue
    pid=$(cat "$file")
    # Still ours: a sleep that is PID 1 of its own pid namespace.
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sleep ] &&
      grep -q '^NSpid:.*[[:space:]]1$' "/proc/$pid/status" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [ -e "$RUN/netns" ]; then
    while read -r name; do ip netns delete "$name" || true; done < "$RUN/netns"
  fi
  rm -rf "$RUN"
  rmdir {RECORD_ROOT} 2>/dev/null || true
  echo "lab $LAB: removed"
}

if [ "${1:-}" = down ]; then down; exit 0; fi
if [ -e "$RUN" ]; then echo "$0: lab $LAB is up already; remove it with: $0 down" >&2; exit 1; fi
mkdir -p "$RUN"
# On any failure, remove what was built so far (as nslab rolls back).
trap 'echo "$0: failed; removing lab $LAB" >&2; down >&2' EXIT

# Prints the pid of the PID 1 that unshare (pid $1) forked into the new pid
# namespace, once it runs sleep, and records it as node $2's.
pid1_of() {
  tries=0
  while :; do
    pid=$(cat "/proc/$1/task/$1/children" 2>/dev/null || true)
    pid=${pid%% *}
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sleep ]; then
      echo "$pid" > "$RUN/$2.pid"
      echo "$pid"
      return 0
    fi
    if grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null || [ ! -e "/proc/$1" ] ||
      [ "$tries" -ge 1000 ]; then
      echo "$0: node $2: unshare failed: $(cat "$RUN/log" 2>/dev/null)" >&2
      return 1
    fi
    tries=$((tries + 1))
    sleep 0.01
  done
}
"#;

pub(super) fn footer(s: &mut Script, plan: &Plan) {
    s.raw(&format!(
        "\n### Done\n\
         trap - EXIT\n\
         echo \"lab $LAB is up: {} node(s), {} link(s); remove it with: $0 down\"\n",
        plan.nodes.len(),
        plan.links.len()
    ));
}
