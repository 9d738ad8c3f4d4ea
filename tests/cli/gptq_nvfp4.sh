#!/usr/bin/env bash
# NVFP4 under GPTQ (recipes/nvfp4-gptq.yaml) where the routed experts are not NVFP4-exact. The
# release's FP4 experts all convert to NVFP4 exactly, so the source here is SYNTHETIC:
# bench/perturb_experts.c writes the tiny fixture with every routed expert = its value + uniform
# noise of rms 0.1 x the row's rms, in BF16 (attention and the rest stay the release's bytes). On
# it: NVFP4 GPTQ (32 x 256 calibration) against NVFP4 round-to-nearest (nvfp4.yaml, and with the
# MSE observer GPTQ uses), all judged by dsv4-verify against the perturbed source on the same
# 8 x 256 eval rows (static rules and gates pass; GPTQ's mean KL is the smallest; perplexity and
# MTP acceptance are printed); the report says "gptq" for
# every expert. On the release, nvfp4-gptq.yaml keeps the exact conversion for every expert
# without a calibration pass (so without calibration data) and writes nvfp4.yaml's tensors; on a
# BF16 copy of the release's experts (bench/perturb_experts.c --frac 0) it does the same, and the
# artifact's logits equal the source's. PASS/FAIL lines for tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
B="${BUILD:-build}"
Q="$B/bin/dsv4-quant"
V="$B/bin/dsv4-verify"
PERTURB="$B/bench/perturb_experts"
FX=fixtures/dsv4-tiny
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
PREFIX=gptq_nvfp4_
. tests/lib/cli.sh
P="$tmp/perturbed"
# CALIB_DEVICE=cuda runs the same checks with the calibration on the GPU (the GPU machine)
CAL=(--calib-samples 32 --calib-seq-len 256 --calib-device "${CALIB_DEVICE:-cpu}" --threads 2)
EV=(--eval "$FX/eval.tokens.safetensors" --rows 8 --len 256 --device cpu --threads 2 --spec-prompts 0 --json)

count_how() { # count_how REPORT HOW: modules of the calibration report made that way
  python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
print(sum(m["how"] == sys.argv[2] for l in r["calibration"]["layers"] for m in l["modules"]))' "$1" "$2"
}

# The synthetic source: deterministic, labelled, refused options.
check perturb 0 '240 expert tensors' -- "$PERTURB" "$FX" "$P"
pass_if perturb_labelled grep -q '"dsv4_synthetic"' "$P/config.json"
check perturb_again 0 -- "$PERTURB" "$FX" "$tmp/perturbed2"
pass_if perturb_deterministic same_tensors "$P" "$tmp/perturbed2"
check perturb_bad_frac 2 'expected a number' -- "$PERTURB" "$FX" "$tmp/x" --frac -1
absent perturb_bad_frac_writes_nothing "$tmp/x"

# NVFP4 round-to-nearest and GPTQ from it.
check rtn 0 -- "$Q" --recipe recipes/nvfp4.yaml --no-eval --quiet "$P" "$tmp/rtn"
sed 's/^    method: rtn$/    method: rtn\n    observer: mse/' recipes/nvfp4.yaml > "$tmp/rtn_mse.yaml"
check rtn_mse 0 -- "$Q" --recipe "$tmp/rtn_mse.yaml" --no-eval --quiet "$P" "$tmp/rtn_mse"
check gptq 0 -- "$Q" --recipe recipes/nvfp4-gptq.yaml "${CAL[@]}" --no-eval --quiet "$P" "$tmp/gptq"
pass_if report_all_gptq test "$(count_how "$tmp/gptq/dsv4-quant-report.json" gptq)" = 192
pass_if report_none_exact test "$(count_how "$tmp/gptq/dsv4-quant-report.json" exact)" = 0
verify() { # verify NAME: dsv4-verify's static rules and eval of $tmp/NAME against $P into $tmp/NAME.json
  "$V" "$tmp/$1" --source "$P" "${EV[@]}" > "$tmp/$1.json" 2> "$tmp/$1.err" && python3 -c 'import json,sys
r = json.load(open(sys.argv[1])); sys.exit(not (r["errors"] == 0 and r["failed"] == [] and r["verdict"] == "pass"))' "$tmp/$1.json" \
    || { tail -3 "$tmp/$1.err"; return 1; }
}
pass_if verify_rtn_passes verify rtn
pass_if verify_rtn_mse_passes verify rtn_mse
pass_if verify_gptq_passes verify gptq
metrics() { # metrics NAME: the eval numbers of $tmp/NAME.json on one line
  python3 - "$tmp/$1.json" "$1" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1]))['eval']
