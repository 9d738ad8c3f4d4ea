#!/usr/bin/env bash
# llm-compressor's GPTQ and ours on the tiny fixture, in one run on one machine (issue 6's side by
# side): the same calibration rows (all 128 x 512 of calib.tokens.safetensors) and the same eval
# rows (all 64 x 512 of eval.tokens.safetensors), W4A16 routed experts, symmetric INT4, group 128.
#   ours:  dsv4-quant --no-eval (calibration + conversion, timed), then dsv4-verify --eval on the
#          artifact against the fixture (perplexity through our runner; KL, top-1, MTP acceptance);
#   llmc:  tests/interop/llmc_gptq.py (transformers' deepseek_v4 + llm-compressor 0.14 oneshot;
#          its timed part is the oneshot call; perplexity through transformers' forward).
# Each tool's perplexity is compared with its own unquantized perplexity on the same rows (ours:
# the fixture through our runner; llmc: the unquantized transformers model), so the increases are
# comparable even where the two forwards differ in the last digits.
# Configurations (the same settings on both sides where both have them):
#   rtn                    round-to-nearest (ours: w4a16-rtn.yaml; llmc: QuantizationModifier)
#   gptq_all_minmax        llm-compressor's defaults: every token through every expert, act order
#                          static, minmax scales, damping 0.01
#   gptq_routed_minmax     each expert from its routed tokens only
#   gptq_routed_mse        routed tokens, MSE observer (ours: recipes/w4a16.yaml, the default)
# Writes OUTDIR/gptq_vs_llmc.json (every row, the versions, the commands) and prints a table.
# Usage: bench/gptq_vs_llmc.sh OUTDIR [DEVICE]   (DEVICE: cuda (default) or cpu; needs llm-compressor
#   0.14 importable, see tests/interop/README.md; ROWS / EVAL_ROWS / LLMC=0 for a quick check)
set -eu
cd "$(dirname "$0")/.."
OUTDIR=${1:?usage: bench/gptq_vs_llmc.sh OUTDIR [cuda|cpu]}; DEV=${2:-cuda}
B=${BUILD:-build}; FX=fixtures/dsv4-tiny
ROWS=${ROWS:-128}; EVAL_ROWS=${EVAL_ROWS:-64}
mkdir -p "$OUTDIR"; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }

. bench/recipe_variant.sh
variant rtn recipes/w4a16-rtn.yaml
variant gptq_all_minmax recipes/w4a16.yaml 's/observer: mse .*/observer: minmax/' 's/^  seq_len: 2048/  seq_len: 2048\n  experts: all/'
variant gptq_routed_minmax recipes/w4a16.yaml 's/observer: mse .*/observer: minmax/'
variant gptq_routed_mse recipes/w4a16.yaml
grep -q 'observer: mse' "$tmp/gptq_routed_mse.yaml" && ! grep -q 'observer: mse' "$tmp/gptq_routed_minmax.yaml" ||
  { echo "gptq_vs_llmc: recipes/w4a16.yaml no longer has 'observer: mse'; update the variants" >&2; exit 2; }

: > "$OUTDIR/ours.tsv"
for n in rtn gptq_all_minmax gptq_routed_minmax gptq_routed_mse; do
  t0=$(now)
  "$B/bin/dsv4-quant" --recipe "$tmp/$n.yaml" --calib-device "$DEV" --calib-samples "$ROWS" --calib-seq-len 512 \
    --no-eval --quiet "$FX" "$tmp/$n" >"$tmp/$n.out" 2>&1 || { echo "ours $n: dsv4-quant failed:"; tail -5 "$tmp/$n.out"; exit 1; }
  t1=$(now)
  "$B/bin/dsv4-verify" "$tmp/$n" --source "$FX" --eval "$FX/eval.tokens.safetensors" --rows "$EVAL_ROWS" \
    --spec-prompts 0 --device "$DEV" --max-ppl-increase off --max-kl off --min-top1 off --max-accept-drop off \
    --json >"$OUTDIR/ours_$n.verify.json" 2>"$tmp/$n.verr" || { echo "ours $n: dsv4-verify failed:"; tail -5 "$tmp/$n.verr"; exit 1; }
  cp "$tmp/$n/dsv4-quant-report.json" "$OUTDIR/ours_$n.report.json"
  printf '%s\t%s\t%s\n' "$n" "$(python3 -c "print(round($t1 - $t0, 3))")" "$tmp/$n.yaml" >> "$OUTDIR/ours.tsv"
  cp "$tmp/$n.yaml" "$OUTDIR/ours_$n.yaml"
  echo "ours $n: $(python3 -c "print(round($t1 - $t0, 2))") s"
