#!/usr/bin/env bash
# Runs every benchmark binary in $BUILD/bench (BUILD=build by default), in name order; exits
# non-zero if any of them fails.
set -u
cd "$(dirname "$0")/.."
BUILD="${BUILD:-build}"
# bench_fixup: 3 shards of 256 MiB here (its own default, 1 GiB shards, is the real-sized run).
export DSV4_BENCH_FIXUP_MB="${DSV4_BENCH_FIXUP_MB:-256}"
status=0
for b in "$BUILD"/bench/*; do
  [ -f "$b" ] && [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b" || { echo "bench: $(basename "$b") failed" >&2; status=1; }
done
exit $status
