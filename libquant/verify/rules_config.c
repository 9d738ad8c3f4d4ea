/* Rules: config.json (seed_pipelines §3.5, §3.9, §4, §6.3 modes 10-12). The keys vLLM's
 * DeepSeek-V4 reads and pipelines dropped or miscounted: quantization_config.scale_fmt, the
 * release keys transformers' save_pretrained pops (compress_ratios, num_hash_layers, rope_scaling,
 * torch_dtype, qk_rope_head_dim), the layer counts against the tensors and the source, transformers'
 * per-layer lists, tie_word_embeddings, and a quant_method that fits the stored tensors.
 * Restored keys come from the source's config.json, or, without it, from the model config when
 * the artifact's transformers keys determine them exactly (model/config.h reads both styles). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verify/vt_config.h"

/* An integer top-level key of a config, or `dflt` when absent (-1 when present but not an integer). */
static long long int_key(const json_t *cfg, const char *key, long long dflt)
{
    const json_t *x = json_object_get(cfg, key);
    if (!x || json_is_null(x))
        return dflt;
    return json_is_integer(x) ? (long long)json_integer_value(x) : -1;
}

static const json_t *present(const json_t *o, const char *key)
{
    const json_t *x = json_object_get(o, key);
    return x && !json_is_null(x) ? x : NULL;
}

static int need_config(dsv4_vctx *v)
{
    if (!v->art.config)
        dsv4_vctx_skip(v, "no readable config.json (config-readable)");
    return v->art.config != NULL;
}

static int any_quantized(const dsv4_vctx *v, const dsv4_amod **first)
{
    for (size_t i = 0; i < v->art.st.n; i++)
        if (dsv4_qform_is_quantized(v->art.st.m[i].form)) {
            if (first)
                *first = &v->art.st.m[i];
            return 1;
        }
    return 0;
}

/* ---- config-readable ---- */

static void run_readable(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    if (!v->art.config || !v->art.have_model)
        dsv4_vctx_fail(v, "%s", v->art.config_problem[0] ? v->art.config_problem : "config.json describes no model");
}

/* ---- config-scale-fmt ---- */

static void run_scale_fmt(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    const dsv4_amod *m = NULL;
    if (!need_config(v))
        return;
    if (!any_quantized(v, &m)) {
        dsv4_vctx_skip(v, "no tensor is stored quantized");
        return;
    }
    const json_t *qc = json_object_get(v->art.config, "quantization_config");
    if (!json_is_object(qc)) {
        dsv4_vctx_skip(v, "no quantization_config (config-quant-method reports it)");
        return;
    }
    const json_t *sf = json_object_get(qc, "scale_fmt");
    if (json_is_string(sf) && !strcmp(json_string_value(sf), "ue8m0"))
        return;
    char got[96];
    if (json_is_string(sf))
        snprintf(got, sizeof got, "\"%.80s\"", json_string_value(sf));
    else
        snprintf(got, sizeof got, "%s", sf ? "not a string" : "absent");
    dsv4_vctx_fail(v, "quantization_config.scale_fmt is %s, expected \"ue8m0\" (%s is stored %s; vLLM builds without "
                   "#43288 fail with KeyError: 'scale_fmt')", got, m->module, dsv4_qform_name(m->form));
    dsv4_vctx_fix_config(v, "quantization_config.scale_fmt", json_string("ue8m0"), "set scale_fmt \"ue8m0\"");
}

/* ---- config-release-keys ---- */

static const char *const RELEASE_KEYS[] = {"compress_ratios", "num_hash_layers", "rope_scaling", "torch_dtype",
                                           "qk_rope_head_dim"};
#define N_RELEASE_KEYS (sizeof RELEASE_KEYS / sizeof *RELEASE_KEYS)

