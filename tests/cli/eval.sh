#!/usr/bin/env bash
# The dynamic verification through the command line, on the tiny fixture with the CPU runner:
# dsv4-verify --eval passes the bf16 and fp8 artifacts (lossless: KL 0, ratio 1) and fails, with
# exit 3, an artifact with one expert's w2 scrambled in every layer (perplexity, KL and top-1
# gates) and one with the MTP e_proj / h_proj swapped (acceptance gate); gates from a recipe and
# from flags; bad input exits 2. dsv4-quant verifies its own output (dsv4_verify.json inside the
# artifact; --no-eval recorded as skipped; a failed gate exits 3 and keeps the artifact; bad
# evaluation data writes nothing). dsv4-run: perplexity, greedy and speculative generation.
# Small settings (--rows 4 --len 128) keep it to seconds on two cores. EVAL_DEVICE=cuda runs the
# models on the GPU (the GPU machine); the default is the CPU. PASS/FAIL lines for tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
B="${BUILD:-build}"
Q="$B/bin/dsv4-quant" V="$B/bin/dsv4-verify" R="$B/bin/dsv4-run"
FX=fixtures/dsv4-tiny
DATA=$FX/eval.tokens.safetensors
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
PREFIX=eval_
. tests/lib/cli.sh
DEV="${EVAL_DEVICE:-cpu}"
EV=(--source "$FX" --eval "$DATA" --rows 4 --len 128 --device "$DEV" --threads 2 --spec-prompts 2 --spec-tokens 16)

# st_locate DIR NAME: "SHARD OFFSET BYTES" of a tensor's data (header parsed with od and grep).
st_locate() {
  local f n hdr ent
  for f in "$1"/*.safetensors; do
    n=$(od -An -tu8 -N8 "$f" | tr -d ' ')
    hdr=$(dd if="$f" bs=4096 iflag=count_bytes count="$n" skip=8 iflag=skip_bytes 2>/dev/null)
    ent=$(grep -o "\"$2\":{[^}]*}" <<<"$hdr") || continue
    set -- $(sed 's/.*"data_offsets":\[\([0-9]*\),\([0-9]*\)\].*/\1 \2/' <<<"$ent")
    echo "$f $((8 + n + $1)) $(($2 - $1))"; return 0
  done
  echo "st_locate: no tensor $2 in $1" >&2; return 1
}
# st_copy DIR FROM TO: tensor TO's bytes become tensor FROM's (same size).
st_copy() {
  local fa oa na fb ob nb
  read -r fa oa na < <(st_locate "$1" "$2") && read -r fb ob nb < <(st_locate "$1" "$3") && [ "$na" -eq "$nb" ] &&
    dd if="$fa" of="$fb" bs=65536 iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc skip="$oa" seek="$ob" \
      count="$na" 2>/dev/null
}
# st_swap DIR A B: exchanges the bytes of two tensors of the same size.
st_swap() {
  local fa oa na
  read -r fa oa na < <(st_locate "$1" "$2") &&
    dd if="$fa" of="$tmp/swap.bin" bs=65536 iflag=skip_bytes,count_bytes skip="$oa" count="$na" 2>/dev/null &&
    st_copy "$1" "$3" "$2" && read -r fa oa na < <(st_locate "$1" "$3") &&
    dd if="$tmp/swap.bin" of="$fa" bs=65536 oflag=seek_bytes conv=notrunc seek="$oa" 2>/dev/null
}
json_has() { tr -d '\n' <"$1" | grep -qE -- "$2"; } # json_has FILE REGEX (the JSON on one line)

for r in bf16 fp8; do
  "$Q" --quiet --no-eval --recipe recipes/$r.yaml "$FX" "$tmp/$r" || { echo "FAIL eval_setup_$r (dsv4-quant)"; exit 1; }
done

# ---- dsv4-verify --eval: lossless artifacts pass within noise of the source ----
# Same weights: on the CPU every difference is exactly 0; another backend may run the source's
# FP8 / FP4 and the artifact's BF16 through different kernels, so the limits allow rounding noise.
json_num() { tr -d '\n ' <"$1" | grep -oE "\"$2\":-?[0-9.eE+-]+" | head -1 | cut -d: -f2; } # first value of KEY
below() { awk -v x="$1" -v l="$2" 'BEGIN { exit !(x != "" && x + 0 <= l + 0) }'; }                 # below X LIMIT
check verify_bf16 0 '^PASS: [0-9]+ rules passed, 0 failed' "^eval +.*4 rows x 128 positions from row 0 \\(512 predictions\\), on $DEV" \
  'PPL\(a\)/PPL\(s\) +1\.0000' 'same top-1 100\.000' 'greedy continuations equal to the source.s: 2 of 2 prompts' \
  '^EVAL PASS: 4 gates passed' -- "$V" "$tmp/bf16" "${EV[@]}"
