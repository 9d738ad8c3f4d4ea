#!/usr/bin/env bash
# The GPTQ options on the tiny fixture, each measured the same way: dsv4-quant with the recipe's
# options (all 128 x 512 calibration rows), then its own verification on all 64 x 512 eval rows;
# prints one line per configuration (PPL, its increase over the source, mean KL, same top-1, MTP
# acceptance teacher-forced) and the calibration + conversion wall time. Usage:
#   bench/gptq_matrix.sh [CALIB_DEVICE] [EVAL_DEVICE]      (defaults: auto auto)
# The recipes are recipes/w4a16.yaml (observer minmax) with one experts-group option changed at a
# time; CONFIGS="..." picks some (the call limit of the GPU machine fits about eight).
set -eu
cd "$(dirname "$0")/.."
Q="${BUILD:-build}/bin/dsv4-quant"
CD=${1:-auto}; ED=${2:-auto}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# base: recipes/w4a16.yaml with llm-compressor's minmax observer (the recipe's own default is mse)
sed 's/observer: mse .*/observer: minmax/' recipes/w4a16.yaml > "$tmp/base.yaml"
grep -q 'observer: minmax' "$tmp/base.yaml" || { echo "gptq_matrix: recipes/w4a16.yaml has no 'observer: mse' line" >&2; exit 2; }
. bench/recipe_variant.sh
variant rtn "$tmp/base.yaml" 's/method: gptq .*/method: rtn/' '/dampening_frac/d' '/actorder/d'
variant rtn_mse "$tmp/base.yaml" 's/method: gptq .*/method: rtn/' '/dampening_frac/d' '/actorder/d' 's/observer: minmax/observer: mse/'
variant static_minmax "$tmp/base.yaml"
variant none_minmax "$tmp/base.yaml" 's/actorder: static .*/actorder: none/'
variant none_recompute "$tmp/base.yaml" 's/actorder: static .*/actorder: none\n    recompute_scales: true/'
variant static_mse "$tmp/base.yaml" 's/observer: minmax/observer: mse/'
variant none_mse_recompute "$tmp/base.yaml" 's/actorder: static .*/actorder: none\n    recompute_scales: true/' 's/observer: minmax/observer: mse/'
variant static_damp10 "$tmp/base.yaml" 's/dampening_frac: 0.01/dampening_frac: 0.1/'
variant static_all_experts "$tmp/base.yaml" 's/^  seq_len: 2048/  seq_len: 2048\n  experts: all/'
variant static_mse_all_experts "$tmp/base.yaml" 's/^  seq_len: 2048/  seq_len: 2048\n  experts: all/' 's/observer: minmax/observer: mse/'
variant static_min128_rtn "$tmp/base.yaml" 's/^  seq_len: 2048/  seq_len: 2048\n  min_tokens: 128\n  fallback: rtn/'
CONFIGS=${CONFIGS:-rtn rtn_mse static_minmax none_minmax none_recompute static_mse none_mse_recompute static_damp10 static_all_experts static_mse_all_experts static_min128_rtn}
printf '%-22s %10s %9s %9s %8s %8s %8s\n' config ppl 'Δppl%' kl top1% accept% seconds
for n in $CONFIGS; do
  t0=$(date +%s.%N)
  "$Q" --recipe "$tmp/$n.yaml" --calib-device "$CD" --eval-device "$ED" --eval-rows 64 --eval-len 512 --eval-spec-prompts 0 \
    --quiet fixtures/dsv4-tiny "$tmp/$n" >/dev/null 2>"$tmp/$n.err" || { echo "$n: failed: $(tail -2 "$tmp/$n.err")"; continue; }
  t1=$(date +%s.%N)
  python3 - "$tmp/$n/dsv4_verify.json" "$n" "$(python3 -c "print($t1 - $t0)")" <<'PY'
import sys
sys.path.insert(0, "bench")
from verify_metrics import metrics
m = metrics(sys.argv[1])
print('%-22s %10.4f %9.3f %9.5f %8.2f %8.2f %8s' % (sys.argv[2], m['ppl'], 100 * (m['ppl'] / m['ppl_source'] - 1),
      m['kl'], m['top1_pct'], m['accept_pct'], sys.argv[3][:6]))
PY
done
