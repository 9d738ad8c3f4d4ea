/* A SYNTHETIC source for measuring NVFP4 GPTQ: a copy of a DeepSeek-V4 checkpoint whose routed
 * experts are no longer exactly representable in NVFP4.
 *
 * Why: the release's FP4 experts (E2M1 times an e8m0 power of two per 32 inputs) convert to NVFP4
 * without loss, and so do the same values in a BF16 checkpoint; GPTQ cannot improve on exact. A
 * model whose experts were trained in BF16 has values off every FP4 grid; this helper imitates one:
 *
 *   every routed expert weight (layers.N / mtp.N .ffn.experts.E.w1|w2|w3.weight, release names)
 *   becomes BF16:  w' = bf16_rne(w + frac · rms(row) · sqrt(3) · u),  u uniform in [-1, 1)
 *   (w the source value, FP4 / FP8 dequantized exactly; the noise's rms is frac times the row's rms)
 *
 * u comes from splitmix64 seeded with seed ^ FNV-1a(tensor name), consumed in element order, and
 * the arithmetic is IEEE double / float with no library function but sqrt, so the output is the
 * same bytes on every machine. Every other tensor is copied byte for byte (the release's FP8
 * attention stays FP8; the perturbed experts' .scale tensors are dropped). config.json gets a
 * "dsv4_synthetic" key that says all this (artifacts made from the folder carry it on); the
 * tokenizer / generation files and the calibration / eval token rows (calib.tokens.safetensors,
 * eval.tokens.safetensors, calib.jsonl) are copied; golden values are not (they describe the
 * unperturbed model). The folder is written atomically (io/st_write.h).
 *
 * Usage: perturb_experts SRC OUT [--frac F (0.1)] [--seed S (1)]
 *        (--frac 0: no noise, the experts' source values as BF16, as a BF16 checkpoint of the
 *        release holds them: NVFP4-representable, though not by compressed-tensors' scales)
 *        perturb_experts             (no arguments, as bench/run.sh runs it: fixtures/dsv4-tiny
 *                                     into a temporary folder, timed, then removed)
 * Prints one line: tensors perturbed, values, values changed, the noise's rms over the weights'
 * rms, seconds. Exit codes as the tools: 0 ok, 1 runtime failure, 2 bad usage or input. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact/convert.h"
#include "artifact/convert_job.h"
#include "formats/fp.h"
#include "io/atomic.h"
#include "io/checkpoint.h"
#include "io/st_plan.h"
#include "io/st_write.h"
#include "util/clock.h"

/* Files besides dsv4_carried_files that the source's users need (calibration and eval rows). */
static const char *const data_files[] = {"calib.tokens.safetensors", "eval.tokens.safetensors", "calib.jsonl", NULL};

typedef struct pstats {
    uint64_t tensors, values, changed;
    double sum_w2, sum_n2; /* Σ w², Σ (w' - w)² over the perturbed values */
} pstats;

typedef struct pctx {
    const dsv4_ckpt *src;
    double frac;
    uint64_t seed;
    pstats st;
} pctx;

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001B3ull;
    return h;
}

/* 1 when `name` is a routed expert's weight in release names ("layers.3.ffn.experts.7.w2.weight",
 * "mtp.0.ffn.experts.1.w1.weight"); *stem_len: the length of the name without ".weight". */
static int is_expert_weight(const char *name, size_t *stem_len)
{
    int l, x, n = 0;
    char w[4] = {0};
    if ((sscanf(name, "layers.%d.ffn.experts.%d.%2[w0-9].weight%n", &l, &x, w, &n) == 3 ||
         sscanf(name, "mtp.%d.ffn.experts.%d.%2[w0-9].weight%n", &l, &x, w, &n) == 3) &&
        name[n] == 0 && (!strcmp(w, "w1") || !strcmp(w, "w2") || !strcmp(w, "w3"))) {
        *stem_len = strlen(name) - strlen(".weight");
        return 1;
    }
    return 0;
}

/* The .scale tensor of an expert weight (NULL when it has none: a BF16 source). */
static const dsv4_tensor *scale_of(const dsv4_ckpt *c, const char *name, size_t stem_len)
{
    char s[256];
    snprintf(s, sizeof s, "%.*s.scale", (int)stem_len, name);
    return dsv4_ckpt_find(c, s);
}

/* 1 when `name` is the .scale of a routed expert weight (dropped: the weight becomes BF16). */
static int is_expert_scale(const dsv4_ckpt *c, const char *name)
{
    size_t n = strlen(name), stem;
    char w[256];
    if (n < 6 || n > 200 || strcmp(name + n - 6, ".scale"))
        return 0;
    snprintf(w, sizeof w, "%.*s.weight", (int)(n - 6), name);
    return is_expert_weight(w, &stem) && dsv4_ckpt_find(c, w);
}

