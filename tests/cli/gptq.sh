#!/usr/bin/env bash
# dsv4-quant with GPTQ (recipes/w4a16.yaml) on the tiny fixture, through the command line, with a
# small calibration (8 rows x 128 tokens): the artifact and its calibration report; the same
# bytes from a second run (deterministic) and from a run killed at several points and resumed; one
# calibration, many packs (--save-hessians, then --hessians gives the same bytes and an NVFP4 pack);
# the round-to-nearest fallback equals the RTN recipe's tensors; refusals (no data, a work folder
# from another run). PASS/FAIL lines for tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
Q="${BUILD:-build}/bin/dsv4-quant"
FX=fixtures/dsv4-tiny
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
PREFIX=gptq_
. tests/lib/cli.sh
# CALIB_DEVICE=cuda runs the same checks on the GPU path (the GPU machine: bench/gpu.sh)
CD=${CALIB_DEVICE:-cpu}
C=(--calib-samples 8 --calib-seq-len 128 --calib-device "$CD" --threads 2 --no-eval --quiet)


check convert 0 -- "$Q" --recipe recipes/w4a16.yaml "${C[@]}" --work-dir "$tmp/work" "$FX" "$tmp/a"
pass_if report_has_calibration grep -q '"how": "gptq"' "$tmp/a/dsv4-quant-report.json"
pass_if report_has_expert_tokens grep -q '"tokens"' "$tmp/a/dsv4-quant-report.json"
pass_if work_kept_with_work_dir test -d "$tmp/work/layer-003"
check default_work_removed 0 -- "$Q" --recipe recipes/w4a16.yaml "${C[@]}" "$FX" "$tmp/b"
absent default_work_dir_gone "$tmp/b.gptq-work"
pass_if deterministic same_tensors "$tmp/a" "$tmp/b"

# The artifact's manifest holds each layer's expert token counts and Hessian sources (the report's);
# dsv4-fixup's re-rendered manifest keeps them (a stale index total_size makes it rewrite both).
coverage_is_report() { python3 - "$1" <<'PY'
import json, sys
m = json.load(open(sys.argv[1] + "/dsv4-manifest.json"))["calibration"]
r = {l["layer"]: l["experts"] for l in json.load(open(sys.argv[1] + "/dsv4-quant-report.json"))["calibration"]["layers"]}
sys.exit(0 if m == r and len(m) == 4 and all(len(v["tokens"]) == 16 for v in m.values()) else 1)
PY
}
pass_if manifest_has_coverage coverage_is_report "$tmp/a"
cp -r "$tmp/a" "$tmp/a_bad" && sed -i 's/"total_size": \([0-9]*\)/"total_size": 1\1/' "$tmp/a_bad/model.safetensors.index.json"
check fixup_keeps_coverage 0 -- "${BUILD:-build}/bin/dsv4-fixup" "$tmp/a_bad" -o "$tmp/a_fixed" --quiet
pass_if fixup_manifest_same_bytes cmp -s "$tmp/a/dsv4-manifest.json" "$tmp/a_fixed/dsv4-manifest.json"

# Killed at several points (SIGKILL), then resumed with the same work folder: the same bytes.
for t in 0.5 2 5; do
  "$Q" --recipe recipes/w4a16.yaml "${C[@]}" --work-dir "$tmp/wk$t" "$FX" "$tmp/k$t" >/dev/null 2>&1 &
  pid=$!; sleep "$t"; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  if [ ! -d "$tmp/k$t" ]; then
    check "resume_after_kill_${t}s" 0 -- "$Q" --recipe recipes/w4a16.yaml "${C[@]}" --work-dir "$tmp/wk$t" "$FX" "$tmp/k$t"
  else
    echo "PASS ${PREFIX}resume_after_kill_${t}s (finished before the kill)"
  fi
  pass_if "resumed_same_bytes_${t}s" same_tensors "$tmp/a" "$tmp/k$t"
done

