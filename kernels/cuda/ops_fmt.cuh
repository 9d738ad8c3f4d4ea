/* Device-side decoding of the packed linear-weight formats of kernels/ops.h, bit for bit the values
 * dsv4_lin_dequant_f32 (kernels/cpu/lin_format.c) produces:
 *   F32        w
 *   BF16       f32(w)
 *   FP8_BLOCK  e4m3(q) · s[r/128, c/128]                (float scales)
 *   MXFP4      E2M1[code] · 2^(e-127)                   (e8m0 per 32 along in; 0xFF = NaN)
 *   INT4       bf16_rne((u-8) · f32(bf16 s[r, c/group]))
 *   NVFP4      E2M1[code] · f32(e4m3(s[r, c/16]) / gscale)
 * Each product is one IEEE rounding of exactly representable factors (__fmul_rn, __fdiv_rn), as on
 * the host. Two entry points per format: one element (any shape), and 8 consecutive elements
 * c..c+7 (c % 8 == 0) from their packed bytes already loaded into registers (`raw`, B8 bytes),
 * which is what the GEMV and tiled kernels use. FP8 goes through the hardware e4m3x2 -> f16x2
 * conversion (exact); E2M1 magnitudes are built from their bits. */
#ifndef DSV4_OPS_FMT_CUH
#define DSV4_OPS_FMT_CUH

#include "ops_cuda.cuh"

#include <cuda_fp16.h>
#include <cuda_fp8.h>

namespace dsv4cu {

/* What a kernel needs to address a weight's rows and scales. */
struct wview {
    const uint8_t *w, *s;
    float gscale;
    int64_t in, w_row_bytes, s_cols;
    int group;
};

__device__ __forceinline__ float bf16f(uint32_t h) { return __uint_as_float(h << 16); }

/* float -> bf16 -> float, round to nearest even, NaN kept quiet with its sign (formats/fp.c). */
__device__ __forceinline__ float bf16_round(float x)
{
    uint32_t u = __float_as_uint(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)
        return __uint_as_float((u & 0x80000000u) | 0x7FC00000u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return __uint_as_float(u & 0xFFFF0000u);
}

__device__ __forceinline__ float e8m0f(uint32_t b)
{
    if (b == 0xFFu)
        return __uint_as_float(0x7FC00000u);
    return __uint_as_float(b ? b << 23 : 0x00400000u);
}

/* E2M1 code (bit 3 sign) to float: magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6. */
__device__ __forceinline__ float e2m1f(uint32_t c)
{
    uint32_t m = c & 7u;
    uint32_t bits = m >= 2u ? (((m >> 1) + 126u) << 23) | ((m & 1u) << 22) : (m ? 0x3F000000u : 0u);
    return __uint_as_float(bits | ((c & 8u) << 28));
}

__device__ __forceinline__ float2 e4m3x2f(uint32_t two)
{
    __half2_raw h = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)(two & 0xFFFFu), __NV_E4M3);
    return __half22float2(*reinterpret_cast<__half2 *>(&h));
}

__device__ __forceinline__ float e4m3f(uint32_t b) { return e4m3x2f(b).x; }

template <int F> struct fmt;

template <> struct fmt<DSV4_LW_F32> {
    static constexpr int B8 = 32; /* bytes of 8 elements */
    __device__ static float one(const wview &v, int64_t r, int64_t c)
    {
        return reinterpret_cast<const float *>(v.w + r * v.w_row_bytes)[c];
    }
    __device__ static void eight(const wview &, int64_t, int64_t, const uint32_t *raw, float *o)
    {
#pragma unroll
        for (int k = 0; k < 8; k++)
            o[k] = __uint_as_float(raw[k]);
    }
};

template <> struct fmt<DSV4_LW_BF16> {
    static constexpr int B8 = 16;
    __device__ static float one(const wview &v, int64_t r, int64_t c)
    {
        return bf16f(reinterpret_cast<const uint16_t *>(v.w + r * v.w_row_bytes)[c]);
    }
    __device__ static void eight(const wview &, int64_t, int64_t, const uint32_t *raw, float *o)
    {
#pragma unroll
        for (int k = 0; k < 4; k++) {
            o[2 * k] = __uint_as_float(raw[k] << 16);
            o[2 * k + 1] = __uint_as_float(raw[k] & 0xFFFF0000u);
        }
    }
};

template <> struct fmt<DSV4_LW_FP8_BLOCK> {
    static constexpr int B8 = 8;
    __device__ static float scale(const wview &v, int64_t r, int64_t c)
    {
        return reinterpret_cast<const float *>(v.s)[(r >> 7) * v.s_cols + (c >> 7)];
    }
    __device__ static float one(const wview &v, int64_t r, int64_t c)
    {
        return __fmul_rn(e4m3f(v.w[r * v.w_row_bytes + c]), scale(v, r, c));
    }
    __device__ static void eight(const wview &v, int64_t r, int64_t c, const uint32_t *raw, float *o)
    {
        float s = scale(v, r, c);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float2 f = e4m3x2f(raw[k >> 1] >> (16 * (k & 1)));
            o[2 * k] = __fmul_rn(f.x, s);
            o[2 * k + 1] = __fmul_rn(f.y, s);
        }
    }
};

