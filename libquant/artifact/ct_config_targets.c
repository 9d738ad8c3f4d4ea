/* Target and ignore patterns from the per-block status table. Blocks whose modules of one family
 * carry the same status on the same leaves share one pattern; the pattern enumerates their layer
 * indices (a compact range when they are all the main layers), so it can match no other layer,
 * in particular not the MTP block under any of its names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/ct_config_internal.h"

typedef struct bucket {
    int fam, mtp, status, order;
    unsigned mask;
    int *blocks;
    size_t nb;
} bucket;

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sput(sbuf *s, const char *t)
{
    size_t l = strlen(t);
    if (s->oom)
        return;
    if (s->n + l + 1 > s->cap) {
        size_t nc = (s->cap + l + 1) * 2;
        char *np = realloc(s->p, nc);
        if (!np) {
            s->oom = 1;
            return;
        }
        s->p = np;
        s->cap = nc;
    }
    memcpy(s->p + s->n, t, l + 1);
    s->n += l;
}

/* A regex for a sorted set of non-negative integers: "[0-3]", "(\d|[1-3]\d|4[0-2])" for 0..42,
 * else the alternation of the numbers. */
static void set_regex(sbuf *s, const int *v, size_t n)
{
    char t[64];
    int from0 = n > 0 && v[0] == 0 && v[n - 1] == (int)n - 1 && n <= 100;
    if (n == 1) {
        snprintf(t, sizeof t, "%d", v[0]);
        sput(s, t);
        return;
    }
    if (from0 && n <= 10) {
        snprintf(t, sizeof t, "[0-%d]", (int)n - 1);
        sput(s, t);
        return;
    }
    sput(s, "(");
    if (from0) {
        int tens = (int)n / 10, rest = (int)n % 10;
        sput(s, "\\d");
        if (tens - 1 == 1)
            sput(s, "|1\\d");
        else if (tens - 1 > 1) {
            snprintf(t, sizeof t, "|[1-%d]\\d", tens - 1);
            sput(s, t);
        }
        if (rest == 1)
            snprintf(t, sizeof t, "|%d0", tens);
        else if (rest > 1)
            snprintf(t, sizeof t, "|%d[0-%d]", tens, rest - 1);
        else
            t[0] = 0;
        sput(s, t);
    } else
        for (size_t i = 0; i < n; i++) {
            snprintf(t, sizeof t, "%s%d", i ? "|" : "", v[i]);
            sput(s, t);
        }
    sput(s, ")");
}

static void escaped(sbuf *s, const char *lit)
{
    for (; *lit; lit++)
        sput(s, *lit == '.' ? "\\." : (char[]){*lit, 0});
}

static char *pattern(const dsv4_config *cfg, const bucket *b)
{
    const ct_family *f = &CT_FAMILIES[b->fam];
    sbuf s = {0};
    sput(&s, "re:^(model\\.)?");
    if (b->mtp) {
        int *idx = malloc(b->nb * sizeof *idx);
        if (!idx) {
            free(s.p);
            return NULL;
        }
        for (size_t i = 0; i < b->nb; i++)
            idx[i] = b->blocks[i] - cfg->n_layers;
        sput(&s, "(mtp\\.");
        set_regex(&s, idx, b->nb);
        sput(&s, "|layers\\.");
        set_regex(&s, b->blocks, b->nb);
        sput(&s, ")\\.");
        free(idx);
    } else {
        sput(&s, "layers\\.");
        set_regex(&s, b->blocks, b->nb);
        sput(&s, "\\.");
    }
    sput(&s, f->path_re);
    if (f->moe)
        sput(&s, "(\\.(\\d+\\.(w1|w2|w3|gate_proj|up_proj|down_proj)|w13|w2|gate_up_proj|down_proj))?");
    else {
        const char *seen[2 * CT_MAX_LEAVES];
        int ns = 0;
        for (int l = 0; l < f->n_leaves; l++)
            for (int k = 0; (b->mask & (1u << l)) && f->leaves[l].names[k]; k++) {
                int dup = 0;
                for (int j = 0; j < ns; j++)
                    dup |= !strcmp(seen[j], f->leaves[l].names[k]);
                if (!dup)
                    seen[ns++] = f->leaves[l].names[k];
            }
        if (ns > 1)
            sput(&s, "(");
        for (int j = 0; j < ns; j++) {
            if (j)
                sput(&s, "|");
            escaped(&s, seen[j]);
        }
        if (ns > 1)
            sput(&s, ")");
    }
    sput(&s, "$");
    if (s.oom) {
        free(s.p);
        return NULL;
    }
    return s.p;
}

