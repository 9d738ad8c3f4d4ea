/* The checkpoint report of dsv4-inspect (see inspect.h): header-only, built from the reader, the
 * config, the inventory, its diff and its summary, and the layout detector. */
#include "artifact/inspect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "artifact/layout.h"
#include "model/config.h"
#include "model/inventory.h"
#include "model/inventory_diff.h"
#include "model/inventory_summary.h"

/* config.json beside the checkpoint: PATH itself when a folder, else the file's folder. */
static void config_path(const dsv4_ckpt *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/config.json", c->dir);
}

static json_t *count_obj(const dsv4_count *found, const dsv4_count *expected)
{
    json_t *o = json_pack("{s:I,s:I}", "tensors", (json_int_t)found->n, "bytes", (json_int_t)found->bytes);
    if (expected)
        json_object_update_new(o, json_pack("{s:I,s:I}", "expected_tensors", (json_int_t)expected->n,
                                            "expected_bytes", (json_int_t)expected->bytes));
    return o;
}

json_t *dsv4_shape_json(const int64_t *shape, int ndim)
{
    json_t *a = json_array();
    for (int i = 0; i < ndim; i++)
        json_array_append_new(a, json_integer((json_int_t)shape[i]));
    return a;
}

static json_t *diff_list(const dsv4_diff_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++) {
        const dsv4_diff_entry *x = &l->v[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(x->want ? x->want->name : x->got->name));
        if (x->want) {
            json_object_set_new(o, "expected_dtype", json_string(dsv4_dtype_name(x->want->dtype)));
            json_object_set_new(o, "expected_shape", dsv4_shape_json(x->want->shape, x->want->ndim));
        }
        if (x->got) {
            json_object_set_new(o, "found_dtype", json_string(dsv4_dtype_name(x->got->dtype)));
            json_object_set_new(o, "found_shape", dsv4_shape_json(x->got->shape, x->got->ndim));
        }
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *layers_json(const dsv4_config *cfg, const dsv4_inv_summary *s)
{
    json_t *a = json_array();
    for (int i = 0; i < s->n_layers; i++) {
        const dsv4_layer_summary *l = &s->layers[i];
        char name[32];
        if (l->mtp >= 0)
            snprintf(name, sizeof name, "mtp.%d", l->mtp);
        else
            snprintf(name, sizeof name, "layers.%d", l->layer);
        int ok = l->found == (int)l->expected && l->hash_found == l->hash_expected &&
                 l->found_ratio == cfg->compress_ratio[l->layer];
        json_array_append_new(
            a, json_pack("{s:s,s:i,s:s,s:s?,s:I,s:I,s:s,s:s?,s:b}", "name", name, "layer", l->layer,
                         "attention", dsv4_attn_type_short(l->expected), "found_attention",
                         l->found >= 0 ? dsv4_attn_type_short((dsv4_attn_type)l->found) : NULL,
                         "ratio", (json_int_t)cfg->compress_ratio[l->layer], "found_ratio",
                         (json_int_t)l->found_ratio, "routing", l->hash_expected ? "hash" : "bias",
                         "found_routing", l->hash_found < 0 ? NULL : l->hash_found ? "hash" : "bias",
                         "ok", ok));
    }
    return a;
}

static json_t *config_json(const dsv4_config *cfg, const char *path)
{
    return json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:s,s:i}", "path", path, "key_style",
                     dsv4_key_style_name(cfg->key_style), "layers", cfg->n_layers, "mtp_layers", cfg->n_mtp,
                     "hidden_size", cfg->hidden_size, "routed_experts", cfg->n_routed_experts,
                     "experts_per_token", cfg->n_activated_experts, "vocab_size", cfg->vocab_size,
                     "hash_layers", cfg->n_hash_layers, "expert_dtype", dsv4_expert_fmt_name(cfg->expert_fmt),
                     "sliding_window", cfg->window);
}

