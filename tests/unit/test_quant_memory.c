/* dsv4-quant's resident memory is bounded by the jobs in flight, not by the model: two synthetic
 * models in the release layout (the tiny fixture's config with 16 and with 64 routed experts of
 * 1024, about 42 and 143 MB) are converted by the real binary, whose own peak resident set
 * (VmHWM, which it reports in --json) must stay under the stated bound and must not grow with
 * the model. */
#include "harness.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/st_plan.h"
#include "io/st_write.h"
#include "model/config.h"
#include "model/inventory.h"

/* Writes a release-layout model with `experts` routed experts of 1024 into dir; returns its bytes. */
static uint64_t write_model(const char *dir, int experts)
{
    json_error_t je;
    json_t *cfg = json_load_file(th_path("fixtures/dsv4-tiny/config.json"), 0, &je);
    json_object_set_new(cfg, "n_routed_experts", json_integer(experts));
    json_object_set_new(cfg, "moe_intermediate_size", json_integer(1024));
    char *text = json_dumps(cfg, JSON_INDENT(2));
    dsv4_config c;
    dsv4_inventory inv;
    dsv4_err e;
    if (dsv4_config_parse(text, strlen(text), "synthetic", &c, &e) || dsv4_inventory_build(&c, &inv, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return 0;
    }
    dsv4_st_plan p;
    dsv4_st_plan_init(&p, 64 << 20, DSV4_ST_ALWAYS_INDEX);
    for (size_t i = 0; i < inv.n; i++) {
        int64_t shape[2] = {inv.t[i].shape[0], inv.t[i].shape[1]};
        dsv4_st_plan_add(&p, inv.t[i].name, inv.t[i].dtype, inv.t[i].ndim, shape, &e);
    }
    dsv4_st_writer *w;
    if (dsv4_st_plan_finish(&p, &e) || dsv4_st_writer_open(&w, &p, dir, NULL, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return 0;
    }
    for (size_t i = 0; i < p.n; i++) {
        const dsv4_inv_tensor *t = dsv4_inventory_find(&inv, p.tensors[i].name);
        uint8_t *d;
        dsv4_st_writer_begin(w, i, &d, &e);
        for (uint64_t b = 0; b < p.tensors[i].nbytes; b++) {
            uint8_t r = (uint8_t)th_rand();
            switch (t->dtype) {
            case DSV4_F8_E8M0: d[b] = (uint8_t)(118 + r % 4); break;
            case DSV4_F8_E4M3: d[b] = r & 0x3F ? (uint8_t)(r & 0xBF) : 0x30; break; /* finite, |x| < 2 */
            case DSV4_BF16: case DSV4_F32: d[b] = (b % (t->dtype == DSV4_BF16 ? 2 : 4)) ==
                                                   (uint64_t)(t->dtype == DSV4_BF16 ? 1 : 3) ? 0x3C : r; break;
            case DSV4_I64: d[b] = b % 8 == 0 ? (uint8_t)(r % experts) : 0; break;
            default: d[b] = r;
            }
        }
        dsv4_st_writer_end(w, i, &e);
    }
    if (dsv4_st_writer_add_file(w, "config.json", text, strlen(text), &e) || dsv4_st_writer_close(w, &e))
        th_fail(__FILE__, __LINE__, "%s", e.msg);
    uint64_t bytes = p.total_bytes;
    dsv4_st_plan_free(&p);
    dsv4_inventory_free(&inv);
    free(text);
    json_decref(cfg);
    return bytes;
}

/* Runs dsv4-quant --json on src and returns its own peak resident set in bytes (0 on failure).
 * Not wait4's ru_maxrss: Linux carries the forked copy of this (large) test process into it. */
static uint64_t peak_rss_of_quant(const char *src, const char *out)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s/bin/dsv4-quant' --json --threads 2 --recipe '%s' '%s' '%s'",
             getenv("BUILD") ? getenv("BUILD") : "build", th_path("recipes/w4a16-rtn.yaml"), src, out);
    FILE *f = popen(cmd, "r");
    json_error_t je;
    json_t *j = f ? json_loadf(f, 0, &je) : NULL;
    int rc = f ? pclose(f) : -1;
    uint64_t rss = (uint64_t)json_integer_value(json_object_get(j, "peak_rss_bytes"));
    if (rc != 0 || !rss)
        th_fail(__FILE__, __LINE__, "%s: exit %d, no peak_rss_bytes", cmd, rc);
    json_decref(j);
    return rss;
}

TEST(quant_memory_bounded_by_jobs_not_model)
{
#ifdef __SANITIZE_ADDRESS__
    printf("SKIP quant_memory_bounded_by_jobs_not_model: AddressSanitizer's shadow memory and quarantine "
           "dominate the resident set\n");
    return;
#endif
    const char *dir = th_tmpdir();
    char small[4200], large[4200], out1[4200], out2[4200];
    snprintf(small, sizeof small, "%s/m16", dir);
    snprintf(large, sizeof large, "%s/m64", dir);
    snprintf(out1, sizeof out1, "%s/a16", dir);
    snprintf(out2, sizeof out2, "%s/a64", dir);
    uint64_t b16 = write_model(small, 16), b64 = write_model(large, 64);
    REQUIRE(b16 && b64);
    uint64_t r16 = peak_rss_of_quant(small, out1), r64 = peak_rss_of_quant(large, out2);
    REQUIRE(r16 && r64);
    /* The bound: the process itself (about 8 MB with its libraries) plus, per thread, one job's
     * working set: a source weight as BF16 (largest here: the 1024 x 256 embed/head or an expert,
     * 0.5 MB) plus its outputs and source pages in flight (under 1 MB): 32 MB leaves ample room
     * and is a small fraction of either model. */
    uint64_t bound = 32ull << 20;
    CHECK_MSG(r64 < bound, "peak RSS %.1f MB converting a %.1f MB model exceeds the %.0f MB bound", r64 / 1e6,
              b64 / 1e6, bound / 1e6);
    CHECK_MSG(r64 < r16 + (8ull << 20), "peak RSS grew with the model: %.1f MB (%.1f MB model) vs %.1f MB (%.1f MB)",
              r64 / 1e6, b64 / 1e6, r16 / 1e6, b16 / 1e6);
    printf("  quant memory: %.1f MB model -> peak RSS %.1f MB; %.1f MB model -> %.1f MB\n", b16 / 1e6, r16 / 1e6,
           b64 / 1e6, r64 / 1e6);
}
