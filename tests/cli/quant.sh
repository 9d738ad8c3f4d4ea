#!/usr/bin/env bash
# dsv4-quant end to end through the command line: dry run, a conversion, --compare-tensor on the
# result (identical, then after flipping a byte), and the refusals (output exists, truncated
# shard, bad recipe), each of which must leave nothing at OUT. PASS/FAIL lines for tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
Q="${BUILD:-build}/bin/dsv4-quant"
FX=fixtures/dsv4-tiny
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
PREFIX=quant_
. tests/lib/cli.sh

check dry_run 0 'layers.0.ffn.experts.0.w1.weight_packed +I32 +\[128, 32\]' 'mtp.0.head.weight' '^plan: [0-9]+ tensors' \
  '^peak memory' -- "$Q" --recipe recipes/w4a16-rtn.yaml --dry-run "$FX" "$tmp/never"
absent dry_run_writes_nothing "$tmp/never"
check convert 0 "^dsv4-quant: wrote $tmp/a: [0-9]+ tensors" -- "$Q" --recipe recipes/w4a16-rtn.yaml --threads 2 "$FX" "$tmp/a"
check compare_identical 0 'identical' -- "$Q" --recipe recipes/w4a16-rtn.yaml --compare-tensor layers.2.ffn.experts.5.w2.weight_packed "$FX" "$tmp/a"
# Flip one byte inside the first shard's first weight_packed tensor, then compare that tensor.
flip_byte() { # flip_byte SHARD: prints the name of the tensor it changed
  python3 - "$1" <<'PY'
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
name = sorted(k for k in h if k.endswith('weight_packed'))[0]
b[8 + n + h[name]['data_offsets'][0] + 5] ^= 0x11
open(p, 'wb').write(b)
print(name)
PY
}
if command -v python3 >/dev/null; then
  cp -r "$tmp/a" "$tmp/b"
  name=$(flip_byte "$(ls "$tmp"/b/model-*.safetensors | head -1)")
  check compare_differs 3 "DIFFERS from byte 5 of" -- "$Q" --recipe recipes/w4a16-rtn.yaml --compare-tensor "$name" "$FX" "$tmp/b"
else
  echo "SKIP quant_compare_differs (no python3 to flip a byte)"
fi
check output_exists 2 'already exists; refusing' -- "$Q" --recipe recipes/w4a16-rtn.yaml "$FX" "$tmp/a"
mkdir "$tmp/trunc" && cp "$FX"/*.json "$tmp/trunc/" && cp "$FX"/model-00002-of-00002.safetensors "$tmp/trunc/"
head -c 3000000 "$FX"/model-00001-of-00002.safetensors >"$tmp/trunc/model-00001-of-00002.safetensors"
check truncated_shard 2 'model-00001-of-00002.safetensors: .*(truncated|past the end)' -- "$Q" --recipe recipes/w4a16-rtn.yaml "$tmp/trunc" "$tmp/c"
absent truncated_leaves_nothing "$tmp/c"
printf 'groups:\n  - name: experts\n    schem: w4a16\n' >"$tmp/bad.yaml"
check bad_recipe 2 "bad.yaml:3:5: group 'experts': unknown key 'schem'" -- "$Q" --recipe "$tmp/bad.yaml" "$FX" "$tmp/d"
absent bad_recipe_leaves_nothing "$tmp/d"
check usage 2 '^usage: dsv4-quant' -- "$Q" "$FX"
exit $((fails > 0))
