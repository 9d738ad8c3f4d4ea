/* CUDA implementation of kernels/dequant.h: FP8-block and FP4-expert dequantization to float32 or
 * bf16 on the GPU. Each thread turns 16 weight bytes into 16 (FP8) or 32 (FP4) outputs under one
 * scale, with 16-byte loads and stores when the row length and pointers allow, and byte loops
 * otherwise. Decoding goes through a shared-memory table and a multiply by the power-of-two scale;
 * bf16 uses the same RNE bit rule as the host (libquant/formats/fp_round.h), so the results equal
 * libquant's bit for bit (NaN bits aside: the GPU's multiply returns its canonical NaN). */
extern "C" {
#include "util/err.h"
#include "formats/dtype.h"
}
#include "dequant.h"

#include <cuda_runtime.h>
#include <stdint.h>

namespace {

constexpr int kThreads = 256;
constexpr int kChunk = 16; /* weight bytes per thread */

__device__ float e4m3_decode(uint32_t b)
{
    uint32_t sign = (b & 0x80u) << 24, e = (b >> 3) & 0xFu, m = b & 7u;
    if (e == 0) {
        float v = (float)m * 0x1p-9f;
        return sign ? -v : v;
    }
    if (e == 15 && m == 7)
        return __uint_as_float(sign | 0x7FC00000u);
    return __uint_as_float(sign | ((e + 120u) << 23) | (m << 20));
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

/* Weight bytes [c0, c0 + n) of a row into b (n <= 16), one 16-byte load when `vec`. */
__device__ void load16(const uint8_t *w, bool vec, int n, uint8_t (&b)[kChunk])
{
    if (vec) {
        uint4 v = *reinterpret_cast<const uint4 *>(w);
        uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int k = 0; k < kChunk; k++)
            b[k] = (uint8_t)(words[k / 4] >> (8 * (k % 4)));
    } else {
        for (int k = 0; k < n; k++)
            b[k] = w[k];
    }
}

template <typename T>
__global__ void fp8_block_kernel(const uint8_t *__restrict__ w, const uint8_t *__restrict__ s,
                                 T *__restrict__ out, int64_t rows, int64_t cols, int64_t s_cols, bool vec)
{
    __shared__ float lut[256];
    for (int i = threadIdx.x; i < 256; i += blockDim.x)
        lut[i] = e4m3_decode((uint32_t)i);
    __syncthreads();
    int64_t per_row = (cols + kChunk - 1) / kChunk, total = rows * per_row;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = idx / per_row, c0 = (idx % per_row) * kChunk;
        int n = (int)(cols - c0 < kChunk ? cols - c0 : kChunk);
        float sc = e8m0_decode(s[(r / DSV4_FP8_BLOCK) * s_cols + c0 / DSV4_FP8_BLOCK]);
        uint8_t b[kChunk] = {};
        load16(w + r * cols + c0, vec, n, b);
        __align__(16) T v[kChunk];
#pragma unroll
        for (int k = 0; k < kChunk; k++)
            v[k] = to_out<T>(lut[b[k]] * sc);
        store(out + r * cols + c0, v, vec, n);
    }
}

/* FP4: a chunk is 16 packed bytes, 32 elements, exactly one scale group. */
template <typename T>
__global__ void fp4_kernel(const uint8_t *__restrict__ w, const uint8_t *__restrict__ s,
                           T *__restrict__ out, int64_t rows, int64_t nb, int64_t s_cols, bool vec)
{
    __shared__ float lut[16];
    if (threadIdx.x < 16)
        lut[threadIdx.x] = e2m1_decode(threadIdx.x);
    __syncthreads();
    int64_t per_row = (nb + kChunk - 1) / kChunk, total = rows * per_row;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = idx / per_row, g = idx % per_row, k0 = g * kChunk;
        int n = (int)(nb - k0 < kChunk ? nb - k0 : kChunk);
        float sc = e8m0_decode(s[r * s_cols + g]);
        uint8_t b[kChunk] = {};
        load16(w + r * nb + k0, vec, n, b);
        __align__(16) T v[2 * kChunk];
#pragma unroll
        for (int k = 0; k < kChunk; k++) {
            v[2 * k] = to_out<T>(lut[b[k] & 15u] * sc);
            v[2 * k + 1] = to_out<T>(lut[b[k] >> 4] * sc);
        }
        store(out + r * 2 * nb + 2 * k0, v, vec, 2 * n);
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

/* Launch without checks (shapes already validated). */
cudaError_t launch(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, void *out, cudaStream_t st)
{
    int64_t per_row = (q->w_cols + kChunk - 1) / kChunk, total = q->w_rows * per_row;
    if (total == 0)
        return cudaSuccess;
    int64_t blocks = (total + kThreads - 1) / kThreads;
    unsigned grid = (unsigned)(blocks < 65536 ? blocks : 65536);
    bool vec = q->w_cols % kChunk == 0 && ((uintptr_t)q->w | (uintptr_t)out) % 16 == 0;
    if (fmt == DSV4_QFMT_FP8_BLOCK && out_t == DSV4_F32)
        fp8_block_kernel<float><<<grid, kThreads, 0, st>>>(q->w, q->s, (float *)out, q->w_rows, q->w_cols, q->s_cols, vec);
    else if (fmt == DSV4_QFMT_FP8_BLOCK)
        fp8_block_kernel<uint16_t><<<grid, kThreads, 0, st>>>(q->w, q->s, (uint16_t *)out, q->w_rows, q->w_cols, q->s_cols, vec);
    else if (out_t == DSV4_F32)
        fp4_kernel<float><<<grid, kThreads, 0, st>>>(q->w, q->s, (float *)out, q->w_rows, q->w_cols, q->s_cols, vec);
    else
        fp4_kernel<uint16_t><<<grid, kThreads, 0, st>>>(q->w, q->s, (uint16_t *)out, q->w_rows, q->w_cols, q->s_cols, vec);
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