static void run_release_keys(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    if (!need_config(v))
        return;
    const json_t *cfg = v->art.config, *src = v->have_src ? v->src.config : NULL;
    int missing[N_RELEASE_KEYS] = {0}, ratios_bad = 0;
    for (size_t k = 0; k < N_RELEASE_KEYS; k++)
        if ((missing[k] = !present(cfg, RELEASE_KEYS[k])))
            dsv4_vctx_fail(v, "\"%s\" is missing (vLLM's DeepSeek-V4 config reads it; transformers' save_pretrained "
                           "drops it)", RELEASE_KEYS[k]);
    const json_t *cr = present(cfg, "compress_ratios");
    int tl, tm;
    dsv4_vt_tensor_blocks(&v->art, &tl, &tm);
    long long want = v->model ? v->model->n_layers + v->model->n_mtp : tl + tm;
    if (cr && (!json_is_array(cr) || (want > 0 && (long long)json_array_size(cr) != want))) {
        ratios_bad = 1;
        dsv4_vctx_fail(v, "\"compress_ratios\" has %zu entries, expected %lld (one per decoder layer, then one per MTP "
                       "layer)", json_array_size(cr), want);
    } else if (cr && src && present(src, "compress_ratios") && !json_equal(cr, present(src, "compress_ratios"))) {
        ratios_bad = 1;
        dsv4_vctx_fail(v, "\"compress_ratios\" differs from the source's (%s)", v->src.path);
    }
    if (!v->cur || v->cur->status != DSV4_RS_FAIL)
        return;
    char left[600] = "";
    if (src) /* every top-level key the source has and the artifact lacks; the artifact wins on conflict */ {
        const char *key;
        const json_t *val;
        json_object_foreach((json_t *)src, key, val)
        {
            int fix_ratios = ratios_bad && !strcmp(key, "compress_ratios");
            if (json_is_null(val) || !strcmp(key, "quantization_config") || (present(cfg, key) && !fix_ratios) ||
                strchr(key, '.'))
                continue;
            char why[200];
            snprintf(why, sizeof why, "%s \"%s\" from the source's config.json", fix_ratios ? "set" : "restore", key);
            dsv4_vctx_fix_config(v, key, json_deep_copy(val), why);
            for (size_t k = 0; k < N_RELEASE_KEYS; k++)
                missing[k] &= strcmp(key, RELEASE_KEYS[k]) != 0;
            ratios_bad &= !fix_ratios;
        }
    }
    for (size_t k = 0; k < N_RELEASE_KEYS; k++) {
        char why[200];
        json_t *val = missing[k] ? dsv4_vt_release_key(v, RELEASE_KEYS[k], why, sizeof why) : NULL;
        if (val) {
            char w[200];
            snprintf(w, sizeof w, "restore \"%s\" from the model config (its transformers keys determine it)",
                     RELEASE_KEYS[k]);
            dsv4_vctx_fix_config(v, RELEASE_KEYS[k], val, w);
        } else if (missing[k])
            snprintf(left + strlen(left), sizeof left - strlen(left), "%s%s (%s)", left[0] ? "; " : "",
                     RELEASE_KEYS[k], why);
    }
    if (ratios_bad)
        snprintf(left + strlen(left), sizeof left - strlen(left), "%scompress_ratios (wrong length)",
                 left[0] ? "; " : "");
    if (left[0])
        dsv4_vctx_skip(v, "no automatic fix for %s: needs --source with a config.json that has them", left);
}

/* ---- config-num-layers ---- */

static void run_num_layers(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    if (!need_config(v))
        return;
    const json_t *cfg = v->art.config, *src = v->have_src ? v->src.config : NULL;
    int tl, tm;
    dsv4_vt_tensor_blocks(&v->art, &tl, &tm);
    long long nh = int_key(cfg, "num_hidden_layers", -2), nm = int_key(cfg, "num_nextn_predict_layers", 1);
    long long sh = src ? int_key(src, "num_hidden_layers", -2) : -2, sm = src ? int_key(src, "num_nextn_predict_layers", 1) : -2;
    int have_sh = sh >= 1, have_sm = src && sm >= 0;
    char note[120] = "";
    if (have_sh)
        snprintf(note, sizeof note, "; the source says %lld", sh);
    long long want = have_sh ? sh : tl;
    if (want > 0 && nh != want) {
        if (nh < 0)
            dsv4_vctx_fail(v, "\"num_hidden_layers\" is %s, expected %lld", nh == -2 ? "missing" : "not an integer",
                           want);
        else
            dsv4_vctx_fail(v, "\"num_hidden_layers\" = %lld, but the artifact has %d layers.N blocks%s", nh, tl, note);
        /* Without the source the tensors decide, except when blocks are missing: then only the
         * known miscount (the MTP block counted as a layer) is repaired. */
        if (have_sh || nh < 0 || nh < tl || (tm > 0 && nh == (long long)tl + tm))
            dsv4_vctx_fix_config(v, "num_hidden_layers", json_integer(want), "set num_hidden_layers to the number of "
                                 "decoder layers (MTP blocks are num_nextn_predict_layers)");
        else
            dsv4_vctx_skip(v, "no automatic fix: layers.%d..%lld are missing or the config is wrong; rerun with "
                           "--source", tl, nh - 1);
    }
    if (have_sh && tl && tl != sh)
        dsv4_vctx_fail(v, "the artifact has %d layers.N blocks but the source's num_hidden_layers is %lld (missing "
                       "or extra layers: inventory-tensors)", tl, sh);
    long long wm = have_sm ? sm : tm;
    /* fewer mtp.N blocks than the config says is a stripped MTP: mtp-present / mtp-complete's defect */
    if (nm < 0 || (have_sm ? nm != sm : tm > nm)) {
        if (nm < 0)
            dsv4_vctx_fail(v, "\"num_nextn_predict_layers\" is not an integer, expected %lld", wm);
        else if (have_sm)
            dsv4_vctx_fail(v, "\"num_nextn_predict_layers\" = %lld, the source says %lld", nm, sm);
        else
            dsv4_vctx_fail(v, "\"num_nextn_predict_layers\" = %lld, but the artifact has %d mtp.N blocks", nm, tm);
        if (have_sm || nm < 0 || tm > nm)
            dsv4_vctx_fix_config(v, "num_nextn_predict_layers", json_integer(wm),
                                 "set num_nextn_predict_layers to the number of MTP blocks");
        else
            dsv4_vctx_skip(v, "no automatic fix: the MTP block may have been stripped (the mtp rules restore it "
                           "with --source); the config is not changed without --source");
    }
}

