#!/usr/bin/env python3
"""Writes tests/data/fp_vectors.bin: float32 inputs and the codes an independent implementation
(ml_dtypes for bf16/e4m3fn/e5m2/e8m0fnu/e2m1fn, numpy for f16) gives for them, so that
tests/unit/test_fp_vectors.c can check libquant/formats/fp*.c bit for bit without Python.

The committed file was produced with ml_dtypes 0.6.0 and numpy 2.4.6 (recorded in the header).
Regenerate with:  pip install ml_dtypes numpy && python3 tests/gen/gen_fp_vectors.py

Layout (little-endian):
  header (64 bytes): magic "DSV4FPV1", u32 n_records, u32 record_size (16),
                     48 bytes NUL-padded text "ml_dtypes X numpy Y"
  decode tables: u32 float32 bits of every code: e4m3fn[256], e5m2[256], e8m0fnu[256], e2m1fn[16]
  n_records records of 16 bytes:
    u32 input float32 bits
    u16 bf16            (ml_dtypes cast)
    u16 f16             (numpy cast)
    u8  e4m3 cast       (ml_dtypes float8_e4m3fn: overflow -> NaN)
    u8  e4m3 saturating (ml_dtypes cast of np.clip(x, -448, 448))
    u8  e5m2 cast       (ml_dtypes float8_e5m2: overflow -> inf)
    u8  e5m2 saturating (ml_dtypes cast of np.clip(x, -57344, 57344))
    u8  e8m0            (ml_dtypes float8_e8m0fnu)
    u8  e2m1            (ml_dtypes float4_e2m1fn, one code per byte)
    u8  ceil-pow2 e8m0  (exact 127 + ceil(log2 x) for positive normal float32 x, else 0)
    u8  0
"""
import math
import os
import struct
import sys

import ml_dtypes
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "fp_vectors.bin")
rng = np.random.default_rng(20261122)


def f32(bits):
    return np.array(bits, dtype=np.uint32).view(np.float32)


def bits_of(vals):
    return [int(b) for b in np.array(vals, dtype=np.float32).view(np.uint32)]


def around(b):
    """The float32 bits b and its two neighbours of the same sign (nextafter down/up)."""
    out = [b]
    if b & 0x7FFFFFFF:
        out.append(b - 1)
    if (b & 0x7FFFFFFF) < 0x7F800000:
        out.append(b + 1)
    return out


def mids_of(values):
    """Each value, each midpoint between neighbours (the ties), and their float32 neighbours,
    both signs. Midpoints of these small formats are exact in float32."""
    vals = sorted(set(float(v) for v in values if np.isfinite(v) and v >= 0))
    pts = list(vals) + [(a + b) / 2 for a, b in zip(vals, vals[1:])]
    out = []
    for p in pts:
        b = bits_of([p])[0]
        assert float(f32([b])[0]) == p
        for x in around(b):
            out += [x, x | 0x80000000]
    return out


def all_values(dtype, ncodes=256):
    return f32(np.arange(ncodes, dtype=np.uint8).view(dtype).astype(np.float32).view(np.uint32))


inputs = []
# specials: zeros, infinities, quiet and signalling NaNs with payloads, float32 extremes
inputs += [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001,
           0xFF800001, 0x7FFFFFFF, 0x7FC00001, 0x7F812345, 0xFFA00000, 0x7F7FFFFF, 0xFF7FFFFF,
           0x00800000, 0x00000001, 0x80000001, 0x00400000, 0x00400001, 0x003FFFFF, 0x00600000,
           0x00200000, 0x007FFFFF, 0x80400000]
# every representable value of the 8- and 4-bit formats, the ties between neighbours, +-1 ulp,
# and the overflow thresholds just past the largest finite value
for dt, top in [(ml_dtypes.float8_e4m3fn, [448, 464, 480, 512, 1e6]),
                (ml_dtypes.float8_e5m2, [57344, 61440, 65536, 1e9]),
                (ml_dtypes.float4_e2m1fn, [6, 7, 8, 100])]:
    n = 16 if dt is ml_dtypes.float4_e2m1fn else 256
    inputs += mids_of(list(all_values(dt, n)) + top)
