/* The source checkpoint under release names. Release-named tensors are looked up in the inventory
 * as they are; transformers-named ones (a BF16 checkpoint saved by transformers or llm-compressor)
 * are mapped with model/names.h; transformers' fused experts (gate_up_proj [E, 2I, H], w1 rows then
 * w3 rows, and down_proj [E, H, I]) become per-expert views into the mapping, since each expert's
 * rows are contiguous there. The MTP aliases a served artifact carries
 * (mtp.N.head.weight, mtp.N.emb.tok_emb.weight) are copies of head / embed and are left out: the
 * plan writes them again from head and embed when the recipe asks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/plan_internal.h"
#include "model/names.h"
#include "util/sorted.h"

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const plan_src_entry *)a)->release, ((const plan_src_entry *)b)->release);
}

static const char *entry_name(const void *ctx, size_t i) { return ((const plan_src *)ctx)->e[i].release; }

static int is_alias(const char *n)
{
    if (strncmp(n, "mtp.", 4))
        return 0;
    const char *p = n + 4;
    while (*p >= '0' && *p <= '9')
        p++;
    return p > n + 4 && (!strcmp(p, ".head.weight") || !strcmp(p, ".emb.tok_emb.weight"));
}

/* One view: `rows` x `cols` BF16 elements of t starting at element `first`, under a release name. */
static int add_view(plan_src *s, const dsv4_tensor *t, const char *name, int64_t first, int64_t rows, int64_t cols,
                    const char *dir, dsv4_err *e)
{
    dsv4_tensor *v = &s->views[s->n_views];
    uint64_t esize = (uint64_t)dsv4_dtype_bits(t->dtype) / 8;
    memset(v, 0, sizeof *v);
    if (!(v->name = strdup(name)))
        return dsv4_fail_rt(e, "%s: out of memory", dir);
    s->n_views++;
    v->dtype = t->dtype;
    v->ndim = 2;
    v->shape[0] = rows;
    v->shape[1] = cols;
    v->begin = t->begin + (uint64_t)first * esize;
    v->end = v->begin + (uint64_t)(rows * cols) * esize;
    v->data = t->data ? t->data + (uint64_t)first * esize : NULL;
    v->file = t->file;
    s->e[s->n++] = (plan_src_entry){v->name, v};
    return 0;
}

/* Transformers' fused experts of one layer as per-expert release tensors (w1, w3 from gate_up_proj;
 * w2 from down_proj), after checking the fused shape against the config. */
static int add_expert_views(plan_src *s, const dsv4_tensor *t, const dsv4_config *cfg, const char *dir, dsv4_err *e)
{
    int layer, used = 0;
    char which[16] = "";
    if (sscanf(t->name, "model.layers.%d.mlp.experts.%15[a-z_]%n", &layer, which, &used) != 2 || t->name[used] ||
        layer < 0 || layer >= cfg->n_layers || (strcmp(which, "gate_up_proj") && strcmp(which, "down_proj")))
        return dsv4_fail(e, "%s: tensor '%s' is not a fused expert tensor of a decoder layer", dir, t->name);
    int up = !strcmp(which, "gate_up_proj");
    int64_t E = cfg->n_routed_experts, I = cfg->moe_inter_dim, H = cfg->hidden_size;
    int64_t r = up ? 2 * I : H, c = up ? H : I;
    if (t->ndim != 3 || t->shape[0] != E || t->shape[1] != r || t->shape[2] != c ||
        (t->dtype != DSV4_BF16 && t->dtype != DSV4_F16 && t->dtype != DSV4_F32))
        return dsv4_fail(e, "%s: tensor '%s' is %s with %d dimensions; expected a BF16 (or F16/F32) [%lld, %lld, %lld] "
                         "for %lld experts", dir, t->name, dsv4_dtype_name(t->dtype), t->ndim, (long long)E,
                         (long long)r, (long long)c, (long long)E);
    for (int64_t x = 0; x < E; x++) {
        char name[160];
        if (up) {
            snprintf(name, sizeof name, "layers.%d.ffn.experts.%lld.w1.weight", layer, (long long)x);
            if (add_view(s, t, name, x * 2 * I * H, I, H, dir, e))
                return -1;
            snprintf(name, sizeof name, "layers.%d.ffn.experts.%lld.w3.weight", layer, (long long)x);
            if (add_view(s, t, name, (x * 2 * I + I) * H, I, H, dir, e))
                return -1;
        } else {
            snprintf(name, sizeof name, "layers.%d.ffn.experts.%lld.w2.weight", layer, (long long)x);
            if (add_view(s, t, name, x * H * I, H, I, dir, e))
                return -1;
        }
    }
    return 0;
}