static int cmp_bucket(const void *a, const void *b)
{
    const bucket *x = a, *y = b;
    if (x->fam != y->fam)
        return x->fam - y->fam;
    return x->order - y->order;
}

static int add_block(bucket **bs, size_t *nbs, int fam, int mtp, int status, unsigned mask, int block)
{
    bucket *b = NULL;
    for (size_t i = 0; i < *nbs && !b; i++)
        if ((*bs)[i].fam == fam && (*bs)[i].mtp == mtp && (*bs)[i].status == status && (*bs)[i].mask == mask)
            b = &(*bs)[i];
    if (!b) {
        bucket *nb = realloc(*bs, (*nbs + 1) * sizeof *nb);
        if (!nb)
            return -1;
        *bs = nb;
        b = &nb[*nbs];
        *b = (bucket){fam, mtp, status, (int)*nbs, mask, NULL, 0};
        ++*nbs;
    }
    int *nv = realloc(b->blocks, (b->nb + 1) * sizeof *nv);
    if (!nv)
        return -1;
    b->blocks = nv;
    b->blocks[b->nb++] = block;
    return 0;
}

static int append(json_t *list, char *p)
{
    if (!p)
        return -1;
    int rc = json_array_append_new(list, json_string(p));
    free(p);
    return rc;
}

int ct_patterns(const dsv4_recipe *r, const dsv4_config *cfg, const int *status, int has_head, json_t **targets,
                json_t *ignore, dsv4_err *e)
{
    int nblocks = cfg->n_layers + cfg->n_mtp, quantize_mtp = r->mtp == DSV4_MTP_QUANTIZE, rc = 0;
    bucket *bs = NULL;
    size_t nbs = 0;
    for (int b = 0; b < nblocks && !rc; b++) {
        int mtp = b >= cfg->n_layers;
        if (mtp && !quantize_mtp)
            continue;
        for (int f = 0; f < CT_N_FAMILIES && !rc; f++) {
            const int *leaf = &status[((size_t)b * CT_N_FAMILIES + (size_t)f) * CT_MAX_LEAVES];
            unsigned done = 0;
            for (int l = 0; l < CT_FAMILIES[f].n_leaves && !rc; l++) {
                if (leaf[l] == CT_NO_STATUS || (done & (1u << l)))
                    continue;
                unsigned mask = 0;
                for (int k = l; k < CT_FAMILIES[f].n_leaves; k++)
                    if (leaf[k] == leaf[l])
                        mask |= 1u << k;
                done |= mask;
                rc = add_block(&bs, &nbs, f, mtp, leaf[l], CT_FAMILIES[f].moe ? 7u : mask, b);
            }
        }
    }
    if (!rc && nbs)
        qsort(bs, nbs, sizeof *bs, cmp_bucket);
    if (!rc && has_head)
        rc = json_array_append_new(ignore, json_string("lm_head"));
    for (size_t i = 0; i < nbs && !rc; i++)
        rc = append(bs[i].status >= 0 ? targets[bs[i].status] : ignore, pattern(cfg, &bs[i]));
    if (!rc && cfg->n_mtp > 0 && !quantize_mtp) {
        /* The whole MTP block is unquantized: every module under any of its names. */
        int idx[DSV4_MAX_MTP];
        for (int i = 0; i < cfg->n_mtp; i++)
            idx[i] = cfg->n_layers + i;
        sbuf s = {0};
        sput(&s, "re:^(model\\.)?layers\\.");
        set_regex(&s, idx, (size_t)cfg->n_mtp);
        sput(&s, "\\.");
        rc = json_array_append_new(ignore, json_string("re:^(model\\.)?mtp\\.\\d+\\.")) || s.oom ||
             json_array_append_new(ignore, json_string(s.p));
        free(s.p);
    }
    for (size_t i = 0; i < nbs; i++)
        free(bs[i].blocks);
    free(bs);
    return rc ? dsv4_fail_rt(e, "quantization_config: out of memory") : 0;
}
