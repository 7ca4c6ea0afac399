#!/bin/sh
# Builds and runs the topology fuzzer for SECONDS (default 600).
#
#   fuzz/run.sh [SECONDS] [extra libFuzzer flags...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Only a stable toolchain is
# assumed: RUSTC_BOOTSTRAP=1 lets it take the nightly-only flags cargo fuzz
# passes, and `-s none` skips the sanitizer (AddressSanitizer needs a nightly
# standard library; the target is safe Rust, so libFuzzer's own checks for
# crashes, panics, timeouts and memory use are what matters).
#
# The corpus is seeded afresh from topologies/*.yml and
# tests/bad-topologies/* on every run (fuzz/corpus/ is not committed);
# findings land in fuzz/artifacts/topology/.
set -eu

seconds=${1:-600}
[ $# -gt 0 ] && shift

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
corpus="$here/corpus/topology"
mkdir -p "$corpus" "$here/artifacts/topology"

for f in "$root"/topologies/*.yml "$root"/tests/bad-topologies/*; do
    [ -f "$f" ] || continue
    case "$f" in *.expect) continue ;; esac
    # libFuzzer reads only the first -max_len bytes of a seed anyway.
    cp "$f" "$corpus/seed-$(basename "$f")"
done

cd "$here"
RUSTC_BOOTSTRAP=1 exec cargo fuzz run -s none topology "$corpus" -- \
    -max_total_time="$seconds" \
    -max_len=65536 \
    -timeout=5 \
    -rss_limit_mb=2048 \
    -malloc_limit_mb=2048 \
    -print_final_stats=1 \
    "$@"
