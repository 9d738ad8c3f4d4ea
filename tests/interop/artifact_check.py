#!/usr/bin/env python3
"""Reads dsv4-quant artifacts with the real libraries (run on the GPU machine, which has torch,
safetensors and transformers; compressed-tensors comes as a wheel):

  - safetensors: every file opens and every tensor loads (safe_open, framework "pt"), with the
    dtype and shape its header states; the index's weight_map names exactly the tensors the
    shards hold and its total_size is their byte sum; every tensor's bytes hash to the xxh3-128
    in dsv4-manifest.json (when the xxhash package is there);
  - compressed-tensors: quantization_config validates as its QuantizationConfig (pydantic, extra
    keys forbidden), and every config group's targets match at least one module;
  - transformers: config.json loads as DeepseekV4Config.

Prints one PASS/FAIL line per check and "N passed, N failed"; exits 1 on any failure.
Usage: python3 tests/interop/artifact_check.py ARTIFACT...
"""
import json
import os
import re
import sys

import torch  # noqa: F401  (safetensors' pt framework)
from safetensors import safe_open

results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(("PASS " if ok else "FAIL ") + name + ("" if ok or not detail else ": " + detail), flush=True)


def dtype_name(t):
    return {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32", torch.int64: "I64",
            torch.int32: "I32", torch.int8: "I8", torch.uint8: "U8", torch.float8_e4m3fn: "F8_E4M3",
            torch.float8_e8m0fnu: "F8_E8M0", torch.float64: "F64", torch.bool: "BOOL"}.get(t.dtype, str(t.dtype))


def header(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n))


def check_artifact(art):
    tag = os.path.basename(art.rstrip("/"))
    shards = sorted(f for f in os.listdir(art) if f.endswith(".safetensors"))
    names, total, bad = {}, 0, []
    for s in shards:
        h = header(os.path.join(art, s))
        with safe_open(os.path.join(art, s), framework="pt") as f:
            for k in f.keys():
                t = f.get_tensor(k)
                want = h[k]
                if dtype_name(t) != want["dtype"] or list(t.shape) != want["shape"]:
                    bad.append(f"{k}: {dtype_name(t)} {list(t.shape)} vs header {want['dtype']} {want['shape']}")
                names[k] = s
                total += want["data_offsets"][1] - want["data_offsets"][0]
    check(f"{tag}: safetensors loads {len(names)} tensors from {len(shards)} files", not bad and names, "; ".join(bad[:3]))
    ix = json.load(open(os.path.join(art, "model.safetensors.index.json")))
    check(f"{tag}: index weight_map == shard contents", ix["weight_map"] == names,
          f"{len(set(ix['weight_map']) ^ set(names))} names differ")
    check(f"{tag}: index total_size == tensor bytes ({total})", ix["metadata"]["total_size"] == total,
          str(ix["metadata"]["total_size"]))
    try:
        import xxhash
        man = json.load(open(os.path.join(art, "dsv4-manifest.json")))
        wrong = []
        for s in shards:
            h = header(os.path.join(art, s))
            with open(os.path.join(art, s), "rb") as f:
                blob = f.read()
            base = 8 + int.from_bytes(blob[:8], "little")
            for k, v in h.items():
                if k == "__metadata__":
                    continue
                a, b = v["data_offsets"]
                if xxhash.xxh3_128_hexdigest(blob[base + a:base + b]) != man["tensors"][k]["xxh3_128"]:
                    wrong.append(k)
        check(f"{tag}: every tensor matches its xxh3-128 in dsv4-manifest.json", not wrong, ", ".join(wrong[:3]))
    except ImportError:
        print(f"SKIP {tag}: xxhash package not installed")
    cfg = json.load(open(os.path.join(art, "config.json")))
    qc = cfg.get("quantization_config")
    if qc and qc.get("quant_method") == "compressed-tensors":
        from compressed_tensors import QuantizationConfig
        try:
            QuantizationConfig.model_validate({k: v for k, v in qc.items() if k != "scale_fmt"})
            check(f"{tag}: compressed-tensors QuantizationConfig accepts quantization_config", True)
        except Exception as ex:  # the exact pydantic error is the evidence
            check(f"{tag}: compressed-tensors QuantizationConfig accepts quantization_config", False, str(ex)[:400])
        modules = {k.rsplit(".", 1)[0] for k in names}
        for g, grp in qc.get("config_groups", {}).items():
            hit = 0
            for t in grp["targets"]:
                pat = t[3:] if t.startswith("re:") else None
                hit += sum(1 for m in modules for full in (m, "model." + m)
                           if (re.match(pat, full) if pat else full == t))
            check(f"{tag}: config group {g} targets match on-disk modules ({hit})", hit > 0)
    try:
        from transformers import AutoConfig
        c = AutoConfig.from_pretrained(art)
        check(f"{tag}: transformers loads config.json as {type(c).__name__} "
              f"({c.num_hidden_layers} layers)", type(c).__name__ == "DeepseekV4Config")
    except Exception as ex:
        check(f"{tag}: transformers loads config.json", False, str(ex)[:400])


for a in sys.argv[1:]:
    check_artifact(a)
p = sum(results)
print(f"{p} passed, {len(results) - p} failed")
sys.exit(0 if p == len(results) else 1)