p, m = ev['perplexity'], ev['mtp']
print('  %-4s ppl %.4f (source %.4f): increase %+.3f %% +- %.3f, mean KL %.5f, same top-1 %.2f %%, MTP acceptance %.2f %% (source %.2f %%)'
      % (sys.argv[2], p['artifact'], p['source'], 100 * (p['ratio'] - 1), 100 * p['ratio_unc'], ev['kl_divergence']['mean'],
         100 * ev['same_top1']['rate'], 100 * m['artifact']['teacher_forced']['rate'], 100 * m['source']['teacher_forced']['rate']))
PY
}
kl() { # kl NAME: the mean KL of $tmp/NAME.json
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["eval"]["kl_divergence"]["mean"])' "$tmp/$1.json"
}
lt() { python3 -c 'import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))' "$1" "$2"; }
metrics rtn; metrics rtn_mse; metrics gptq
# The mean KL is the measure that resolves the difference on 8 x 256 positions (~15 % apart). The
# perplexity increase (+-0.5 %) and the MTP acceptance (+-1 point) are printed, not tested: their
# uncertainty here exceeds the gaps; bench/gptq_nvfp4.sh measures them on the full eval set.
pass_if gptq_kl_below_rtn lt "$(kl gptq)" "$(kl rtn)"
pass_if gptq_kl_below_rtn_mse lt "$(kl gptq)" "$(kl rtn_mse)"

# The release: every expert keeps the exact MXFP4 -> NVFP4 conversion; no calibration pass runs,
# so no calibration data is needed; the tensors are nvfp4.yaml's.
mkdir "$tmp/nodata" && cp "$FX"/*.json "$FX"/model-*.safetensors "$tmp/nodata/"
check release_exact 0 'no calibration pass' -- "$Q" --recipe recipes/nvfp4-gptq.yaml "${CAL[@]}" --no-eval "$tmp/nodata" "$tmp/rel"
pass_if release_report_all_exact test "$(count_how "$tmp/rel/dsv4-quant-report.json" exact)" = 192
check release_rtn 0 -- "$Q" --recipe recipes/nvfp4.yaml --no-eval --quiet "$FX" "$tmp/rel_rtn"
pass_if release_same_tensors_as_nvfp4 same_tensors "$tmp/rel" "$tmp/rel_rtn" no-manifest

# The release's expert values as BF16 (what a BF16 checkpoint of the release holds; --frac 0): they
# are recognized as FP4 values and convert exactly too, with GPTQ (no calibration pass) and RTN
# alike; the artifact's logits equal the source's.
check bf16_copy 0 '0.00 % changed' -- "$PERTURB" "$FX" "$tmp/bf16" --frac 0
check bf16_copy_exact 0 'no calibration pass' -- "$Q" --recipe recipes/nvfp4-gptq.yaml "${CAL[@]}" --no-eval "$tmp/bf16" "$tmp/b"
pass_if bf16_copy_report_all_exact test "$(count_how "$tmp/b/dsv4-quant-report.json" exact)" = 192
"$V" "$tmp/b" --source "$tmp/bf16" "${EV[@]}" > "$tmp/b.json" 2>/dev/null
pass_if bf16_copy_kl_zero python3 -c 'import json,sys
ev = json.load(open(sys.argv[1]))["eval"]
sys.exit(not (ev["kl_divergence"]["max"] == 0 and ev["perplexity"]["artifact"] == ev["perplexity"]["source"]))' "$tmp/b.json"
check bf16_copy_rtn 0 -- "$Q" --recipe recipes/nvfp4.yaml --no-eval --quiet "$tmp/bf16" "$tmp/b_rtn"
pass_if bf16_copy_rtn_same_tensors same_tensors "$tmp/b" "$tmp/b_rtn" no-manifest

exit $((fails > 0))
