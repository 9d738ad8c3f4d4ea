/* Weight loading of transformers-named artifacts: the bf16 recipe's artifact renamed to
 * transformers 5.x names with the routed experts fused as transformers saves them
 * (mlp.experts.gate_up_proj [E, 2I, H], w1 rows then w3 rows; down_proj [E, H, I]), and the w4a16
 * artifact renamed with llm-compressor's per-expert names (mlp.experts.E.gate_proj.weight_packed)
 * and the quantization suffixes kept. MTP tensors keep their release names (transformers has no
 * MTP). Every layer, the MTP block and the globals load with the values of the release-named
 * artifact, exactly. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "formats/fp.h"
#include "model/names.h"
#include "test_rulesa_util.h"
#include "test_wload_util.h"
#include "verify/astore.h"

/* transformers name of a release tensor name (parts keep their suffix); experts per expert
 * (linearized) unless `fused` (then returns 1 and leaves out empty: the caller fuses them). */
static int hf_name(const char *rel, const dsv4_config *cfg, int fused, char *out, size_t cap)
{
    size_t ml;
    int p = dsv4_part_of(rel, &ml);
    char w[300];
    if (p < 0)
        snprintf(w, sizeof w, "%s", rel);
    else
        snprintf(w, sizeof w, "%.*s.weight", (int)ml, rel);
    const char *suffix = p < 0 ? "" : rel + ml;
    dsv4_name_map m;
    dsv4_map_kind k = dsv4_name_to_hf(w, cfg, &m);
    if (k == DSV4_MAP_DIRECT) {
        size_t n = strlen(m.name);
        if (p >= 0)
            n -= strlen(".weight");
        snprintf(out, cap, "%.*s%s", (int)n, m.name, suffix);
        return 0;
    }
    if (k == DSV4_MAP_FUSED) {
        if (fused) {
            out[0] = 0;
            return 1;
        }
        const char *x = strstr(rel, ".ffn.experts.");
        int layer = atoi(rel + strlen("layers."));
        const char *proj = strstr(x, ".w1.") ? "gate_proj" : strstr(x, ".w3.") ? "up_proj" : "down_proj";
        snprintf(out, cap, "model.layers.%d.mlp.experts.%d.%s%s", layer, m.expert, proj, suffix);
        return 0;
    }
    snprintf(out, cap, "%s", rel); /* mtp.*: no transformers name */
    return 0;
}

static dsv4_config art_cfg;

static void rename_all(ra_art *a, int fused)
{
    ra_art b = {0};
    b.config = json_incref(a->config);
    for (size_t i = 0; i < a->n; i++) {
        char n[300];
        if (hf_name(a->t[i].name, &art_cfg, fused, n, sizeof n) == 0)
            ra_put(&b, n, a->t[i].dtype, a->t[i].ndim, a->t[i].shape, a->t[i].data);
    }
    if (fused) {
        int64_t E = art_cfg.n_routed_experts, I = art_cfg.moe_inter_dim, H = art_cfg.hidden_size;
        for (int l = 0; l < art_cfg.n_layers; l++) {
            int64_t gu[3] = {E, 2 * I, H}, dn[3] = {E, H, I};
            uint16_t *g = malloc((size_t)(E * 2 * I * H) * 2), *d = malloc((size_t)(E * H * I) * 2);
            for (int64_t x = 0; x < E; x++)
                for (int k = 1; k <= 3; k++) {
                    char n[128];
                    snprintf(n, sizeof n, "layers.%d.ffn.experts.%lld.w%d.weight", l, (long long)x, k);
                    ra_tensor *t = ra_find(a, n);
                    if (!t || t->dtype != DSV4_BF16) {
                        th_fail(__FILE__, __LINE__, "%s: not BF16 in the artifact", n);
                        continue;
                    }
                    uint16_t *dst = k == 2 ? d + x * H * I : g + (x * 2 * I + (k == 3 ? I : 0)) * H;
                    memcpy(dst, t->data, t->nbytes);
                }
            char n[128];
            snprintf(n, sizeof n, "model.layers.%d.mlp.experts.gate_up_proj", l);
            ra_put(&b, n, DSV4_BF16, 3, gu, g);
            snprintf(n, sizeof n, "model.layers.%d.mlp.experts.down_proj", l);
            ra_put(&b, n, DSV4_BF16, 3, dn, d);
            free(g);
            free(d);
        }
    }
    ra_free(a);
    *a = b;
}

