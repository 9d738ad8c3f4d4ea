/* Our recipe schema (recipes/README.md): top-level `groups`, `ignore`, `mtp`, `experts_fp8_lossless`,
 * `max_shard_bytes`, `calibration`, `gates`, plus `version` (1) and a free `description`. Every key is
 * checked; anything unknown or mistyped is an error at its line and column. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "recipe/recipe_internal.h"

static const char *const TOP_KEYS[] = {"version", "description", "groups", "ignore", "mtp", "experts_fp8_lossless",
                                       "max_shard_bytes", "calibration", "gates", NULL};
static const char *const GROUP_KEYS[] = {"name", "scheme", "targets", "method", "group_size", "symmetric",
                                         "dampening_frac", "actorder", "observer", "recompute_scales", NULL};
static const char *const MTP_KEYS[] = {"policy", "aliases", NULL};
static const char *const CALIB_KEYS[] = {"data", "samples", "seq_len", "experts", "min_tokens", "fallback", NULL};

const char *const dsv4_recipe_gate_keys[DSV4_RECIPE_GATES + 1] = {"max_ppl_increase", "max_kl", "min_top1",
                                                                   "min_accept", "max_accept_drop", NULL};

static int read_group(ry *y, const yaml_node_t *n, size_t idx, dsv4_recipe *r)
{
    char where[96], name[64], buf[64];
    /* Messages name the group by its name when it has a plain one. */
    yaml_node_t *nn = n->type == YAML_MAPPING_NODE ? ry_get(y, n, "name") : NULL;
    if (nn && ry_type_of(nn) == RY_STR && strlen(ry_text(nn)) < 64)
        snprintf(where, sizeof where, "group '%s'", ry_text(nn));
    else
        snprintf(where, sizeof where, "groups[%zu]", idx);
    if (ry_map(y, n, where, GROUP_KEYS))
        return -1;
    yaml_node_t *v;
    snprintf(name, sizeof name, "group_%zu", idx);
    if ((v = ry_get(y, n, "name"))) {
        if (ry_str(y, v, "name", name, sizeof name))
            return -1;
        if (!name[0])
            return ry_fail(y, v, "name: empty string");
    }
    snprintf(where, sizeof where, "group '%s'", name);
    if (!(v = ry_get(y, n, "scheme")))
        return ry_fail(y, n, "%s: 'scheme' is required (one of KEEP, BF16, FP8_BLOCK, W4A16, W4AFP8, NVFP4)", where);
    if (ry_str(y, v, "scheme", buf, sizeof buf))
        return -1;
    int s = rc_scheme_parse(buf);
    if (s < 0)
        return ry_fail(y, v, "scheme: unknown scheme '%s' (expected one of KEEP, BF16, FP8_BLOCK, W4A16, W4AFP8, NVFP4)",
                       buf);
    dsv4_recipe_group *g = rc_add_group(y, n, r, name, (dsv4_scheme)s);
    if (!g)
        return -1;
    if (rc_group_targets(y, n, where, g))
        return -1;
    if ((v = ry_get(y, n, "method"))) {
        if (ry_str(y, v, "method", buf, sizeof buf))
            return -1;
        if (!strcmp(buf, "gptq"))
            g->method = DSV4_METHOD_GPTQ;
        else if (strcmp(buf, "rtn"))
            return ry_fail(y, v, "method: unknown method '%s' (expected rtn or gptq)", buf);
    }
    long long gs;
    if ((v = ry_get(y, n, "group_size"))) {
        if (ry_int(y, v, "group_size", 1, 1 << 20, &gs))
            return -1;
        g->group_size = (int)gs;
    }
    if ((v = ry_get(y, n, "symmetric")) && ry_bool(y, v, "symmetric", &g->symmetric))
        return -1;
    yaml_node_t *damp = ry_get(y, n, "dampening_frac"), *ao = ry_get(y, n, "actorder");
    yaml_node_t *rs = ry_get(y, n, "recompute_scales");
    if (g->method != DSV4_METHOD_GPTQ && (damp || ao || rs))
        return ry_fail(y, damp ? damp : ao ? ao : rs, "%s applies to method gptq only",
                       damp ? "dampening_frac" : ao ? "actorder" : "recompute_scales");
    if (rs && ry_bool(y, rs, "recompute_scales", &g->recompute_scales))
        return -1;
    if (damp && ry_num(y, damp, "dampening_frac", 1e-9, 1.0, &g->dampening_frac))
        return -1;
    if (ao && rc_actorder(y, ao, "actorder", g))
        return -1;
    if ((v = ry_get(y, n, "observer"))) {
        if (ry_str(y, v, "observer", buf, sizeof buf))
            return -1;
        if (strcmp(buf, "minmax") && strcmp(buf, "mse"))
            return ry_fail(y, v, "observer: unknown observer '%s' (expected minmax or mse)", buf);
        snprintf(g->observer, sizeof g->observer, "%s", !strcmp(buf, "mse") ? "mse" : "minmax");
    }
    return rc_finish_group(y, n, g);
}

