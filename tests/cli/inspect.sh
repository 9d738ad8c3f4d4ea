#!/usr/bin/env bash
# dsv4-inspect end to end: the clean fixture, JSON, --tensor, exit codes, and deviations made by
# editing a copy of the fixture's config and index. Prints PASS/FAIL lines for tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
B="${BUILD:-build}/bin/dsv4-inspect"
FX=fixtures/dsv4-tiny
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
PREFIX=inspect_
. tests/lib/cli.sh

check clean_fixture 0 '^layout +release \(names: release' '667 tensors, 9691374 bytes' 'total_size 9691374 \(matches\)' \
  'layers +layers.0 SWA\+hash \| layers.1 CSA\+hash \| layers.2 HCA \| layers.3 CSA \| mtp.0 SWA$' \
  'MTP +present, complete \(135 of 135' 'FP32 set +intact \(49 of 49' 'inventory +matches: 667 of 667' -- "$B" "$FX"
check json 0 '"layout": "release"' '"clean": true' '"intact": true' '"complete": true' -- "$B" --json "$FX"
check tensor_fp8 0 'fp8_block with layers.0.attn.wq_a.scale -> float32 \[128, 256\]' '0 non-finite' 'xxh3-128 [0-9a-f]{32}' \
  -- "$B" --tensor layers.0.attn.wq_a.weight --device cpu "$FX"
check tensor_fp4 0 'fp4_e2m1 with layers.3.ffn.experts.15.w2.scale -> float32 \[256, 128\]' -- "$B" --tensor layers.3.ffn.experts.15.w2.weight "$FX"
check tensor_int 0 'I64 \[1024, 4\]' 'min 0, max 15' -- "$B" --tensor layers.1.ffn.gate.tid2eid "$FX"
check tensor_missing 2 "no tensor 'layers.0.attn.wq_a' \(did you mean 'layers.0.attn.wq_a.weight'\?\)" -- "$B" --tensor layers.0.attn.wq_a "$FX"
check no_such_path 2 'nope: no such file' -- "$B" "$tmp/nope"
check usage 2 '^usage: dsv4-inspect' -- "$B"
check bad_device 2 '^usage' -- "$B" --device tpu "$FX"

# Config says one hash layer: layer 1 should then be bias-routed, so its tid2eid is unexpected and
# its gate.bias missing.
mkdir "$tmp/hash1" && ln -s "$PWD/$FX"/*.safetensors "$PWD/$FX/model.safetensors.index.json" "$tmp/hash1/"
sed 's/"num_hash_layers": 2/"num_hash_layers": 1/' "$FX/config.json" >"$tmp/hash1/config.json"
check wrong_routing 0 'layers.1 CSA \(FOUND CSA ratio 4, hash routing\)' 'inventory +DEVIATES: 666 of 667' 'FP32 set +BROKEN \(49 of 50' \
  'missing +layers.1.ffn.gate.bias +expected F32 \[16\]' 'unexpected +layers.1.ffn.gate.tid2eid +found I64 \[1024, 4\]' \
  -- "$B" "$tmp/hash1"

# Index drift: a stale total_size, and a shard the index names that is not on disk.
mkdir "$tmp/drift" && ln -s "$PWD/$FX"/*.safetensors "$PWD/$FX/config.json" "$tmp/drift/"
sed 's/"total_size": 9691374/"total_size": 9691375/' "$FX/model.safetensors.index.json" >"$tmp/drift/model.safetensors.index.json"
check stale_total_size 0 'total_size 9691375 \(DIFFERS\)' 'problem .*metadata.total_size is 9691375 but the shards hold 9691374' -- "$B" "$tmp/drift"
rm "$tmp/drift/model-00001-of-00002.safetensors"
check missing_shard 0 'problem .*names shard model-00001-of-00002.safetensors, which does not exist' 'MTP +present, complete' \
  'inventory +DEVIATES' -- "$B" "$tmp/drift"

# A config that breaks an architecture constraint is refused with its key named.
mkdir "$tmp/badcfg" && ln -s "$PWD/$FX"/*.safetensors "$PWD/$FX/model.safetensors.index.json" "$tmp/badcfg/"
sed 's/"o_groups": 2/"o_groups": 3/' "$FX/config.json" >"$tmp/badcfg/config.json"
check bad_config 2 'config.json.*o_groups' -- "$B" "$tmp/badcfg"
exit $((fails > 0))
