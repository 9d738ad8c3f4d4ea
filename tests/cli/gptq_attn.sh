#!/usr/bin/env bash
# GPTQ of the attention linears and the shared experts (issue 6: "... and any targeted attention
# linear") through the command line on the tiny fixture: a recipe whose W4A16 GPTQ group targets
# wq_a, wq_b, wkv, wo_a (per-group Hessians), wo_b, indexer.wq_b and the shared experts (release
# FP8, dequantized per layer) next to the routed experts' GPTQ group. Checks: it converts; the
# report lists every module the plan puts in that group, each with how "gptq" and a finite loss;
# dsv4-verify's static rules pass; the evaluation (16 held-out rows x 128) runs, and against the
# same recipe with `method: rtn` on that group the perplexity increase and the mean KL to the
# source are lower and the top-1 agreement not lower (all printed). The perplexity margin here
# (+1.40 % against +2.68 %) is about the size of the ratios' uncertainty (~0.8 % each), so a
# change that flips it is to be judged on the KL, a larger eval and the unit test
# gptq_attention_output_error_below_rtn (GPTQ's output error per module against RTN's, on the
# inputs that reach it). Measured on the CPU with 32 x 512 calibration rows and all 64 x 512 eval
# rows: these recipes PPL +1.08 % (GPTQ) vs +1.22 % (RTN attention), uncertainty ~0.2 %, KL 0.032
# vs 0.044, top-1 91.4 vs 89.9 %, MTP acceptance 67.2 vs 67.1 % (source 67.6 %); with observer: mse
# on both groups +0.50 vs +0.52 %, KL 0.028 vs 0.040. Also: GPTQ starting after layer 0 (layer 0
# ignored) converts. PASS/FAIL lines for tests/run.sh.
set -u
export LC_ALL=C
cd "$(dirname "$0")/../.."
Q="${BUILD:-build}/bin/dsv4-quant"
V="${BUILD:-build}/bin/dsv4-verify"
FX=fixtures/dsv4-tiny
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
PREFIX=gptq_attn_
. tests/lib/cli.sh
# CALIB_DEVICE=cuda runs the same checks with the calibration on the GPU (the GPU machine)
C=(--calib-samples 8 --calib-seq-len 128 --calib-device "${CALIB_DEVICE:-cpu}" --threads 2 --quiet --eval-rows 16 --eval-len 128
   --eval-device cpu --eval-spec-prompts 0)

cat > "$tmp/gptq.yaml" <<'YAML'
groups:
  - name: attention
    scheme: W4A16
    method: gptq
    group_size: 128
    targets: ['re:layers\.\d+\.attn\.(wq_a|wq_b|wkv|wo_a|wo_b)$', 're:layers\.\d+\.attn\.indexer\.wq_b$',
              're:layers\.\d+\.ffn\.shared_experts\.(w1|w2|w3)$']
  - name: experts
    scheme: W4A16
    method: gptq
    group_size: 128
    targets: ['re:layers\.\d+\.ffn\.experts\.\d+\.(w1|w2|w3)$']
YAML
awk '/method: gptq/ && !done { sub(/gptq/, "rtn"); done = 1 } { print }' "$tmp/gptq.yaml" > "$tmp/rtn.yaml"

ev() { # ev ART BLOCK KEY: eval.BLOCK.KEY of ART/dsv4_verify.json
  awk -v b="\"$2\": {" -v k="\"$3\": " 'index($0, b) { f = 1; next } f && index($0, k) { sub(/.*": */, ""); sub(/,$/, "");
    print; exit } f && /^ *}/ { f = 0 }' "$1/dsv4_verify.json"
}
both_set() { [ -n "$1" ] && [ -n "$2" ]; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

check gptq_converts 0 -- "$Q" --recipe "$tmp/gptq.yaml" "${C[@]}" "$FX" "$tmp/g"
# (round-to-nearest's KL can exceed the default gate of 0.05 at this size: the gate is not under test)
check rtn_converts 0 -- "$Q" --recipe "$tmp/rtn.yaml" "${C[@]}" --max-kl off "$FX" "$tmp/r"

# Every module of the attention group (from the plan) is in the report as GPTQ with a finite loss.
"$Q" --recipe "$tmp/gptq.yaml" --dry-run --json "$FX" "$tmp/unused" > "$tmp/plan.json"
awk '/"name":/ { n = $2 } /"group": "attention"/ { gsub(/[",]/, "", n); sub(/\.weight_packed$/, "", n);
  if (n !~ /\.weight_(scale|shape)$/) print n }' "$tmp/plan.json" | sort > "$tmp/want.txt"
