/* The host compute backend (kernels/ops.h): the table, memory (plain host memory) and weights
 * (every format dequantized once to F32 at load, so every GEMM is a float GEMM). The ops live in
 * ops_linear.c, ops_norm.c, ops_hc.c, ops_attn.c, ops_moe.c, ops_hess.c and ops_gptq.c(_loop); this
 * backend is the reference the CUDA one is tested against. */
#include <stdlib.h>
#include <string.h>

#include "cpu/ops_cpu.h"
#include "formats/fp.h"

static void *cpu_alloc(dsv4_ops *o, size_t bytes, dsv4_err *e)
{
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) dsv4_fail_rt(e, "out of memory allocating %zu bytes on the host", bytes);
    return p;
}

static void cpu_free(dsv4_ops *o, void *p) { free(p); }

static int cpu_copy(dsv4_ops *o, void *dst, const void *src, size_t n, dsv4_err *e)
{
    if (n) memmove(dst, src, n);
    return 0;
}

static int cpu_sync(dsv4_ops *o, dsv4_err *e) { return 0; }

static int cpu_lin_load(dsv4_ops *o, const dsv4_lin *host, dsv4_lin *dev, dsv4_err *e)
{
    memset(dev, 0, sizeof *dev);
    size_t n = (size_t)host->out * (size_t)host->in;
    float *w = malloc(n * sizeof(float) + 1);
    if (!w) return dsv4_fail_rt(e, "out of memory dequantizing a [%lld, %lld] weight",
                                (long long)host->out, (long long)host->in);
    if (dsv4_lin_dequant_f32(host, w, e)) { free(w); return -1; }
    dev->out = host->out;
    dev->in = host->in;
    dev->fmt = DSV4_LW_F32;
    dev->w = w;
    dev->w_bytes = n * sizeof(float);
    dev->owned = 1;
    return 0;
}

static void cpu_lin_free(dsv4_ops *o, dsv4_lin *dev)
{
    if (dev->owned) { free(dev->w); free(dev->s); }
    memset(dev, 0, sizeof *dev);
}

static dsv4_ops cpu_ops_proto = {
    .name = "cpu",
    .on_host = 1,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .sync = cpu_sync,
    .lin_load = cpu_lin_load,
    .lin_free = cpu_lin_free,
    .linear = dsv4_cpu_linear,
    .linear_grouped = dsv4_cpu_linear_grouped,
    .embed = dsv4_cpu_embed,
    .rmsnorm = dsv4_cpu_rmsnorm,
    .rope = dsv4_cpu_rope,
    .hc_pre = dsv4_cpu_hc_pre,
    .hc_head = dsv4_cpu_hc_head,
    .hc_post = dsv4_cpu_hc_post,
    .attention = dsv4_cpu_attention,
    .pool = dsv4_cpu_pool,
    .indexer = dsv4_cpu_indexer,
    .moe = dsv4_cpu_moe,
    .swiglu = dsv4_cpu_swiglu,
    .axpy = dsv4_cpu_axpy,
    .add_bcast = dsv4_cpu_add_bcast,
    .score = dsv4_cpu_score,
    .swiglu_act = dsv4_cpu_swiglu_act,
    .hess_acc = dsv4_cpu_hess_acc,
    .gptq = dsv4_cpu_gptq,
};

dsv4_ops *dsv4_ops_cpu(int nthreads)
{
    dsv4_ops *o = malloc(sizeof *o);
    if (!o) return NULL;
    *o = cpu_ops_proto;
    dsv4_cpu_set_threads(nthreads);
    return o;
}

void dsv4_ops_release(dsv4_ops *o)
{
    if (!o) return;
    if (o->release) o->release(o);
    else free(o);
}

dsv4_ops *dsv4_ops_by_name(const char *name, int nthreads, dsv4_err *e)
{
    if (!name || !strcmp(name, "auto")) {
        dsv4_err tmp;
        dsv4_ops *g = dsv4_gpu_count() > 0 ? dsv4_ops_cuda(&tmp) : NULL;
        return g ? g : dsv4_ops_cpu(nthreads);
    }
    if (!strcmp(name, "cpu")) return dsv4_ops_cpu(nthreads);
    if (!strcmp(name, "cuda")) return dsv4_ops_cuda(e);
    dsv4_fail(e, "unknown device '%s': expected cpu, cuda or auto", name);
    return NULL;
}
