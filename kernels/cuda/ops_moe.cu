/* Routed experts (grouped) and the shared expert on the GPU (spec §3.4; host ops in
 * kernels/cpu/ops_moe.c). MoE: the host groups the (token, k) pairs by expert (expert order, then
 * pair order, as the host op does), the tokens are gathered into one [T·K, d] batch, w1 and w3
 * run as one batched dequant-GEMM over the active experts each (grid z = expert), then the SwiGLU
 * with the clamps, w2 the same way, and each token accumulates its experts' outputs times their
 * weights in the host's order (expert ascending), so the scatter has no races and no atomics.
 * swiglu_act is the activation alone, for the calibration taps. */
#include "ops_cuda.cuh"

#include <stdlib.h>
#include <string.h>
#include <math.h>

namespace dsv4cu {
namespace {


/* h = silu(min(g, limit)) · clamp(u, ±limit), the host's expression (h may be g). */
__global__ void act_kernel(const float *g, const float *u, int64_t n, float limit, float *h)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float gv = g[i] > limit ? limit : g[i];
        float uv = u[i] > limit ? limit : (u[i] < -limit ? -limit : u[i]);
        h[i] = __fmul_rn(__fdiv_rn(gv, __fadd_rn(1.0f, expf(-gv))), uv);
    }
}

/* xg[slot] = x[tok[slot]] */
__global__ void gather_kernel(const float *x, const int32_t *tok, int64_t d, int64_t n, float *xg)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t s = i / d, c = i - s * d;
        xg[i] = x[(int64_t)tok[s] * d + c];
    }
}

/* out[t] += Σ_j wt[t,j] · yg[slot[t,j]] over the token's K slots in ascending slot order. */
__global__ void scatter_kernel(const float *yg, const int32_t *slots, const float *wts, int64_t K, int64_t d,
                               int64_t n, float *out)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t t = i / d, c = i - t * d;
        float acc = out[i];
        for (int64_t j = 0; j < K; j++) {
            int64_t s = slots[t * K + j];
            acc = __fadd_rn(acc, __fmul_rn(wts[t * K + j], yg[s * d + c]));
        }
        out[i] = acc;
    }
}

bool same_shape(const dsv4_lin *a, const dsv4_lin *b)
{
    return a->fmt == b->fmt && a->out == b->out && a->in == b->in && a->group == b->group;
}

/* Host side of the routing: per expert, its slots; per token, its slots ascending with weights. */
struct plan {
    int32_t *tok;     /* [TK] token of each slot (slots grouped by expert) */
    int32_t *slots;   /* [TK] slots of token t at t·K.., ascending */
    float *wts;       /* [TK] their weights */
    int64_t *start;   /* [E+1] first slot of each expert */
};

void plan_free(plan *p)
{
    free(p->tok);
    free(p->slots);
    free(p->wts);
    free(p->start);
}

int plan_make(const dsv4_moe_args *a, plan *p, dsv4_err *e)
{
    int64_t TK = a->T * a->K, E = a->E;
    memset(p, 0, sizeof *p);
    p->tok = static_cast<int32_t *>(malloc((size_t)TK * sizeof(int32_t)));
    p->slots = static_cast<int32_t *>(malloc((size_t)TK * sizeof(int32_t)));
    p->wts = static_cast<float *>(malloc((size_t)TK * sizeof(float)));
    p->start = static_cast<int64_t *>(calloc((size_t)E + 1, sizeof(int64_t)));
    int64_t *fill = static_cast<int64_t *>(calloc((size_t)E + 1, sizeof(int64_t)));
    if (!p->tok || !p->slots || !p->wts || !p->start || !fill) {
        free(fill);
        plan_free(p);
        return dsv4_fail_rt(e, "cuda moe: out of memory");
    }
    for (int64_t i = 0; i < TK; i++) {
        if (a->idx[i] < 0 || a->idx[i] >= E) {
            free(fill);
            plan_free(p);
            return dsv4_fail(e, "moe: token %lld routed to expert %d, outside [0, %lld)", (long long)(i / a->K),
                             a->idx[i], (long long)E);
        }
        p->start[a->idx[i] + 1]++;
    }
    for (int64_t x = 0; x < E; x++)
        p->start[x + 1] += p->start[x];
    int32_t *slot_of = p->slots; /* slot of pair i, then sorted per token in place */
    for (int64_t i = 0; i < TK; i++) {
        int64_t s = p->start[a->idx[i]] + fill[a->idx[i]]++;
        p->tok[s] = (int32_t)(i / a->K);
        slot_of[i] = (int32_t)s;
        p->wts[i] = a->wts[i];
    }
    free(fill);
    for (int64_t t = 0; t < a->T; t++) { /* insertion sort of the K slots (and weights) of token t */
        int32_t *s = p->slots + t * a->K;
        float *w = p->wts + t * a->K;
        for (int64_t j = 1; j < a->K; j++)
            for (int64_t i = j; i > 0 && s[i - 1] > s[i]; i--) {
                int32_t ts = s[i];
                s[i] = s[i - 1];
                s[i - 1] = ts;
                float tw = w[i];
                w[i] = w[i - 1];
                w[i - 1] = tw;
            }
    }
    return 0;
}