static int read_mtp(ry *y, const yaml_node_t *n, dsv4_recipe *r)
{
    char buf[32];
    yaml_node_t *v;
    if (ry_map(y, n, "mtp", MTP_KEYS))
        return -1;
    if ((v = ry_get(y, n, "policy"))) {
        if (ry_str(y, v, "mtp.policy", buf, sizeof buf))
            return -1;
        if (!strcmp(buf, "bf16"))
            r->mtp = DSV4_MTP_BF16;
        else if (!strcmp(buf, "keep"))
            r->mtp = DSV4_MTP_KEEP;
        else if (!strcmp(buf, "quantize"))
            r->mtp = DSV4_MTP_QUANTIZE;
        else
            return ry_fail(y, v, "mtp.policy: unknown policy '%s' (expected bf16, keep or quantize)", buf);
    }
    if ((v = ry_get(y, n, "aliases")) && ry_bool(y, v, "mtp.aliases", &r->mtp_aliases))
        return -1;
    return 0;
}

static int read_calibration(ry *y, const yaml_node_t *n, dsv4_recipe *r)
{
    yaml_node_t *v;
    long long x;
    if (ry_map(y, n, "calibration", CALIB_KEYS))
        return -1;
    if ((v = ry_get(y, n, "data")) && ry_str(y, v, "calibration.data", r->calib_data, sizeof r->calib_data))
        return -1;
    if ((v = ry_get(y, n, "samples"))) {
        if (ry_int(y, v, "calibration.samples", 1, 10000000, &x))
            return -1;
        r->calib_samples = (int)x;
    }
    if ((v = ry_get(y, n, "seq_len"))) {
        if (ry_int(y, v, "calibration.seq_len", 1, 10000000, &x))
            return -1;
        r->calib_seq_len = (int)x;
    }
    char buf[32];
    if ((v = ry_get(y, n, "experts"))) {
        if (ry_str(y, v, "calibration.experts", buf, sizeof buf))
            return -1;
        if (strcmp(buf, "routed") && strcmp(buf, "all"))
            return ry_fail(y, v, "calibration.experts: '%s' (expected routed or all)", buf);
        r->calib_all_experts = !strcmp(buf, "all");
    }
    if ((v = ry_get(y, n, "min_tokens"))) {
        if (ry_int(y, v, "calibration.min_tokens", 0, 1000000000, &x))
            return -1;
        r->calib_min_tokens = (int)x;
    }
    if ((v = ry_get(y, n, "fallback"))) {
        if (ry_str(y, v, "calibration.fallback", buf, sizeof buf))
            return -1;
        if (strcmp(buf, "all_tokens") && strcmp(buf, "rtn"))
            return ry_fail(y, v, "calibration.fallback: '%s' (expected all_tokens or rtn)", buf);
        r->calib_fallback_rtn = !strcmp(buf, "rtn");
    }
    return 0;
}

/* `gates:` — each key a number (percent, nats or points) or null (that gate off). */
static int read_gates(ry *y, const yaml_node_t *n, dsv4_recipe *r)
{
    const char *const *keys = dsv4_recipe_gate_keys;
    static const double hi[DSV4_RECIPE_GATES] = {1e6, 1e6, 100, 100, 100};
    if (ry_map(y, n, "gates", keys))
        return -1;
    for (int i = 0; i < DSV4_RECIPE_GATES; i++) {
        yaml_node_t *v = ry_get(y, n, keys[i]);
        if (!v)
            continue;
        char what[64];
        snprintf(what, sizeof what, "gates.%s", keys[i]);
        r->gate_set[i] = 1;
        if (ry_type_of(v) == RY_NULL)
            r->gate_val[i] = NAN;
        else if (ry_num(y, v, what, 0, hi[i], &r->gate_val[i]))
            return -1;
    }
    return 0;
}

int rc_read_ours(ry *y, const yaml_node_t *root, dsv4_recipe *r)
{
    yaml_node_t *v;
    if (ry_map(y, root, "the recipe", TOP_KEYS))
        return -1;
    if ((v = ry_get(y, root, "version"))) {
        long long ver;
        if (ry_int(y, v, "version", 1, 1, &ver))
            return -1;
    }
    if ((v = ry_get(y, root, "description")) && ry_type_of(v) != RY_NULL) {
        char d[4096];
        if (ry_str(y, v, "description", d, sizeof d))
            return -1;
    }
    if ((v = ry_get(y, root, "groups")) && ry_type_of(v) != RY_NULL) {
        if (v->type != YAML_SEQUENCE_NODE)
            return ry_fail(y, v, "groups: expected a list of groups, got %s", ry_type_name(ry_type_of(v)));
        if (ry_enter(y, v))
            return -1;
        for (size_t i = 0; i < ry_len(v); i++)
            if (read_group(y, ry_item(y, v, i), i, r))
                return -1;
    }
    if ((v = ry_get(y, root, "ignore")) && ry_type_of(v) != RY_NULL &&
        rc_targets(y, v, "ignore", &r->ignore, &r->n_ignore))
        return -1;
    if ((v = ry_get(y, root, "mtp")) && read_mtp(y, v, r))
        return -1;
    if ((v = ry_get(y, root, "experts_fp8_lossless")) &&
        ry_bool(y, v, "experts_fp8_lossless", &r->experts_fp8_lossless))
        return -1;
    if ((v = ry_get(y, root, "max_shard_bytes")) && ry_bytes(y, v, "max_shard_bytes", 1, &r->max_shard_bytes))
        return -1;
    if ((v = ry_get(y, root, "calibration")) && read_calibration(y, v, r))
        return -1;
    if ((v = ry_get(y, root, "gates")) && ry_type_of(v) != RY_NULL && read_gates(y, v, r))
        return -1;
    return 0;
}
