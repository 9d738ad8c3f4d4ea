/* The W4A16 -> W4A8 conversion as config ops (w4a8.h). */
#include "fixup/w4a8.h"

#include <stdio.h>
#include <string.h>

#include "artifact/version.h"

/* FP8 e4m3 dynamic per-token activations, every QuantizationArgs key in compressed-tensors' order,
 * as artifact/ct_config.c writes them for the W4AFP8 scheme. */
static json_t *fp8_per_token(void)
{
    json_t *o = json_object();
    json_object_set_new(o, "actorder", json_null());
    json_object_set_new(o, "block_structure", json_null());
    json_object_set_new(o, "dynamic", json_true());
    json_object_set_new(o, "group_size", json_null());
    json_object_set_new(o, "num_bits", json_integer(8));
    json_object_set_new(o, "observer", json_null());
    json_object_set_new(o, "observer_kwargs", json_object());
    json_object_set_new(o, "scale_dtype", json_null());
    json_object_set_new(o, "strategy", json_string("token"));
    json_object_set_new(o, "symmetric", json_true());
    json_object_set_new(o, "type", json_string("float"));
    json_object_set_new(o, "zp_dtype", json_null());
    return o;
}

static int is_int4(const json_t *group)
{
    const json_t *w = json_object_get(group, "weights");
    const char *type = json_string_value(json_object_get(w, "type"));
    return json_integer_value(json_object_get(w, "num_bits")) == 4 && type && !strcmp(type, "int");
}

static int add_op(dsv4_vctx *v, const char *const *path, size_t depth, json_t *value, const char *why, dsv4_err *e)
{
    dsv4_fix_op o = {.kind = DSV4_FIX_CONFIG, .rule = DSV4_W4A8_OP_TAG, .path = (char **)path, .depth = depth,
                     .value = value, .why = (char *)why};
    if (!value || dsv4_fix_list_add(&v->fixes, &o))
        return dsv4_fail_rt(e, "out of memory");
    return 0;
}

int dsv4_fix_to_w4a8(dsv4_vctx *v, dsv4_err *e)
{
    const char *art = v->art.path;
    if (!v->art.config)
        return dsv4_fail(e, "%s: --to-w4a8 needs a readable config.json (%s)", art, v->art.config_problem);
    const char *qm = v->qc ? json_string_value(json_object_get(v->qc, "quant_method")) : NULL;
    if (!v->is_ct)
        return dsv4_fail(e, "%s: --to-w4a8 converts a compressed-tensors W4A16 artifact, but quantization_config."
                         "quant_method is %s%s%s", art, qm ? "\"" : "", qm ? qm : "absent", qm ? "\"" : "");
    const json_t *groups = json_object_get(v->qc, "config_groups"), *g;
    const char *key;
    size_t n_int4 = 0;
    json_object_foreach((json_t *)groups, key, g)
    {
        if (!is_int4(g))
            continue;
        n_int4++;
        const json_t *in = json_object_get(g, "input_activations");
        if (in && !json_is_null(in))
            return dsv4_fail(e, "%s: quantization_config.config_groups.%s (INT4 weights) already quantizes its input "
                             "activations (input_activations is not null): the artifact is W4A8 already, or another "
                             "activation scheme; nothing to convert", art, key);
    }
    if (!n_int4)
        return dsv4_fail(e, "%s: quantization_config has no INT4 config group (weights num_bits 4, type \"int\"): "
                         "--to-w4a8 converts W4A16 artifacts only", art);
    json_object_foreach((json_t *)groups, key, g)
    {
        if (!is_int4(g))
            continue;
        const char *path[] = {"quantization_config", "config_groups", key, "input_activations"};
        if (add_op(v, path, 4, fp8_per_token(),
                   "W4A8: FP8 e4m3 dynamic per-token input activations for the INT4 group (weights unchanged)", e))
            return -1;
    }
    const char *path[] = {"dsv4_w4a8_conversion"};
    json_t *prov = json_pack("{s:s, s:s, s:s, s:s}", "from", "w4a16", "weights", "unchanged", "tool", "dsv4-fixup",
                             "version", DSV4_VERSION);
    return add_op(v, path, 1, prov, "record the W4A16 -> W4A8 conversion", e);
}
