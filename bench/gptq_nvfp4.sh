#!/usr/bin/env bash
# NVFP4 GPTQ against NVFP4 round-to-nearest where the routed experts are not NVFP4-exact (issue 6:
# "same for NVFP4 where the source experts are not already exactly representable"). Every release
# FP4 expert converts to NVFP4 exactly, so the measurement needs other sources, made by
# bench/perturb_experts.c from fixtures/dsv4-tiny (attention and everything else stay the release's
# bytes, so source and artifact differ in the routed experts only):
#   perturbed  SYNTHETIC: experts = release values + uniform noise of rms FRAC x the row's rms, BF16
#              (off every FP4 grid, as a model trained in BF16 would be; FRAC 0.1 moves the source
#              PPL by ~0.2 %)
#   bf16-fp4   the release's expert values as BF16 (what a BF16 checkpoint of the release holds):
#              recognized as FP4 values (quant/pack.h dsv4_mxfp4_from_bf16) and converted exactly
#   release    the release itself: every expert keeps the exact MXFP4 -> NVFP4 conversion
# (for the last two, nvfp4-gptq.yaml runs no calibration pass: its rows show the exact conversion
# and the time it takes; compressed-tensors' RTN would lose KL ~0.018 on bf16-fp4 at 8 x 256 rows)
# Each configuration: dsv4-quant (calibration CALIB_ROWS x CALIB_LEN, conversion, its own
# verification on EVAL_ROWS x EVAL_LEN eval rows); one line with the source's PPL, the artifact's
# PPL, its increase, mean KL, same top-1, MTP acceptance (artifact / source, teacher-forced), how
# the experts were made (modules gptq / exact / rtn) and the wall time of the whole dsv4-quant run.
# The GPTQ rows are recipes/nvfp4-gptq.yaml with the experts group's actorder / observer changed;
# rtn is recipes/nvfp4.yaml, rtn_mse the same with `observer: mse` (round to nearest under the MSE
# observer's scales: GPTQ's gain over it is the part the observer alone does not give).
#
# Usage: bench/gptq_nvfp4.sh [CALIB_DEVICE] [EVAL_DEVICE]      (defaults: auto auto)
# Sizes (environment): CALIB_ROWS 128, CALIB_LEN 512, EVAL_ROWS 64, EVAL_LEN 512 (the fixture's
# full calibration and eval sets); ROWS=N / LEN=L set both (ROWS=8 LEN=128: a quick CPU check);
# FRAC (0.1) the perturbation; THREADS (CPU threads, default all); ONLY: a regex of row names.
set -eu
cd "$(dirname "$0")/.."
B="${BUILD:-build}"
Q="$B/bin/dsv4-quant"
PERTURB="$B/bench/perturb_experts"
CD=${1:-auto}; ED=${2:-auto}
CR=${CALIB_ROWS:-${ROWS:-128}}; CL=${CALIB_LEN:-${LEN:-512}}
ER=${EVAL_ROWS:-${ROWS:-64}}; EL=${EVAL_LEN:-${LEN:-512}}
FRAC=${FRAC:-0.1}; ONLY=${ONLY:-.}
TH=(); [ -n "${THREADS:-}" ] && TH=(--threads "$THREADS")
for x in "$Q" "$PERTURB"; do [ -x "$x" ] || { echo "gptq_nvfp4: $x is missing (make)" >&2; exit 2; }; done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

"$PERTURB" fixtures/dsv4-tiny "$tmp/perturbed" --frac "$FRAC" >/dev/null
"$PERTURB" fixtures/dsv4-tiny "$tmp/bf16-fp4" --frac 0 >/dev/null
. bench/recipe_variant.sh
variant static_minmax recipes/nvfp4-gptq.yaml 's/observer: mse/observer: minmax/'
variant static_mse recipes/nvfp4-gptq.yaml
variant none_minmax recipes/nvfp4-gptq.yaml 's/actorder: static/actorder: none/' 's/observer: mse/observer: minmax/'
variant none_mse_recompute recipes/nvfp4-gptq.yaml 's/actorder: static/actorder: none\n    recompute_scales: true/'
variant rtn recipes/nvfp4.yaml
variant rtn_mse recipes/nvfp4.yaml 's/^    method: rtn$/    method: rtn\n    observer: mse/'

echo "# gptq_nvfp4: calibration ${CR} x ${CL}, eval ${ER} x ${EL}, perturbation rms ${FRAC} x row rms, devices calib=$CD eval=$ED"
printf '%-30s %9s %9s %8s %9s %7s %15s %16s %8s\n' source/config src_ppl ppl 'Δppl%' kl top1% 'accept% art/src' 'gptq/exact/rtn' seconds
run() { # run SOURCE-NAME SOURCE-DIR CONFIG
  local row="$1/$3" out="$tmp/$1-$3"
  [[ "$row" =~ $ONLY ]] || return 0
  local t0 t1
  t0=$(date +%s.%N)
  "$Q" --recipe "$tmp/$3.yaml" --calib-samples "$CR" --calib-seq-len "$CL" --calib-device "$CD" "${TH[@]}" \
    --eval-data fixtures/dsv4-tiny/eval.tokens.safetensors --eval-device "$ED" --eval-rows "$ER" --eval-len "$EL" \
    --eval-spec-prompts 0 --quiet "$2" "$out" >/dev/null 2>"$out.err" || { echo "$row: failed: $(tail -2 "$out.err")"; return 0; }
  t1=$(date +%s.%N)
  python3 - "$out" "$row" "$(python3 -c "print($t1 - $t0)")" <<'PY'
import json, sys
sys.path.insert(0, "bench")
from verify_metrics import metrics
out, row, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
m = metrics(out + '/dsv4_verify.json')
rep = json.load(open(out + '/dsv4-quant-report.json'))
how = {'gptq': 0, 'exact': 0, 'rtn': 0}
for layer in rep.get('calibration', {}).get('layers', []):
    for m in layer['modules']:
        k = 'gptq' if m['how'].startswith('gptq') else m['how']
        how[k] = how.get(k, 0) + 1
hows = '%d/%d/%d' % (how['gptq'], how['exact'], how['rtn']) if 'calibration' in rep else 'data-free'
print('%-30s %9.4f %9.4f %8.3f %9.5f %7.2f %7.2f/%-7.2f %16s %8.1f' % (row, m['ppl_source'], m['ppl'],
      100 * (m['ppl'] / m['ppl_source'] - 1), m['kl'], m['top1_pct'], m['accept_pct'], m['accept_source_pct'], hows, secs))
PY
}
for c in rtn rtn_mse static_minmax static_mse none_minmax none_mse_recompute; do run perturbed "$tmp/perturbed" $c; done
for c in rtn static_mse; do run bf16-fp4 "$tmp/bf16-fp4" $c; done
for c in rtn static_mse; do run release fixtures/dsv4-tiny $c; done
