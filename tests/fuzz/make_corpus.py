#!/usr/bin/env python3
"""Regenerates the seed corpora in tests/fuzz/corpus/<harness>/ from the tiny fixture's real
headers and index, the malformed cases in tests/malformed/, and a few hand-made near-valid inputs.
Standard library only; run from anywhere."""
import hashlib
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(ROOT, "fixtures", "dsv4-tiny")
MAL = os.path.join(ROOT, "tests", "malformed")


def corpus(name):
    d = os.path.join(HERE, "corpus", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def put(d, label, data):
    with open(os.path.join(d, label + "-" + hashlib.sha1(data).hexdigest()[:12]), "wb") as f:
        f.write(data)


def header_seed(path):
    """le64(data region size) + header bytes, as fuzz_st_header reads them."""
    raw = open(path, "rb").read()
    if len(raw) < 8:
        return None
    n = struct.unpack("<Q", raw[:8])[0]
    if 8 + n > len(raw):
        return struct.pack("<Q", 0) + raw[8:]
    return struct.pack("<Q", len(raw) - 8 - n) + raw[8:8 + n]


def reduced_fixture_header(path, keep):
    """The first `keep` tensors (by offset) of a real shard, re-laid from offset 0."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    items = sorted(((k, v) for k, v in h.items() if k != "__metadata__"),
                   key=lambda kv: kv[1]["data_offsets"][0])[:keep]
    out, pos = {"__metadata__": {"format": "pt"}}, 0
    for k, v in items:
        size = v["data_offsets"][1] - v["data_offsets"][0]
        out[k] = {"dtype": v["dtype"], "shape": v["shape"], "data_offsets": [pos, pos + size]}
        pos += size
    text = json.dumps(out, separators=(",", ":")).encode()
    return struct.pack("<Q", pos) + text + b" " * (-len(text) % 8)


def st_header():
    d = corpus("fuzz_st_header")
    put(d, "fixture-shard1", header_seed(os.path.join(FIX, "model-00001-of-00002.safetensors")))
    put(d, "fixture-shard2-first16", reduced_fixture_header(os.path.join(FIX, "model-00002-of-00002.safetensors"), 16))
    for f in ("calib.tokens.safetensors", "golden.logits.safetensors"):
        put(d, "fixture-" + f.split(".")[0], header_seed(os.path.join(FIX, f)))
    for f in sorted(os.listdir(MAL)):
        if f.endswith(".safetensors"):
            s = header_seed(os.path.join(MAL, f))
            if s:
                put(d, "malformed-" + f[:-12], s[:4096])
    put(d, "empty-meta", struct.pack("<Q", 0) + b'{"__metadata__":{"format":"pt"}}')
    put(d, "escapes", struct.pack("<Q", 6) + '{"a\\"\\\\\\n\\u0001\x7f\u00e9":{"dtype":"F4","shape":[3,4],'
        '"data_offsets":[0,6]},"z":{"dtype":"F6_E2M3","shape":[0],"data_offsets":[6,6]}}'.encode())


def index():
    d = corpus("fuzz_index")
    put(d, "fixture", open(os.path.join(FIX, "model.safetensors.index.json"), "rb").read())
    for f in sorted(os.listdir(MAL)):
        p = os.path.join(MAL, f, "model.safetensors.index.json")
        if os.path.exists(p):
            put(d, "malformed-" + f, open(p, "rb").read())
    put(d, "real-total-size", b'{"metadata":{"total_size":1.2e3},"weight_map":{"a":"m.safetensors"}}')
    put(d, "null-metadata", b'{"metadata":null,"weight_map":{"\\u00e9":"x.safetensors","b":"x.safetensors"}}')


def manifest():
    d = corpus("fuzz_manifest")
    h = "0123456789abcdef" * 2
    put(d, "valid", ('{\n  "format": "dsv4-manifest",\n  "version": 1,\n  "hash": "xxh3-128",\n'
                     '  "total_size": 28,\n  "files": {\n    "model.safetensors": {"size": 124, '
                     '"header_len": 96, "tensors": 2}\n  },\n  "tensors": {\n    "a": {"file": '
                     '"model.safetensors", "dtype": "F32", "shape": [2, 3], "nbytes": 24, '
                     '"data_offsets": [0, 24], "xxh3_128": "' + h + '"},\n    "b": {"file": '
                     '"model.safetensors", "dtype": "BF16", "shape": [2], "nbytes": 4, '
                     '"data_offsets": [24, 28], "xxh3_128": "' + h + '"}\n  }\n}\n').encode())
    put(d, "empty", b'{"format": "dsv4-manifest", "hash": "xxh3-128", "total_size": 0, "tensors": {}}')
    put(d, "bad-hash", b'{"format": "dsv4-manifest", "hash": "xxh3-128", "total_size": 0, "tensors": '
        b'{"a": {"file": "f", "dtype": "U8", "shape": [], "nbytes": 1, "xxh3_128": "XYZ"}}}')


def plan():
    d = corpus("fuzz_st_plan")
    # max_shard byte, flags byte, then records: dtype, ndim, dims..., name length, name.
    put(d, "three", bytes([4, 0, 17, 2, 3, 4, 1, ord("a"), 14, 0, 2, ord("b"), ord("\n"),
                           1, 1, 6, 3, 0xC3, 0xA9, 0x7F]))
    put(d, "index", bytes([1, 1, 21, 1, 5, 1, ord("x"), 21, 1, 6, 1, ord("y"), 0, 0, 1, ord('"')]))


if __name__ == "__main__":
    st_header()
    index()
    manifest()
    plan()