for r in bf16 fp8; do
  "$V" "$tmp/$r" "${EV[@]}" --json >"$tmp/$r.json" 2>"$tmp/$r.err"; rc=$?
  pass_if verify_${r}_json_exit_0 test $rc -eq 0
  pass_if verify_${r}_json_verdict json_has "$tmp/$r.json" '"verdict": "pass"'
  pass_if verify_${r}_kl_noise below "$(json_num "$tmp/$r.json" mean)" 1e-6
  pass_if verify_${r}_ratio_noise below "$(awk -v x="$(json_num "$tmp/$r.json" ln_ratio)" 'BEGIN { print x < 0 ? -x : x }')" 1e-6
  pass_if verify_${r}_layers_noise below "$(tr -d '\n ' <"$tmp/$r.json" | grep -oE '"rel_rms":[0-9.eE+-]+' | cut -d: -f2 |
    sort -g | tail -1)" 1e-5
  pass_if verify_${r}_mtp_same test "$(json_num "$tmp/$r.json" accepted)" = \
    "$(tr -d '\n ' <"$tmp/$r.json" | grep -oE '"accepted":[0-9]+' | sed -n 3p | cut -d: -f2)"
done
pass_if verify_no_tty_progress test "$(tr -cd '\r' <"$tmp/fp8.err" | wc -c)" -eq 0
if [ "$DEV" = cpu ]; then # the CPU runs both through the same F32 weights: exactly equal
  check verify_cpu_exact 0 'mean 0\.000000 ± 0\.000000' 'layer 3 +CSA +0\.000e\+00' -- "$V" "$tmp/fp8" "${EV[@]}"
fi
check verify_jsonl 0 'calib.jsonl: 2 rows x 64 positions' '^EVAL PASS' -- "$V" "$tmp/bf16" --source "$FX" \
  --eval "$FX/calib.jsonl" --rows 2 --len 64 --device "$DEV" --spec-prompts 0

# ---- damaged artifacts fail their gates (exit 3); the static rules cannot see the damage ----
cp -r "$tmp/fp8" "$tmp/expert"
ok=1
for l in 0 1 2 3; do st_copy "$tmp/expert" layers.$l.ffn.experts.7.w1.weight layers.$l.ffn.experts.7.w2.weight || ok=0; done
pass_if damage_expert_written test $ok -eq 1
check damaged_expert_fails 3 '^PASS: [0-9]+ rules passed, 0 failed' 'FAIL +max_kl' 'FAIL +min_top1' \
  '^EVAL FAIL: [0-9] of 4 gates failed \(.*max_kl.*\)' -- "$V" "$tmp/expert" "${EV[@]}" --spec-prompts 0
cp -r "$tmp/bf16" "$tmp/mtp"
pass_if damage_mtp_written st_swap "$tmp/mtp" mtp.0.e_proj.weight mtp.0.h_proj.weight
"$V" "$tmp/mtp" "${EV[@]}" --json >"$tmp/mtp.json" 2>/dev/null; rc=$?
pass_if damaged_mtp_exit_3 test $rc -eq 3
pass_if damaged_mtp_fails_accept_gate json_has "$tmp/mtp.json" '"failed_gates": \[[^]]*"max_accept_drop"'
pass_if damaged_mtp_main_model_untouched json_has "$tmp/mtp.json" '"gate": "max_kl",[^}]*"status": "pass"'
check damaged_mtp_text 3 'FAIL +max_accept_drop' '^EVAL FAIL: 1 of 4 gates failed \(max_accept_drop\)' \
  -- "$V" "$tmp/mtp" "${EV[@]}" --spec-prompts 0

