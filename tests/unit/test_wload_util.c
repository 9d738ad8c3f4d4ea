/* Helpers of the weight-loading tests (test_wload_util.h). */
#include "test_wload_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dequant.h"
#include "formats/fp.h"
#include "harness.h"
#include "quant/pack.h"

/* The real CPU backend (dsv4_ops_cpu), with every allocation and loaded linear counted. */
static long live;
static dsv4_ops *cpu, counted;

long wl_live(void) { return live; }

static void *c_alloc(dsv4_ops *o, size_t n, dsv4_err *e)
{
    void *p = cpu->alloc(cpu, n, e);
    live += p != NULL;
    return p;
}

static void c_free(dsv4_ops *o, void *p)
{
    live -= p != NULL;
    cpu->free(cpu, p);
}

static int c_upload(dsv4_ops *o, void *dst, const void *src, size_t n, dsv4_err *e)
{
    return cpu->upload(cpu, dst, src, n, e);
}

static int c_lin_load(dsv4_ops *o, const dsv4_lin *h, dsv4_lin *d, dsv4_err *e)
{
    int rc = cpu->lin_load(cpu, h, d, e);
    live += rc == 0;
    return rc;
}

static void c_lin_free(dsv4_ops *o, dsv4_lin *d)
{
    live -= d->w != NULL;
    cpu->lin_free(cpu, d);
}

dsv4_ops *wl_ops(void)
{
    if (!cpu) {
        cpu = dsv4_ops_cpu(1);
        if (!cpu)
            return NULL;
        counted = *cpu;
        counted.alloc = c_alloc;
        counted.free = c_free;
        counted.upload = c_upload;
        counted.lin_load = c_lin_load;
        counted.lin_free = c_lin_free;
    }
    return &counted;
}

static int cmp_name(const void *k, const void *b)
{
    return strcmp(k, (*(const dsv4_tensor *const *)b)->name);
}

int wl_mark(const dsv4_ckpt *ck, unsigned char *used, const char *name)
{
    const dsv4_tensor *const *t = bsearch(name, ck->by_name, ck->n, sizeof *ck->by_name, cmp_name);
    if (t)
        used[t - ck->by_name] = 1;
    return t != NULL;
}

void wl_mark_module(const dsv4_ckpt *ck, unsigned char *used, const char *stem)
{
    static const char *const sfx[] = {".weight", ".scale", ".weight_scale", ".weight_scale_inv", ".weight_packed",
                                      ".weight_shape", ".weight_global_scale", ".input_global_scale",
                                      ".weight_g_idx", ".weight_scale_2", ".input_scale"};
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        char n[256];
        snprintf(n, sizeof n, "%s%s", stem, sfx[i]);
        wl_mark(ck, used, n);
    }
}

static const dsv4_tensor *part(const dsv4_ckpt *ck, const char *stem, const char *suffix)
{
    char n[256];
    snprintf(n, sizeof n, "%s%s", stem, suffix);
    return dsv4_ckpt_find(ck, n);
}