/* The logical [rows, cols] of an expert weight (FP4 stores two values per byte). */
static int expert_shape(const dsv4_tensor *w, const dsv4_tensor *s, int64_t shape[2], dsv4_err *e)
{
    if (w->ndim != 2)
        return dsv4_fail(e, "%s: %d dimensions; a routed expert weight is [out, in]", w->name, w->ndim);
    int fp4 = s && (w->dtype == DSV4_I8 || w->dtype == DSV4_U8);
    shape[0] = w->shape[0];
    shape[1] = fp4 ? 2 * w->shape[1] : w->shape[1];
    return 0;
}

static int fill(void *ctx, const dsv4_st_plan_tensor *t, uint8_t *dst, dsv4_err *e)
{
    pctx *P = ctx;
    size_t stem;
    const dsv4_tensor *w = dsv4_ckpt_find(P->src, t->name);
    if (!is_expert_weight(t->name, &stem)) {
        memcpy(dst, w->data, t->nbytes);
        return 0;
    }
    int64_t rows = t->shape[0], cols = t->shape[1];
    uint16_t *v = (uint16_t *)dst; /* the source values as BF16 first, then perturbed in place */
    if (dsv4_source_bf16(w, scale_of(P->src, t->name, stem), v, e))
        return -1;
    uint64_t rng = P->seed ^ fnv1a(t->name);
    for (int64_t r = 0; r < rows; r++) {
        uint16_t *row = v + r * cols;
        double s2 = 0;
        for (int64_t c = 0; c < cols; c++) {
            double x = dsv4_bf16_to_f32(row[c]);
            s2 += x * x;
        }
        double amp = P->frac * sqrt(s2 / (double)cols) * sqrt(3.0);
        for (int64_t c = 0; c < cols && amp > 0; c++) { /* amp 0 (--frac 0, a zero row): the values as they are */
            double x = dsv4_bf16_to_f32(row[c]);
            double u = (double)(splitmix64(&rng) >> 11) * 0x1p-52 - 1.0;
            uint16_t y = dsv4_f32_to_bf16((float)(x + amp * u));
            double d = (double)dsv4_bf16_to_f32(y) - x;
            P->st.changed += y != row[c];
            P->st.sum_n2 += d * d;
            row[c] = y;
        }
        P->st.sum_w2 += s2;
    }
    P->st.values += (uint64_t)(rows * cols);
    P->st.tensors++;
    return 0;
}

/* config.json with the "dsv4_synthetic" note. */
static int add_config(dsv4_st_writer *w, const char *src, double frac, uint64_t seed, dsv4_err *e)
{
    char path[4096], how[512];
    snprintf(path, sizeof path, "%s/config.json", src);
    json_error_t je;
    json_t *c = json_load_file(path, 0, &je);
    if (!c || !json_is_object(c)) {
        json_decref(c);
        return dsv4_fail(e, "%s: not a JSON object (%s)", path, je.text);
    }
    if (frac > 0)
        snprintf(how, sizeof how, "SYNTHETIC: every routed expert weight is the source's value plus uniform noise of rms "
                 "%g x its row's rms (splitmix64, seed %llu), stored as BF16; made by bench/perturb_experts.c to measure "
                 "NVFP4 GPTQ on experts that are not exactly representable", frac, (unsigned long long)seed);
    else
        snprintf(how, sizeof how, "every routed expert weight is the source's value (FP4 / FP8 dequantized exactly) "
                 "stored as BF16, as in a BF16 checkpoint of the release; made by bench/perturb_experts.c --frac 0");
    char fs[32];
    snprintf(fs, sizeof fs, "%g", frac);
    json_object_set_new(c, "dsv4_synthetic", json_pack("{s:s,s:s,s:s,s:I}", "what", how, "source", src, "frac", fs,
                                                        "seed", (json_int_t)seed));
    char *s = json_dumps(c, JSON_INDENT(2));
    json_decref(c);
    if (!s)
        return dsv4_fail_rt(e, "out of memory rendering config.json");
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return dsv4_fail_rt(e, "out of memory rendering config.json");
    }
    t[n] = '\n';
    int rc = dsv4_st_writer_add_file(w, "config.json", t, n + 1, e);
    free(t);
    return rc;
}

