/* CUDA implementation of kernels/dequant.h: FP8-block and FP4-expert dequantization to float32 or
 * bf16 on the GPU. Each thread turns a chunk of weight bytes (8 for f32 output, 16 for bf16) into
 * as many (FP8) or twice as many (FP4) outputs under one scale, with vector loads and 16-byte
 * stores when the row length and pointers allow, and byte loops otherwise. E4M3 is decoded by the hardware e4m3x2 -> f16x2 conversion (exact), E2M1 through a
 * 16-entry shared table (one bank per entry, so no conflicts); then a multiply by the power-of-two
 * scale. bf16 uses the same RNE rule as the host (libquant/formats/fp_round.h), so the results
 * equal libquant's bit for bit (NaN bits aside: the GPU's multiply returns its canonical NaN).
 * Index arithmetic is 32-bit when the tensor's chunk count allows (64-bit division is slow). */
extern "C" {
#include "util/err.h"
#include "formats/dtype.h"
}
#include "dequant.h"

#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace {

constexpr int kThreads = 256;
/* Weight bytes per thread: 16 for bf16 outputs, 8 for f32 (fewer stores per thread, more threads). */
template <typename T> __host__ __device__ constexpr int chunk() { return sizeof(T) == 4 ? 8 : 16; }

/* Two e4m3 codes (low byte first) to two floats, exactly, via the hardware conversion to f16. */
__device__ float2 e4m3x2_decode(uint32_t two)
{
    __half2_raw h = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)two, __NV_E4M3);
    return __half22float2(*reinterpret_cast<__half2 *>(&h));
}

__device__ float e2m1_decode(uint32_t c)
{
    const float mag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    float v = mag[c & 7u];
    return (c & 8u) ? -v : v;
}

__device__ float e8m0_decode(uint32_t b)
{
    if (b == 0xFFu)
        return __uint_as_float(0x7FC00000u);
    return __uint_as_float(b ? b << 23 : 0x00400000u);
}

__device__ uint16_t bf16_rne(float x)
{
    uint32_t u = __float_as_uint(x), sign = (u >> 16) & 0x8000u, a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u)
        return (uint16_t)(sign | 0x7FC0u);
    uint32_t q = a >> 16, rem = a & 0xFFFFu;
    if (rem > 0x8000u || (rem == 0x8000u && (q & 1u)))
        q++;
    return (uint16_t)(sign | q);
}

template <typename T> __device__ T to_out(float v);
template <> __device__ float to_out<float>(float v) { return v; }
template <> __device__ uint16_t to_out<uint16_t>(float v) { return bf16_rne(v); }

/* n outputs from the staging array to o, as 16-byte stores when `vec`. */
template <typename T, int N> __device__ void store(T *o, const T (&v)[N], bool vec, int n)
{
    if (vec) {
        const uint4 *src = reinterpret_cast<const uint4 *>(v);
        uint4 *dst = reinterpret_cast<uint4 *>(o);
#pragma unroll
        for (int k = 0; k < (int)(N * sizeof(T) / 16); k++)
            dst[k] = src[k];
    } else {
        for (int k = 0; k < n; k++)
            o[k] = v[k];
    }
}

/* Weight bytes [c0, c0 + n) of a row into b (n <= C), one C-byte load when `vec`. */
template <int C> __device__ void load(const uint8_t *w, bool vec, int n, uint8_t (&b)[C])
{
    if (vec) {
        uint32_t words[C / 4];
        if constexpr (C == 16) {
            uint4 v = *reinterpret_cast<const uint4 *>(w);
            words[0] = v.x, words[1] = v.y, words[2] = v.z, words[3] = v.w;
        } else {
            uint2 v = *reinterpret_cast<const uint2 *>(w);
            words[0] = v.x, words[1] = v.y;
        }
#pragma unroll
        for (int k = 0; k < C; k++)
            b[k] = (uint8_t)(words[k / 4] >> (8 * (k % 4)));
    } else {
        for (int k = 0; k < n; k++)
            b[k] = w[k];
    }
}

template <typename T, typename I>
__global__ void fp8_block_kernel(const uint8_t *__restrict__ w, const uint8_t *__restrict__ s,
                                 T *__restrict__ out, I rows, I cols, I s_cols, bool vec)
{
    constexpr int C = chunk<T>();
    I per_row = (cols + C - 1) / C, total = rows * per_row;
    for (I idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
        I r = idx / per_row, c0 = (idx - r * per_row) * C;
        int n = (int)(cols - c0 < (I)C ? cols - c0 : (I)C);
        float sc = e8m0_decode(s[(r / DSV4_FP8_BLOCK) * s_cols + c0 / DSV4_FP8_BLOCK]);
        uint8_t b[C] = {};
        load<C>(w + (int64_t)r * cols + c0, vec, n, b);
        __align__(16) T v[C];
#pragma unroll
        for (int k = 0; k < C; k += 2) {
            float2 f = e4m3x2_decode(b[k] | (uint32_t)b[k + 1] << 8);
            v[k] = to_out<T>(f.x * sc);
            v[k + 1] = to_out<T>(f.y * sc);
        }
        store(out + (int64_t)r * cols + c0, v, vec, n);
    }
}