float *wl_expected(const dsv4_ckpt *ck, const char *stem, int64_t rows, int64_t cols, int *n_parts)
{
    const dsv4_tensor *w = part(ck, stem, ".weight"), *sc = part(ck, stem, ".scale"),
                      *ws = part(ck, stem, ".weight_scale"), *pk = part(ck, stem, ".weight_packed"),
                      *gs = part(ck, stem, ".weight_global_scale"), *shp = part(ck, stem, ".weight_shape"),
                      *inv = part(ck, stem, ".weight_scale_inv");
    size_t n = (size_t)(rows * cols);
    float *f = malloc(n * sizeof *f);
    uint16_t *b = NULL;
    dsv4_err e = {{0}, 0};
    int rc = -1;
    *n_parts = 0;
    if (!f)
        return NULL;
    if (w && (w->dtype == DSV4_BF16 || w->dtype == DSV4_F32 || w->dtype == DSV4_F16) && !sc && !ws) {
        rc = dsv4_decode_row(w->dtype, w->data, f, n);
        *n_parts = 1;
    } else if (w && sc && (w->dtype == DSV4_I8 || w->dtype == DSV4_F8_E4M3)) {
        dsv4_qweight q = {w->name, w->data, sc->data, w->shape[0], w->shape[1], sc->shape[0], sc->shape[1]};
        rc = w->dtype == DSV4_I8 ? dsv4_fp4_dequant_f32(&q, f, &e) : dsv4_fp8_block_dequant_f32(&q, f, &e);
        *n_parts = 2;
    } else if (w && ws && w->dtype == DSV4_F8_E4M3 && ws->dtype == DSV4_BF16) {
        rc = dsv4_fp8_block_dequant_ct(w->data, (const uint16_t *)ws->data, rows, cols, f, &e);
        *n_parts = 2;
    } else if (w && (ws || inv) && w->dtype == DSV4_F8_E4M3) { /* other scale dtypes, per 128x128 block */
        const dsv4_tensor *st = ws ? ws : inv;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++)
                f[r * cols + c] = dsv4_e4m3_to_f32(w->data[r * cols + c]) *
                                  dsv4_decode_elem(st->dtype, st->data, (size_t)((r / 128) * st->shape[1] + c / 128));
        rc = 0;
        *n_parts = 2;
    } else if (pk && ws && pk->dtype == DSV4_I32 && shp) {
        b = malloc(n * sizeof *b);
        rc = !b || dsv4_int4_dequant((const int32_t *)pk->data, (const uint16_t *)ws->data, rows, cols,
                                     (int)(cols / ws->shape[1]), b, &e);
        for (size_t i = 0; rc == 0 && i < n; i++)
            f[i] = dsv4_bf16_to_f32(b[i]);
        *n_parts = 3;
    } else if (pk && ws && gs && pk->dtype == DSV4_U8) {
        float g;
        memcpy(&g, gs->data, 4);
        rc = dsv4_nvfp4_dequant(pk->data, ws->data, g, rows, cols, f, &e);
        *n_parts = 3 + (part(ck, stem, ".input_global_scale") != NULL);
    }
    free(b);
    if (rc) {
        th_fail(__FILE__, __LINE__, "%s: no reference dequantization (%s)", stem, e.msg);
        free(f);
        return NULL;
    }
    return f;
}

#define ADD_LIN(name, l)                                                                                 \
    do {                                                                                                 \
        if ((l)->w && k < cap) {                                                                         \
            snprintf(out[k].stem, sizeof out[k].stem, "%s%s", pre, name);                                \
            out[k++].lin = (l);                                                                          \
        }                                                                                                \
    } while (0)

static void prefix(const dsv4_config *c, const dsv4_layer_w *w, char *pre, size_t cap)
{
    if (w->is_mtp)
        snprintf(pre, cap, "mtp.%d.", w->id - c->n_layers);
    else
        snprintf(pre, cap, "layers.%d.", w->id);
}

size_t wl_layer_lins(const dsv4_config *c, const dsv4_layer_w *w, wl_lin *out, size_t cap)
{
    char pre[32];
    size_t k = 0;
    prefix(c, w, pre, sizeof pre);
    const dsv4_attn_w *a = &w->attn;
    ADD_LIN("attn.wq_a", &a->wq_a);
    ADD_LIN("attn.wq_b", &a->wq_b);
    ADD_LIN("attn.wkv", &a->wkv);
    ADD_LIN("attn.wo_a", &a->wo_a);
    ADD_LIN("attn.wo_b", &a->wo_b);
    ADD_LIN("attn.compressor.wkv", &a->c_wkv);
    ADD_LIN("attn.compressor.wgate", &a->c_wgate);
    ADD_LIN("attn.indexer.wq_b", &a->i_wq_b);
    ADD_LIN("attn.indexer.weights_proj", &a->i_wproj);
    ADD_LIN("attn.indexer.compressor.wkv", &a->i_wkv);
    ADD_LIN("attn.indexer.compressor.wgate", &a->i_wgate);
    ADD_LIN("ffn.gate", &w->ffn.gate);
    ADD_LIN("ffn.shared_experts.w1", &w->ffn.sh_w1);
    ADD_LIN("ffn.shared_experts.w3", &w->ffn.sh_w3);
    ADD_LIN("ffn.shared_experts.w2", &w->ffn.sh_w2);
    ADD_LIN("e_proj", &w->e_proj);
    ADD_LIN("h_proj", &w->h_proj);
    for (int64_t x = 0; x < w->ffn.n_experts; x++) {
        char n[64];
        snprintf(n, sizeof n, "ffn.experts.%lld.w1", (long long)x);
        ADD_LIN(n, &w->ffn.w1[x]);
        snprintf(n, sizeof n, "ffn.experts.%lld.w2", (long long)x);
        ADD_LIN(n, &w->ffn.w2[x]);
        snprintf(n, sizeof n, "ffn.experts.%lld.w3", (long long)x);
        ADD_LIN(n, &w->ffn.w3[x]);
    }
    return k;
}

