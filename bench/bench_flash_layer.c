/* One full-size DeepSeek-V4-Flash decoder layer on the runner's CUDA backend, with synthetic
 * weights of the real shapes and storage (fixtures/configs/deepseek-v4-flash.config.json,
 * layer 4: CSA with the indexer, score + bias routing; FP8-block attention, indexer and shared
 * expert, MXFP4 routed experts, F32 compressor projections and router), built in memory (the
 * layer's 3.6 GB of packed weights would not travel as a file).
 * Measures prefill (T tokens stateless, per token) and decode (one token per call with the
 * sequence state, after a prefill) and compares each with the memory-bandwidth bound of the
 * weight bytes that step must read: decode reads the attention + router + shared expert + the
 * K experts it routes to; prefill of T tokens reads every expert the batch routes to (all 256 at
 * T = 512). Bandwidth: device-to-device cudaMemcpy of 1 GiB measured in the same run (it reads
 * and writes, so read bandwidth is 2x its bytes/s). Without a GPU it says so and exits 0.
 * Usage: bench_flash_layer [CONFIG] [T] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "runner/runner.h"
#include "util/clock.h"

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rs ^= rs >> 12, rs ^= rs << 25, rs ^= rs >> 27;
    return (uint32_t)((rs * 2685821657736338717ull) >> 32);
}

static size_t g_bytes;

/* A random weight of a format, loaded into the backend. */
static int lin(dsv4_ops *o, dsv4_lw_fmt f, int64_t out, int64_t in, dsv4_lin *dev, dsv4_err *e)
{
    dsv4_lin h = {.out = out, .in = in, .fmt = f};
    if (dsv4_lw_sizes(f, out, in, 0, &h.w_bytes, &h.s_bytes))
        return dsv4_fail(e, "bad shape [%lld, %lld] for %s", (long long)out, (long long)in, dsv4_lw_fmt_name(f));
    uint8_t *w = malloc(h.w_bytes), *s = h.s_bytes ? malloc(h.s_bytes) : NULL;
    if (!w || (h.s_bytes && !s)) return dsv4_fail_rt(e, "out of memory");
    if (f == DSV4_LW_F32) {
        float *v = (float *)w;
        for (size_t i = 0; i < h.w_bytes / 4; i++) v[i] = ((float)(rnd() % 2001) - 1000.0f) * 1e-6f;
    } else if (f == DSV4_LW_FP8_BLOCK) {
        for (size_t i = 0; i < h.w_bytes; i++) w[i] = (uint8_t)((rnd() & 0x80) | (rnd() % 0x40)); /* |v| < 2 */
        float *sv = (float *)s;
        for (size_t i = 0; i < h.s_bytes / 4; i++) sv[i] = 1.0f / 64;
    } else { /* MXFP4: random codes, scale 2^-6 */
        for (size_t i = 0; i < h.w_bytes; i++) w[i] = (uint8_t)rnd();
        memset(s, 127 - 6, h.s_bytes);
    }
    h.w = w;
    h.s = s;
    int rc = o->lin_load(o, &h, dev, e);
    free(w);
    free(s);
    g_bytes += h.w_bytes + h.s_bytes;
    return rc;
}

static float *vec(dsv4_ops *o, int64_t n, float val, float jitter, dsv4_err *e)
{
    float *h = malloc((size_t)n * sizeof(float)), *d = o->alloc(o, (size_t)n * sizeof(float), e);
    if (!h || !d) { free(h); return NULL; }
    for (int64_t i = 0; i < n; i++) h[i] = val + jitter * (((float)(rnd() % 2001) - 1000.0f) / 1000.0f);
    int rc = o->upload(o, d, h, (size_t)n * sizeof(float), e);
    free(h);
    return rc ? NULL : d;
}

/* Weight bytes of one format/shape, for the bound. */
static double bytes_of(dsv4_lw_fmt f, int64_t out, int64_t in)
{
    size_t w, s;
    return dsv4_lw_sizes(f, out, in, 0, &w, &s) ? 0 : (double)(w + s);
}

