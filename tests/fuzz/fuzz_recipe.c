/* libFuzzer harness for recipes: arbitrary bytes go to dsv4_recipe_parse (both schemas); a recipe
 * that loads is matched against module names of every kind and planned against the tiny config's
 * release layout held in memory (no tensor data), which runs the quantization_config builder and
 * its self-check. The first line of the input is also compiled as a target pattern. Any crash,
 * leak, sanitizer report or broken invariant is a failure. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/plan.h"
#include "model/inventory.h"
#include "recipe/target.h"

static const char *const MODULES[] = {
    "layers.0.attn.wq_a", "layers.1.attn.indexer.wq_b", "layers.2.attn.compressor.wkv", "layers.3.ffn.experts.15.w2",
    "layers.0.ffn.shared_experts.w1", "layers.1.ffn.gate", "mtp.0.e_proj", "mtp.0.ffn.experts.0.w3", "head", "embed",
    "layers.0.attn_norm", "model.layers.0.attn.fused_wqa_wkv", "lm_head", NULL};

static dsv4_config cfg;
static dsv4_ckpt ck;
static dsv4_tensor *tensors;
static const dsv4_tensor **by_name;
static int ready;

/* The tiny config's release inventory as a checkpoint without data. */
static void setup(void)
{
    dsv4_err e;
    dsv4_inventory inv;
    if (dsv4_config_load("fixtures/dsv4-tiny/config.json", &cfg, &e) || dsv4_inventory_build(&cfg, &inv, &e))
        abort();
    tensors = calloc(inv.n, sizeof *tensors);
    by_name = calloc(inv.n, sizeof *by_name);
    for (size_t i = 0; i < inv.n; i++) {
        const dsv4_inv_tensor *it = &inv.t[inv.by_name[i]];
        dsv4_tensor *t = &tensors[i];
        t->name = strdup(it->name);
        t->dtype = it->dtype;
        t->ndim = it->ndim;
        t->shape[0] = it->shape[0];
        t->shape[1] = it->shape[1];
        t->end = it->nbytes;
        by_name[i] = t;
    }
    ck.n = inv.n;
    ck.by_name = by_name;
    dsv4_inventory_free(&inv);
    ready = 1;
}

static void check_plan(const dsv4_plan *p)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < p->n; i++) {
        const dsv4_plan_job *j = &p->jobs[i];
        if (!j->src[0] || j->n_out < 1 || j->n_out > 3)
            abort();
        for (int k = 0; k < j->n_out; k++)
            if (!j->out[k].name || !j->out[k].name[0])
                abort();
        bytes += j->n_out;
    }
    if (!p->config || !json_object_get(p->config, "dsv4_provenance") || (p->n && !bytes))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dsv4_recipe r;
    dsv4_err e;
    if (!ready)
        setup();
    /* The first line as a pattern. */
    char pat[256], why[256];
    size_t n = 0;
    while (n < size && n < sizeof pat - 1 && data[n] != '\n' && data[n])
        n++;
    memcpy(pat, data, n);
    pat[n] = 0;
    dsv4_target *t = dsv4_target_compile(pat, why, sizeof why);
    if (t) {
        for (const char *const *m = MODULES; *m; m++)
            dsv4_target_match(t, *m);
        dsv4_target_free(t);
    }
    if (dsv4_recipe_parse((const char *)data, size, "fuzz.yaml", &r, &e) == 0) {
        if (strlen(r.hash) != 32)
            abort();
        for (const char *const *m = MODULES; *m; m++) {
            const dsv4_recipe_group *g = dsv4_recipe_match(&r, *m);
            if (g && (g < r.groups || g >= r.groups + r.n_groups))
                abort();
            if (g && dsv4_recipe_ignored(&r, *m))
                abort();
        }
        dsv4_plan p;
        if (dsv4_plan_build(&ck, &cfg, NULL, &r, &p, &e) == 0) {
            check_plan(&p);
            dsv4_plan_free(&p);
        }
        dsv4_recipe_free(&r);
    }
    return 0;
}