/* ---- config-layer-lists ---- */

static void run_layer_lists(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    static const char *const lists[] = {"layer_types", "mlp_layer_types", "compress_rates"};
    if (!need_config(v))
        return;
    const json_t *cfg = v->art.config, *src = v->have_src ? v->src.config : NULL;
    int tl, tm;
    dsv4_vt_tensor_blocks(&v->art, &tl, &tm);
    long long sh = src ? int_key(src, "num_hidden_layers", -2) : -2;
    long long want = sh >= 1 ? sh : tl > 0 ? tl : int_key(cfg, "num_hidden_layers", -2);
    if (want < 1) {
        dsv4_vctx_skip(v, "the number of decoder layers is unknown (no layers.N tensors, no num_hidden_layers)");
        return;
    }
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        const json_t *a = json_object_get(cfg, lists[i]);
        if (!json_is_array(a) || (long long)json_array_size(a) == want)
            continue;
        dsv4_vctx_fail(v, "\"%s\" has %zu entries, expected num_hidden_layers = %lld (transformers' per-layer lists "
                       "have no MTP entries)", lists[i], json_array_size(a), want);
        if ((long long)json_array_size(a) < want) {
            dsv4_vctx_skip(v, "no automatic fix: \"%s\" is shorter than the layer count", lists[i]);
            continue;
        }
        json_t *t = json_array();
        for (long long k = 0; t && k < want; k++)
            json_array_append(t, json_array_get(a, (size_t)k));
        char why[120];
        snprintf(why, sizeof why, "truncate \"%s\" to its first %lld entries", lists[i], want);
        dsv4_vctx_fix_config(v, lists[i], t, why);
    }
}

/* ---- config-tie-embeddings ---- */

static void run_tie(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    if (!need_config(v))
        return;
    const json_t *t = json_object_get(v->art.config, "tie_word_embeddings");
    if (!t || json_is_false(t) || json_is_null(t))
        return;
    dsv4_vctx_fail(v, "\"tie_word_embeddings\" is %s, expected false (DeepSeek-V4's head is its own tensor)",
                   json_is_true(t) ? "true" : "not a boolean");
    dsv4_vctx_fix_config(v, "tie_word_embeddings", json_false(), "set tie_word_embeddings false");
}

/* ---- config-quant-method ---- */

typedef enum { QK_CT, QK_NATIVE, QK_SCALE_INV, QK_N } qkind;

static void run_quant_method(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    if (!need_config(v))
        return;
    size_t count[QK_N] = {0}, nq = 0;
    const dsv4_amod *first[QK_N] = {0}, *any = NULL;
    for (size_t i = 0; i < v->art.st.n; i++) {
        const dsv4_amod *m = &v->art.st.m[i];
        dsv4_qform f = m->form;
        int k = f == DSV4_QF_CT_FP8 || f == DSV4_QF_CT_INT4 || f == DSV4_QF_CT_NVFP4 ? QK_CT
                : f == DSV4_QF_RELEASE_FP8 || f == DSV4_QF_RELEASE_FP4 || f == DSV4_QF_MODELOPT_NVFP4 ? QK_NATIVE
                : f == DSV4_QF_FP8_SCALE_INV ? QK_SCALE_INV
                                             : -1;
        if (k < 0)
            continue;
        nq++;
        any = any ? any : m;
        if (!count[k]++)
            first[k] = m;
    }
    const json_t *qc = json_object_get(v->art.config, "quantization_config");
    const char *qm = json_string_value(json_object_get(qc, "quant_method"));
    if (!nq) {
        if (qc && !json_is_null(qc))
            dsv4_vctx_fail(v, "quantization_config (quant_method %s) is present but no tensor is stored quantized: "
                           "vLLM would look for quantized weights", qm ? qm : "absent");
        return;
    }
    if (!qc || json_is_null(qc)) {
        dsv4_vctx_fail(v, "%zu modules are stored quantized (%s: %s) but config.json has no quantization_config", nq,
                       any->module, dsv4_qform_name(any->form));
        return;
    }
    if (!json_is_object(qc) || !qm) {
        dsv4_vctx_fail(v, "quantization_config is %s", json_is_object(qc) ? "without a string quant_method"
                                                                        : "not an object");
        return;
    }
    if (!strcmp(qm, "compressed-tensors")) {
        if (count[QK_NATIVE])
            dsv4_vctx_fail(v, "%zu modules are stored in DeepSeek's native form under quant_method "
                           "\"compressed-tensors\" (%s: %s), which has no compressed-tensors scheme", count[QK_NATIVE],
                           first[QK_NATIVE]->module, dsv4_qform_name(first[QK_NATIVE]->form));
    } else if (!strcmp(qm, "fp8")) {
        if (count[QK_CT])
            dsv4_vctx_fail(v, "%zu modules are stored in compressed-tensors form under the native quant_method \"fp8\" "
                           "(%s: %s)", count[QK_CT], first[QK_CT]->module, dsv4_qform_name(first[QK_CT]->form));
    } else if (!strcmp(qm, "modelopt")) {
        if (count[QK_CT])
            dsv4_vctx_fail(v, "%zu modules are stored in compressed-tensors form under quant_method \"modelopt\" (%s: "
                           "%s)", count[QK_CT], first[QK_CT]->module, dsv4_qform_name(first[QK_CT]->form));
    } else
        dsv4_vctx_fail(v, "quant_method \"%.80s\" is none vLLM loads DeepSeek-V4 with here (compressed-tensors, fp8, "
                       "modelopt)", qm);
}

