/* Release module classification and name forms (see modules.h). */
#include "recipe/modules.h"

#include <stdio.h>
#include <string.h>

#include "model/names.h"

/* Splits "layers.N.rest" / "mtp.N.rest" into its prefix length and rest; 0 for a global name. */
static size_t block_prefix(const char *m, int *is_mtp)
{
    const char *p = m;
    *is_mtp = 0;
    if (!strncmp(p, "layers.", 7))
        p += 7;
    else if (!strncmp(p, "mtp.", 4)) {
        p += 4;
        *is_mtp = 1;
    } else
        return 0;
    const char *d = p;
    while (*d >= '0' && *d <= '9')
        d++;
    if (d == p || *d != '.')
        return 0;
    return (size_t)(d + 1 - m);
}

static int one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(s, *set))
            return 1;
    return 0;
}

/* "ffn.experts.E.wK" */
static int routed_expert(const char *s)
{
    if (strncmp(s, "ffn.experts.", 12))
        return 0;
    s += 12;
    const char *d = s;
    while (*d >= '0' && *d <= '9')
        d++;
    return d > s && d[0] == '.' && d[1] == 'w' && d[2] >= '1' && d[2] <= '3' && !d[3];
}

dsv4_mod_kind dsv4_module_kind(const char *module)
{
    static const char *const qlin[] = {"attn.wq_a", "attn.wq_b", "attn.wkv", "attn.wo_a", "attn.wo_b",
                                       "attn.indexer.wq_b", "ffn.shared_experts.w1", "ffn.shared_experts.w2",
                                       "ffn.shared_experts.w3", NULL};
    static const char *const ulin[] = {"attn.compressor.wkv", "attn.compressor.wgate", "attn.indexer.weights_proj",
                                       "attn.indexer.compressor.wkv", "attn.indexer.compressor.wgate", "ffn.gate",
                                       NULL};
    static const char *const mtp_only[] = {"e_proj", "h_proj", NULL};
    int is_mtp;
    size_t n = block_prefix(module, &is_mtp);
    if (!n)
        return !strcmp(module, "head") ? DSV4_MOD_ULINEAR : DSV4_MOD_OTHER;
    const char *s = module + n;
    if (one_of(s, qlin) || routed_expert(s) || (is_mtp && one_of(s, mtp_only)))
        return DSV4_MOD_QLINEAR;
    if (one_of(s, ulin))
        return DSV4_MOD_ULINEAR;
    return DSV4_MOD_OTHER;
}

/* Replaces the first occurrence of `from` in buf (capacity cap) by `to`; -1 when it does not fit. */
static int subst(char *buf, size_t cap, const char *from, const char *to)
{
    char *p = strstr(buf, from);
    if (!p)
        return 0;
    size_t fl = strlen(from), tl = strlen(to), bl = strlen(buf);
    if (bl - fl + tl + 1 > cap)
        return -1;
    memmove(p + tl, p + fl, bl - (size_t)(p - buf) - fl + 1);
    memcpy(p, to, tl);
    return 0;
}

int dsv4_module_vllm_name(const char *module, char *out, size_t cap)
{
    int is_mtp, n;
    if (!strcmp(module, "head"))
        n = snprintf(out, cap, "lm_head");
    else if (!strcmp(module, "embed"))
        n = snprintf(out, cap, "model.embed_tokens");
    else if (block_prefix(module, &is_mtp) || !strcmp(module, "norm") || !strncmp(module, "hc_head", 7))
        n = snprintf(out, cap, "model.%s", module);
    else
        n = snprintf(out, cap, "%s", module);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    if (subst(out, cap, ".attn.compressor.", ".attn.mla_attn.compressor.") ||
        subst(out, cap, ".shared_experts.w2", ".shared_experts.down_proj"))
        return -1;
    return 0;
}

/* The HF name of a per-layer module `rest` in block `pre` ("model.layers.N." or "model.mtp.N."). */
static int hf_layer(const char *pre, const char *rest, char *out, size_t cap)
{
    char rel[DSV4_NAME_MAX + 16];
    dsv4_name_map m;
    int n;
    if (routed_expert(rest)) {
        const char *w = strrchr(rest, '.');
        static const char *const proj[] = {"", "gate_proj", "down_proj", "up_proj"};
        n = snprintf(out, cap, "%smlp.experts.%.*s.%s", pre, (int)(w - rest - 12), rest + 12, proj[w[2] - '0']);
        return n < 0 || (size_t)n >= cap ? -1 : 0;
    }
    /* Per-layer suffixes share one table; MTP-only ones (e_proj, ...) keep their names. */
    snprintf(rel, sizeof rel, "layers.0.%s.weight", rest);
    if (dsv4_name_to_hf(rel, NULL, &m) == DSV4_MAP_DIRECT && !strncmp(m.name, "model.layers.0.", 15)) {
        size_t l = strlen(m.name) - 7; /* drop ".weight" */
        n = snprintf(out, cap, "%s%.*s", pre, (int)(l - 15), m.name + 15);
    } else if (!strncmp(pre, "model.mtp.", 10))
        n = snprintf(out, cap, "%s%s", pre, rest);
    else
        return -1;
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int dsv4_module_hf_name(const char *module, char *out, size_t cap)
{
    int is_mtp;
    size_t n = block_prefix(module, &is_mtp);
    if (n) {
        char pre[48];
        snprintf(pre, sizeof pre, "model.%.*s", (int)n, module);
        return hf_layer(pre, module + n, out, cap);
    }
    char rel[DSV4_NAME_MAX + 16];
    dsv4_name_map m;
    if ((size_t)snprintf(rel, sizeof rel, "%s.weight", module) >= sizeof rel)
        return -1;
    if (dsv4_name_to_hf(rel, NULL, &m) != DSV4_MAP_DIRECT)
        return -1;
    size_t l = strlen(m.name);
    if (l < 7 || strcmp(m.name + l - 7, ".weight") || l - 7 >= cap)
        return -1;
    memcpy(out, m.name, l - 7);
    out[l - 7] = 0;
    return 0;
}
