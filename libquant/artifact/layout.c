/* Layout and naming detection (see layout.h). */
#include "artifact/layout.h"

#include <stdio.h>
#include <string.h>

const char *dsv4_layout_name(dsv4_layout l)
{
    switch (l) {
    case DSV4_LAYOUT_RELEASE: return "release";
    case DSV4_LAYOUT_BF16: return "bf16";
    case DSV4_LAYOUT_COMPRESSED_TENSORS: return "compressed-tensors";
    case DSV4_LAYOUT_FP8_SCALE_INV: return "fp8-weight_scale_inv";
    default: return "unknown";
    }
}

const char *dsv4_naming_name(dsv4_naming n)
{
    switch (n) {
    case DSV4_NAMING_RELEASE: return "release";
    case DSV4_NAMING_HF: return "transformers";
    default: return "mixed";
    }
}

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int ends(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

/* "int4 weights, group 128, symmetric; fp8 dynamic per-token activations" from one config group. */
static void describe_args(const json_t *a, const char *what, char *buf, size_t cap)
{
    if (!json_is_object(a)) {
        snprintf(buf, cap, "%s 16-bit", what);
        return;
    }
    const char *type = json_string_value(json_object_get(a, "type"));
    const char *strategy = json_string_value(json_object_get(a, "strategy"));
    json_t *gs = json_object_get(a, "group_size"), *bs = json_object_get(a, "block_structure");
    char extra[96] = "";
    if (json_is_integer(gs))
        snprintf(extra, sizeof extra, " %lld", (long long)json_integer_value(gs));
    else if (json_is_array(bs) && json_array_size(bs) == 2)
        snprintf(extra, sizeof extra, " %lldx%lld", (long long)json_integer_value(json_array_get(bs, 0)),
                 (long long)json_integer_value(json_array_get(bs, 1)));
    snprintf(buf, cap, "%s %s%lld %s%s%s%s", what, type ? type : "?",
             (long long)json_integer_value(json_object_get(a, "num_bits")), strategy ? strategy : "?",
             extra, json_is_true(json_object_get(a, "symmetric")) ? " symmetric" : "",
             json_is_true(json_object_get(a, "dynamic")) ? " dynamic" : "");
}

static void describe_groups(const json_t *qc, dsv4_layout_info *out)
{
    const json_t *groups = json_object_get(qc, "config_groups");
    const char *name;
    json_t *g;
    size_t off = 0;
    json_object_foreach((json_t *)groups, name, g) {
        char w[160], a[160];
        describe_args(json_object_get(g, "weights"), "weights", w, sizeof w);
        describe_args(json_object_get(g, "input_activations"), "activations", a, sizeof a);
        const char *fmt = json_string_value(json_object_get(g, "format"));
        size_t n_targets = json_array_size(json_object_get(g, "targets"));
        int k = snprintf(out->schemes + off, sizeof out->schemes - off, "%s: %s; %s; %s; %zu targets\n",
                         name, w, a, fmt ? fmt : out->ct_format, n_targets);
        if (k < 0 || (size_t)k >= sizeof out->schemes - off)
            break;
        off += (size_t)k;
    }
}

void dsv4_layout_detect(const dsv4_ckpt *c, const json_t *config, dsv4_layout_info *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < c->n; i++) {
        const dsv4_tensor *t = c->by_name[i];
        const char *n = t->name;
        if (starts(n, "model.") || starts(n, "lm_head."))
            out->n_hf_names++;
        else if (starts(n, "layers.") || starts(n, "mtp.") || starts(n, "embed.") || starts(n, "head.") ||
                 starts(n, "norm.") || starts(n, "hc_head_"))
            out->n_release_names++;
        if (ends(n, ".weight") && t->dtype == DSV4_F8_E4M3)
            out->n_fp8_weights++;
        if (ends(n, ".weight") && (t->dtype == DSV4_I8 || t->dtype == DSV4_F4) && strstr(n, "experts"))
            out->n_fp4_weights++;
        if (ends(n, ".scale") && t->dtype == DSV4_F8_E8M0)
            out->n_e8m0_scales++;
        if (ends(n, ".weight_scale_inv"))
            out->n_scale_inv++;
        if (ends(n, ".weight_packed"))
            out->n_packed++;
        if (ends(n, ".weight_global_scale"))
            out->n_global_scales++;
    }
    out->naming = out->n_hf_names && out->n_release_names ? DSV4_NAMING_MIXED
                  : out->n_hf_names                      ? DSV4_NAMING_HF
                                                          : DSV4_NAMING_RELEASE;
    const json_t *qc = config ? json_object_get(config, "quantization_config") : NULL;
    const char *qm = json_string_value(json_object_get(qc, "quant_method"));
    const char *fmt = json_string_value(json_object_get(qc, "format"));
    snprintf(out->quant_method, sizeof out->quant_method, "%s", qm ? qm : "");
    snprintf(out->ct_format, sizeof out->ct_format, "%s", fmt ? fmt : "");
    if ((qm && !strcmp(qm, "compressed-tensors")) || out->n_packed || out->n_global_scales) {
        out->layout = DSV4_LAYOUT_COMPRESSED_TENSORS;
        describe_groups(qc, out);
    } else if (out->n_e8m0_scales && (out->n_fp8_weights || out->n_fp4_weights)) {
        out->layout = DSV4_LAYOUT_RELEASE;
    } else if (out->n_scale_inv && out->n_fp8_weights) {
        out->layout = DSV4_LAYOUT_FP8_SCALE_INV;
    } else if (!out->n_fp8_weights && !out->n_fp4_weights && !out->n_e8m0_scales && c->n) {
        out->layout = DSV4_LAYOUT_BF16;
    }
}