int main(int argc, char **argv)
{
    const char *cfgp = argc > 1 ? argv[1] : "fixtures/configs/deepseek-v4-flash.config.json";
    int64_t T = argc > 2 ? atoll(argv[2]) : 512;
    if (dsv4_gpu_count() == 0) {
        printf("bench_flash_layer: no GPU: not measured (a full-size layer needs the CUDA backend)\n");
        return 0;
    }
    dsv4_err e = {0};
    static dsv4_model m;
    if (dsv4_config_load(cfgp, &m.cfg, &e)) { fprintf(stderr, "bench_flash_layer: %s\n", e.msg); return 1; }
    dsv4_config *c = &m.cfg;
    int L = 4;
    if (dsv4_config_attn(c, L) != DSV4_ATTN_CSA || c->is_hash[L]) {
        fprintf(stderr, "bench_flash_layer: layer %d of %s is not a CSA score-routed layer\n", L, cfgp);
        return 1;
    }
    dsv4_ops *o = dsv4_ops_cuda(&e);
    if (!o) { fprintf(stderr, "bench_flash_layer: %s\n", e.msg); return 1; }
    m.ops = o;
    dsv4_rope_tables(c, m.rope_main, m.rope_compress);
    m.layers = calloc((size_t)(c->n_layers + c->n_mtp), sizeof *m.layers);
    dsv4_layer_w *w = &m.layers[L];
    int64_t d = c->hidden_size, H = c->n_heads, D = c->head_dim, q = c->q_lora_rank, G = c->o_groups,
            R = c->o_lora_rank, E = c->n_routed_experts, I = c->moe_inter_dim, Hi = c->index_n_heads,
            Di = c->index_head_dim, hc = c->hc_mult, mix = dsv4_config_mix_hc(c);
    w->id = L;
    w->type = DSV4_ATTN_CSA;
    dsv4_attn_w *A = &w->attn;
    dsv4_ffn_w *F = &w->ffn;
    const dsv4_lw_fmt F8 = DSV4_LW_FP8_BLOCK, F4 = DSV4_LW_MXFP4, F32 = DSV4_LW_F32;
    int rc = lin(o, F8, q, d, &A->wq_a, &e) || lin(o, F8, H * D, q, &A->wq_b, &e) || lin(o, F8, D, d, &A->wkv, &e) ||
             lin(o, F8, G * R, H * D / G, &A->wo_a, &e) || lin(o, F8, d, G * R, &A->wo_b, &e) ||
             lin(o, F32, 2 * D, d, &A->c_wkv, &e) || lin(o, F32, 2 * D, d, &A->c_wgate, &e) ||
             lin(o, F8, Hi * Di, q, &A->i_wq_b, &e) || lin(o, F32, Hi, d, &A->i_wproj, &e) ||
             lin(o, F32, 2 * Di, d, &A->i_wkv, &e) || lin(o, F32, 2 * Di, d, &A->i_wgate, &e) ||
             lin(o, F32, E, d, &F->gate, &e) || lin(o, F8, I, d, &F->sh_w1, &e) || lin(o, F8, I, d, &F->sh_w3, &e) ||
             lin(o, F8, d, I, &F->sh_w2, &e);
    double attn_bytes = (double)g_bytes - bytes_of(F8, I, d) * 2 - bytes_of(F8, d, I);
    F->w1 = calloc((size_t)E, sizeof(dsv4_lin));
    F->w3 = calloc((size_t)E, sizeof(dsv4_lin));
    F->w2 = calloc((size_t)E, sizeof(dsv4_lin));
    F->n_experts = E;
    for (int64_t x = 0; x < E && !rc; x++)
        rc = lin(o, F4, I, d, &F->w1[x], &e) || lin(o, F4, I, d, &F->w3[x], &e) || lin(o, F4, d, I, &F->w2[x], &e);
    if (!rc && (!(A->q_norm = vec(o, q, 1, 0, &e)) || !(A->kv_norm = vec(o, D, 1, 0, &e)) ||
                !(A->sink = vec(o, H, 0, 0, &e)) || !(A->c_ape = vec(o, 4 * 2 * D, 0, 0.1f, &e)) ||
                !(A->c_norm = vec(o, D, 1, 0, &e)) || !(A->i_ape = vec(o, 4 * 2 * Di, 0, 0.1f, &e)) ||
                !(A->i_norm = vec(o, Di, 1, 0, &e)) || 
                !(w->attn_norm = vec(o, d, 1, 0, &e)) || !(w->ffn_norm = vec(o, d, 1, 0, &e)) ||
                !(w->hc_attn_fn = vec(o, mix * hc * d, 0, 1e-3f, &e)) || !(w->hc_attn_base = vec(o, mix, 0, 0.1f, &e)) ||
                !(w->hc_attn_scale = vec(o, 3, 1, 0, &e)) || !(w->hc_ffn_fn = vec(o, mix * hc * d, 0, 1e-3f, &e)) ||
                !(w->hc_ffn_base = vec(o, mix, 0, 0.1f, &e)) || !(w->hc_ffn_scale = vec(o, 3, 1, 0, &e))))
        rc = -1;
    if (!rc && !(F->gate_bias = malloc((size_t)E * sizeof(float)))) rc = dsv4_fail_rt(&e, "out of memory");
    for (int64_t x = 0; !rc && x < E; x++) F->gate_bias[x] = 0.01f * (((float)(rnd() % 2001) - 1000.0f) / 1000.0f);
    if (rc) { fprintf(stderr, "bench_flash_layer: %s\n", e.msg); return 1; }
    double expert_bytes = bytes_of(F4, I, d) * 2 + bytes_of(F4, d, I), shared = bytes_of(F8, I, d) * 2 + bytes_of(F8, d, I);
    double hc_bytes = 2.0 * (double)(mix * hc * d) * 4;

    /* bandwidth: d2d copy of 1 GiB, best of 5 */
    size_t nb = (size_t)1 << 30;
    void *a = o->alloc(o, nb, &e), *b = o->alloc(o, nb, &e);
    double bw = 0;
    for (int i = 0; i < 6 && a && b; i++) {
        o->sync(o, &e);
        double t0 = dsv4_now();
        o->copy(o, b, a, nb, &e);
        o->sync(o, &e);
        double t = dsv4_now() - t0;
        if (i && 2.0 * (double)nb / t > bw) bw = 2.0 * (double)nb / t; /* read + write */
    }
    o->free(o, a);
    o->free(o, b);

    int32_t *ids = malloc((size_t)T * sizeof(int32_t));
    int64_t *pos = malloc((size_t)T * sizeof(int64_t));
    for (int64_t t = 0; t < T; t++) ids[t] = (int32_t)(rnd() % (uint32_t)c->vocab_size), pos[t] = t;
    float *X0 = vec(o, T * hc * d, 0, 1.0f, &e), *X = o->alloc(o, (size_t)(T * hc * d) * sizeof(float), &e);
    double best_p = 1e30;
    for (int it = 0; it < 4 && !rc; it++) {
        rc = o->copy(o, X, X0, (size_t)(T * hc * d) * sizeof(float), &e) || o->sync(o, &e);
        double t0 = dsv4_now();
        rc = rc || dsv4_layer_forward(&m, w, NULL, X, ids, pos, T, NULL, &e) || o->sync(o, &e);
        if (it && dsv4_now() - t0 < best_p) best_p = dsv4_now() - t0;
    }
    /* decode: state prefilled with T tokens, then 64 single-token steps */
    dsv4_seq s;
    double dec = 0;
    int steps = 64;
    if (!rc && !(rc = dsv4_seq_init(&m, T + steps + 1, T, &s, &e))) {
        rc = o->copy(o, X, X0, (size_t)(T * hc * d) * sizeof(float), &e) ||
             dsv4_layer_forward(&m, w, &s.ls[L], X, ids, pos, T, NULL, &e) || o->sync(o, &e);
        double t0 = dsv4_now();
        for (int k = 0; k < steps && !rc; k++) {
            int64_t p = T + k;
            int32_t id = (int32_t)(rnd() % (uint32_t)c->vocab_size);
            rc = dsv4_layer_forward(&m, w, &s.ls[L], X, &id, &p, 1, NULL, &e);
        }
        rc = rc || o->sync(o, &e);
        dec = (dsv4_now() - t0) / steps;
        dsv4_seq_free(&s);
    }
    if (rc) { fprintf(stderr, "bench_flash_layer: %s\n", e.msg); return 1; }
    int64_t K = c->n_activated_experts;
    double dec_bytes = attn_bytes + shared + hc_bytes + (double)K * expert_bytes;
    double pre_bytes = attn_bytes + shared + hc_bytes + (double)E * expert_bytes; /* every expert routed at T=512 */
    printf("V4-Flash layer %d (CSA, %lld experts top-%lld): packed weights %.2f GiB (attention+indexer+compressor+router "
           "%.1f MiB, shared %.1f MiB, expert %.2f MiB each); read bandwidth %.0f GB/s (d2d copy)\n", L, (long long)E,
           (long long)K, (double)g_bytes / (1 << 30), attn_bytes / (1 << 20), shared / (1 << 20),
           expert_bytes / (1 << 20), bw / 1e9);
    printf("prefill T=%lld: %.2f ms per layer, %.2f us per token; bound %.2f ms (all %lld experts read once) -> %.1fx the bound\n",
           (long long)T, best_p * 1e3, best_p * 1e6 / (double)T, pre_bytes / bw * 1e3, (long long)E, best_p / (pre_bytes / bw));
    printf("decode (after %lld tokens): %.1f us per token per layer; bound %.1f us (%.1f MiB: attention, router, shared, %lld experts) -> %.1fx the bound\n",
           (long long)T, dec * 1e6, dec_bytes / bw * 1e6, dec_bytes / (1 << 20), (long long)K, dec / (dec_bytes / bw));
    printf("whole model estimate (43 layers + MTP at this layer's cost): decode %.1f ms per token\n", dec * 44 * 1e3);
    return 0;
}
