#!/usr/bin/env bash
# The GPTQ walk on the GPU path, for the GPU machine: tests/cli/gptq.sh with CALIB_DEVICE=cuda
# (report, same bytes twice, resume after SIGKILL, saved Hessians, fallbacks, MTP, refusals), then
# the full calibration (all 128 x 512 rows, recipes/w4a16.yaml) twice on CUDA: are the bytes the
# same (run-to-run determinism of the CUDA calibration), and how far are they from the CPU path's
# (their codes may differ where float sums differ in order: reported, not required equal)?
#   bench/gptq_cuda_checks.sh [CPU]     (CPU=1: also the full CPU calibration, ~80 s on 16 cores)
set -u
cd "$(dirname "$0")/.."
B=${BUILD:-build}; FX=fixtures/dsv4-tiny
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "## tests/cli/gptq.sh, CALIB_DEVICE=cuda"
CALIB_DEVICE=cuda BUILD="$B" bash tests/cli/gptq.sh > "$tmp/cli.log" 2>&1
echo "$(grep -c '^PASS' "$tmp/cli.log") PASS, $(grep -c '^FAIL' "$tmp/cli.log") FAIL"
grep -B8 '^FAIL' "$tmp/cli.log"
echo "## full calibration on CUDA, twice"
devs="cuda cuda"; [ "${1:-0}" = 1 ] && devs="cuda cuda cpu"
i=0
for d in $devs; do
  i=$((i + 1)); t0=$(date +%s.%N)
  "$B/bin/dsv4-quant" --recipe recipes/w4a16.yaml --calib-device "$d" --no-eval --quiet "$FX" "$tmp/r$i" >/dev/null 2>"$tmp/e$i" ||
    { echo "run $i ($d) failed: $(tail -2 "$tmp/e$i")"; continue; }
  echo "run $i ($d): $(python3 -c "print(round($(date +%s.%N) - $t0, 2))") s"
done
for j in 2 3; do
  [ -d "$tmp/r$j" ] || continue
  python3 - "$tmp/r1" "$tmp/r$j" "$j" <<'PY'
import json, os, struct, sys
def tensors(d):  # name -> bytes of every tensor of every shard
    out = {}
    for f in sorted(os.listdir(d)):
        if not f.endswith(".safetensors"): continue
        b = open(os.path.join(d, f), "rb").read()
        n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
        for k, v in h.items():
            if k == "__metadata__": continue
            s, e = v["data_offsets"]; out[k] = b[8 + n + s:8 + n + e]
    return out
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
diff = [k for k in a if a[k] != b.get(k)]
packed = [k for k in a if k.endswith("weight_packed")]
nb = sum(sum(x != y for x, y in zip(a[k], b[k])) for k in packed if a[k] != b[k])
tot = sum(len(a[k]) for k in packed)
print(f"run 1 vs run {sys.argv[3]}: {len(diff)} of {len(a)} tensors differ; weight_packed bytes differing "
      f"{nb} of {tot} ({100 * nb / max(tot, 1):.4f} %)")
PY
done