/* One batched projection over the active experts: y rows of `rows` floats per slot. */
int experts_run(dsv4_ops *o, const dsv4_lin *ws, const plan *p, int64_t E, const float *x, float *y,
                lin_prob *probs, lin_prob *dprobs, const char *op, dsv4_err *e)
{
    lin_call c{};
    if (lin_shape(&ws[0], &c, op, e))
        return -1;
    int n = 0;
    int64_t maxT = 0;
    bool xvec = (uintptr_t)x % 16 == 0 && c.in % 4 == 0;
    for (int64_t x_ = 0; x_ < E; x_++) {
        int64_t cnt = p->start[x_ + 1] - p->start[x_];
        if (!cnt)
            continue;
        const dsv4_lin *w = &ws[x_];
        if (!same_shape(w, &ws[0]))
            return dsv4_fail(e, "cuda %s: expert %lld is %s [%lld, %lld]; expert 0 is %s [%lld, %lld] (one format "
                             "and shape per layer)", op, (long long)x_, dsv4_lw_fmt_name(w->fmt), (long long)w->out,
                             (long long)w->in, dsv4_lw_fmt_name(ws[0].fmt), (long long)ws[0].out, (long long)ws[0].in);
        if (!w->w || (w->s_bytes && !w->s))
            return dsv4_fail(e, "cuda %s: expert %lld is not loaded on the GPU", op, (long long)x_);
        c.wvec = c.wvec && (uintptr_t)w->w % 16 == 0;
        probs[n] = lin_prob{static_cast<const uint8_t *>(w->w), static_cast<const uint8_t *>(w->s), w->gscale,
                            x + p->start[x_] * c.in, y + p->start[x_] * c.rows, cnt};
        maxT = cnt > maxT ? cnt : maxT;
        n++;
    }
    if (!n)
        return 0;
    c.list = dprobs;
    c.nprob = n;
    c.maxT = maxT;
    c.xvec = xvec;
    if (check(e, op, "copy of the expert list",
              cudaMemcpyAsync(dprobs, probs, (size_t)n * sizeof *probs, cudaMemcpyHostToDevice, stream(o))))
        return -1;
    return lin_run(o, &c, op, e);
}

} // namespace

