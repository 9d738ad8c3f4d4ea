/* The CUDA backend of kernels/ops.h: the table, its context (a stream on the current device, the
 * scratch slots), memory (stream-ordered pool allocations, zero-filled), copies, and the weights
 * (lin_load uploads the packed bytes as they are; the GEMM kernels read them). The ops themselves
 * live in ops_linear.cu, ops_norm.cu, ops_hc.cu, ops_attn.cu, ops_pool.cu, ops_index.cu,
 * ops_moe.cu, and the calibration ops in ops_hess.cu and ops_gptq*.cu (cuBLAS / cuSOLVER loaded at
 * run time by cuda_libs.cu). */
#include "ops_cuda.cuh"
#include "cuda_libs.h"
#include "ops_gptq.cuh"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "gpu.h"
}

namespace dsv4cu {

int check(dsv4_err *e, const char *op, const char *what, cudaError_t rc)
{
    if (rc == cudaSuccess)
        return 0;
    cudaGetLastError(); /* clear a non-sticky error so the next call starts clean */
    return dsv4_fail_rt(e, "cuda %s: %s failed: %s", op, what, cudaGetErrorString(rc));
}

int launched(dsv4_err *e, const char *op) { return check(e, op, "kernel launch", cudaGetLastError()); }

void *scratch(dsv4_ops *o, int slot, size_t n, const char *op, dsv4_err *e)
{
    ctx *c = C(o);
    if (n == 0)
        n = 1;
    if (c->scr_n[slot] < n) {
        if (c->scr[slot])
            cudaFreeAsync(c->scr[slot], c->st);
        c->scr[slot] = nullptr;
        c->scr_n[slot] = 0;
        size_t want = n + n / 4; /* headroom: growing scratch is a reallocation */
        if (check(e, op, "scratch allocation", cudaMallocAsync(&c->scr[slot], want, c->st)))
            return nullptr;
        c->scr_n[slot] = want;
    }
    return c->scr[slot];
}

void *stage(dsv4_ops *o, int slot, const void *host, size_t n, const char *op, dsv4_err *e)
{
    void *d = scratch(o, slot, n, op, e);
    if (d && n && check(e, op, "copy of a host array", cudaMemcpyAsync(d, host, n, cudaMemcpyHostToDevice, stream(o))))
        return nullptr;
    return d;
}

int smem(dsv4_ops *o, const void *fn, size_t bytes, const char *op, dsv4_err *e)
{
    if (bytes > C(o)->smem_optin)
        return dsv4_fail(e, "cuda %s: needs %zu bytes of shared memory per block; this GPU allows %zu", op, bytes,
                         C(o)->smem_optin);
    if (bytes > 48 * 1024)
        return check(e, op, "shared memory opt-in",
                     cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    return 0;
}

namespace {

void *alloc(dsv4_ops *o, size_t bytes, dsv4_err *e)
{
    void *p = nullptr;
    size_t n = bytes ? bytes : 1;
    if (check(e, "alloc", "cudaMallocAsync", cudaMallocAsync(&p, n, stream(o))))
        return nullptr;
    if (check(e, "alloc", "zero fill", cudaMemsetAsync(p, 0, n, stream(o)))) {
        cudaFreeAsync(p, stream(o));
        return nullptr;
    }
    return p;
}

void free_(dsv4_ops *o, void *p)
{
    if (p)
        cudaFreeAsync(p, stream(o));
}

int upload(dsv4_ops *o, void *dst, const void *src, size_t n, dsv4_err *e)
{
    if (!n)
        return 0;
    return check(e, "upload", "copy to the GPU", cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, stream(o)));
}

int download(dsv4_ops *o, void *dst, const void *src, size_t n, dsv4_err *e)
{
    if (!n)
        return 0;
    if (check(e, "download", "copy from the GPU", cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, stream(o))))
        return -1;
    return check(e, "download", "GPU work before the copy", cudaStreamSynchronize(stream(o)));
}

int copy(dsv4_ops *o, void *dst, const void *src, size_t n, dsv4_err *e)
{
    if (!n || dst == src)
        return 0;
    return check(e, "copy", "device copy", cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, stream(o)));
}

int sync(dsv4_ops *o, dsv4_err *e) { return check(e, "sync", "GPU work", cudaStreamSynchronize(stream(o))); }

