/* The source checkpoint under release names. Release-named tensors are looked up in the inventory
 * as they are; transformers-named ones (a BF16 checkpoint saved by transformers or llm-compressor)
 * are mapped with model/names.h. The MTP aliases a served artifact carries
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

int plan_src_build(const dsv4_ckpt *ck, const dsv4_inventory *inv, const dsv4_config *cfg, plan_src *s, dsv4_err *e)
{
    memset(s, 0, sizeof *s);
    const char *dir = ck->dir ? ck->dir : "source";
    s->e = malloc((ck->n ? ck->n : 1) * sizeof *s->e);
    s->owned = malloc((ck->n ? ck->n : 1) * sizeof *s->owned);
    if (!s->e || !s->owned)
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
        if (k == DSV4_MAP_SPLIT)
            return dsv4_fail(e, "%s: tensor '%s' is a fused transformers expert tensor (%s); reading fused "
                             "gate_up_proj / down_proj experts is not supported yet: save the checkpoint with "
                             "per-expert names (llm-compressor's linearized experts) or in the release layout",
                             dir, t->name, m.note);
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
    for (size_t i = 0; i < s->n_owned; i++)
        free(s->owned[i]);
    free(s->owned);
    free(s->e);
    memset(s, 0, sizeof *s);
}