done

if [ "${LLMC:-1}" != 0 ]; then
  L="python3 tests/interop/llmc_gptq.py --fixture $FX --device $DEV --rows $ROWS --eval-rows $EVAL_ROWS"
  # (a) unquantized, (b) GPTQ with llm-compressor's defaults (saved and reloaded), (c) RTN
  $L --out "$OUTDIR/llmc_all_minmax.json" > "$OUTDIR/llmc.log" 2>&1 || echo "llmc all_minmax: failed (see llmc.log)"
  $L --routed-only --skip-rtn --skip-save --out "$OUTDIR/llmc_routed_minmax.json" >> "$OUTDIR/llmc.log" 2>&1 ||
    echo "llmc routed_minmax: failed (see llmc.log)"
  $L --routed-only --observer mse --skip-rtn --skip-save --out "$OUTDIR/llmc_routed_mse.json" >> "$OUTDIR/llmc.log" 2>&1 ||
    echo "llmc routed_mse: failed (see llmc.log)"
fi

python3 - "$OUTDIR" "$DEV" "$ROWS" "$EVAL_ROWS" <<'PY'
import json, os, subprocess, sys, time
sys.path.insert(0, "bench")
from verify_metrics import metrics
out, dev, rows, erows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
res = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "device": dev, "calib_rows": rows, "calib_len": 512,
       "eval_rows": erows, "eval_len": 512,
       "commit": os.environ.get("COMMIT") or subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip(),
       "command": "bench/gptq_vs_llmc.sh " + " ".join(sys.argv[1:3]), "rows": []}
for line in open(os.path.join(out, "ours.tsv")):
    n, secs, _ = line.rstrip("\n").split("\t")
    m = metrics(os.path.join(out, f"ours_{n}.verify.json"))
    res["rows"].append({"tool": "ours", "config": n, "ppl": m["ppl"], "ppl_unquantized": m["ppl_source"],
                        "increase_pct": 100 * (m["ppl"] / m["ppl_source"] - 1),
                        "kl": m["kl"], "top1_pct": m["top1_pct"], "mtp_accept_pct": m["accept_pct"],
                        "mtp_accept_source_pct": m["accept_source_pct"],
                        "seconds": float(secs), "seconds_are": "dsv4-quant wall: load, calibration, GPTQ, pack, write"})
def llmc(file, key, config):
    path = os.path.join(out, file)
    if not os.path.exists(path): return
    r = json.load(open(path))
    res.setdefault("llmc_versions", r.get("versions"))
    if key not in r or "a_unquantized" not in r:
        res["rows"].append({"tool": "llm-compressor", "config": config, "error": r.get("errors")}); return
    a = r["a_unquantized"]["ppl"]
    row = {"tool": "llm-compressor", "config": config, "ppl": r[key]["ppl"], "ppl_unquantized": a,
           "increase_pct": 100 * (r[key]["ppl"] / a - 1), "seconds": r[key].get("oneshot_seconds"),
           "seconds_are": "oneshot() wall (model already loaded and linearized)"}
    if key == "b_gptq" and "b_gptq_reloaded" in r: row["ppl_reloaded"] = r["b_gptq_reloaded"]["ppl"]
    res["rows"].append(row)
llmc("llmc_all_minmax.json", "c_rtn", "rtn")
llmc("llmc_all_minmax.json", "b_gptq", "gptq_all_minmax")
llmc("llmc_routed_minmax.json", "b_gptq", "gptq_routed_minmax")
llmc("llmc_routed_mse.json", "b_gptq", "gptq_routed_mse")
json.dump(res, open(os.path.join(out, "gptq_vs_llmc.json"), "w"), indent=2)
print("%-15s %-20s %10s %10s %9s %9s %8s %8s" % ("tool", "config", "ppl", "unquant", "Δppl%", "kl", "accept%", "seconds"))
for r in res["rows"]:
    if "error" in r: print("%-15s %-20s failed: %s" % (r["tool"], r["config"], r["error"])); continue
    print("%-15s %-20s %10.5f %10.5f %9.3f %9s %8s %8.2f" % (r["tool"], r["config"], r["ppl"], r["ppl_unquantized"],
          r["increase_pct"], "%.5f" % r["kl"] if "kl" in r else "-",
          "%.2f" % r["mtp_accept_pct"] if "mtp_accept_pct" in r else "-", r["seconds"] or 0))
PY