/* The parts that need the config: by-role counts, layers, MTP, FP32 set, inventory diff. */
static int add_inventory(json_t *r, const dsv4_ckpt *c, const dsv4_config *cfg, dsv4_err *e)
{
    dsv4_inventory inv;
    if (dsv4_inventory_build(cfg, &inv, e))
        return -1;
    dsv4_inv_diff d;
    dsv4_inv_summary s;
    if (dsv4_inventory_diff(&inv, c, &d, e)) {
        dsv4_inventory_free(&inv);
        return -1;
    }
    if (dsv4_inventory_summarize(&inv, cfg, c, &s, e)) {
        dsv4_inv_diff_free(&d);
        dsv4_inventory_free(&inv);
        return -1;
    }
    json_t *roles = json_object();
    for (int k = 0; k < DSV4_ROLE_COUNT; k++)
        if (s.found_by_role[k].n || s.expected_by_role[k].n)
            json_object_set_new(roles, dsv4_role_name((dsv4_role)k),
                                count_obj(&s.found_by_role[k], &s.expected_by_role[k]));
    json_object_set_new(r, "by_role", roles);
    json_object_set_new(r, "layers", layers_json(cfg, &s));
    json_object_set_new(r, "layer_mismatches", json_integer((json_int_t)s.layer_mismatches));
    json_object_set_new(r, "mtp", json_pack("{s:b,s:b,s:I,s:I,s:I}", "present", s.mtp_present, "complete",
                                            s.mtp_complete, "expected", (json_int_t)s.mtp_expected, "ok",
                                            (json_int_t)s.mtp_ok, "found", (json_int_t)s.mtp_found));
    json_object_set_new(r, "fp32_set", json_pack("{s:b,s:I,s:I}", "intact", s.fp32_intact, "expected",
                                                 (json_int_t)s.fp32_expected, "ok", (json_int_t)s.fp32_ok));
    json_object_set_new(
        r, "inventory",
        json_pack("{s:s,s:I,s:I,s:I,s:b,s:o,s:o,s:o,s:o}", "against", "release layout", "expected",
                  (json_int_t)inv.n, "expected_bytes", (json_int_t)inv.total_bytes, "matched",
                  (json_int_t)d.n_matched, "clean", dsv4_inv_diff_clean(&d), "missing", diff_list(&d.missing),
                  "unexpected", diff_list(&d.unexpected), "wrong_dtype", diff_list(&d.wrong_dtype),
                  "wrong_shape", diff_list(&d.wrong_shape)));
    dsv4_inv_summary_free(&s);
    dsv4_inv_diff_free(&d);
    dsv4_inventory_free(&inv);
    return 0;
}

json_t *dsv4_inspect_report(const char *path, dsv4_err *e)
{
    dsv4_ckpt c;
    if (dsv4_ckpt_open(path, DSV4_CKPT_LENIENT, &c, e))
        return NULL;
    json_t *r = json_object(), *config_raw = NULL;
    json_object_set_new(r, "path", json_string(path));
    json_object_set_new(r, "files", json_integer((json_int_t)c.n_files));
    json_object_set_new(r, "tensors", json_integer((json_int_t)c.n));
    json_object_set_new(r, "bytes", json_integer((json_int_t)c.data_bytes));
    json_t *ix = json_pack("{s:b}", "present", c.has_index);
    if (c.has_index && c.index.has_total_size)
        json_object_set_new(ix, "total_size", json_integer((json_int_t)c.index.total_size));
    json_object_set_new(r, "index", ix);
    json_t *problems = json_array();
    for (size_t i = 0; i < c.n_problems; i++)
        json_array_append_new(problems, json_string(c.problems[i]));
    json_object_set_new(r, "problems", problems);

    char cpath[4096];
    config_path(&c, cpath, sizeof cpath);
    struct stat st;
    int have_config = stat(cpath, &st) == 0;
    if (have_config) {
        json_error_t jerr;
        config_raw = json_load_file(cpath, 0, &jerr);
    }
    dsv4_layout_info li;
    dsv4_layout_detect(&c, config_raw, &li);
    json_object_set_new(r, "layout", json_string(dsv4_layout_name(li.layout)));
    json_object_set_new(r, "naming", json_string(dsv4_naming_name(li.naming)));
    json_object_set_new(r, "quant_method", json_string(li.quant_method));
    if (li.layout == DSV4_LAYOUT_COMPRESSED_TENSORS) {
        json_t *sch = json_array();
        for (char *line = li.schemes, *nl; *line; line = nl + 1) {
            nl = strchr(line, '\n');
            if (!nl)
                break;
            json_array_append_new(sch, json_stringn(line, (size_t)(nl - line)));
        }
        json_object_set_new(r, "compressed_tensors",
                            json_pack("{s:s,s:o,s:I}", "format", li.ct_format, "schemes", sch,
                                      "packed_weights", (json_int_t)li.n_packed));
    }
    json_decref(config_raw);

    dsv4_count by_dtype[DSV4_DTYPE_COUNT] = {{0, 0}};
    for (size_t i = 0; i < c.n; i++) {
        by_dtype[c.by_name[i]->dtype].n++;
        by_dtype[c.by_name[i]->dtype].bytes += dsv4_tensor_nbytes(c.by_name[i]);
    }
    json_t *dt = json_object();
    for (int k = 0; k < DSV4_DTYPE_COUNT; k++)
        if (by_dtype[k].n)
            json_object_set_new(dt, dsv4_dtype_name((dsv4_dtype)k), count_obj(&by_dtype[k], NULL));
    json_object_set_new(r, "by_dtype", dt);

    if (!have_config) {
        json_object_set_new(r, "config", json_null());
        json_object_set_new(r, "note", json_string("no config.json beside the checkpoint: inventory, layer, "
                                                   "MTP and FP32-set checks skipped"));
    } else {
        dsv4_config cfg;
        if (dsv4_config_load(cpath, &cfg, e) || (json_object_set_new(r, "config", config_json(&cfg, cpath)),
                                                   add_inventory(r, &c, &cfg, e))) {
            json_decref(r);
            dsv4_ckpt_close(&c);
            return NULL;
        }
    }
    dsv4_ckpt_close(&c);
    return r;
}