static const dsv4_rule READABLE = {
    "config-readable", "config.json is readable and describes a DeepSeek-V4 model",
    "config.json exists, is a JSON object, and parses as a DeepSeek-V4 model config (either key style).",
    DSV4_SEV_ERROR, 0, NULL, run_readable};

static const dsv4_rule SCALE_FMT = {
    "config-scale-fmt", "quantized artifacts say scale_fmt \"ue8m0\"",
    "An artifact with quantized tensors has quantization_config.scale_fmt = \"ue8m0\" (mode 10: KeyError "
    "'scale_fmt' on vLLM builds without #43288).",
    DSV4_SEV_ERROR, 0, "set quantization_config.scale_fmt to \"ue8m0\"", run_scale_fmt};

static const dsv4_rule RELEASE_KEYS_RULE = {
    "config-release-keys", "the release keys vLLM reads are present",
    "compress_ratios (num_hidden_layers + num_nextn_predict_layers entries, equal to the source's), "
    "num_hash_layers, rope_scaling, torch_dtype and qk_rope_head_dim are present (mode 11: transformers' "
    "save_pretrained pops them).",
    DSV4_SEV_ERROR, 0,
    "restore every top-level key the source's config.json has and the artifact lacks (artifact values kept; "
    "never quantization_config); without --source, write the keys the transformers keys determine exactly",
    run_release_keys};

static const dsv4_rule NUM_LAYERS = {
    "config-num-layers", "layer counts match the tensors",
    "num_hidden_layers equals the layers.N blocks of the artifact (and the source's), num_nextn_predict_layers "
    "the MTP blocks (mode 12: 44 written for 43 with the MTP counted as a layer).",
    DSV4_SEV_ERROR, 0, "set num_hidden_layers / num_nextn_predict_layers to the right values", run_num_layers};

static const dsv4_rule LAYER_LISTS = {
    "config-layer-lists", "transformers' per-layer lists have one entry per decoder layer",
    "layer_types, mlp_layer_types (and compress_rates when a list), if present, have num_hidden_layers "
    "entries (mode 12: 44 leaked).",
    DSV4_SEV_ERROR, 0, "truncate the lists to num_hidden_layers entries", run_layer_lists};

static const dsv4_rule TIE = {
    "config-tie-embeddings", "tie_word_embeddings is absent or false",
    "tie_word_embeddings is absent or false (a save through a wrapper wrote true; mode 12).",
    DSV4_SEV_ERROR, 0, "set tie_word_embeddings to false", run_tie};

static const dsv4_rule QUANT_METHOD = {
    "config-quant-method", "quantization_config fits the stored tensors",
    "Quantized tensors have a quantization_config, and its quant_method fits their form: compressed-tensors "
    "parts (weight_scale, weight_packed) not under the native \"fp8\" config, DeepSeek's native parts (.scale) "
    "not under \"compressed-tensors\"; no quantization_config over an unquantized artifact.",
    DSV4_SEV_ERROR, 0, NULL, run_quant_method};

const dsv4_rule *const dsv4_rules_config[] = {&READABLE,   &SCALE_FMT,   &RELEASE_KEYS_RULE, &NUM_LAYERS,
                                              &LAYER_LISTS, &TIE,        &QUANT_METHOD,      NULL};