int plan_src_build(const dsv4_ckpt *ck, const dsv4_inventory *inv, const dsv4_config *cfg, plan_src *s, dsv4_err *e)
{
    memset(s, 0, sizeof *s);
    const char *dir = ck->dir ? ck->dir : "source";
    /* Room for the per-expert views of every fused expert tensor (at most 2 per expert each). */
    size_t fused = 0;
    for (size_t i = 0; i < ck->n; i++)
        fused += strstr(ck->by_name[i]->name, ".mlp.experts.gate_up_proj") || strstr(ck->by_name[i]->name, ".mlp.experts.down_proj");
    size_t n_views = fused * 2 * (size_t)(cfg->n_routed_experts > 0 ? cfg->n_routed_experts : 1);
    s->e = malloc((ck->n + n_views + 1) * sizeof *s->e);
    s->owned = malloc((ck->n ? ck->n : 1) * sizeof *s->owned);
    s->views = calloc(n_views + 1, sizeof *s->views);
    if (!s->e || !s->owned || !s->views)
        return dsv4_fail_rt(e, "%s: out of memory", dir);
    for (size_t i = 0; i < ck->n; i++) {
        const dsv4_tensor *t = ck->by_name[i];
        if (dsv4_inventory_find(inv, t->name)) {
            s->e[s->n++] = (plan_src_entry){t->name, t};
            continue;
        }
        if (is_alias(t->name)) {
            s->n_aliases++;
            continue;
        }
        dsv4_name_map m;
        dsv4_map_kind k = dsv4_name_from_hf(t->name, &m);
        if (k == DSV4_MAP_SPLIT) {
            if (add_expert_views(s, t, cfg, dir, e))
                return -1;
            s->hf_named = 1;
            continue;
        }
        if (k != DSV4_MAP_DIRECT || !dsv4_inventory_find(inv, m.name))
            return dsv4_fail(e, "%s: tensor '%s' is not part of the DeepSeek-V4 release inventory for this config "
                             "(%d layers, %d MTP blocks, %lld routed experts)%s%s", dir, t->name, cfg->n_layers,
                             cfg->n_mtp, (long long)cfg->n_routed_experts, k == DSV4_MAP_NONE ? ": " : "",
                             k == DSV4_MAP_NONE ? m.note : "");
        if (!(s->owned[s->n_owned] = strdup(m.name)))
            return dsv4_fail_rt(e, "%s: out of memory", dir);
        s->e[s->n++] = (plan_src_entry){s->owned[s->n_owned++], t};
        s->hf_named = 1;
    }
    qsort(s->e, s->n, sizeof *s->e, cmp_entry);
    for (size_t i = 1; i < s->n; i++)
        if (!strcmp(s->e[i - 1].release, s->e[i].release))
            return dsv4_fail(e, "%s: tensors '%s' and '%s' are both release tensor '%s'", dir, s->e[i - 1].t->name,
                             s->e[i].t->name, s->e[i].release);
    return 0;
}

const dsv4_tensor *plan_src_find(const plan_src *s, const char *release)
{
    size_t i = dsv4_find_name(s->n, entry_name, s, release);
    return i == DSV4_NOT_FOUND ? NULL : s->e[i].t;
}

void plan_src_free(plan_src *s)
{
    for (size_t i = 0; i < s->n_views; i++)
        free(s->views[i].name);
    free(s->views);
    for (size_t i = 0; i < s->n_owned; i++)
        free(s->owned[i]);
    free(s->owned);
    free(s->e);
    memset(s, 0, sizeof *s);
}
