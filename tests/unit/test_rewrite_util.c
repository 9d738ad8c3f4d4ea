/* Shared helpers of the rewriter tests (see test_rewrite_util.h). */
#include "test_rewrite_util.h"
#include "harness.h"
#include "test_writer_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact/convert.h"
#include "formats/fp.h"
#include "io/atomic.h"
#include "io/st_write.h"

typedef struct spec {
    const char *name;
    dsv4_dtype dt;
    int ndim;
    int64_t shape[2];
} spec;

static const spec specs[] = {
    {"embed.weight", DSV4_BF16, 2, {256, 64}},
    {"layers.0.attn.wq_a.weight", DSV4_F8_E4M3, 2, {256, 256}},
    {"layers.0.attn.wq_a.scale", DSV4_F8_E8M0, 2, {2, 2}},
    {"layers.0.ffn.gate.bias", DSV4_F32, 1, {16}},
    {"layers.1.attn.wq_a.weight", DSV4_F8_E4M3, 2, {256, 256}},
    {"layers.1.attn.wq_a.scale", DSV4_F8_E8M0, 2, {2, 2}},
    {"layers.1.ffn.gate.bias", DSV4_F32, 1, {16}},
    {"layers.1.attn.wkv.weight", DSV4_F8_E4M3, 2, {128, 256}},
    {"layers.1.attn.wkv.weight_scale", DSV4_F32, 2, {1, 2}},
    {"head.weight", DSV4_BF16, 2, {256, 64}},
    {"mtp.0.norm.weight", DSV4_BF16, 1, {64}},
    {"norm.weight", DSV4_F32, 1, {64}},
};
#define NSPEC (sizeof specs / sizeof specs[0])

/* Deterministic, finite values of each dtype (seeded by the tensor's position). */
static void fill(const spec *s, uint8_t *dst, uint64_t nbytes, uint64_t seed)
{
    tw_pattern(dst, nbytes, seed);
    uint64_t n = nbytes / (uint64_t)(dsv4_dtype_bits(s->dt) / 8);
    for (uint64_t i = 0; i < n; i++) {
        switch (s->dt) {
        case DSV4_F8_E4M3:
            if ((dst[i] & 0x7F) == 0x7F) /* NaN codes */
                dst[i] ^= 1;
            break;
        case DSV4_F8_E8M0:
            dst[i] = (uint8_t)(120 + dst[i] % 15);
            break;
        case DSV4_BF16: {
            uint16_t h = dsv4_f32_to_bf16((float)((int)(dst[2 * i] % 200) - 100) / 64.0f);
            memcpy(dst + 2 * i, &h, 2);
            break;
        }
        case DSV4_F32: {
            /* norm.weight: BF16-exact; others: values BF16 cannot hold */
            float f = !strcmp(s->name, "norm.weight") ? (float)(dst[4 * i] % 64) / 16.0f
                                                       : 1.0f + (float)(i + 1) / 8388608.0f;
            memcpy(dst + 4 * i, &f, 4);
            break;
        }
        default:
            break;
        }
    }
}

int trw_make_artifact(const char *dir)
{
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, TRW_SHARD, 0);
    for (size_t i = 0; i < NSPEC; i++)
        if (dsv4_st_plan_add(&p, specs[i].name, specs[i].dt, specs[i].ndim, specs[i].shape, &e)) {
            th_fail(__FILE__, __LINE__, "%s", e.msg);
            return -1;
        }
    if (dsv4_st_plan_finish(&p, &e) || p.n_shards != 3) {
        th_fail(__FILE__, __LINE__, "plan: %s (%zu shards)", e.msg, p.n_shards);
        dsv4_st_plan_free(&p);
        return -1;
    }
    uint8_t *data[NSPEC];
    for (size_t i = 0; i < NSPEC; i++) {
        data[i] = malloc(p.tensors[i].nbytes + 1);
        fill(&specs[i], data[i], p.tensors[i].nbytes, i + 1);
    }
    int rc = dsv4_st_write_all(&p, dir, (const void *const *)data, &e);
    for (size_t i = 0; i < NSPEC; i++)
        free(data[i]);
    dsv4_st_plan_free(&p);
    if (rc) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return -1;
    }
    json_t *cfg = json_pack("{s:s,s:i,s:{s:s}}", "model_type", "deepseek_v4", "hidden_size", 64,
                            "quantization_config", "quant_method", "compressed-tensors");
    char *txt = json_dumps(cfg, JSON_INDENT(2));
    json_decref(cfg);
    char buf[4096];
    snprintf(buf, sizeof buf, "%s\n", txt);
    free(txt);
    static const char tok[] = "{\"version\": \"1.0\"}\n";
    if (dsv4_atomic_write(tw_join(dir, "config.json"), buf, strlen(buf), &e) ||
        dsv4_atomic_write(tw_join(dir, "tokenizer.json"), tok, strlen(tok), &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return -1;
    }
    return 0;
}