# One calibration, many packs.
check save_hessians 0 -- "$Q" --recipe recipes/w4a16.yaml "${C[@]}" --save-hessians "$tmp/H" "$FX" "$tmp/h1"
pass_if hessians_saved test -f "$tmp/H/layer-002/hessians.json"
check from_hessians 0 -- "$Q" --recipe recipes/w4a16.yaml "${C[@]}" --hessians "$tmp/H" "$FX" "$tmp/h2"
pass_if from_hessians_same_bytes same_tensors "$tmp/h1" "$tmp/h2"
check w4a8_from_hessians 0 -- "$Q" --recipe recipes/w4a8.yaml "${C[@]}" --hessians "$tmp/H" "$FX" "$tmp/h4"
pass_if w4a8_same_tensors_as_w4a16 same_tensors "$tmp/h1" "$tmp/h4"
int4_acts() { python3 -c 'import json, sys
g = [v for v in json.load(open(sys.argv[1]))["quantization_config"]["config_groups"].values() if v["weights"]["num_bits"] == 4]
print(" ".join(str((v.get("input_activations") or {}).get("num_bits")) for v in g))' "$1"; }
pass_if w4a8_int4_group_fp8_activations test "$(int4_acts "$tmp/h4/config.json")/$(int4_acts "$tmp/h1/config.json")" = "8/None"
sed -e 's/scheme: W4A16/scheme: NVFP4/' -e 's/group_size: 128/group_size: 16/' recipes/w4a16.yaml > "$tmp/nvfp4-gptq.yaml"
check nvfp4_from_hessians 0 -- "$Q" --recipe "$tmp/nvfp4-gptq.yaml" "${C[@]}" --hessians "$tmp/H" "$FX" "$tmp/h3"
pass_if nvfp4_exact_kept grep -q '"how": "exact"' "$tmp/h3/dsv4-quant-report.json"

# The round-to-nearest fallback for every expert reproduces the RTN recipe's tensors.
sed -e 's/^  seq_len: 2048/  seq_len: 2048\n  min_tokens: 1000000\n  fallback: rtn/' recipes/w4a16.yaml > "$tmp/fallback.yaml"
check rtn_fallback 0 -- "$Q" --recipe "$tmp/fallback.yaml" "${C[@]}" "$FX" "$tmp/f"
pass_if rtn_fallback_recorded grep -q '"how": "rtn"' "$tmp/f/dsv4-quant-report.json"
# (w4a16.yaml's observer is mse, so the fallback is RTN with the MSE observer: w4a16-rtn.yaml with it)
sed 's/^    method: rtn.*/    method: rtn\n    observer: mse/' recipes/w4a16-rtn.yaml > "$tmp/rtn-mse.yaml"
for t in weight_packed weight_scale; do
  check "rtn_fallback_equals_rtn_mse_$t" 0 identical -- "$Q" --recipe "$tmp/rtn-mse.yaml" --compare-tensor \
    "layers.2.ffn.experts.5.w2.$t" "$FX" "$tmp/f"
done
check rtn_mse_differs_from_minmax 3 DIFFERS -- "$Q" --recipe recipes/w4a16-rtn.yaml --compare-tensor \
  layers.2.ffn.experts.5.w2.weight_scale "$FX" "$tmp/f"

# Experts routed fewer than min_tokens tokens get every token for their Hessians (the others keep
# their routed tokens); the report says which.
sed -e 's/^  seq_len: 2048/  seq_len: 2048\n  min_tokens: 250\n  fallback: all_tokens/' recipes/w4a16.yaml > "$tmp/cover.yaml"
check all_tokens_fallback 0 -- "$Q" --recipe "$tmp/cover.yaml" "${C[@]}" "$FX" "$tmp/c"
pass_if all_tokens_recorded grep -q '"how": "gptq-all-tokens"' "$tmp/c/dsv4-quant-report.json"
pass_if routed_kept_too grep -q '"how": "gptq"' "$tmp/c/dsv4-quant-report.json"

# The MTP block's experts calibrated on the main model's final streams (mtp.policy: quantize; the
# static rules then report the quantized MTP block, exit 3, as they should).
cat > "$tmp/mtp.yaml" <<'YAML'
groups:
  - name: attention
    scheme: FP8_BLOCK
    targets: ['re:(layers|mtp)\.\d+\.attn\.(wq_a|wq_b|wkv|wo_a|wo_b)$', 're:layers\.\d+\.attn\.indexer\.wq_b$',
              're:mtp\.\d+\.(e_proj|h_proj)$', 're:(layers|mtp)\.\d+\.ffn\.shared_experts\.(w1|w2|w3)$']
  - name: experts
    scheme: W4A16
    method: gptq
    targets: ['re:(layers|mtp)\.\d+\.ffn\.experts\.\d+\.(w1|w2|w3)$']
mtp:
  policy: quantize
YAML
check mtp_calibrated 3 'mtp-quant' -- "$Q" --recipe "$tmp/mtp.yaml" "${C[@]}" "$FX" "$tmp/m"
pass_if mtp_experts_gptq grep -q '"name": "mtp.0.ffn.experts.0.w1"' "$tmp/m/dsv4-quant-report.json"

# Refusals.
mkdir "$tmp/nodata" && cp "$FX"/*.json "$FX"/*.safetensors "$tmp/nodata/" && rm "$tmp/nodata/calib.tokens.safetensors"
check no_calibration_data 2 'GPTQ needs calibration data' -- "$Q" --recipe recipes/w4a16.yaml "${C[@]}" "$tmp/nodata" "$tmp/x1"
absent no_data_writes_nothing "$tmp/x1"
check foreign_work_dir 2 'belongs to another calibration' -- "$Q" --recipe recipes/w4a16.yaml --calib-samples 4 \
  --calib-seq-len 128 --calib-device "$CD" --no-eval --quiet --work-dir "$tmp/work" "$FX" "$tmp/x2"
absent foreign_work_writes_nothing "$tmp/x2"
check compare_tensor_refused 2 'calibration' -- "$Q" --recipe recipes/w4a16.yaml --compare-tensor \
  layers.2.ffn.experts.5.w2.weight_packed "$FX" "$tmp/a"

exit $((fails > 0))