sed -n '/"calibration": {/,$p' "$tmp/g/dsv4-quant-report.json" | awk '/"how":/ { h = $2 } /"loss":/ { l = $2 }
  /"name":/ { n = $2; gsub(/[",]/, "", n); gsub(/[",]/, "", h); gsub(/[",]/, "", l); print n, h, l }' \
  | sort > "$tmp/got.txt"
join "$tmp/want.txt" "$tmp/got.txt" > "$tmp/joined.txt"
echo "  $(wc -l < "$tmp/want.txt") modules in the attention group, $(grep -c ' gptq ' "$tmp/joined.txt") reported as gptq"
pass_if plan_has_attention_modules bash -c "for m in attn.wq_a attn.wq_b attn.wkv attn.wo_a attn.wo_b attn.indexer.wq_b \
  shared_experts.w1 shared_experts.w2 shared_experts.w3; do grep -q \"\\.\$m\$\" '$tmp/want.txt' || exit 1; done"
pass_if every_module_reported [ "$(wc -l < "$tmp/joined.txt")" -eq "$(wc -l < "$tmp/want.txt")" ]
pass_if every_module_gptq_finite_loss awk '$2 != "gptq" || $3 !~ /^[0-9.]+([eE][-+]?[0-9]+)?$/ || $3 + 0 <= 0 \
  { print "  " $0; bad = 1 } END { exit bad }' "$tmp/joined.txt"

check static_rules_pass 0 'rules passed' -- "$V" "$tmp/g" --source "$FX"

# Quality against round-to-nearest on the same group.
for a in g r; do
  printf '  %s: PPL ratio %s +- %s, KL %s +- %s, top-1 %s\n' "$([ $a = g ] && echo gptq || echo rtn)" \
    "$(ev "$tmp/$a" perplexity ratio)" "$(ev "$tmp/$a" perplexity ratio_unc)" "$(ev "$tmp/$a" kl_divergence mean)" \
    "$(ev "$tmp/$a" kl_divergence mean_unc)" "$(ev "$tmp/$a" same_top1 rate)"
done
pass_if eval_ran both_set "$(ev "$tmp/g" perplexity ratio)" "$(ev "$tmp/r" perplexity ratio)"
pass_if kl_below_rtn lt "$(ev "$tmp/g" kl_divergence mean)" "$(ev "$tmp/r" kl_divergence mean)"
pass_if top1_not_below_rtn bash -c "! awk -v a='$(ev "$tmp/g" same_top1 rate)' -v b='$(ev "$tmp/r" same_top1 rate)' \
  'BEGIN { exit !(a + 0 < b + 0) }'"
pass_if ppl_increase_below_rtn lt "$(ev "$tmp/g" perplexity ratio)" "$(ev "$tmp/r" perplexity ratio)"
pass_if ppl_not_worse_beyond_noise awk -v g="$(ev "$tmp/g" perplexity ratio)" -v gu="$(ev "$tmp/g" perplexity ratio_unc)" \
  -v r="$(ev "$tmp/r" perplexity ratio)" -v ru="$(ev "$tmp/r" perplexity ratio_unc)" \
  'BEGIN { exit !(g != "" && r != "" && g - r < 2 * sqrt(gu * gu + ru * ru)) }'

# GPTQ that starts after layer 0 (layer 0 ignored): the finished layers are found wherever they start.
{ cat "$tmp/gptq.yaml"; echo "ignore: ['re:layers\.0\.']"; } > "$tmp/from1.yaml"
check from_layer_1_converts 0 -- "$Q" --recipe "$tmp/from1.yaml" "${C[@]}" --no-eval "$FX" "$tmp/f1"
pass_if from_layer_1_reported grep -q '"name": "layers.1.attn.wo_a"' "$tmp/f1/dsv4-quant-report.json"
pass_if from_layer_1_no_layer_0 bash -c "! grep -q '\"name\": \"layers.0\.' '$tmp/f1/dsv4-quant-report.json'"

exit $((fails > 0))