# ---- gates from a recipe and from flags (a flag beats the recipe) ----
printf 'groups:\n  - name: a\n    scheme: FP8_BLOCK\n    targets: [Linear]\nexperts_fp8_lossless: true\n'\
'gates:\n  max_ppl_increase: 50\n  max_kl: 1\n  min_top1: 50\n  max_accept_drop: 50\n' >"$tmp/loose.yaml"
check recipe_gates 0 'pass +max_kl .*<= 1 \(recipe\)' '^EVAL PASS' -- "$V" "$tmp/expert" "${EV[@]}" --spec-prompts 0 \
  --recipe "$tmp/loose.yaml"
check flag_beats_recipe 3 'FAIL +max_kl .*<= 0\.05 \(flag\)' -- "$V" "$tmp/expert" "${EV[@]}" --spec-prompts 0 \
  --recipe "$tmp/loose.yaml" --max-kl 0.05
check gate_off 0 'skipped +max_accept_drop +off' -- "$V" "$tmp/mtp" --only mtp-present "${EV[@]}" --spec-prompts 0 \
  --max-accept-drop off

# ---- bad input: exit 2 ----
check needs_source 2 '--eval compares the artifact with its source: give --source' -- "$V" "$tmp/bf16" --eval "$DATA"
check data_missing 2 "$tmp/none.safetensors" -- "$V" "$tmp/bf16" --source "$FX" --eval "$tmp/none.safetensors"
check data_not_tokens 2 'config.json: expected a .safetensors file with .input_ids.' -- "$V" "$tmp/bf16" --source "$FX" \
  --eval "$FX/config.json"
check data_too_many_rows 2 "eval.tokens.safetensors: tensor 'input_ids': holds 64 rows; 65 rows from offset 0" \
  -- "$V" "$tmp/bf16" --source "$FX" --eval "$DATA" --rows 65
check data_rows_too_short 2 "calib.tokens.safetensors: tensor 'input_ids': rows hold 512 tokens, fewer than the 601" \
  -- "$V" "$tmp/bf16" --source "$FX" --eval "$FX/calib.tokens.safetensors" --len 600
check bad_gate_value 2 '--max-kl abc: expected a number' -- "$V" "$tmp/bf16" "${EV[@]}" --max-kl abc
check bad_device 2 '--device expects auto, cpu or cuda' -- "$V" "$tmp/bf16" "${EV[@]}" --device tpu
check source_missing 2 "source $tmp/nothing: .*no such file" -- "$V" "$tmp/bf16" --source "$tmp/nothing" --eval "$DATA" \
  --rows 1 --len 16

# ---- dsv4-quant verifies what it wrote ----
check quant_verifies 0 "^dsv4-quant: verified $tmp/q in [0-9.]+ s: [0-9]+ rules passed; eval on 4 x 128 positions \($DEV\)" \
  'every gate passed' -- "$Q" --recipe recipes/fp8.yaml --eval-device "$DEV" --threads 2 "$FX" "$tmp/q"