/* The three 4-bit formats: element c of a row is nibble c%8 (low first) of 32-bit word c/8. */
__device__ __forceinline__ uint32_t nibble(const wview &v, int64_t r, int64_t c)
{
    return (uint32_t)(v.w[r * v.w_row_bytes + (c >> 1)] >> (4 * (c & 1))) & 15u;
}

/* The two FP4 formats differ only in their group scale: MXFP4 e8m0 per 32, NVFP4 e4m3 per 16
 * divided by the global scale. */
template <class S> struct fp4_fmt {
    static constexpr int B8 = 4;
    __device__ static float scale(const wview &v, int64_t r, int64_t c) { return S::scale(v, r, c); }
    __device__ static float one(const wview &v, int64_t r, int64_t c)
    {
        return __fmul_rn(e2m1f(nibble(v, r, c)), S::scale(v, r, c));
    }
    __device__ static void eight(const wview &v, int64_t r, int64_t c, const uint32_t *raw, float *o)
    {
        float s = S::scale(v, r, c);
#pragma unroll
        for (int k = 0; k < 8; k++)
            o[k] = __fmul_rn(e2m1f(raw[0] >> (4 * k)), s);
    }
};

struct mx_scale {
    __device__ static float scale(const wview &v, int64_t r, int64_t c) { return e8m0f(v.s[r * v.s_cols + (c >> 5)]); }
};
struct nv_scale {
    __device__ static float scale(const wview &v, int64_t r, int64_t c)
    {
        return __fdiv_rn(e4m3f(v.s[r * v.s_cols + (c >> 4)]), v.gscale);
    }
};
template <> struct fmt<DSV4_LW_MXFP4> : fp4_fmt<mx_scale> {};
template <> struct fmt<DSV4_LW_NVFP4> : fp4_fmt<nv_scale> {};

template <> struct fmt<DSV4_LW_INT4> {
    static constexpr int B8 = 4;
    __device__ static float scale(const wview &v, int64_t r, int64_t c)
    {
        return bf16f(reinterpret_cast<const uint16_t *>(v.s)[r * v.s_cols + c / v.group]);
    }
    __device__ static float val(uint32_t u, float s) { return bf16_round(__fmul_rn((float)((int)u - 8), s)); }
    __device__ static float one(const wview &v, int64_t r, int64_t c) { return val(nibble(v, r, c), scale(v, r, c)); }
    /* needs group % 8 == 0 (one scale per 8 elements); the kernels check it */
    __device__ static void eight(const wview &v, int64_t r, int64_t c, const uint32_t *raw, float *o)
    {
        float s = scale(v, r, c);
#pragma unroll
        for (int k = 0; k < 8; k++)
            o[k] = val((raw[0] >> (4 * k)) & 15u, s);
    }
};

/* Loads the B8 packed bytes of elements c..c+7 of row r (16-byte or smaller aligned loads). */
template <int B8> __device__ __forceinline__ void load8(const uint8_t *p, uint32_t *raw)
{
    if constexpr (B8 == 32) {
        uint4 a = reinterpret_cast<const uint4 *>(p)[0], b = reinterpret_cast<const uint4 *>(p)[1];
        raw[0] = a.x, raw[1] = a.y, raw[2] = a.z, raw[3] = a.w, raw[4] = b.x, raw[5] = b.y, raw[6] = b.z, raw[7] = b.w;
    } else if constexpr (B8 == 16) {
        uint4 a = *reinterpret_cast<const uint4 *>(p);
        raw[0] = a.x, raw[1] = a.y, raw[2] = a.z, raw[3] = a.w;
    } else if constexpr (B8 == 8) {
        uint2 a = *reinterpret_cast<const uint2 *>(p);
        raw[0] = a.x, raw[1] = a.y;
    } else {
        raw[0] = *reinterpret_cast<const uint32_t *>(p);
    }
}

/* 8 consecutive floats of an activation row, vectorized when `vec` (16-byte aligned). */
__device__ __forceinline__ void loadx8(const float *p, bool vec, float *o)
{
    if (vec) {
        float4 a = reinterpret_cast<const float4 *>(p)[0], b = reinterpret_cast<const float4 *>(p)[1];
        o[0] = a.x, o[1] = a.y, o[2] = a.z, o[3] = a.w, o[4] = b.x, o[5] = b.y, o[6] = b.z, o[7] = b.w;
    } else {
#pragma unroll
        for (int k = 0; k < 8; k++)
            o[k] = p[k];
    }
}

} // namespace dsv4cu

#endif