static void to_fused(ra_art *a) { rename_all(a, 1); }
static void to_linearized(ra_art *a) { rename_all(a, 0); }

static void check_hf(const char *recipe, void (*fn)(ra_art *), const char *probe)
{
    const char *clean = ra_clean(recipe);
    REQUIRE(clean);
    dsv4_err e;
    char cp[4200];
    snprintf(cp, sizeof cp, "%s/config.json", clean);
    REQUIRE(dsv4_config_load(cp, &art_cfg, &e) == 0);
    const char *dir = ra_edited(recipe, fn);
    REQUIRE(dir);
    dsv4_ckpt hf, ref;
    REQUIRE(dsv4_ckpt_open(dir, 0, &hf, &e) == 0);
    CHECK_MSG(dsv4_ckpt_find(&hf, probe) != NULL, "%s: no tensor %s", dir, probe);
    CHECK(dsv4_ckpt_find(&hf, "model.layers.3.mlp.gate.e_score_correction_bias") != NULL);
    dsv4_ckpt_close(&hf);
    dsv4_wsrc *s;
    int rc = dsv4_wsrc_open(dir, &s, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    REQUIRE(rc == 0);
    REQUIRE(dsv4_ckpt_open(clean, 0, &ref, &e) == 0);
    const dsv4_config *c = dsv4_wsrc_config(s);
    wl_lin *lins = calloc(4096, sizeof *lins);
    wl_vec vecs[64];
    size_t n_lins = 0;
    for (int id = 0; id <= c->n_layers + c->n_mtp; id++) {
        dsv4_layer_w lw;
        dsv4_global_w g;
        size_t nl, nv;
        if (id < c->n_layers + c->n_mtp) {
            rc = dsv4_layer_w_load(s, id, wl_ops(), &lw, &e);
            CHECK_MSG(rc == 0, "layer %d: %s", id, e.msg);
            if (rc)
                continue;
            nl = wl_layer_lins(c, &lw, lins, 4096);
            nv = wl_layer_vecs(c, &lw, vecs, 64);
        } else {
            rc = dsv4_global_w_load(s, wl_ops(), &g, &e);
            CHECK_MSG(rc == 0, "globals: %s", e.msg);
            if (rc)
                continue;
            nl = wl_global_lins(&g, lins);
            nv = wl_global_vecs(c, &g, vecs);
        }
        for (size_t i = 0; i < nl; i++) {
            int np;
            float *x = wl_expected(&ref, lins[i].stem, lins[i].lin->out, lins[i].lin->in, &np);
            if (x)
                CHECK_MSG(!memcmp(x, lins[i].lin->w, (size_t)(lins[i].lin->out * lins[i].lin->in) * sizeof *x),
                          "%s: differs from the release-named artifact", lins[i].stem);
            free(x);
        }
        for (size_t i = 0; i < nv; i++) {
            const dsv4_tensor *t = dsv4_ckpt_find(&ref, vecs[i].name);
            CHECK_MSG(t != NULL, "%s missing from the reference", vecs[i].name);
            float *x = malloc((size_t)vecs[i].n * sizeof *x);
            if (t && dsv4_decode_row(t->dtype, t->data, x, (size_t)vecs[i].n) == 0)
                CHECK_MSG(!memcmp(x, vecs[i].v, (size_t)vecs[i].n * sizeof *x), "%s differs", vecs[i].name);
            free(x);
        }
        n_lins += nl;
        if (id < c->n_layers + c->n_mtp)
            dsv4_layer_w_free(wl_ops(), &lw);
        else
            dsv4_global_w_free(wl_ops(), &g);
    }
    CHECK_EQ_INT(n_lins, 4 * 57 + 3 * 2 + 2 * 4 + 59 + 2);
    CHECK_EQ_INT(wl_live(), 0);
    free(lins);
    dsv4_ckpt_close(&ref);
    dsv4_wsrc_close(s);
}

TEST(wload_hf_fused_bf16)
{
    check_hf("recipes/bf16.yaml", to_fused, "model.layers.2.mlp.experts.gate_up_proj");
}

TEST(wload_hf_linearized_w4a16)
{
    check_hf("recipes/w4a16-rtn.yaml", to_linearized, "model.layers.2.mlp.experts.7.down_proj.weight_packed");
}
