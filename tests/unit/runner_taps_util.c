/* Helpers of the calibration-tap tests (runner_taps_util.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "runner_taps_util.h"

int rt_rec_fn(void *ud, int layer, dsv4_tap_site site, int expert, const float *x, int64_t rows, int64_t cols,
              dsv4_err *e)
{
    rt_rec *r = ud;
    if ((int)site == r->fail_site) return dsv4_fail(e, "test tap refuses site %d", (int)site);
    if (r->n == r->cap) {
        rt_call *c = realloc(r->c, (size_t)(r->cap * 2 + 16) * sizeof *c);
        if (!c) return dsv4_fail_rt(e, "out of memory");
        r->c = c;
        r->cap = r->cap * 2 + 16;
    }
    rt_call *c = &r->c[r->n];
    *c = (rt_call){layer, (int)site, expert, rows, cols, malloc((size_t)(rows * cols) * sizeof(float) + 1)};
    if (!c->x) return dsv4_fail_rt(e, "out of memory");
    r->n++;
    return r->o->download(r->o, c->x, x, (size_t)(rows * cols) * sizeof(float), e);
}

void rt_rec_clear(rt_rec *r)
{
    for (int i = 0; i < r->n; i++) free(r->c[i].x);
    r->n = 0;
}

const rt_call *rt_find(const rt_rec *r, int site, int expert)
{
    for (int i = 0; i < r->n; i++)
        if (r->c[i].site == site && r->c[i].expert == expert) return &r->c[i];
    return NULL;
}

int rt_count(const rt_rec *r, int site)
{
    int n = 0;
    for (int i = 0; i < r->n; i++) n += r->c[i].site == site;
    return n;
}

/* A weight of the source dequantized to float [out, in] (malloc'd). */
static float *deq(dsv4_wsrc *s, const char *stem, int64_t out, int64_t in)
{
    dsv4_lin h = {0};
    dsv4_err e = {0};
    float *w = malloc((size_t)(out * in) * sizeof(float));
    int rc = !w || dsv4_wsrc_lin(s, stem, out, in, &h, &e) ? -1 : dsv4_lin_dequant_f32(&h, w, &e);
    dsv4_wsrc_lin_done(s, &h);
    if (rc) {
        th_fail(__FILE__, __LINE__, "%s: %s", stem, w ? e.msg : "out of memory");
        free(w);
        return NULL;
    }
    return w;
}

float *rt_deq_ffn(dsv4_wsrc *s, int layer, const char *mod, int64_t out, int64_t in)
{
    char stem[96];
    snprintf(stem, sizeof stem, "layers.%d.ffn.%s", layer, mod);
    return deq(s, stem, out, in);
}

/* h[n, inter] = silu(min(w1 x, L))·clamp(w3 x, ±L) in double over x [n, d] (floats). */
void rt_act_ref(const float *w1, const float *w3, const float *x, int64_t n, int64_t d, int64_t inter, double L,
                    double *h)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < inter; i++) {
            double g = 0, u = 0;
            for (int64_t c = 0; c < d; c++) {
                g += (double)w1[i * d + c] * x[r * d + c];
                u += (double)w3[i * d + c] * x[r * d + c];
            }
            g = g > L ? L : g;
            u = u > L ? L : (u < -L ? -L : u);
            h[r * inter + i] = g / (1 + exp(-g)) * u;
        }
}

/* Largest over rows of max|got - ref| / max|ref| (per row). */
double rt_row_rel(const float *got, const double *ref, int64_t n, int64_t w)
{
    double worst = 0;
    for (int64_t r = 0; r < n; r++) {
        double md = 0, mr = 0;
        for (int64_t c = 0; c < w; c++) {
            md = fmax(md, fabs(got[r * w + c] - ref[r * w + c]));
            mr = fmax(mr, fabs(ref[r * w + c]));
        }
        worst = fmax(worst, mr > 0 ? md / mr : md);
    }
    return worst;
}

int rt_walk_open(rt_walk *k, dsv4_ops *ops)
{
    dsv4_err e = {0};
    memset(k, 0, sizeof *k);
    if (rf_open(&k->f, ops, DSV4_LOAD_LAYERS)) return -1;
    const dsv4_config *c = &k->f.m.cfg;
    for (int i = 0; i < NT; i++) k->pos[i] = i;
    k->ids = k->f.rows + ROW * k->f.row_len;
    k->X = dsv4_scratch(ops, NT * c->hc_mult * c->hidden_size, &e);
    if (!k->X || dsv4_embed_streams(&k->f.m, k->ids, NT, k->X, &e)) { fprintf(stderr, "walk: %s\n", e.msg); return -1; }
    return 0;
}

void rt_walk_close(rt_walk *k)
{
    if (k->f.ops) dsv4_scratch_free(k->f.ops, k->X);
    rf_close(&k->f);
}

/* Layer L on a copy of the walk's input with `taps`: the output streams on the host (malloc'd). */
float *rt_layer_run(rt_walk *k, int L, const dsv4_taps *taps, dsv4_err *e)
{
    dsv4_ops *o = k->f.ops;
    int64_t n = NT * k->f.m.cfg.hc_mult * k->f.m.cfg.hidden_size;
    float *X = dsv4_scratch(o, n, e), *h = malloc((size_t)n * sizeof(float));
    int rc = !X || !h || o->copy(o, X, k->X, (size_t)n * sizeof(float), e) ||
             dsv4_layer_forward(&k->f.m, &k->f.m.layers[L], NULL, X, k->ids, k->pos, NT, taps, e) ||
             o->download(o, h, X, (size_t)n * sizeof(float), e);
    dsv4_scratch_free(o, X);
    if (rc) { free(h); return NULL; }
    return h;
}

/* Moves the walk to the next layer's input (the untapped output of layer L). */
int rt_walk_next(rt_walk *k, int L, dsv4_err *e)
{
    return dsv4_layer_forward(&k->f.m, &k->f.m.layers[L], NULL, k->X, k->ids, k->pos, NT, NULL, e);
}