/* Conversion throughput of dsv4-quant's engine against copying the same bytes on the same disk,
 * measured in the same run:
 *   1. the tiny fixture with recipes/w4a16-rtn.yaml (the whole plan: FP8 pass-through, INT4 experts,
 *      BF16 MTP, copies);
 *   2. one synthetic full-size V4-Flash expert layer in the release layout (256 experts x w1, w3
 *      [2048, 4096] and w2 [4096, 2048] as FP4 with e8m0 per-32 scales) to W4A16, the jobs built
 *      directly (a layer alone is not a model the planner accepts).
 * Usage: bench_convert [experts (256)] [threads (all)]; the folder is $TMPDIR (or /tmp). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact/convert.h"
#include "io/atomic.h"
#include "io/st_plan.h"
#include "io/st_write.h"
#include "util/clock.h"

/* Copies every file of checkpoint `c` into the folder `to` (read + write + fsync), as the
 * baseline a conversion is compared with. Returns bytes copied. */
static uint64_t copy_files(const dsv4_ckpt *c, const char *to)
{
    uint64_t total = 0;
    for (size_t i = 0; i < c->n_files; i++) {
        const char *base = strrchr(c->files[i].path, '/');
        char dst[8400];
        snprintf(dst, sizeof dst, "%s/%s", to, base ? base + 1 : c->files[i].path);
        dsv4_err e;
        if (dsv4_atomic_write(dst, c->files[i].map, c->files[i].size, &e)) {
            fprintf(stderr, "bench_convert: %s\n", e.msg);
            exit(1);
        }
        total += c->files[i].size;
    }
    return total;
}

static void die(const dsv4_err *e)
{
    fprintf(stderr, "bench_convert: %s\n", e->msg);
    exit(1);
}

/* Writes the synthetic expert layer (random codes, scales 2^-8..2^-5) to `dir`. */
static void write_layer(const char *dir, int experts)
{
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, 4ull << 30, DSV4_ST_ALWAYS_INDEX);
    static const char *w[3] = {"w1", "w3", "w2"};
    for (int x = 0; x < experts; x++)
        for (int k = 0; k < 3; k++) {
            int64_t out = k == 2 ? 4096 : 2048, in = k == 2 ? 2048 : 4096;
            int64_t ws[2] = {out, in / 2}, ss[2] = {out, in / 32};
            char n[128];
            snprintf(n, sizeof n, "layers.3.ffn.experts.%d.%s.weight", x, w[k]);
            if (dsv4_st_plan_add(&p, n, DSV4_I8, 2, ws, &e))
                die(&e);
            snprintf(n, sizeof n, "layers.3.ffn.experts.%d.%s.scale", x, w[k]);
            if (dsv4_st_plan_add(&p, n, DSV4_F8_E8M0, 2, ss, &e))
                die(&e);
        }
    dsv4_st_writer *wr;
    if (dsv4_st_plan_finish(&p, &e) || dsv4_st_writer_open(&wr, &p, dir, NULL, &e))
        die(&e);
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < p.n; i++) {
        uint8_t *d;
        if (dsv4_st_writer_begin(wr, i, &d, &e))
            die(&e);
        int scale = p.tensors[i].dtype == DSV4_F8_E8M0;
        for (uint64_t b = 0; b < p.tensors[i].nbytes; b++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            d[b] = scale ? (uint8_t)(119 + (s >> 60) % 4) : (uint8_t)(s >> 56);
        }
        if (dsv4_st_writer_end(wr, i, &e))
            die(&e);
    }
    if (dsv4_st_writer_close(wr, &e))
        die(&e);
    dsv4_st_plan_free(&p);
}

/* INT4 jobs for every expert weight of the synthetic layer. */
static void layer_plan(const dsv4_ckpt *c, dsv4_plan *p)
{
    memset(p, 0, sizeof *p);
    p->jobs = calloc(c->n / 2, sizeof *p->jobs);
    for (size_t i = 0; i < c->n; i++) {
        const dsv4_tensor *t = c->by_name[i];
        size_t len = strlen(t->name);
        if (len < 7 || strcmp(t->name + len - 7, ".weight"))
            continue;
        char sn[160], *stem = strndup(t->name, len - 7);
        snprintf(sn, sizeof sn, "%s.scale", stem);
        dsv4_plan_job *j = &p->jobs[p->n++];
        j->kind = DSV4_JOB_INT4;
        j->src[0] = t;
        j->src[1] = dsv4_ckpt_find(c, sn);
        j->group = 0;
        j->rows = t->shape[0];
        j->cols = 2 * t->shape[1];
        j->n_out = 3;
        static const char *suf[3] = {"weight_packed", "weight_scale", "weight_shape"};
        for (int k = 0; k < 3; k++) {
            char on[200];
            snprintf(on, sizeof on, "%s.%s", stem, suf[k]);
            j->out[k].name = strdup(on);
        }
        j->out[0] = (dsv4_plan_out){j->out[0].name, DSV4_I32, 2, {j->rows, j->cols / 8}};
        j->out[1] = (dsv4_plan_out){j->out[1].name, DSV4_BF16, 2, {j->rows, j->cols / 128}};
        j->out[2] = (dsv4_plan_out){j->out[2].name, DSV4_I64, 1, {2, 0}};
        for (int k = 0; k < 3; k++)
            p->out_bytes += dsv4_plan_out_bytes(&j->out[k]);
        free(stem);
    }
    p->config = json_object();
}