static int perturb(const char *src, const char *out, double frac, uint64_t seed, pstats *st, dsv4_err *e)
{
    dsv4_ckpt c;
    if (dsv4_ckpt_open(src, 0, &c, e))
        return -1;
    pctx P = {.src = &c, .frac = frac, .seed = seed};
    dsv4_st_plan p;
    dsv4_st_plan_init(&p, 5ull << 30, DSV4_ST_ALWAYS_INDEX);
    dsv4_st_writer *w = NULL;
    int rc = -1;
    for (size_t i = 0; i < c.n; i++) {
        const dsv4_tensor *t = c.by_name[i];
        size_t stem;
        if (is_expert_scale(&c, t->name))
            continue;
        if (is_expert_weight(t->name, &stem)) {
            int64_t shape[2];
            if (expert_shape(t, scale_of(&c, t->name, stem), shape, e) ||
                dsv4_st_plan_add(&p, t->name, DSV4_BF16, 2, shape, e))
                goto out;
        } else if (dsv4_st_plan_add(&p, t->name, t->dtype, t->ndim, t->shape, e)) {
            goto out;
        }
    }
    if (dsv4_st_plan_finish(&p, e) || dsv4_st_writer_open(&w, &p, out, NULL, e))
        goto out;
    for (size_t i = 0; i < p.n; i++)
        if (dsv4_st_writer_fill(w, i, fill, &P, e))
            goto out;
    if (P.st.tensors == 0) {
        dsv4_fail(e, "%s: no routed expert weight (layers.N.ffn.experts.E.w1|w2|w3.weight, release names) to perturb",
                  src);
        goto out;
    }
    if (add_config(w, src, frac, seed, e) || dsv4_st_writer_copy_files(w, src, dsv4_carried_files, e) ||
        dsv4_st_writer_copy_files(w, src, data_files, e))
        goto out;
    rc = dsv4_st_writer_close(w, e);
    w = NULL;
    *st = P.st;
out:
    if (w)
        dsv4_st_writer_abort(w);
    dsv4_st_plan_free(&p);
    dsv4_ckpt_close(&c);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: perturb_experts SRC OUT [--frac F] [--seed S]   (no arguments: time it on "
                    "fixtures/dsv4-tiny)\n");
    return DSV4_EXIT_BADINPUT;
}

int main(int argc, char **argv)
{
    const char *src = NULL, *out = NULL;
    double frac = 0.1;
    uint64_t seed = 1;
    char tmp[4096];
    for (int i = 1; i < argc; i++) {
        char *end;
        if (!strcmp(argv[i], "--frac") && i + 1 < argc) {
            frac = strtod(argv[++i], &end);
            if (*end || !(frac >= 0 && frac <= 10))
                return fprintf(stderr, "perturb_experts: --frac %s: expected a number in [0, 10]\n", argv[i]), usage();
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            seed = strtoull(argv[++i], &end, 10);
            if (*end || argv[i][0] == '-' || !argv[i][0])
                return fprintf(stderr, "perturb_experts: --seed %s: expected a non-negative integer\n", argv[i]), usage();
        } else if (argv[i][0] == '-') {
            return fprintf(stderr, "perturb_experts: unknown option %s\n", argv[i]), usage();
        } else if (!src) {
            src = argv[i];
        } else if (!out) {
            out = argv[i];
        } else {
            return usage();
        }
    }
    if (src && !out)
        return usage();
    int timed = !src;
    if (timed) {
        const char *d = getenv("TMPDIR");
        src = "fixtures/dsv4-tiny";
        snprintf(tmp, sizeof tmp, "%s/perturb_experts-%ld", d && *d ? d : "/tmp", (long)getpid());
        out = tmp;
    }
    dsv4_err e = {0};
    pstats st = {0};
    double t0 = dsv4_now();
    if (perturb(src, out, frac, seed, &st, &e)) {
        fprintf(stderr, "perturb_experts: %s\n", e.msg);
        return e.code ? e.code : DSV4_EXIT_RUNTIME;
    }
    printf("perturb_experts: %s -> %s: %llu expert tensors, %llu values, %.2f %% changed, noise rms / weight rms "
           "%.4f, %.3f s\n", src, timed ? "(temporary, removed)" : out, (unsigned long long)st.tensors,
           (unsigned long long)st.values, st.values ? 100.0 * (double)st.changed / (double)st.values : 0.0,
           st.sum_w2 > 0 ? sqrt(st.sum_n2 / st.sum_w2) : 0.0, dsv4_now() - t0);
    if (timed && dsv4_rmtree(out)) {
        fprintf(stderr, "perturb_experts: could not remove %s\n", out);
        return DSV4_EXIT_RUNTIME;
    }
    return 0;
}
