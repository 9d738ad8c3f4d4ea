#!/usr/bin/env python3
"""Checks our packers (libquant/quant/pack.h) against the real compressed-tensors package.

Input: the checkpoint folder (or its model.safetensors) written by tests/interop/pack_vectors.c.
For every BF16 weight there, compressed-tensors' own code
  (a) computes the scales (calculate_qparams / generate_gparam, as an observer would feed them) and
      compresses the weight with its compressor classes (PackedQuantizationCompressor,
      NVFP4PackedCompressor, FloatQuantizationCompressor); the tensors must equal ours byte for
      byte, with the same names, dtypes and shapes;
  (b) decompresses OUR packed tensors; the result must equal our dequantized values: bit for bit
      in float32 through `dequantize` with float32 scales, and after compressed-tensors' own BF16
      rounding through the compressor's `decompress`.
It also compares generate_gparam's NVFP4 global scale with ours for every finite BF16 amax.
For the release-format MXFP4 weights it checks our reading of the source (torch's own
float8_e8m0fnu), then decompresses our NVFP4 and FP8-block conversions with compressed-tensors and
compares them with the source: bit-identical when our report says exact, else the differing
blocks / values and the largest error must match the report.

The reference semantics are compressed-tensors' eager torch path on CPU (CT_ENFORCE_EAGER=1, set
below before the import). When CUDA is present, the compress checks are repeated on the GPU with
the eager path (must match too), and with compressed-tensors' Triton kernels, whose differences are
printed as INFO lines and not counted (its INT kernel divides in float32 without the BF16 rounding
of the torch path).

Prints one PASS/FAIL line per check and "N passed, N failed"; exits 1 on any failure.
Usage: python3 tests/interop/ct_check.py OUT_DIR
"""
import os
import sys

os.environ["CT_ENFORCE_EAGER"] = "1"

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

import compressed_tensors  # noqa: E402
import compressed_tensors.utils.impl_backend as impl_backend  # noqa: E402
from compressed_tensors.compressors.naive_quantized.base import FloatQuantizationCompressor  # noqa: E402
from compressed_tensors.compressors.nvfp4.base import NVFP4PackedCompressor  # noqa: E402
from compressed_tensors.compressors.nvfp4.helpers import unpack_fp4_from_uint8  # noqa: E402
from compressed_tensors.compressors.pack_quantized.base import PackedQuantizationCompressor  # noqa: E402
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme  # noqa: E402
from compressed_tensors.quantization.lifecycle.forward import dequantize  # noqa: E402
from compressed_tensors.quantization.utils import (  # noqa: E402
    calculate_qparams,
    generate_gparam,
    maybe_pad_tensor_for_block_quant,
)

RESULTS = {"pass": 0, "fail": 0}

INT_VIEW = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def report(ok, name, detail=""):
    RESULTS["pass" if ok else "fail"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f" ({detail})" if detail else ""))
    sys.stdout.flush()


def bits_diff(a, b):
    """None when a and b have the same dtype, shape and bytes; else a description."""
    if a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
        return f"dtype/shape {a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}"
    av = a.detach().cpu().contiguous().reshape(-1).view(INT_VIEW[a.element_size()])
    bv = b.detach().cpu().contiguous().reshape(-1).view(INT_VIEW[b.element_size()])
    bad = (av != bv).nonzero()
    if bad.numel() == 0:
        return None
    i = int(bad[0])
    fa, fb = a.reshape(-1)[i], b.reshape(-1)[i]
    return f"{bad.numel()} of {av.numel()} elements differ; first at flat index {i}: {fa.item()!r} vs {fb.item()!r}"


def check_same(name, got, want):
    d = bits_diff(got, want)
    report(d is None, name, d or "")


def guarded(name):
    def deco(fn):
        def run(*a, **k):
            try:
                fn(*a, **k)
            except Exception as exc:  # a crash in compressed-tensors is a failed check
                report(False, name, f"{type(exc).__name__}: {exc}")
        return run
    return deco


# ---- schemes, exactly as the presets (W4A16 / NVFP4A16 / FP8_BLOCK weights) ----

def int4_args(group):
    return QuantizationArgs(num_bits=4, type="int", symmetric=True, strategy="group", group_size=group)


def nvfp4_args():
    return QuantizationArgs(num_bits=4, type="float", strategy="tensor_group", symmetric=True, dynamic=False,
                            group_size=16, scale_dtype=torch.float8_e4m3fn, zp_dtype=torch.float8_e4m3fn)


def fp8_args():
    return QuantizationArgs(num_bits=8, type="float", strategy="block", symmetric=True, dynamic=False,
                            block_structure=[128, 128])


def scheme(args):
    return QuantizationScheme(targets=["Linear"], weights=args)


# ---- scales as an observer computes them (min/max in the weight dtype) ----

