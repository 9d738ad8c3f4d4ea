/* One tensor's statistics for dsv4-inspect --tensor (see inspect.h): dequantize (release FP8
 * block or FP4 experts, through the CPU or CUDA kernels), decode floats, or read integers; then
 * min / max / mean / absmax / non-finite count, and an xxh3-128 of the stored bytes. */
#include "artifact/inspect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "dequant.h"
#include "formats/fp.h"
#include "gpu.h"

typedef struct stats {
    uint64_t n, nonfinite;
    double min, max, sum, absmax;
} stats;

static void stats_add(stats *s, double v)
{
    if (!isfinite(v)) {
        s->nonfinite++;
        return;
    }
    if (s->n == 0 || v < s->min)
        s->min = v;
    if (s->n == 0 || v > s->max)
        s->max = v;
    s->sum += v;
    if (fabs(v) > s->absmax)
        s->absmax = fabs(v);
    s->n++;
}

static int64_t read_int(dsv4_dtype t, const uint8_t *p, uint64_t i)
{
    switch (t) {
    case DSV4_BOOL: case DSV4_U8: return p[i];
    case DSV4_I8: return (int8_t)p[i];
    case DSV4_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case DSV4_U16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case DSV4_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case DSV4_U32: { uint32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    default: { int64_t v; memcpy(&v, p + 8 * i, 8); return v; } /* I64, U64 (as signed) */
    }
}

/* The `.scale` sibling of `<stem>.weight`, or NULL. */
static const dsv4_tensor *scale_of(const dsv4_ckpt *c, const dsv4_tensor *w)
{
    size_t n = strlen(w->name);
    if (n < 7 || strcmp(w->name + n - 7, ".weight"))
        return NULL;
    char buf[1024];
    snprintf(buf, sizeof buf, "%.*s.scale", (int)(n - 7), w->name);
    const dsv4_tensor *s = dsv4_ckpt_find(c, buf);
    return s && s->dtype == DSV4_F8_E8M0 && s->ndim == 2 && w->ndim == 2 ? s : NULL;
}

/* Dequantizes a release FP8-block or FP4 weight to float32; returns the buffer or NULL. */
static float *dequant(const dsv4_tensor *w, const dsv4_tensor *s, dsv4_qformat fmt, int use_gpu,
                      uint64_t *numel, dsv4_err *e)
{
    dsv4_qweight q = {w->name, w->data, s->data, w->shape[0], w->shape[1], s->shape[0], s->shape[1]};
    *numel = (uint64_t)q.w_rows * (uint64_t)q.w_cols * (fmt == DSV4_QFMT_FP4 ? 2 : 1);
    float *out = malloc(*numel * sizeof(float) + 1);
    if (!out) {
        dsv4_fail_rt(e, "%s: out of memory for %llu values", w->name, (unsigned long long)*numel);
        return NULL;
    }
    int rc = use_gpu ? dsv4_dequant_cuda(fmt, &q, DSV4_F32, out, e) : dsv4_dequant_cpu(fmt, &q, DSV4_F32, out, e);
    if (rc) {
        free(out);
        return NULL;
    }
    return out;
}

json_t *dsv4_inspect_tensor(const dsv4_ckpt *c, const char *name, const char *device, dsv4_err *e)
{
    const dsv4_tensor *t = dsv4_ckpt_find(c, name);
    if (!t) {
        char alt[1024];
        snprintf(alt, sizeof alt, "%s.weight", name);
        if (dsv4_ckpt_find(c, alt))
            dsv4_fail(e, "%s: no tensor '%s' (did you mean '%s'?)", c->dir, name, alt);
        else
            dsv4_fail(e, "%s: no tensor '%s'", c->dir, name);
        return NULL;
    }
    int gpus = dsv4_gpu_count();
    if (!strcmp(device, "cuda") && gpus == 0) {
        dsv4_fail(e, "--device cuda: no CUDA device is available");
        return NULL;
    }
    int use_gpu = strcmp(device, "cpu") && gpus > 0;
    json_t *r = json_pack("{s:s,s:s,s:s,s:o,s:I}", "name", t->name, "file", dsv4_ckpt_file_of(c, t), "dtype",
                          dsv4_dtype_name(t->dtype), "shape", dsv4_shape_json(t->shape, t->ndim), "bytes",
                          (json_int_t)dsv4_tensor_nbytes(t));
    XXH128_hash_t h = XXH3_128bits(t->data, dsv4_tensor_nbytes(t));
    char hex[40];
    snprintf(hex, sizeof hex, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
    json_object_set_new(r, "xxh3_128", json_string(hex));

    stats st = {0, 0, 0, 0, 0, 0};
    const dsv4_tensor *s = scale_of(c, t);
    int fp8 = s && t->dtype == DSV4_F8_E4M3, fp4 = s && (t->dtype == DSV4_I8 || t->dtype == DSV4_U8);
    if (fp8 || fp4) {
        uint64_t n;
        float *v = dequant(t, s, fp8 ? DSV4_QFMT_FP8_BLOCK : DSV4_QFMT_FP4, use_gpu, &n, e);
        if (!v) {
            json_decref(r);
            return NULL;
        }
        for (uint64_t i = 0; i < n; i++)
            stats_add(&st, v[i]);
        free(v);
        int64_t lshape[2] = {t->shape[0], t->shape[1] * (fp4 ? 2 : 1)};
        json_object_set_new(r, "dequantized", json_pack("{s:s,s:s,s:o,s:s}", "as", fp8 ? "fp8_block" : "fp4_e2m1",
                                                        "scale", s->name, "logical_shape", dsv4_shape_json(lshape, 2), "device",
                                                        use_gpu ? "cuda" : "cpu"));
    } else if (dsv4_dtype_is_float(t->dtype)) {
        uint64_t n = dsv4_tensor_numel(t);
        for (uint64_t i = 0; i < n; i++)
            stats_add(&st, dsv4_decode_elem(t->dtype, t->data, i));
    } else if (dsv4_dtype_bits(t->dtype) >= 8 && t->dtype != DSV4_C64 && t->dtype != DSV4_F8_E4M3FNUZ &&
               t->dtype != DSV4_F8_E5M2FNUZ) {
        uint64_t n = dsv4_tensor_numel(t);
        for (uint64_t i = 0; i < n; i++)
            stats_add(&st, (double)read_int(t->dtype, t->data, i));
    } else {
        dsv4_fail(e, "%s: tensor '%s' has dtype %s, which dsv4-inspect cannot decode", dsv4_ckpt_file_of(c, t),
                  t->name, dsv4_dtype_name(t->dtype));
        json_decref(r);
        return NULL;
    }
    json_object_set_new(r, "count", json_integer((json_int_t)(st.n + st.nonfinite)));
    json_object_set_new(r, "nonfinite", json_integer((json_int_t)st.nonfinite));
    if (st.n) {
        json_object_set_new(r, "min", json_real(st.min));
        json_object_set_new(r, "max", json_real(st.max));
        json_object_set_new(r, "mean", json_real(st.sum / (double)st.n));
        json_object_set_new(r, "absmax", json_real(st.absmax));
    }
    return r;
}