pass_if quant_report_inside json_has "$tmp/q/dsv4_verify.json" '"verdict": "pass"'
pass_if quant_report_names_out json_has "$tmp/q/dsv4_verify.json" "\"artifact\": \"$tmp/q\""
pass_if quant_report_eval_ran json_has "$tmp/q/dsv4_verify.json" '"kl_divergence": \{'
# dsv4-fixup does not carry dsv4-quant's report over: it describes the artifact before the repair
check fixup_source_has_report 0 'dynamic verification skipped' -- "$Q" --no-eval --recipe recipes/w4a16-rtn.yaml "$FX" "$tmp/w4"
pass_if fixup_source_report_present test -e "$tmp/w4/dsv4_verify.json"
check fixup_drops_report 0 '' -- "$B/bin/dsv4-fixup" "$tmp/w4" --to-w4a8 -o "$tmp/w4-fixed" --quiet
pass_if fixup_report_not_copied test ! -e "$tmp/w4-fixed/dsv4_verify.json"
check quant_no_eval 0 'dynamic verification skipped: --no-eval' -- "$Q" --no-eval --recipe recipes/bf16.yaml "$FX" "$tmp/n"
pass_if quant_no_eval_recorded json_has "$tmp/n/dsv4_verify.json" '"status": "skipped"'
mkdir "$tmp/src" && cp "$FX"/*.json "$FX"/*.safetensors "$tmp/src/" && rm "$tmp/src/eval.tokens.safetensors"
check quant_no_data 0 'skipped: no evaluation data: .* has no eval.tokens.safetensors and --eval-data was not given' \
  -- "$Q" --recipe recipes/bf16.yaml "$tmp/src" "$tmp/nd"
check quant_eval_data_flag 0 'eval on 2 x 64 positions' -- "$Q" --recipe recipes/bf16.yaml --eval-data "$DATA" \
  --eval-rows 2 --eval-len 64 --eval-device "$DEV" "$tmp/src" "$tmp/ed"
check quant_gate_fails 3 'FAIL +min_top1' "written, but its verification failed \(report: $tmp/g/dsv4_verify.json\)" \
  -- "$Q" --quiet --recipe recipes/w4a16-rtn.yaml --eval-device "$DEV" --min-top1 100 "$FX" "$tmp/g"
pass_if quant_gate_fail_keeps_artifact json_has "$tmp/g/dsv4_verify.json" '"failed_gates": \[[^]]*"min_top1"'
check quant_bad_eval_data 2 "$tmp/none.safetensors" -- "$Q" --recipe recipes/bf16.yaml --eval-data "$tmp/none.safetensors" \
  "$FX" "$tmp/b"
absent quant_bad_eval_data_writes_nothing "$tmp/b"
check quant_bad_gate 2 '--min-top1 x: expected a number' -- "$Q" --recipe recipes/bf16.yaml --min-top1 x "$FX" "$tmp/b"
absent quant_bad_gate_writes_nothing "$tmp/b"

# ---- dsv4-run ----
"$R" "$FX" --ppl "$DATA" --rows 2 --len 64 --device "$DEV" >"$tmp/ppl_src.txt" 2>&1
"$R" "$tmp/bf16" --ppl "$DATA" --rows 2 --len 64 --device "$DEV" --chunk 20 >"$tmp/ppl_bf16.txt" 2>&1
pass_if run_ppl grep -qE '^PPL [0-9]+\.[0-9]+ ± [0-9.]+ \(mean NLL' "$tmp/ppl_src.txt"
pass_if run_ppl_bf16_equals_source test "$(grep -o '^PPL [0-9.]*' "$tmp/ppl_src.txt")" = \
  "$(grep -o '^PPL [0-9.]*' "$tmp/ppl_bf16.txt")"
check run_ppl_jsonl 0 'calib.jsonl: 2 rows x 128 positions from row 0 \(256 predictions\)' '^PPL [0-9.]+ ±' \
  -- "$R" "$FX" --ppl "$FX/calib.jsonl" --rows 2 --len 128 --device "$DEV"
gen=$("$R" "$FX" --generate "def fibonacci(n):" -n 24 --device "$DEV" 2>"$tmp/gen.err")
pass_if run_generate test -n "$gen"
pass_if run_generate_stats grep -q '11 prompt tokens, 24 generated' "$tmp/gen.err"
check run_generate_spec 0 'drafts accepted' -- "$R" "$FX" --generate "import os" -n 16 --spec --device "$DEV"
check run_tokens 0 '^[0-9]+(,[0-9]+){11}$' -- "$R" "$FX" --tokens 1,2,3,4,5,6,7,8 -n 12 --device "$DEV"
greedy=$("$R" "$FX" --tokens 1,2,3,4,5,6,7,8 -n 12 --device "$DEV" 2>/dev/null)
spec=$("$R" "$FX" --tokens 1,2,3,4,5,6,7,8 -n 12 --device "$DEV" --spec 2>"$tmp/spec.err")
pass_if run_spec_equals_greedy test -n "$greedy" -a "$greedy" = "$spec"
pass_if run_spec_stats grep -qE 'speculative: [0-9]+ of [0-9]+ drafts accepted' "$tmp/spec.err"
check run_json 0 '"tokens": \[' '"speculative": \{' -- "$R" "$FX" --tokens 5,6,7 -n 4 --spec --json --device "$DEV"
check run_usage 2 'give exactly one of --ppl, --generate and --tokens' -- "$R" "$FX"
check run_bad_tokens 2 'expected comma-separated non-negative token ids' -- "$R" "$FX" --tokens 1,x --device "$DEV"
check run_token_range 2 'prompt token 5000 is outside the model.s vocabulary \[0, 1024\)' -- "$R" "$FX" --tokens 5000 \
  --device "$DEV"
check run_bad_data 2 'holds 64 rows; offset 70 leaves none' -- "$R" "$FX" --ppl "$DATA" --offset 70 --device "$DEV"
exit $((fails > 0))