def group_minmax(w, g):
    v = w.reshape(w.shape[0], w.shape[1] // g, g)
    return v.amin(dim=-1), v.amax(dim=-1)


def block_minmax(w):
    p = maybe_pad_tensor_for_block_quant(w, (128, 128))
    v = p.reshape(p.shape[0] // 128, 128, p.shape[1] // 128, 128)
    return v.amin(dim=(1, 3)), v.amax(dim=(1, 3))


def ct_int4(w, g):
    args = int4_args(g)
    lo, hi = group_minmax(w, g)
    scale, _ = calculate_qparams(lo, hi, args)
    return PackedQuantizationCompressor.compress({"weight": w, "weight_scale": scale}, scheme(args))


def ct_nvfp4(w):
    args = nvfp4_args()
    gs = generate_gparam(w.amin(), w.amax())
    lo, hi = group_minmax(w, 16)
    scale, _ = calculate_qparams(lo, hi, args, global_scale=gs)
    return NVFP4PackedCompressor.compress({"weight": w, "weight_scale": scale, "weight_global_scale": gs},
                                          scheme(args))


def ct_fp8(w):
    args = fp8_args()
    lo, hi = block_minmax(w)
    scale, _ = calculate_qparams(lo, hi, args)
    return FloatQuantizationCompressor.compress({"weight": w, "weight_scale": scale}, scheme(args))


# ---- compress checks: compressed-tensors' tensors == ours ----

def compare_state(tag, got, T, prefix, names):
    keys = sorted(k for k, v in got.items() if v is not None)
    report(keys == sorted(names), f"{tag}: tensor names", f"ct {keys} vs ours {sorted(names)}")
    for n in names:
        if n in got:
            check_same(f"{tag}: {n}", got[n].cpu(), T[f"{prefix}.{n}"])


def compress_checks(T, w_name, device, label, info=False):
    base = w_name.split(".")[0]
    w = T[w_name].to(device)
    cases = []
    for g in (128, 32):
        if f"{base}.int4_g{g}.weight_packed" in T:
            cases.append((f"int4_g{g}", lambda g=g: ct_int4(w, g), ["weight_packed", "weight_scale", "weight_shape"]))
    if f"{base}.nvfp4.weight_packed" in T:
        cases.append(("nvfp4", lambda: ct_nvfp4(w), ["weight_packed", "weight_scale", "weight_global_scale"]))
    cases.append(("fp8", lambda: ct_fp8(w), ["weight", "weight_scale"]))
    for kind, fn, names in cases:
        tag = f"compress {label} {base}.{kind}"
        prefix = f"{base}.{kind}"
        if info:
            try:
                got = fn()
                diffs = [f"{n}: {bits_diff(got[n].cpu(), T[prefix + '.' + n]) or 'same'}" for n in names]
                print(f"INFO {tag}: " + "; ".join(diffs))
            except Exception as exc:
                print(f"INFO {tag}: {type(exc).__name__}: {exc}")
            continue
        guarded(tag)(lambda: compare_state(tag, fn(), T, prefix, names))()


# ---- decompress checks: compressed-tensors' dequantization of OUR tensors == our values ----

def decompress_checks(T, base):
    for g in (128, 32):
        p = f"{base}.int4_g{g}"
        if f"{p}.weight_packed" not in T:
            continue

        @guarded(f"decompress {p}: bf16 == ours")
        def _int4(p=p, g=g):
            sd = {n: T[f"{p}.{n}"] for n in ("weight_packed", "weight_scale", "weight_shape")}
            out = PackedQuantizationCompressor.decompress(sd, scheme(int4_args(g)))["weight"]
            check_same(f"decompress {p}: bf16 == ours", out, T[f"{p}.dequant"])
        _int4()

    p = f"{base}.nvfp4"
    if f"{p}.weight_packed" in T:
        nvfp4_decompress(p, T[f"{p}.dequant"], T)

    p = f"{base}.fp8"
    fp8_decompress(p, T[f"{p}.dequant"], T)


def nvfp4_dequant_f32(p, T):
    packed, scale, gs = T[f"{p}.weight_packed"], T[f"{p}.weight_scale"], T[f"{p}.weight_global_scale"]
    m, n2 = packed.shape
    x = unpack_fp4_from_uint8(packed, m, n2 * 2, dtype=torch.float32)
    return dequantize(x_q=x, scale=scale.to(torch.float32), args=nvfp4_args(), global_scale=gs, dtype=torch.float32)


def nvfp4_decompress(p, want_f32, T):
    @guarded(f"decompress {p}: f32 == ours")
    def _f32():
        check_same(f"decompress {p}: f32 == ours", nvfp4_dequant_f32(p, T), want_f32)

    @guarded(f"decompress {p}: bf16 == bf16(ours)")
    def _bf16():
        sd = {n: T[f"{p}.{n}"] for n in ("weight_packed", "weight_scale", "weight_global_scale")}
        out = NVFP4PackedCompressor.decompress(sd, scheme(nvfp4_args()))["weight"]
        check_same(f"decompress {p}: bf16 == bf16(ours)", out, want_f32.to(torch.bfloat16))
    _f32()
    _bf16()


def fp8_dequant_f32(p, T):
    q, s = T[f"{p}.weight"], T[f"{p}.weight_scale"]
    return dequantize(x_q=q.to(torch.float32), scale=s.to(torch.float32), args=fp8_args(), dtype=torch.float32)


def fp8_decompress(p, want_f32, T):
    @guarded(f"decompress {p}: f32 == ours")
    def _f32():
        check_same(f"decompress {p}: f32 == ours", fp8_dequant_f32(p, T), want_f32)

    @guarded(f"decompress {p}: bf16 == bf16(ours)")
    def _bf16():
        sd = {"weight": T[f"{p}.weight"], "weight_scale": T[f"{p}.weight_scale"]}
        out = FloatQuantizationCompressor.decompress(sd, scheme(fp8_args()))["weight"]
        check_same(f"decompress {p}: bf16 == bf16(ours)", out, want_f32.to(torch.bfloat16))
    _f32()
    _bf16()


# ---- release MXFP4 and its conversions ----

E2M1 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])


