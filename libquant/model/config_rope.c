/* RoPE settings of a config from either key style: qk_rope_head_dim or partial_rotary_factor
 * (rope dim = int(head_dim · factor), as transformers computes it); rope_theta and
 * compress_rope_theta, or rope_parameters' main/compress rope_theta; YaRN from rope_scaling or from
 * rope_parameters (flat, as transformers standardises rope_scaling, or nested main/compress). The
 * main (sliding-window) RoPE never uses YaRN; compressed layers use compress_rope_theta + YaRN. */
#include "model/config_parts.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct rope_dict {
    int present, is_yarn;
    double factor, beta_fast, beta_slow;
    int64_t orig;
    int has_theta, has_prf;
    double theta, prf;
    char where[48];
} rope_dict;

int dsv4_config_num_eq(double a, double b)
{
    return a == b || fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b));
}

static int parse_dict(const dsv4_jctx *j, const json_t *o, const char *where, rope_dict *d)
{
    memset(d, 0, sizeof *d);
    d->present = 1;
    snprintf(d->where, sizeof d->where, "%s", where);
    if (!json_is_object(o))
        return dsv4_jbad(j, where, o, "an object");
    char prefix[64], t1[32] = "", t2[32] = "";
    snprintf(prefix, sizeof prefix, "%s.", where);
    int h1 = dsv4_jstr(j, o, prefix, "rope_type", t1, sizeof t1);
    int h2 = h1 < 0 ? -1 : dsv4_jstr(j, o, prefix, "type", t2, sizeof t2);
    if (h1 < 0 || h2 < 0)
        return -1;
    if (h1 && h2 && strcmp(t1, t2))
        return dsv4_fail(j->e, "%s: \"%s.rope_type\" = \"%s\" disagrees with \"%s.type\" = \"%s\"", j->path, where,
                         t1, where, t2);
    const char *t = h1 ? t1 : h2 ? t2 : "default";
    if (!strcmp(t, "yarn"))
        d->is_yarn = 1;
    else if (strcmp(t, "default")) {
        char w[80];
        snprintf(w, sizeof w, "%s%s", prefix, h1 ? "rope_type" : "type");
        return dsv4_jbad(j, w, dsv4_jget(o, h1 ? "rope_type" : "type"), "\"yarn\" or \"default\"");
    }
    d->factor = 1;
    d->beta_fast = 32;
    d->beta_slow = 1;
    if (d->is_yarn) {
        int rc = dsv4_jnum(j, o, prefix, "factor", &d->factor);
        if (rc == 0)
            return dsv4_fail(j->e, "%s: missing \"%sfactor\" (required for YaRN)", j->path, prefix);
        if (rc > 0)
            rc = dsv4_jint(j, o, prefix, "original_max_position_embeddings", &d->orig);
        if (rc == 0)
            return dsv4_fail(j->e, "%s: missing \"%soriginal_max_position_embeddings\" (required for YaRN)",
                             j->path, prefix);
        if (rc < 0 || dsv4_jnum(j, o, prefix, "beta_fast", &d->beta_fast) < 0 ||
            dsv4_jnum(j, o, prefix, "beta_slow", &d->beta_slow) < 0)
            return -1;
    }
    if ((d->has_theta = dsv4_jnum(j, o, prefix, "rope_theta", &d->theta)) < 0 ||
        (d->has_prf = dsv4_jnum(j, o, prefix, "partial_rotary_factor", &d->prf)) < 0)
        return -1;
    return 0;
}

static int yarn_agree(const dsv4_jctx *j, const rope_dict *a, const rope_dict *b)
{
    if (a->is_yarn != b->is_yarn)
        return dsv4_fail(j->e, "%s: \"%s\" is %s but \"%s\" is %s: the two key styles disagree", j->path, a->where,
                         a->is_yarn ? "yarn" : "default", b->where, b->is_yarn ? "yarn" : "default");
    if (!a->is_yarn)
        return 0;
    const char *key[4] = {"factor", "original_max_position_embeddings", "beta_fast", "beta_slow"};
    double va[4] = {a->factor, (double)a->orig, a->beta_fast, a->beta_slow};
    double vb[4] = {b->factor, (double)b->orig, b->beta_fast, b->beta_slow};
    for (int k = 0; k < 4; k++)
        if (!dsv4_config_num_eq(va[k], vb[k]))
            return dsv4_fail(j->e, "%s: \"%s.%s\" = %g disagrees with \"%s.%s\" = %g", j->path, a->where, key[k],
                             va[k], b->where, key[k], vb[k]);
    return 0;
}

/* int(head_dim · factor), or -1 when out of range. */
static int64_t rope_dim_of(int64_t head_dim, double prf)
{
    double p = (double)head_dim * prf;
    return p >= 0 && p < 9e15 ? (int64_t)p : -1;
}