/* FP4: a chunk of 8 or 16 packed bytes (16 or 32 elements) lies inside one 32-element scale group. */
template <typename T, typename I>
__global__ void fp4_kernel(const uint8_t *__restrict__ w, const uint8_t *__restrict__ s,
                           T *__restrict__ out, I rows, I nb, I s_cols, bool vec)
{
    __shared__ float lut[16];
    if (threadIdx.x < 16)
        lut[threadIdx.x] = e2m1_decode(threadIdx.x);
    __syncthreads();
    constexpr int C = chunk<T>();
    I per_row = (nb + C - 1) / C, total = rows * per_row;
    for (I idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
        I r = idx / per_row, k0 = (idx - r * per_row) * C;
        int n = (int)(nb - k0 < (I)C ? nb - k0 : (I)C);
        float sc = e8m0_decode(s[r * s_cols + k0 / (DSV4_FP4_GROUP / 2)]);
        uint8_t b[C] = {};
        load<C>(w + (int64_t)r * nb + k0, vec, n, b);
        __align__(16) T v[2 * C];
#pragma unroll
        for (int k = 0; k < C; k++) {
            v[2 * k] = to_out<T>(lut[b[k] & 15u] * sc);
            v[2 * k + 1] = to_out<T>(lut[b[k] >> 4] * sc);
        }
        store(out + 2 * ((int64_t)r * nb + k0), v, vec, 2 * n);
    }
}

int cuda_fail(dsv4_err *e, const dsv4_qweight *q, const char *what, cudaError_t rc)
{
    return dsv4_fail_rt(e, "%s: %s failed: %s", q->name ? q->name : "(unnamed)", what, cudaGetErrorString(rc));
}

int64_t out_elems(dsv4_qformat fmt, const dsv4_qweight *q)
{
    return q->w_rows * q->w_cols * (fmt == DSV4_QFMT_FP4 ? 2 : 1);
}

int64_t in_bytes(const dsv4_qweight *q) { return q->w_rows * q->w_cols + q->s_rows * q->s_cols; }

size_t out_bytes(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t)
{
    return (size_t)out_elems(fmt, q) * (out_t == DSV4_F32 ? 4 : 2);
}

template <typename I>
void dispatch(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, void *out, unsigned grid,
              cudaStream_t st, bool vec)
{
    I rows = (I)q->w_rows, cols = (I)q->w_cols, s_cols = (I)q->s_cols;
    if (fmt == DSV4_QFMT_FP8_BLOCK && out_t == DSV4_F32)
        fp8_block_kernel<float, I><<<grid, kThreads, 0, st>>>(q->w, q->s, (float *)out, rows, cols, s_cols, vec);
    else if (fmt == DSV4_QFMT_FP8_BLOCK)
        fp8_block_kernel<uint16_t, I><<<grid, kThreads, 0, st>>>(q->w, q->s, (uint16_t *)out, rows, cols, s_cols, vec);
    else if (out_t == DSV4_F32)
        fp4_kernel<float, I><<<grid, kThreads, 0, st>>>(q->w, q->s, (float *)out, rows, cols, s_cols, vec);
    else
        fp4_kernel<uint16_t, I><<<grid, kThreads, 0, st>>>(q->w, q->s, (uint16_t *)out, rows, cols, s_cols, vec);
}

/* Launch without checks (shapes already validated). Every vector store stays 16-byte aligned when
 * the row length is a multiple of the chunk and `out` is 16-byte aligned. */
cudaError_t launch(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, void *out, cudaStream_t st)
{
    int c = out_t == DSV4_F32 ? chunk<float>() : chunk<uint16_t>();
    int64_t per_row = (q->w_cols + c - 1) / c, total = q->w_rows * per_row;
    if (total == 0)
        return cudaSuccess;
    int64_t blocks = (total + kThreads - 1) / kThreads;
    unsigned grid = (unsigned)(blocks < 65536 ? blocks : 65536);
    bool vec = q->w_cols % c == 0 && ((uintptr_t)q->w % c | (uintptr_t)out % 16) == 0;
    /* 32-bit indices while idx + the grid stride and every element offset stay below 2^31 */
    bool small = (uint64_t)total + (uint64_t)grid * kThreads < (1u << 31) &&
                 (uint64_t)q->w_rows * (uint64_t)q->w_cols < (1u << 31);
    if (small)
        dispatch<int32_t>(fmt, q, out_t, out, grid, st, vec);
    else
        dispatch<int64_t>(fmt, q, out_t, out, grid, st, vec);
    return cudaGetLastError();
}

