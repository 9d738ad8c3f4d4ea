#!/usr/bin/env python3
"""Generates the malformed safetensors files and checkpoint folders in tests/malformed/, and
expected.tsv: one line per case, "<path relative to tests/malformed>\t<exact error message>",
where {M} stands for the tests/malformed folder as the test opens it. tests/unit/test_malformed.c
opens each case with dsv4_ckpt_open (strict) and compares the message exactly. Run it from any
folder; it rewrites everything it owns and nothing else. Standard library only."""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
cases = []  # (relative path, expected message)


def header_bytes(obj):
    """Compact JSON like serde_json, padded with spaces to a multiple of 8."""
    h = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return h + b" " * (-len(h) % 8)


def st_raw(name, header, data=b"", n=None):
    """Writes 8-byte length + header + data; n overrides the length field."""
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(struct.pack("<Q", len(header) if n is None else n) + header + data)


def st(name, tensors, data):
    """A file from {name: (dtype, shape, [begin, end])} in the given key order."""
    obj = {k: {"dtype": d, "shape": s, "data_offsets": o} for k, (d, s, o) in tensors.items()}
    st_raw(name, header_bytes(obj), data)


def case(path, msg):
    cases.append((path, msg))


def single_files():
    with open(os.path.join(HERE, "short.safetensors"), "wb") as f:
        f.write(b"\x05\x00\x00\x00\x00")
    case("short.safetensors",
         "{M}/short.safetensors: file is 5 bytes, shorter than the 8-byte header length")
    st_raw("header_too_large.safetensors", b"{}", n=100_000_001)
    case("header_too_large.safetensors",
         "{M}/header_too_large.safetensors: header length 100000001 exceeds the 100,000,000-byte limit")
    st_raw("header_past_eof.safetensors", b"{}      ", n=64)
    case("header_past_eof.safetensors",
         "{M}/header_past_eof.safetensors: header length 64 runs past the end of the 16-byte file")
    st_raw("leading_space.safetensors", b' {"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0")
    case("leading_space.safetensors", "{M}/leading_space.safetensors: header does not begin with '{'")
    st_raw("bad_json.safetensors", b'{"a":{"dtype":"F32",}}  ')
    case("bad_json.safetensors",
         "{M}/bad_json.safetensors: header is not valid JSON (line 1, column 21): "
         "string or '}' expected near '}'")
    st_raw("bad_utf8.safetensors", b'{"a\xff":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0")
    case("bad_utf8.safetensors", "{M}/bad_utf8.safetensors: header is not valid UTF-8")
    st_raw("not_object.safetensors", b"[1,2]   ")
    case("not_object.safetensors", "{M}/not_object.safetensors: header does not begin with '{'")
    st_raw("duplicate_key.safetensors",
           b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
           b'"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0")
    case("duplicate_key.safetensors",
         "{M}/duplicate_key.safetensors: header is not valid JSON (line 1, column 56): "
         "duplicate object key near '\"a\"'")
    st("unknown_dtype.safetensors", {"w": ("F31", [2], [0, 8])}, bytes(8))
    case("unknown_dtype.safetensors", "{M}/unknown_dtype.safetensors: tensor 'w': unknown dtype \"F31\"")
    st("size_mismatch.safetensors", {"w": ("F32", [3], [0, 8])}, bytes(8))
    case("size_mismatch.safetensors",
         "{M}/size_mismatch.safetensors: tensor 'w': shape [3] of F32 needs 12 bytes but "
         "data_offsets [0, 8] span 8")
    st("gap.safetensors", {"a": ("F32", [1], [0, 4]), "b": ("F32", [1], [8, 12])}, bytes(12))
    case("gap.safetensors",
         "{M}/gap.safetensors: tensor 'b' starts at byte 8 of the data region but the previous "
         "tensor ends at 4: a gap of 4 bytes (offsets must tile the data region)")
    st("gap_at_start.safetensors", {"a": ("F32", [1], [4, 8])}, bytes(8))
    case("gap_at_start.safetensors",
         "{M}/gap_at_start.safetensors: tensor 'a' starts at byte 4 of the data region but the "
         "previous tensor ends at 0: a gap of 4 bytes (offsets must tile the data region)")
    st("overlap.safetensors", {"a": ("F32", [2], [0, 8]), "b": ("F32", [1], [4, 8])}, bytes(8))
    case("overlap.safetensors",
         "{M}/overlap.safetensors: tensor 'b' starts at byte 4, inside the previous tensor 'a' "
         "which ends at 8 (overlapping data_offsets)")
    st("end_before_begin.safetensors", {"a": ("U8", [0], [4, 0])}, bytes(4))
    case("end_before_begin.safetensors",
         "{M}/end_before_begin.safetensors: tensor 'a': data_offsets [4, 0] end before they begin")
    st("trailing.safetensors", {"a": ("F32", [1], [0, 4])}, bytes(8))
    case("trailing.safetensors",
         "{M}/trailing.safetensors: the data region has 8 bytes but the tensors end at byte 4: "
         "4 trailing bytes")
    st("truncated.safetensors", {"a": ("F32", [2], [0, 8]), "b": ("F32", [2], [8, 16])}, bytes(12))
    case("truncated.safetensors",
         "{M}/truncated.safetensors: tensor 'b': data_offsets end at byte 16 but the data region "
         "has only 12 bytes (truncated file?)")
    st_raw("metadata_not_string.safetensors", header_bytes({"__metadata__": {"format": 1}}))
    case("metadata_not_string.safetensors",
         "{M}/metadata_not_string.safetensors: \"__metadata__\" value for key 'format' is not a string")
    st("negative_shape.safetensors", {"w": ("F32", [-1], [0, 0])}, b"")
    case("negative_shape.safetensors",
         "{M}/negative_shape.safetensors: tensor 'w': shape[0] is not a non-negative integer")
    st("odd_f4.safetensors", {"w": ("F4", [3], [0, 2])}, bytes(2))
    case("odd_f4.safetensors",
         "{M}/odd_f4.safetensors: tensor 'w': shape [3] of F4 is not a whole number of bytes")
    st_raw("extra_key.safetensors",
           header_bytes({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1], "align": 8}}), b"\0")
    case("extra_key.safetensors",
         "{M}/extra_key.safetensors: tensor 'w': unexpected key 'align' (expected only dtype, "
         "shape, data_offsets)")
    st("empty_name.safetensors", {"": ("U8", [1], [0, 1])}, b"\0")
    case("empty_name.safetensors", "{M}/empty_name.safetensors: a tensor has an empty name")


def folder(name, index, shards):
    """A checkpoint folder: index (dict, or raw bytes, or None) and {file: (tensors, data)}."""
    d = os.path.join(HERE, name)
    os.makedirs(d)
    if index is not None:
        with open(os.path.join(d, "model.safetensors.index.json"), "wb") as f:
            f.write(index if isinstance(index, bytes) else (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())
    for fn, (tensors, data) in shards.items():
        st(os.path.join(name, fn), tensors, data)


S1, S2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
A = {"a": ("F32", [1], [0, 4])}
B = {"b": ("F32", [1], [0, 4])}


def index(wm, total):
    return {"metadata": {"total_size": total}, "weight_map": wm}


def index_folders():
    folder("idx_missing_shard", index({"a": S1, "b": S2}, 8), {S1: (A, bytes(4))})
    case("idx_missing_shard",
         "{M}/idx_missing_shard/model.safetensors.index.json: the index names shard " + S2 +
         ", which does not exist")
    folder("idx_tensor_missing", index({"a": S1, "b": S1, "c": S2}, 8), {S1: (A, bytes(4)), S2: ({"c": ("F32", [1], [0, 4])}, bytes(4))})
    case("idx_tensor_missing",
         "{M}/idx_tensor_missing/model.safetensors.index.json: the index lists tensor 'b' in " + S1 +
         ", but none of the shards it names holds it")
    folder("idx_unlisted_tensor", index({"a": S1}, 8), {S1: ({"a": ("F32", [1], [0, 4]), "b": ("F32", [1], [4, 8])}, bytes(8))})
    case("idx_unlisted_tensor",
         "{M}/idx_unlisted_tensor/" + S1 + ": holds tensor 'b', which the index does not list")
    folder("idx_two_shards", index({"a": S1, "b": S2}, 12), {S1: (A, bytes(4)), S2: ({"a": ("F32", [1], [0, 4]), "b": ("F32", [1], [4, 8])}, bytes(8))})
    case("idx_two_shards",
         "tensor 'a' is stored twice, in {M}/idx_two_shards/" + S1 + " and in {M}/idx_two_shards/" + S2)
    folder("idx_wrong_shard", index({"a": S2, "b": S1}, 8), {S1: (A, bytes(4)), S2: (B, bytes(4))})
    case("idx_wrong_shard",
         "{M}/idx_wrong_shard/model.safetensors.index.json: the index lists tensor 'a' in " + S2 +
         ", but it is stored in " + S1)
    # The index names only the second shard; the first (an orphan, which is opened by no one)
    # holds 'a'; it is reported as an orphan shard, and 'a' as held by none of the index's shards.
    folder("idx_orphan_holds_tensor", index({"a": S2, "b": S2}, 8), {S1: (A, bytes(4)), S2: (B, bytes(4))})
    case("idx_orphan_holds_tensor",
         "{M}/idx_orphan_holds_tensor/model.safetensors.index.json: the index lists tensor 'a' in " +
         S2 + ", but none of the shards it names holds it")
    folder("idx_total_size", index({"a": S1, "b": S2}, 9), {S1: (A, bytes(4)), S2: (B, bytes(4))})
    case("idx_total_size",
         "{M}/idx_total_size/model.safetensors.index.json: metadata.total_size is 9 but the shards "
         "hold 8 bytes of tensor data")
    folder("idx_dotdot", index({"a": "../" + S1}, 4), {S1: (A, bytes(4))})
    case("idx_dotdot",
         "{M}/idx_dotdot/model.safetensors.index.json: weight_map entry 'a' must name a .safetensors "
         "file in the same folder")
    folder("idx_not_json", b'{"weight_map": {"a": "' + S1.encode() + b'",}}\n', {S1: (A, bytes(4))})
    case("idx_not_json",
         "{M}/idx_not_json/model.safetensors.index.json: not valid JSON (line 1, column 57): "
         "string or '}' expected near '}'")
    folder("idx_bad_shard", index({"a": S1, "b": S2}, 8), {S1: (A, bytes(4)), S2: (B, bytes(2))})
    case("idx_bad_shard",
         "{M}/idx_bad_shard/" + S2 + ": tensor 'b': data_offsets end at byte 4 but the data region "
         "has only 2 bytes (truncated file?)")


def main():
    for entry in os.listdir(HERE):
        p = os.path.join(HERE, entry)
        if entry.endswith(".safetensors"):
            os.remove(p)
        elif entry.startswith("idx_") and os.path.isdir(p):
            shutil.rmtree(p)
    single_files()
    index_folders()
    with open(os.path.join(HERE, "expected.tsv"), "w") as f:
        f.write("# case\texact error from dsv4_ckpt_open (strict); {M} = this folder as opened\n")
        for path, msg in cases:
            f.write(path + "\t" + msg + "\n")


if __name__ == "__main__":
    main()