int lin_load(dsv4_ops *o, const dsv4_lin *host, dsv4_lin *dev, dsv4_err *e)
{
    memset(dev, 0, sizeof *dev);
    size_t wb, sb;
    if (dsv4_lw_sizes(host->fmt, host->out, host->in, host->group, &wb, &sb))
        return dsv4_fail(e, "cuda lin_load: weight [%lld, %lld] does not fit format %s (group %d)",
                         (long long)host->out, (long long)host->in, dsv4_lw_fmt_name(host->fmt), host->group);
    if (!host->w || (sb && !host->s) || host->w_bytes != wb || host->s_bytes != sb)
        return dsv4_fail(e, "cuda lin_load: weight [%lld, %lld] (%s) has %zu + %zu bytes of data; expected %zu + %zu",
                         (long long)host->out, (long long)host->in, dsv4_lw_fmt_name(host->fmt),
                         host->w ? host->w_bytes : 0, host->s ? host->s_bytes : 0, wb, sb);
    if (host->fmt == DSV4_LW_NVFP4 && !(host->gscale > 0))
        return dsv4_fail(e, "cuda lin_load: NVFP4 weight [%lld, %lld] has global scale %g; expected > 0",
                         (long long)host->out, (long long)host->in, (double)host->gscale);
    *dev = *host;
    dev->w = dev->s = nullptr;
    dev->owned = 1;
    /* weights live as long as the model: plain allocations, not the stream pool's */
    if (check(e, "lin_load", "weight allocation", cudaMalloc(&dev->w, wb)) ||
        (sb && check(e, "lin_load", "scale allocation", cudaMalloc(&dev->s, sb))) ||
        upload(o, dev->w, host->w, wb, e) || (sb && upload(o, dev->s, host->s, sb, e))) {
        cudaFree(dev->w);
        cudaFree(dev->s);
        memset(dev, 0, sizeof *dev);
        return -1;
    }
    return 0;
}

void lin_free(dsv4_ops *o, dsv4_lin *dev)
{
    if (dev->owned) {
        cudaStreamSynchronize(stream(o)); /* kernels in flight may still read it */
        cudaFree(dev->w);
        cudaFree(dev->s);
    }
    memset(dev, 0, sizeof *dev);
}

void release(dsv4_ops *o)
{
    ctx *c = C(o);
    if (c) {
        cudaStreamSynchronize(c->st);
        calib_release(c);
        for (int i = 0; i < SCR_COUNT; i++)
            if (c->scr[i])
                cudaFreeAsync(c->scr[i], c->st);
        cudaStreamSynchronize(c->st);
        cudaStreamDestroy(c->st);
        free(c);
    }
    free(o);
}

} // namespace
} // namespace dsv4cu

using namespace dsv4cu;

extern "C" dsv4_ops *dsv4_ops_cuda(dsv4_err *e)
{
    if (dsv4_gpu_count() == 0) {
        dsv4_fail_rt(e, "cannot use the CUDA backend: no CUDA GPU (or no driver) on this machine");
        return nullptr;
    }
    dsv4_ops *o = static_cast<dsv4_ops *>(calloc(1, sizeof *o));
    ctx *c = static_cast<ctx *>(calloc(1, sizeof *c));
    if (!o || !c) {
        free(o);
        free(c);
        dsv4_fail_rt(e, "out of memory creating the CUDA backend");
        return nullptr;
    }
    int optin = 0;
    cudaMemPool_t mp;
    uint64_t keep = UINT64_MAX; /* the pool keeps freed memory for reuse instead of returning it */
    if (check(e, "init", "cudaGetDevice", cudaGetDevice(&c->dev)) ||
        check(e, "init", "device attributes",
              cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, c->dev)) ||
        check(e, "init", "memory pool", cudaDeviceGetDefaultMemPool(&mp, c->dev)) ||
        check(e, "init", "memory pool threshold",
              cudaMemPoolSetAttribute(mp, cudaMemPoolAttrReleaseThreshold, &keep)) ||
        check(e, "init", "stream creation", cudaStreamCreate(&c->st))) {
        free(o);
        free(c);
        return nullptr;
    }
    c->smem_optin = (size_t)optin;
    o->name = "cuda";
    o->ctx = c;
    o->on_host = 0;
    o->release = release;
    o->alloc = alloc;
    o->free = free_;
    o->upload = upload;
    o->download = download;
    o->copy = copy;
    o->sync = sync;
    o->lin_load = lin_load;
    o->lin_free = lin_free;
    o->linear = linear;
    o->linear_grouped = linear_grouped;
    o->embed = embed;
    o->rmsnorm = rmsnorm;
    o->rope = rope;
    o->hc_pre = hc_pre;
    o->hc_head = hc_head;
    o->hc_post = hc_post;
    o->attention = attention;
    o->pool = pool;
    o->indexer = indexer;
    o->moe = moe;
    o->swiglu = swiglu;
    o->axpy = axpy;
    o->add_bcast = add_bcast;
    o->score = score;
    o->swiglu_act = swiglu_act;
    o->hess_acc = hess_acc;
    o->gptq = gptq;
    return o;
}
