/* Releasing loaded weights (runner/weights.h): every backend linear and float vector a load left
 * in a dsv4_layer_w / dsv4_global_w, NULL-safe and idempotent (the struct is zeroed). */
#include <stdlib.h>
#include <string.h>

#include "runner/weights.h"

static void free_lin(dsv4_ops *o, dsv4_lin *l)
{
    if (l->w || l->s)
        o->lin_free(o, l);
    memset(l, 0, sizeof *l);
}

static void free_vec(dsv4_ops *o, float **p)
{
    if (*p)
        o->free(o, *p);
    *p = NULL;
}

static void free_experts(dsv4_ops *o, dsv4_lin **v, int64_t n)
{
    if (*v)
        for (int64_t i = 0; i < n; i++)
            free_lin(o, &(*v)[i]);
    free(*v);
    *v = NULL;
}

void dsv4_layer_w_free(dsv4_ops *o, dsv4_layer_w *w)
{
    if (!w || !o)
        return;
    dsv4_attn_w *a = &w->attn;
    dsv4_lin *lins[] = {&a->wq_a, &a->wq_b, &a->wkv, &a->wo_a, &a->wo_b, &a->c_wkv, &a->c_wgate,
                        &a->i_wq_b, &a->i_wproj, &a->i_wkv, &a->i_wgate, &w->ffn.gate, &w->ffn.sh_w1,
                        &w->ffn.sh_w3, &w->ffn.sh_w2, &w->e_proj, &w->h_proj};
    for (size_t i = 0; i < sizeof lins / sizeof lins[0]; i++)
        free_lin(o, lins[i]);
    float **vecs[] = {&a->q_norm, &a->kv_norm, &a->sink, &a->c_ape, &a->c_norm, &a->i_ape, &a->i_norm,
                      &w->attn_norm, &w->ffn_norm, &w->hc_attn_fn, &w->hc_attn_base,
                      &w->hc_attn_scale, &w->hc_ffn_fn, &w->hc_ffn_base, &w->hc_ffn_scale, &w->enorm,
                      &w->hnorm, &w->norm, &w->hc_head_fn, &w->hc_head_base, &w->hc_head_scale};
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++)
        free_vec(o, vecs[i]);
    free_experts(o, &w->ffn.w1, w->ffn.n_experts);
    free_experts(o, &w->ffn.w3, w->ffn.n_experts);
    free_experts(o, &w->ffn.w2, w->ffn.n_experts);
    free(w->ffn.tid2eid);
    free(w->ffn.gate_bias);
    memset(w, 0, sizeof *w);
}

void dsv4_global_w_free(dsv4_ops *o, dsv4_global_w *w)
{
    if (!w || !o)
        return;
    free_lin(o, &w->embed);
    free_lin(o, &w->head);
    float **vecs[] = {&w->norm, &w->hc_head_fn, &w->hc_head_base, &w->hc_head_scale};
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++)
        free_vec(o, vecs[i]);
    memset(w, 0, sizeof *w);
}
