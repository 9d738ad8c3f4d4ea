#!/usr/bin/env bash
# Runs every test: the unit runner, then each tests/cli/*.sh (which print PASS/FAIL lines and use
# the tools in $BUILD/bin). Prints each result and a final "N passed, N failed" line; exits 1 on
# any failure. Usage: tests/run.sh [filter]  (BUILD=build by default).
set -u
cd "$(dirname "$0")/.."
export BUILD="${BUILD:-build}"
log=$(mktemp); trap 'rm -f "$log"' EXIT
status=0
"$BUILD/tests/unit" "$@" 2>&1 | tee -a "$log" | grep -v '^unit:'; st=${PIPESTATUS[0]}
[ "$st" -le 1 ] || { echo "FAIL unit-runner (crashed, status $st)" | tee -a "$log"; }
for t in tests/cli/*.sh; do
  [ -e "$t" ] || continue
  if [ $# -gt 0 ] && ! [[ "$t" == *"$1"* ]]; then continue; fi
  out=$(bash "$t" 2>&1); rc=$?
  printf '%s\n' "$out" | tee -a "$log"
  if [ $rc -ne 0 ] && ! printf '%s\n' "$out" | grep -q '^FAIL'; then
    echo "FAIL $(basename "$t" .sh) (exit $rc)" | tee -a "$log"
  fi
done
passed=$(grep -c '^PASS ' "$log"); failed=$(grep -c '^FAIL ' "$log")
[ "$failed" -eq 0 ] || status=1
[ "$passed" -gt 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