#define ADD_VEC_AT(nm, p, count, on_host)                                                              \
    do {                                                                                                 \
        if ((p) && k < cap) {                                                                             \
            snprintf(out[k].name, sizeof out[k].name, "%s%s", pre, nm);                                  \
            out[k].v = (p);                                                                              \
            out[k].host = (on_host);                                                                     \
            out[k++].n = (count);                                                                        \
        }                                                                                                \
    } while (0)
#define ADD_VEC(nm, p, count) ADD_VEC_AT(nm, p, count, 0)

size_t wl_layer_vecs(const dsv4_config *c, const dsv4_layer_w *w, wl_vec *out, size_t cap)
{
    char pre[32];
    size_t k = 0;
    prefix(c, w, pre, sizeof pre);
    int64_t d = c->hidden_size, mix = dsv4_config_mix_hc(c), hcd = dsv4_config_hc_dim(c), hd = c->head_dim;
    int64_t ratio = c->compress_ratio[w->id], C = w->type == DSV4_ATTN_CSA ? 2 : 1, ihd = c->index_head_dim;
    const dsv4_attn_w *a = &w->attn;
    ADD_VEC("attn_norm.weight", w->attn_norm, d);
    ADD_VEC("ffn_norm.weight", w->ffn_norm, d);
    ADD_VEC("hc_attn_fn", w->hc_attn_fn, mix * hcd);
    ADD_VEC("hc_attn_base", w->hc_attn_base, mix);
    ADD_VEC("hc_attn_scale", w->hc_attn_scale, 3);
    ADD_VEC("hc_ffn_fn", w->hc_ffn_fn, mix * hcd);
    ADD_VEC("hc_ffn_base", w->hc_ffn_base, mix);
    ADD_VEC("hc_ffn_scale", w->hc_ffn_scale, 3);
    ADD_VEC("attn.q_norm.weight", a->q_norm, c->q_lora_rank);
    ADD_VEC("attn.kv_norm.weight", a->kv_norm, hd);
    ADD_VEC("attn.attn_sink", a->sink, c->n_heads);
    ADD_VEC("attn.compressor.ape", a->c_ape, ratio * C * hd);
    ADD_VEC("attn.compressor.norm.weight", a->c_norm, hd);
    ADD_VEC("attn.indexer.compressor.ape", a->i_ape, ratio * 2 * ihd);
    ADD_VEC("attn.indexer.compressor.norm.weight", a->i_norm, ihd);
    ADD_VEC_AT("ffn.gate.bias", w->ffn.gate_bias, c->n_routed_experts, 1);
    ADD_VEC("enorm.weight", w->enorm, d);
    ADD_VEC("hnorm.weight", w->hnorm, d);
    ADD_VEC("norm.weight", w->norm, d);
    ADD_VEC("hc_head_fn", w->hc_head_fn, c->hc_mult * hcd);
    ADD_VEC("hc_head_base", w->hc_head_base, c->hc_mult);
    ADD_VEC("hc_head_scale", w->hc_head_scale, 1);
    return k;
}

size_t wl_global_lins(const dsv4_global_w *w, wl_lin *out)
{
    size_t k = 0, cap = 2;
    const char *pre = "";
    ADD_LIN("embed", &w->embed);
    ADD_LIN("head", &w->head);
    return k;
}

size_t wl_global_vecs(const dsv4_config *c, const dsv4_global_w *w, wl_vec *out)
{
    size_t k = 0, cap = 4;
    const char *pre = "";
    int64_t hcd = dsv4_config_hc_dim(c);
    ADD_VEC("norm.weight", w->norm, c->hidden_size);
    ADD_VEC("hc_head_fn", w->hc_head_fn, c->hc_mult * hcd);
    ADD_VEC("hc_head_base", w->hc_head_base, c->hc_mult);
    ADD_VEC("hc_head_scale", w->hc_head_scale, 1);
    return k;
}