static int parse_rope_dim(const dsv4_jctx *j, const json_t *root, dsv4_config *c)
{
    int64_t qk = 0;
    double prf = 0;
    int hq = dsv4_jint(j, root, NULL, "qk_rope_head_dim", &qk);
    int hp = hq < 0 ? -1 : dsv4_jnum(j, root, NULL, "partial_rotary_factor", &prf);
    if (hq < 0 || hp < 0)
        return -1;
    if (!hq && !hp)
        return dsv4_fail(j->e, "%s: neither \"qk_rope_head_dim\" nor \"partial_rotary_factor\" is present: expected "
                         "one of them to give the RoPE dimensions per head", j->path);
    if (hp && (prf < 0 || prf > 1))
        return dsv4_jbad(j, "partial_rotary_factor", dsv4_jget(root, "partial_rotary_factor"), "a number in [0, 1]");
    int64_t v = hp ? rope_dim_of(c->head_dim, prf) : qk;
    if (hq && hp && v != qk)
        return dsv4_fail(j->e, "%s: \"qk_rope_head_dim\" = %lld disagrees with \"partial_rotary_factor\" = %g "
                         "(head_dim %lld x %g = %lld)", j->path, (long long)qk, prf, (long long)c->head_dim, prf,
                         (long long)v);
    c->rope_head_dim = v;
    return 0;
}

static int theta_agree(const dsv4_jctx *j, const char *key, int has, double v, const rope_dict *d, double *out)
{
    int other = d && d->has_theta;
    if (has && other && !dsv4_config_num_eq(v, d->theta))
        return dsv4_fail(j->e, "%s: \"%s\" = %g disagrees with \"%s.rope_theta\" = %g", j->path, key, v, d->where,
                         d->theta);
    if (!has && !other)
        return dsv4_fail(j->e, "%s: missing \"%s\" (a number: the RoPE base)", j->path, key);
    *out = has ? v : d->theta;
    return 0;
}

int dsv4_config_parse_rope(const dsv4_jctx *j, const json_t *root, dsv4_config *c)
{
    if (parse_rope_dim(j, root, c))
        return -1;
    rope_dict rs = {0}, pmain = {0}, comp = {0}, flat = {0};
    const json_t *rsj = dsv4_jget(root, "rope_scaling"), *rp = dsv4_jget(root, "rope_parameters");
    if (rsj && parse_dict(j, rsj, "rope_scaling", &rs))
        return -1;
    if (rp) {
        const json_t *m = dsv4_jget(rp, "main"), *k = dsv4_jget(rp, "compress");
        if (!json_is_object(rp))
            return dsv4_jbad(j, "rope_parameters", rp, "an object");
        if (m || k) {
            if (!m || !k)
                return dsv4_fail(j->e, "%s: \"rope_parameters\" has \"%s\" but not \"%s\": expected both (nested "
                                 "form) or neither (flat form)", j->path, m ? "main" : "compress", m ? "compress" : "main");
            if (parse_dict(j, m, "rope_parameters.main", &pmain) || parse_dict(j, k, "rope_parameters.compress", &comp))
                return -1;
            if (pmain.is_yarn)
                return dsv4_fail(j->e, "%s: \"rope_parameters.main\" is yarn: expected \"default\" (sliding-window "
                                 "layers use plain RoPE; YaRN belongs to rope_parameters.compress)", j->path);
        } else if (parse_dict(j, rp, "rope_parameters", &flat)) {
            return -1;
        }
    }
    double rt = 0, crt = 0;
    int hrt = dsv4_jnum(j, root, NULL, "rope_theta", &rt);
    int hcrt = hrt < 0 ? -1 : dsv4_jnum(j, root, NULL, "compress_rope_theta", &crt);
    if (hrt < 0 || hcrt < 0)
        return -1;
    const rope_dict *tmain = pmain.present ? &pmain : flat.present ? &flat : NULL;
    const rope_dict *tyarn = comp.present ? &comp : flat.present ? &flat : NULL;
    if (theta_agree(j, "rope_theta", hrt, rt, tmain, &c->rope_theta) ||
        theta_agree(j, "compress_rope_theta", hcrt, crt, comp.present ? &comp : NULL, &c->compress_rope_theta))
        return -1;
    if (rs.present && tyarn && yarn_agree(j, &rs, tyarn))
        return -1;
    const rope_dict *y = rs.present ? &rs : tyarn;
    c->has_yarn = y && y->is_yarn;
    c->yarn_factor = c->has_yarn ? y->factor : 1;
    c->yarn_orig_max_pos = c->has_yarn ? y->orig : 0;
    c->yarn_beta_fast = c->has_yarn ? y->beta_fast : 0;
    c->yarn_beta_slow = c->has_yarn ? y->beta_slow : 0;
    const rope_dict *all[3] = {&pmain, &comp, &flat};
    for (int i = 0; i < 3; i++) {
        if (!all[i]->present || !all[i]->has_prf)
            continue;
        int64_t v = rope_dim_of(c->head_dim, all[i]->prf);
        if (v != c->rope_head_dim)
            return dsv4_fail(j->e, "%s: \"%s.partial_rotary_factor\" = %g gives %lld RoPE dims (head_dim %lld): "
                             "expected %lld", j->path, all[i]->where, all[i]->prf, (long long)v,
                             (long long)c->head_dim, (long long)c->rope_head_dim);
    }
    return 0;
}
