/* Opening a model for the runner: the weight source, the globals, the layers the caller asks for,
 * and the two RoPE frequency tables (spec §3.0: θ = rope_theta on sliding layers; compress θ with
 * YaRN on compressed layers, computed as transformers computes them, in fp32). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runner/runner.h"

void dsv4_rope_tables(const dsv4_config *c, float *main_tab, float *compress_tab)
{
    int64_t rd = c->rope_head_dim, half = rd / 2;
    for (int64_t i = 0; i < half; i++) {
        float ex = (float)(2 * i) / (float)rd;
        main_tab[i] = 1.0f / powf((float)c->rope_theta, ex);
        float pf = powf((float)c->compress_rope_theta, ex);
        compress_tab[i] = 1.0f / pf;
    }
    if (!c->has_yarn) return;
    /* transformers' _compute_yarn_parameters with truncate = True */
    double base = c->compress_rope_theta, orig = (double)c->yarn_orig_max_pos;
    double lo = floor((double)rd * log(orig / (c->yarn_beta_fast * 2 * M_PI)) / (2 * log(base)));
    double hi = ceil((double)rd * log(orig / (c->yarn_beta_slow * 2 * M_PI)) / (2 * log(base)));
    if (lo < 0) lo = 0;
    if (hi > rd - 1) hi = (double)(rd - 1);
    if (lo == hi) hi += 0.001;
    for (int64_t i = 0; i < half; i++) {
        float ramp = (float)(((double)i - lo) / (hi - lo));
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        float extra_factor = 1.0f - ramp;
        float pf = powf((float)c->compress_rope_theta, (float)(2 * i) / (float)rd);
        float interp = 1.0f / ((float)c->yarn_factor * pf), extrap = 1.0f / pf;
        compress_tab[i] = interp * (1.0f - extra_factor) + extrap * extra_factor;
    }
}

const float *dsv4_model_rope(const dsv4_model *m, int layer)
{
    return dsv4_config_attn(&m->cfg, layer) == DSV4_ATTN_SWA ? m->rope_main : m->rope_compress;
}

void dsv4_model_close(dsv4_model *m)
{
    if (!m) return;
    if (m->layers) {
        for (int i = 0; i < m->cfg.n_layers + m->cfg.n_mtp; i++) dsv4_layer_w_free(m->ops, &m->layers[i]);
        free(m->layers);
    }
    dsv4_global_w_free(m->ops, &m->g);
    dsv4_wsrc_close(m->src);
    memset(m, 0, sizeof *m);
}

int dsv4_model_open(const char *path, dsv4_ops *ops, int flags, dsv4_model *m, dsv4_err *e)
{
    memset(m, 0, sizeof *m);
    m->ops = ops;
    if (dsv4_wsrc_open(path, &m->src, e)) return -1;
    m->cfg = *dsv4_wsrc_config(m->src);
    if (m->cfg.rope_head_dim > 128) {
        dsv4_fail(e, "%s: qk_rope_head_dim %lld is larger than the runner's 128", path, (long long)m->cfg.rope_head_dim);
        goto fail;
    }
    dsv4_rope_tables(&m->cfg, m->rope_main, m->rope_compress);
    int nl = m->cfg.n_layers + m->cfg.n_mtp;
    m->layers = calloc((size_t)nl, sizeof *m->layers);
    if (!m->layers) { dsv4_fail_rt(e, "out of memory"); goto fail; }
    for (int i = 0; i < nl; i++) m->layers[i].id = -1;
    if (dsv4_global_w_load(m->src, ops, &m->g, e)) goto fail;
    for (int i = 0; i < nl; i++) {
        int want = i < m->cfg.n_layers ? (flags & DSV4_LOAD_LAYERS) : (flags & DSV4_LOAD_MTP);
        if (!want) continue;
        if (dsv4_layer_w_load(m->src, i, ops, &m->layers[i], e)) goto fail;
        m->n_loaded++;
    }
    return 0;
fail:
    dsv4_model_close(m);
    return -1;
}