# e8m0: powers of two 2^-127..2^127 and the linear midpoints 1.5*2^e, plus neighbours
for e in range(-127, 128):
    for p in (math.ldexp(1.0, e), math.ldexp(1.5, e)):
        for x in around(bits_of([p])[0]):
            inputs += [x]
inputs += [x | 0x80000000 for x in around(bits_of([1.0])[0]) + around(bits_of([1.5])[0])]
# bf16: exact values, ties and neighbours for a sample of codes, the subnormal range and the top
codes16 = list(rng.integers(0, 0x7F80, 300)) + list(range(0, 8)) + list(range(0x7F70, 0x7F80))
for c in codes16:
    tie = (int(c) << 16) + 0x8000
    for x in [int(c) << 16] + around(tie):
        inputs += [x, x | 0x80000000]
# f16: values, ties and neighbours for sampled codes incl. subnormals and the overflow edge
hcodes = list(rng.integers(0, 0x7C00, 300)) + list(range(0, 12)) + list(range(0x3FF, 0x402)) \
    + list(range(0x7BF8, 0x7C00))
hval = np.arange(0x7C01, dtype=np.uint16).view(np.float16).astype(np.float64)
for c in hcodes:
    c = int(c)
    tie = (hval[c] + hval[c + 1]) / 2
    for x in bits_of([hval[c]]) + around(bits_of([tie])[0]):
        inputs += [x, x | 0x80000000]
inputs += bits_of([65504, 65519, 65520, 65536, 2.0**-24, 2.0**-25, 2.0**-26, 1.5 * 2.0**-25])
# random bit patterns and log-uniform magnitudes
inputs += [int(b) for b in rng.integers(0, 2**32, 1000, dtype=np.uint64)]
logu = np.exp2(rng.uniform(-40, 40, 1000)) * rng.choice([-1.0, 1.0], 1000)
inputs += bits_of(logu)

inputs = sorted(set(int(x) & 0xFFFFFFFF for x in inputs))
x = f32(inputs)


def cast8(dtype, v):
    return np.asarray(v, dtype=np.float32).astype(dtype).view(np.uint8)


def ceil_pow2(b):
    v = float(f32([b])[0])
    if not (np.isfinite(v) and v > 0 and (b >> 23) & 0xFF != 0):
        return 0
    m, e = math.frexp(v)  # v = m * 2^e, 0.5 <= m < 1
    k = e - 1 if m == 0.5 else e
    return min(127 + k, 255)


with np.errstate(all="ignore"):
    bf = x.astype(ml_dtypes.bfloat16).view(np.uint16)
    hf = x.astype(np.float16).view(np.uint16)
    e4c = cast8(ml_dtypes.float8_e4m3fn, x)
    e4s = cast8(ml_dtypes.float8_e4m3fn, np.clip(x, -448, 448))
    e5c = cast8(ml_dtypes.float8_e5m2, x)
    e5s = cast8(ml_dtypes.float8_e5m2, np.clip(x, -57344, 57344))
    e8 = cast8(ml_dtypes.float8_e8m0fnu, x)
    e2 = cast8(ml_dtypes.float4_e2m1fn, x)

version = f"ml_dtypes {ml_dtypes.__version__} numpy {np.__version__}".encode()
assert len(version) < 48
out = bytearray(b"DSV4FPV1" + struct.pack("<II", len(inputs), 16) + version.ljust(48, b"\0"))
for dt, n in [(ml_dtypes.float8_e4m3fn, 256), (ml_dtypes.float8_e5m2, 256),
              (ml_dtypes.float8_e8m0fnu, 256), (ml_dtypes.float4_e2m1fn, 16)]:
    out += all_values(dt, n).view(np.uint32).astype("<u4").tobytes()
for i, b in enumerate(inputs):
    out += struct.pack("<IHHBBBBBBBB", b, bf[i], hf[i], e4c[i], e4s[i], e5c[i], e5s[i], e8[i],
                       e2[i], ceil_pow2(b), 0)
with open(OUT, "wb") as f:
    f.write(out)
print(f"{OUT}: {len(inputs)} records, {len(out)} bytes ({version.decode()})", file=sys.stderr)
