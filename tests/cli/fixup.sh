#!/usr/bin/env bash
# dsv4-fixup through the command line: usage errors, a missing artifact, --dry-run writing nothing,
# -o into an existing folder refused, a repair to a new folder and one in place (each re-checked,
# the result byte-identical to dsv4-quant's own output where the repair undoes the damage), and
# idempotence (a second run says "nothing to fix" and writes nothing). PASS/FAIL lines for
# tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
F="${BUILD:-build}/bin/dsv4-fixup"
Q="${BUILD:-build}/bin/dsv4-quant"
FX=fixtures/dsv4-tiny
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
PREFIX=fixup_
. tests/lib/cli.sh
listing() { (cd "$1" && find . -printf '%P %s %T@ %m\n' | sort && cksum * | sort); } # link counts aside
no_temps() { ! ls -d "$1".tmp-* >/dev/null 2>&1; }

"$Q" --quiet --recipe recipes/w4a16-rtn.yaml "$FX" "$tmp/clean" || { echo "FAIL fixup_setup (dsv4-quant)"; exit 1; }
# The damage: a stale index total_size (pure shell), and with python3 two `model.`-prefixed names
# written header-only in a non-reference header.
cp -r "$tmp/clean" "$tmp/bad"
sed -i 's/"total_size": \([0-9]*\)/"total_size": 1\1/' "$tmp/bad/model.safetensors.index.json"
if command -v python3 >/dev/null; then
  python3 - "$tmp/bad" <<'PY'
import json, os, struct, sys
d = sys.argv[1]
ren = {"embed.weight": "model.embed.weight", "layers.1.attn.wq_a.weight_scale": "model.layers.1.attn.wq_a.weight_scale"}
for fn in sorted(os.listdir(d)):
    if not fn.endswith(".safetensors"):
        continue
    p = os.path.join(d, fn); b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    if not any(k in ren for k in h):
        continue
    hb = json.dumps({ren.get(k, k): v for k, v in h.items()}, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    os.unlink(p)
    open(p, "wb").write(struct.pack("<Q", len(hb)) + hb + b[8 + n:])
ip = os.path.join(d, "model.safetensors.index.json"); ix = json.load(open(ip))
ix["weight_map"] = {ren.get(k, k): v for k, v in ix["weight_map"].items()}
json.dump(ix, open(ip, "w"), indent=2, sort_keys=True)
PY
  renamed=1
else
  echo "SKIP fixup_renames (no python3 to rename tensors in a header)"; renamed=0
fi
cp -r "$tmp/bad" "$tmp/bad2"

check usage 2 '^usage: dsv4-fixup' -- "$F"
check no_destination 2 'say where the result goes: -o OUT .* or --in-place' '^usage' -- "$F" "$tmp/bad"
check both_destinations 2 '-o and --in-place exclude each other' -- "$F" "$tmp/bad" -o "$tmp/x" --in-place
check two_artifacts 2 'expected one ARTIFACT path' -- "$F" "$tmp/bad" "$tmp/bad2" -o "$tmp/x"
check bad_threads 2 '--threads expects 1 to 64' -- "$F" "$tmp/bad" -o "$tmp/x" --threads 0
check missing_artifact 2 "$tmp/nope: no such file or folder" -- "$F" "$tmp/nope" -o "$tmp/x"
pass_if missing_artifact_writes_nothing test ! -e "$tmp/x"

before=$(listing "$tmp/bad")
want_ops='index +rebuild model.safetensors.index.json from the shard headers +\[index-total-size\]'
[ $renamed -eq 1 ] && want_ops="$want_ops"'|rename +model.embed.weight -> embed.weight +\[names-model-prefix\]'
check dry_run 0 "$want_ops" 'would apply [0-9]+ ops: .*\(dry run: nothing written\)' -- "$F" "$tmp/bad" --dry-run
check dry_run_with_out 0 'dry run: nothing written' -- "$F" "$tmp/bad" --dry-run -o "$tmp/never"
pass_if dry_run_writes_nothing test "$before" = "$(listing "$tmp/bad")" -a ! -e "$tmp/never"

mkdir "$tmp/exists"
check out_exists 2 'exists: already exists; refusing to overwrite it' -- "$F" "$tmp/bad" -o "$tmp/exists"
check out_exists_dry_run 2 'exists: already exists' -- "$F" "$tmp/bad" -o "$tmp/exists" --dry-run
pass_if out_exists_untouched test -z "$(ls -A "$tmp/exists")"

check repair_out 0 "^wrote $tmp/out" 'PASS: every rule passes' -- "$F" "$tmp/bad" -o "$tmp/out"
pass_if repair_out_left_source test "$before" = "$(listing "$tmp/bad")"
pass_if repair_out_no_temps no_temps "$tmp/out"
same=1
for f in model-00001-of-00001.safetensors model.safetensors.index.json dsv4-manifest.json tokenizer.json; do
  cmp -s "$tmp/clean/$f" "$tmp/out/$f" || { echo "  $f differs from dsv4-quant's"; same=0; }
done
pass_if repair_is_byte_identical_to_quant test $same -eq 1
pass_if provenance grep -q '"tool": "dsv4-fixup"' "$tmp/out/config.json"

out_listing=$(listing "$tmp/out")
check idempotent 0 "^nothing to fix: $tmp/out already satisfies every rule it can repair" -- "$F" "$tmp/out" --in-place
pass_if idempotent_writes_nothing test "$out_listing" = "$(listing "$tmp/out")"

check repair_in_place 0 "^wrote $tmp/bad2" 'PASS: every rule passes' -- "$F" "$tmp/bad2" --in-place --threads 2
pass_if in_place_no_temps no_temps "$tmp/bad2"
same=1
for f in model-00001-of-00001.safetensors model.safetensors.index.json dsv4-manifest.json config.json; do
  cmp -s "$tmp/out/$f" "$tmp/bad2/$f" || { echo "  $f differs between -o and --in-place"; same=0; }
done
pass_if in_place_equals_out test $same -eq 1

check json 0 '"status": "nothing-to-fix"' '"ops": \[\]' -- "$F" "$tmp/out" --dry-run --json
[ $fails -eq 0 ]