def mx_source_f32(T, base):
    w, s = T[f"{base}.weight"], T[f"{base}.scale"]
    codes = torch.stack((w & 15, w >> 4), dim=-1).reshape(w.shape[0], -1).long()
    vals = E2M1[codes]
    sc = s.to(torch.float32).repeat_interleave(32, dim=1)[:, : vals.shape[1]]
    return vals * sc


def diff_stats(a, b, block):
    """Differing values, differing `block`-wide row blocks, and the largest |a - b| (float64)."""
    ne = a.reshape(-1).view(torch.int32) != b.reshape(-1).view(torch.int32)
    blocks = ne.reshape(-1, block).any(dim=1).sum().item()
    err = (a.double() - b.double()).abs().reshape(-1)[ne].max().item() if ne.any() else 0.0
    return ne.sum().item(), blocks, err


def mx_checks(T, base):
    src = T[f"{base}.dequant"]

    @guarded(f"{base}: source dequant == torch float8_e8m0fnu reading")
    def _src():
        check_same(f"{base}: source dequant == torch float8_e8m0fnu reading", mx_source_f32(T, base), src)
    _src()

    for kind, deq, block in (("nvfp4", nvfp4_dequant_f32, 16), ("fp8", fp8_dequant_f32, 1)):
        p = f"{base}.{kind}"
        rep = T[f"{p}.report"].tolist()
        name = f"{p}: ct dequant vs source, report exact={int(rep[0])} inexact={int(rep[1])} max_err={rep[2]:g}"

        @guarded(name)
        def _conv(p=p, deq=deq, block=block, rep=rep, name=name):
            got = deq(p, T)
            nvals, nblocks, err = diff_stats(got, src, block)
            if rep[0] == 1:
                d = bits_diff(got, src)
                report(d is None, name, d or "bit-identical to the source")
            else:
                counted = nblocks if block > 1 else nvals
                ok = counted == int(rep[1]) and err == rep[2] and counted > 0
                report(ok, name, f"ct sees {counted} differing {'blocks' if block > 1 else 'values'}, max err {err:g}")
        _conv()
    nvfp4_decompress(f"{base}.nvfp4", T[f"{base}.nvfp4.dequant"], T)


def gs_checks(T):
    @guarded("nvfp4 global scale for every finite BF16 amax")
    def _gs():
        amax, ours = T["gs.amax"], T["gs.ours"]
        zero = torch.zeros((), dtype=torch.bfloat16)
        got = torch.cat([generate_gparam(zero, amax[i]) for i in range(amax.numel())])
        check_same("nvfp4 global scale for every finite BF16 amax", got, ours)
    _gs()


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    path = sys.argv[1]
    if os.path.isdir(path):
        path = os.path.join(path, "model.safetensors")
    T = load_file(path)
    print(f"compressed-tensors {compressed_tensors.__version__ if hasattr(compressed_tensors, '__version__') else '?'}, "
          f"torch {torch.__version__}, {len(T)} tensors from {path}")

    weights = [k for k in sorted(T) if k.endswith(".weight") and k.count(".") == 1 and T[k].dtype == torch.bfloat16]
    for w in weights:
        compress_checks(T, w, "cpu", "cpu-eager")
        decompress_checks(T, w.split(".")[0])
    if "gs.amax" in T:
        gs_checks(T)
    for base in ("m", "me"):
        if f"{base}.weight" in T:
            mx_checks(T, base)

    if torch.cuda.is_available():
        for w in weights:
            compress_checks(T, w, "cuda", "cuda-eager")
        impl_backend.ENFORCE_EAGER = False
        for w in weights:
            compress_checks(T, w, "cuda", "cuda-triton", info=True)
        impl_backend.ENFORCE_EAGER = True
    else:
        print("INFO no CUDA device: GPU checks skipped")

    print(f"{RESULTS['pass']} passed, {RESULTS['fail']} failed")
    return 0 if RESULTS["fail"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