int trw_open(const char *dir, dsv4_ckpt *c, json_t **config)
{
    dsv4_err e;
    if (dsv4_ckpt_open(dir, 0, c, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return -1;
    }
    json_error_t je;
    *config = json_load_file(tw_join(dir, "config.json"), 0, &je);
    if (!*config) {
        th_fail(__FILE__, __LINE__, "%s/config.json: %s", dir, je.text);
        dsv4_ckpt_close(c);
        return -1;
    }
    return 0;
}

static void add(dsv4_fix_list *l, const dsv4_fix_op *op)
{
    if (dsv4_fix_list_add(l, op))
        th_fail(__FILE__, __LINE__, "out of memory");
}

void trw_rename(dsv4_fix_list *l, const char *rule, const char *from, const char *to)
{
    dsv4_fix_op op = {.kind = DSV4_FIX_RENAME, .rule = rule, .name = (char *)from, .new_name = (char *)to};
    add(l, &op);
}

void trw_drop(dsv4_fix_list *l, const char *rule, const char *name)
{
    dsv4_fix_op op = {.kind = DSV4_FIX_DROP, .rule = rule, .name = (char *)name};
    add(l, &op);
}

void trw_reshape(dsv4_fix_list *l, const char *rule, const char *name, dsv4_dtype dt, int ndim, const int64_t *shape)
{
    dsv4_fix_op op = {.kind = DSV4_FIX_RESHAPE, .rule = rule, .name = (char *)name, .dtype = dt, .ndim = ndim};
    memcpy(op.shape, shape, sizeof(int64_t) * (size_t)ndim);
    add(l, &op);
}

void trw_put(dsv4_fix_list *l, const char *rule, const char *name, dsv4_dtype dt, int ndim, const int64_t *shape,
             dsv4_produce how, const dsv4_tensor *from, const dsv4_tensor *from_scale, const char *near)
{
    dsv4_fix_op op = {.kind = DSV4_FIX_PUT, .rule = rule, .name = (char *)name, .dtype = dt, .ndim = ndim,
                      .produce = how, .from = from, .from_scale = from_scale, .near = (char *)near,
                      .why = (char *)"test"};
    memcpy(op.shape, shape, sizeof(int64_t) * (size_t)ndim);
    add(l, &op);
}

void trw_config(dsv4_fix_list *l, const char *rule, const char *dotted, json_t *value)
{
    char buf[512], *keys[16];
    snprintf(buf, sizeof buf, "%s", dotted);
    size_t depth = 0;
    for (char *tok = strtok(buf, "."); tok && depth < 16; tok = strtok(NULL, "."))
        keys[depth++] = tok;
    dsv4_fix_op op = {.kind = DSV4_FIX_CONFIG, .rule = rule, .path = keys, .depth = depth, .value = value};
    add(l, &op);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *trw_list(const char *dir, char *buf, size_t cap)
{
    char *names[256];
    size_t n = 0;
    DIR *d = opendir(dir);
    buf[0] = 0;
    if (!d)
        return buf;
    struct dirent *de;
    while ((de = readdir(d)) && n < 256)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            names[n++] = strdup(de->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        off += (size_t)snprintf(buf + off, off < cap ? cap - off : 0, "%s%s", i ? " " : "", names[i]);
        free(names[i]);
    }
    return buf;
}

int trw_same_tree(const char *a, const char *b)
{
    char la[8192], lb[8192];
    if (strcmp(trw_list(a, la, sizeof la), trw_list(b, lb, sizeof lb)))
        return 0;
    char *save = NULL;
    for (char *n = strtok_r(la, " ", &save); n; n = strtok_r(NULL, " ", &save))
        if (!tw_same_file(tw_join(a, n), tw_join(b, n)))
            return 0;
    return 1;
}

int trw_quant_fixture(const char *dir, const char *out)
{
    char *yaml;
    size_t n;
    dsv4_err e;
    if (dsv4_read_file(th_path("recipes/w4a16-rtn.yaml"), 1 << 20, &yaml, &n, &e))
        return th_fail(__FILE__, __LINE__, "%s", e.msg), -1;
    char *at = strstr(yaml, "max_shard_bytes: 5GiB");
    if (!at)
        return free(yaml), th_fail(__FILE__, __LINE__, "recipes/w4a16-rtn.yaml: no max_shard_bytes line"), -1;
    memcpy(at, "max_shard_bytes: 3MiB", 21);
    int rc = dsv4_atomic_write(tw_join(dir, "w4a16-3m.yaml"), yaml, n, &e);
    free(yaml);
    dsv4_recipe r;
    dsv4_ckpt src;
    dsv4_config cfg;
    json_error_t je;
    json_t *raw = json_load_file(th_path("fixtures/dsv4-tiny/config.json"), 0, &je);
    if (rc || dsv4_recipe_load(tw_join(dir, "w4a16-3m.yaml"), &r, &e) ||
        dsv4_ckpt_open(th_path("fixtures/dsv4-tiny"), 0, &src, &e) ||
        dsv4_config_load(th_path("fixtures/dsv4-tiny/config.json"), &cfg, &e))
        return json_decref(raw), th_fail(__FILE__, __LINE__, "%s", e.msg), -1;
    dsv4_plan p;
    dsv4_convert_opts o = {.threads = 2};
    dsv4_convert_stats st;
    rc = dsv4_plan_build(&src, &cfg, raw, &r, &p, &e);
    if (rc == 0) {
        rc = dsv4_convert_run(&src, &p, &r, out, &o, &st, &e);
        if (rc == 0)
            dsv4_convert_stats_free(&st);
        dsv4_plan_free(&p);
    }
    if (rc)
        th_fail(__FILE__, __LINE__, "%s", e.msg);
    dsv4_recipe_free(&r);
    dsv4_ckpt_close(&src);
    json_decref(raw);
    return rc;
}

int trw_header_rename(const char *dir, const char *shard, const char *const *from, const char *const *to, int n)
{
    dsv4_err e;
    char *buf;
    size_t len;
    if (dsv4_read_file(tw_join(dir, shard), 1u << 30, &buf, &len, &e))
        return th_fail(__FILE__, __LINE__, "%s", e.msg), -1;
    uint64_t hl;
    memcpy(&hl, buf, 8);
    json_t *h = json_loadb(buf + 8, hl, 0, NULL), *nh = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v) {
        const char *nk = k;
        for (int i = 0; i < n; i++)
            if (!strcmp(k, from[i]))
                nk = to[i];
        json_object_set(nh, nk, v);
    }
    char *txt = json_dumps(nh, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t tl = strlen(txt), padded = (tl + 7) / 8 * 8;
    char *out = malloc(8 + padded + (len - 8 - hl));
    uint64_t pl = padded;
    memcpy(out, &pl, 8);
    memcpy(out + 8, txt, tl);
    memset(out + 8 + tl, ' ', padded - tl);
    memcpy(out + 8 + padded, buf + 8 + hl, len - 8 - hl);
    int rc = dsv4_atomic_replace(tw_join(dir, shard), out, 8 + padded + (len - 8 - hl), &e);
    free(out), free(txt), free(buf);
    json_decref(h), json_decref(nh);
    /* index */
    json_t *ix = json_load_file(tw_join(dir, "model.safetensors.index.json"), 0, NULL);
    json_t *wm = json_object_get(ix, "weight_map");
    for (int i = 0; i < n && wm; i++) {
        json_t *f = json_incref(json_object_get(wm, from[i]));
        json_object_del(wm, from[i]);
        json_object_set_new(wm, to[i], f);
    }
    txt = json_dumps(ix, JSON_INDENT(2) | JSON_SORT_KEYS);
    rc = rc || !txt || dsv4_atomic_replace(tw_join(dir, "model.safetensors.index.json"), txt, strlen(txt), &e);
    free(txt);
    json_decref(ix);
    /* manifest: the same text with the keys renamed */
    if (rc == 0 && dsv4_read_file(tw_join(dir, "dsv4-manifest.json"), 1u << 30, &buf, &len, &e) == 0) {
        char *m = malloc(len + 64 * (size_t)n + 1);
        size_t off = 0;
        for (const char *p = buf; *p;) {
            int hit = -1;
            char key[300];
            for (int i = 0; i < n && hit < 0; i++) {
                snprintf(key, sizeof key, "\"%s\": {\"file\"", from[i]);
                if (!strncmp(p, key, strlen(key)))
                    hit = i;
            }
            if (hit >= 0) {
                off += (size_t)sprintf(m + off, "\"%s\": {\"file\"", to[hit]);
                p += strlen(key);
            } else {
                m[off++] = *p++;
            }
        }
        rc = dsv4_atomic_replace(tw_join(dir, "dsv4-manifest.json"), m, off, &e);
        free(m), free(buf);
    }
    if (rc)
        th_fail(__FILE__, __LINE__, "%s", e.msg);
    return rc;
}

int trw_copy_tree(const char *from, const char *to)
{
    dsv4_err e;
    if (mkdir(to, 0777))
        return -1;
    DIR *d = opendir(from);
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *buf;
        size_t n;
        rc = dsv4_read_file(tw_join(from, de->d_name), 1u << 30, &buf, &n, &e) ||
             dsv4_atomic_write(tw_join(to, de->d_name), buf, n, &e);
        if (rc == 0)
            free(buf);
    }
    if (d)
        closedir(d);
    return rc;
}