/* Device copies of a host qweight's data (name and shapes shared). */
struct dev_q {
    dsv4_qweight q;
    uint8_t *w = nullptr, *s = nullptr;
    ~dev_q()
    {
        cudaFree(w);
        cudaFree(s);
    }
    int upload(const dsv4_qweight *h, dsv4_err *e)
    {
        q = *h;
        size_t nw = (size_t)(h->w_rows * h->w_cols), ns = (size_t)(h->s_rows * h->s_cols);
        cudaError_t rc = cudaMalloc(&w, nw ? nw : 1);
        if (rc == cudaSuccess)
            rc = cudaMalloc(&s, ns ? ns : 1);
        if (rc == cudaSuccess && nw)
            rc = cudaMemcpy(w, h->w, nw, cudaMemcpyHostToDevice);
        if (rc == cudaSuccess && ns)
            rc = cudaMemcpy(s, h->s, ns, cudaMemcpyHostToDevice);
        if (rc != cudaSuccess)
            return cuda_fail(e, h, "copying the weight to the GPU", rc);
        q.w = w;
        q.s = s;
        return 0;
    }
};

} // namespace

extern "C" int dsv4_dequant_cuda_dev(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, void *out,
                                     void *stream, dsv4_err *e)
{
    if (dsv4_dequant_check(fmt, q, out_t, e))
        return -1;
    cudaError_t rc = launch(fmt, q, out_t, out, (cudaStream_t)stream);
    return rc == cudaSuccess ? 0 : cuda_fail(e, q, "dequant kernel launch", rc);
}

extern "C" int dsv4_dequant_cuda(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, void *out, dsv4_err *e)
{
    if (dsv4_dequant_check(fmt, q, out_t, e))
        return -1;
    dev_q d;
    if (d.upload(q, e))
        return -1;
    size_t ob = out_bytes(fmt, q, out_t);
    void *dout = nullptr;
    cudaError_t rc = cudaMalloc(&dout, ob ? ob : 1);
    if (rc != cudaSuccess)
        return cuda_fail(e, q, "cudaMalloc of the output", rc);
    rc = launch(fmt, &d.q, out_t, dout, 0);
    if (rc == cudaSuccess)
        rc = cudaDeviceSynchronize();
    if (rc == cudaSuccess && ob)
        rc = cudaMemcpy(out, dout, ob, cudaMemcpyDeviceToHost);
    cudaFree(dout);
    return rc == cudaSuccess ? 0 : cuda_fail(e, q, "dequant on the GPU", rc);
}

extern "C" int dsv4_dequant_cuda_bench(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, int iters,
                                       double *kernel_s, double *memcpy_s, dsv4_err *e)
{
    if (dsv4_dequant_check(fmt, q, out_t, e))
        return -1;
    dev_q d;
    if (d.upload(q, e))
        return -1;
    size_t ob = out_bytes(fmt, q, out_t), ib = (size_t)in_bytes(q);
    void *dout = nullptr, *dcopy = nullptr;
    cudaEvent_t t0 = nullptr, t1 = nullptr;
    cudaError_t rc = cudaMalloc(&dout, ob ? ob : 1);
    if (rc == cudaSuccess)
        rc = cudaMalloc(&dcopy, ib ? ib : 1);
    if (rc == cudaSuccess)
        rc = cudaEventCreate(&t0);
    if (rc == cudaSuccess)
        rc = cudaEventCreate(&t1);
    float best_k = 1e30f, best_m = 1e30f;
    for (int it = -1; rc == cudaSuccess && it < iters; it++) { /* it == -1 is the warm-up */
        float ms = 0;
        rc = cudaEventRecord(t0);
        if (rc == cudaSuccess)
            rc = launch(fmt, &d.q, out_t, dout, 0);
        if (rc == cudaSuccess)
            rc = cudaEventRecord(t1);
        if (rc == cudaSuccess)
            rc = cudaEventSynchronize(t1);
        if (rc == cudaSuccess)
            rc = cudaEventElapsedTime(&ms, t0, t1);
        if (it >= 0 && ms < best_k)
            best_k = ms;
        /* the same input bytes: weight then scales, device to device */
        size_t nw = (size_t)(q->w_rows * q->w_cols);
        if (rc == cudaSuccess)
            rc = cudaEventRecord(t0);
        if (rc == cudaSuccess)
            rc = cudaMemcpyAsync(dcopy, d.w, nw, cudaMemcpyDeviceToDevice);
        if (rc == cudaSuccess)
            rc = cudaMemcpyAsync((uint8_t *)dcopy + nw, d.s, ib - nw, cudaMemcpyDeviceToDevice);
        if (rc == cudaSuccess)
            rc = cudaEventRecord(t1);
        if (rc == cudaSuccess)
            rc = cudaEventSynchronize(t1);
        if (rc == cudaSuccess)
            rc = cudaEventElapsedTime(&ms, t0, t1);
        if (it >= 0 && ms < best_m)
            best_m = ms;
    }
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
    cudaFree(dout);
    cudaFree(dcopy);
    if (rc != cudaSuccess)
        return cuda_fail(e, q, "GPU benchmark", rc);
    *kernel_s = best_k * 1e-3;
    *memcpy_s = best_m * 1e-3;
    return 0;
}
