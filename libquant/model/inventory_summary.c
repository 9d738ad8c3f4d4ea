/* Checkpoint summaries against an inventory (see inventory_summary.h). A layer's attention type is
 * read from which tensors it has: indexer tensors mean CSA, compressor tensors without an indexer
 * mean HCA, attention without a compressor means SWA. */
#include "model/inventory_summary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const dsv4_tensor *find(const dsv4_ckpt *c, const char *prefix, const char *suffix)
{
    char name[192];
    snprintf(name, sizeof name, "%s%s", prefix, suffix);
    return dsv4_ckpt_find(c, name);
}

static void layer_found(const dsv4_ckpt *c, const char *p, dsv4_layer_summary *l)
{
    int idx = find(c, p, "attn.indexer.wq_b.weight") || find(c, p, "attn.indexer.weights_proj.weight") ||
              find(c, p, "attn.indexer.compressor.ape");
    const dsv4_tensor *ape = find(c, p, "attn.compressor.ape");
    int comp = ape || find(c, p, "attn.compressor.wkv.weight") || find(c, p, "attn.compressor.wgate.weight");
    int attn = find(c, p, "attn.wq_a.weight") || find(c, p, "attn.wkv.weight") || find(c, p, "attn.attn_sink");
    l->found = idx ? DSV4_ATTN_CSA : comp ? DSV4_ATTN_HCA : attn ? DSV4_ATTN_SWA : -1;
    l->found_ratio = !comp && !idx ? 0 : ape && ape->ndim == 2 ? ape->shape[0] : -1;
    int tid = find(c, p, "ffn.gate.tid2eid") != NULL, bias = find(c, p, "ffn.gate.bias") != NULL;
    l->hash_found = tid == bias ? -1 : tid;
}

static int summarize_layers(const dsv4_config *cfg, const dsv4_ckpt *c, dsv4_inv_summary *s)
{
    s->n_layers = cfg->n_layers + cfg->n_mtp;
    s->layers = calloc((size_t)s->n_layers + 1, sizeof *s->layers);
    if (!s->layers)
        return -1;
    for (int i = 0; i < s->n_layers; i++) {
        dsv4_layer_summary *l = &s->layers[i];
        char p[32];
        l->layer = i;
        l->mtp = i >= cfg->n_layers ? i - cfg->n_layers : -1;
        if (l->mtp >= 0)
            snprintf(p, sizeof p, "mtp.%d.", l->mtp);
        else
            snprintf(p, sizeof p, "layers.%d.", i);
        l->expected = dsv4_config_attn(cfg, i);
        l->hash_expected = cfg->is_hash[i];
        layer_found(c, p, l);
        s->layer_mismatches += l->found != (int)l->expected || l->found_ratio != cfg->compress_ratio[i] ||
                               l->hash_found != l->hash_expected;
    }
    return 0;
}

static void add(dsv4_count *k, uint64_t bytes)
{
    k->n++;
    k->bytes += bytes;
}

int dsv4_inventory_summarize(const dsv4_inventory *inv, const dsv4_config *cfg, const dsv4_ckpt *c,
                             dsv4_inv_summary *s, dsv4_err *e)
{
    memset(s, 0, sizeof *s);
    if (cfg->n_layers != inv->n_layers || cfg->n_mtp != inv->n_mtp)
        return dsv4_fail(e, "%s: the inventory was built for %d layers + %d MTP, the config has %d + %d", cfg->path,
                         inv->n_layers, inv->n_mtp, cfg->n_layers, cfg->n_mtp);
    for (size_t i = 0; i < inv->n; i++) {
        const dsv4_inv_tensor *t = &inv->t[i];
        add(&s->expected_by_role[t->role], t->nbytes);
        add(&s->expected_by_dtype[t->dtype], t->nbytes);
        const dsv4_tensor *g = dsv4_ckpt_find(c, t->name);
        int ok = g && g->dtype == t->dtype && g->ndim == t->ndim && g->shape[0] == t->shape[0] &&
                 (t->ndim < 2 || g->shape[1] == t->shape[1]);
        s->mtp_expected += t->is_mtp;
        s->mtp_ok += t->is_mtp && ok;
        s->fp32_expected += t->is_fp32_set;
        s->fp32_ok += t->is_fp32_set && g && g->dtype == DSV4_F32;
    }
    for (size_t j = 0; j < c->n; j++) {
        const dsv4_tensor *g = c->by_name[j];
        const dsv4_inv_tensor *t = dsv4_inventory_find(inv, g->name);
        add(&s->found_by_role[t ? t->role : DSV4_ROLE_UNKNOWN], dsv4_tensor_nbytes(g));
        if ((unsigned)g->dtype < DSV4_DTYPE_COUNT)
            add(&s->found_by_dtype[g->dtype], dsv4_tensor_nbytes(g));
        s->mtp_found += !strncmp(g->name, "mtp.", 4);
    }
    s->mtp_present = s->mtp_found > 0;
    s->mtp_complete = s->mtp_expected > 0 && s->mtp_ok == s->mtp_expected;
    s->fp32_intact = s->fp32_ok == s->fp32_expected;
    if (summarize_layers(cfg, c, s))
        return dsv4_fail_rt(e, "out of memory summarising %s", c->dir ? c->dir : "the checkpoint");
    return 0;
}

void dsv4_inv_summary_free(dsv4_inv_summary *s)
{
    free(s->layers);
    memset(s, 0, sizeof *s);
}