int moe(dsv4_ops *o, const dsv4_moe_args *a, dsv4_err *e)
{
    if (a->T <= 0 || a->K <= 0)
        return 0;
    if (a->E <= 0 || !a->w1 || !a->w2 || !a->w3)
        return dsv4_fail(e, "cuda moe: %lld experts without weights", (long long)a->E);
    const int64_t TK = a->T * a->K, d = a->w2[0].out, inter = a->w1[0].out;
    if (a->w1[0].in != d || a->w3[0].out != inter || a->w2[0].in != inter)
        return dsv4_fail(e, "cuda moe: expert shapes w1 [%lld, %lld], w3 [%lld, %lld], w2 [%lld, %lld] do not chain",
                         (long long)a->w1[0].out, (long long)a->w1[0].in, (long long)a->w3[0].out,
                         (long long)a->w3[0].in, (long long)a->w2[0].out, (long long)a->w2[0].in);
    plan p;
    if (plan_make(a, &p, e))
        return -1;
    /* one staging buffer: tok, slots, wts, then 3 expert lists */
    size_t nb = (size_t)TK * (2 * sizeof(int32_t) + sizeof(float));
    size_t lb = (size_t)a->E * sizeof(lin_prob), off = (nb + 15) / 16 * 16;
    uint8_t *host = static_cast<uint8_t *>(malloc(off + 3 * lb));
    uint8_t *dev = host ? static_cast<uint8_t *>(scratch(o, SCR_HOST0, off + 3 * lb, "moe", e)) : nullptr;
    float *xg = dev ? static_cast<float *>(scratch(o, SCR_WORK0, (size_t)(TK * d) * sizeof(float), "moe", e)) : nullptr;
    float *g = xg ? static_cast<float *>(scratch(o, SCR_WORK1, (size_t)(TK * inter) * sizeof(float), "moe", e)) : nullptr;
    float *u = g ? static_cast<float *>(scratch(o, SCR_WORK2, (size_t)(TK * inter) * sizeof(float), "moe", e)) : nullptr;
    float *yg = u ? static_cast<float *>(scratch(o, SCR_WORK3, (size_t)(TK * d) * sizeof(float), "moe", e)) : nullptr;
    int rc = -1;
    if (!host) {
        dsv4_fail_rt(e, "cuda moe: out of memory");
        goto out;
    }
    if (!yg)
        goto out;
    memcpy(host, p.tok, (size_t)TK * sizeof(int32_t));
    memcpy(host + TK * sizeof(int32_t), p.slots, (size_t)TK * sizeof(int32_t));
    memcpy(host + 2 * TK * sizeof(int32_t), p.wts, (size_t)TK * sizeof(float));
    if (check(e, "moe", "copy of the routing", cudaMemcpyAsync(dev, host, nb, cudaMemcpyHostToDevice, stream(o))))
        goto out;
    {
        const int32_t *dtok = reinterpret_cast<const int32_t *>(dev);
        const int32_t *dslots = dtok + TK;
        const float *dwts = reinterpret_cast<const float *>(dslots + TK);
        lin_prob *hp = reinterpret_cast<lin_prob *>(host + off), *dp = reinterpret_cast<lin_prob *>(dev + off);
        gather_kernel<<<grid_for(TK * d), kEltThreads, 0, stream(o)>>>(a->x, dtok, d, TK * d, xg);
        if (launched(e, "moe") ||
            experts_run(o, a->w1, &p, a->E, xg, g, hp, dp, "moe w1", e) ||
            experts_run(o, a->w3, &p, a->E, xg, u, hp + a->E, dp + a->E, "moe w3", e))
            goto out;
        act_kernel<<<grid_for(TK * inter), kEltThreads, 0, stream(o)>>>(g, u, TK * inter, a->limit, g);
        if (launched(e, "moe") ||
            experts_run(o, a->w2, &p, a->E, g, yg, hp + 2 * a->E, dp + 2 * a->E, "moe w2", e))
            goto out;
        scatter_kernel<<<grid_for(a->T * d), kEltThreads, 0, stream(o)>>>(yg, dslots, dwts, a->K, d, a->T * d, a->out);
        if (launched(e, "moe"))
            goto out;
    }
    rc = 0; /* copies from pageable host memory are staged before cudaMemcpyAsync returns */
out:
    free(host);
    plan_free(&p);
    return rc;
}

int swiglu(dsv4_ops *o, const dsv4_lin *w1, const dsv4_lin *w3, const dsv4_lin *w2, const float *x, int64_t T,
           float limit, float *y, dsv4_err *e)
{
    if (T <= 0)
        return 0;
    if (w3->out != w1->out || w2->in != w1->out)
        return dsv4_fail(e, "cuda swiglu: w1 [%lld, %lld], w3 [%lld, %lld], w2 [%lld, %lld] do not chain",
                         (long long)w1->out, (long long)w1->in, (long long)w3->out, (long long)w3->in,
                         (long long)w2->out, (long long)w2->in);
    size_t n = (size_t)(T * w1->out) * sizeof(float);
    float *g = static_cast<float *>(scratch(o, SCR_WORK3, n, "swiglu", e));
    float *u = g ? static_cast<float *>(scratch(o, SCR_WORK4, n, "swiglu", e)) : nullptr;
    if (!u || linear(o, w1, x, T, g, e) || linear(o, w3, x, T, u, e))
        return -1;
    act_kernel<<<grid_for(T * w1->out), kEltThreads, 0, stream(o)>>>(g, u, T * w1->out, limit, g);
    if (launched(e, "swiglu"))
        return -1;
    return linear(o, w2, g, T, y, e);
}

int swiglu_act(dsv4_ops *o, const float *g, const float *u, int64_t n, float limit, float *h, dsv4_err *e)
{
    if (n <= 0)
        return 0;
    act_kernel<<<grid_for(n), kEltThreads, 0, stream(o)>>>(g, u, n, limit, h);
    return launched(e, "swiglu_act");
}

} // namespace dsv4cu
