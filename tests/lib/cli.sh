# Shared helpers of the tool tests in tests/cli/ (sourced; not a test itself). The sourcing script
# sets PREFIX (the PASS/FAIL name prefix, e.g. "quant_") and counts failures in `fails`.
fails=0
check() { # check NAME EXPECTED_RC PATTERN... -- CMD...: runs CMD; rc must match and output hold each pattern
  local name=$1 want=$2; shift 2
  local pats=()
  while [ "$1" != "--" ]; do pats+=("$1"); shift; done; shift
  local out rc ok=1
  out=$("$@" 2>&1); rc=$?
  [ "$rc" -eq "$want" ] || { ok=0; echo "  $name: exit $rc, expected $want"; }
  for p in "${pats[@]}"; do grep -qE -- "$p" <<<"$out" || { ok=0; echo "  $name: output lacks /$p/"; }; done
  if [ $ok -eq 1 ]; then echo "PASS $PREFIX$name"; else echo "$out" | tail -20 | sed 's/^/    | /'; echo "FAIL $PREFIX$name"; fails=$((fails+1)); fi
}
pass_if() { # pass_if NAME COND...: PASS when the command succeeds
  local name=$1; shift
  if "$@"; then echo "PASS $PREFIX$name"; else echo "FAIL $PREFIX$name"; fails=$((fails+1)); fi
}
absent() { # absent NAME PATH: nothing may be left at PATH (nor a temporary sibling)
  if [ -e "$2" ] || ls -d "$2".tmp-* >/dev/null 2>&1; then echo "FAIL $PREFIX$1 (left $2 behind)"; fails=$((fails+1)); else echo "PASS $PREFIX$1"; fi
}
# same_tensors A B [no-manifest]: every safetensors shard, the index and the manifest byte-identical
# (no-manifest: not the manifest, whose calibration section differs between RTN and GPTQ runs)
same_tensors() {
  local f ok=0 files=("$1"/*.safetensors "$1"/model.safetensors.index.json)
  [ "${3:-}" = no-manifest ] || files+=("$1"/dsv4-manifest.json)
  for f in "${files[@]}"; do
    cmp -s "$f" "$2/$(basename "$f")" || { echo "  differs: $(basename "$f")"; ok=1; }
  done
  return $ok
}