static void free_layer_plan(dsv4_plan *p)
{
    for (size_t i = 0; i < p->n; i++)
        for (int k = 0; k < p->jobs[i].n_out; k++)
            free(p->jobs[i].out[k].name);
    free(p->jobs);
    json_decref(p->config);
}

/* Times one conversion and one copy of the same source bytes into fresh folders under `base`. */
static void measure(const char *label, const char *base, const dsv4_ckpt *c, const dsv4_plan *p,
                    const dsv4_recipe *r, int threads)
{
    char out[4200], cp[4200];
    snprintf(out, sizeof out, "%s/conv-%d", base, (int)getpid());
    snprintf(cp, sizeof cp, "%s/copy-%d", base, (int)getpid());
    dsv4_err e;
    dsv4_convert_opts o = {.threads = threads};
    dsv4_convert_stats st;
    double t0 = dsv4_now();
    if (dsv4_convert_run(c, p, r, out, &o, &st, &e))
        die(&e);
    double tc = dsv4_now() - t0;
    dsv4_convert_stats_free(&st);
    dsv4_rmtree(out);
    mkdir(cp, 0755);
    t0 = dsv4_now();
    uint64_t copied = copy_files(c, cp);
    double tcp = dsv4_now() - t0;
    dsv4_rmtree(cp);
    uint64_t in = 0;
    for (size_t i = 0; i < c->n_files; i++)
        in += c->files[i].size;
    printf("%-28s source %8.1f MB -> artifact %8.1f MB: convert %7.3f s (%6.2f GB/s of source), copy %7.3f s "
           "(%6.2f GB/s); convert/copy time ratio %.2f, %d threads\n",
           label, in / 1e6, st.out_bytes / 1e6, tc, in / 1e9 / tc, tcp, copied / 1e9 / tcp, tc / tcp, st.threads);
}

int main(int argc, char **argv)
{
    int experts = argc > 1 ? atoi(argv[1]) : 256, threads = argc > 2 ? atoi(argv[2]) : 0;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char base[4096];
    snprintf(base, sizeof base, "%s/dsv4-bench-convert-%d", tmp, (int)getpid());
    mkdir(base, 0755);
    dsv4_err e;
    printf("bench_convert: dsv4-quant engine vs copying the same bytes on the same disk (%s)\n", base);

    /* 1. The tiny fixture through the real plan. */
    dsv4_ckpt c;
    dsv4_config cfg;
    dsv4_recipe r;
    dsv4_plan p;
    json_error_t je;
    json_t *raw = json_load_file("fixtures/dsv4-tiny/config.json", 0, &je);
    if (dsv4_ckpt_open("fixtures/dsv4-tiny", 0, &c, &e) || dsv4_config_load("fixtures/dsv4-tiny/config.json", &cfg, &e) ||
        dsv4_recipe_load("recipes/w4a16-rtn.yaml", &r, &e) || dsv4_plan_build(&c, &cfg, raw, &r, &p, &e))
        die(&e);
    measure("tiny fixture, w4a16", base, &c, &p, &r, threads);
    dsv4_plan_free(&p);
    dsv4_ckpt_close(&c);
    json_decref(raw);

    /* 2. One full-size expert layer. */
    char layer[4200];
    snprintf(layer, sizeof layer, "%s/layer", base);
    write_layer(layer, experts);
    if (dsv4_ckpt_open(layer, 0, &c, &e))
        die(&e);
    layer_plan(&c, &p);
    char label[64];
    snprintf(label, sizeof label, "Flash MoE layer, %d experts", experts);
    measure(label, base, &c, &p, &r, threads);
    free_layer_plan(&p);
    dsv4_ckpt_close(&c);
    dsv4_recipe_free(&r);
    dsv4_rmtree(base);
    return 0;
}
