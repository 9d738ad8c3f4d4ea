/* The compressed-tensors `quantization_config` of an artifact (spec/formats_algorithms.md §2.5,
 * seed_pipelines.md §4): one config group per quantizing recipe group, named group_0, group_1, ...
 * in order of first appearance, every QuantizationArgs key written explicitly (keys sorted as
 * compressed-tensors writes them), format "mixed-precision" when the groups' formats differ,
 * scale_fmt "ue8m0", quantization_status "compressed".
 *
 * Targets and ignore entries are "re:" patterns on vLLM's internal module names (seed_pipelines
 * §1.5: `model.layers.N.attn.fused_wqa_wkv`, `...attn.mla_attn.compressor.fused_wkv_wgate`,
 * `...ffn.shared_experts.gate_up_proj` / `down_proj`, the MoE probes `...ffn.experts.0.gate_proj`)
 * as well as the on-disk names (the `model.` prefix optional, the unfused halves listed). Each one
 * enumerates the main-layer indices it covers, so no target can match `mtp.N.*`, `model.mtp.N.*`
 * or `model.layers.<num_hidden_layers + N>.*` (the names vLLM gives the MTP block); with the MTP
 * kept out of quantization the whole block is in `ignore`. Fused halves (wq_a + wkv, compressor
 * wkv + wgate, shared w1 + w3) must share a group, and a layer's routed experts are one MoE with
 * one scheme; the builder refuses anything else and checks its own output against the vLLM names. */
#ifndef DSV4_CT_CONFIG_H
#define DSV4_CT_CONFIG_H

#include <jansson.h>
#include <stddef.h>

#include "model/config.h"
#include "recipe/recipe.h"

/* compressed-tensors release whose QuantizationArgs key set the config follows. */
#define DSV4_CT_FORMAT_VERSION "0.18.0"

typedef struct dsv4_ct_module {
    const char *module; /* release name of a linear layer (recipe/modules.h QLINEAR or ULINEAR) */
    int group;          /* recipe group index of a quantizing scheme, or -1 (unquantized) */
} dsv4_ct_module;

/* A module name as vLLM builds it, and what the config must say about it. */
typedef struct dsv4_ct_vllm_name {
    char name[192];
    int group;          /* recipe group index that must target it, or -1 (must be ignored) */
} dsv4_ct_vllm_name;

/* Builds quantization_config from the artifact's linear layers (in inventory order). */
int dsv4_ct_config_build(const dsv4_recipe *r, const dsv4_config *cfg, const dsv4_ct_module *mods, size_t n,
                         json_t **out, dsv4_err *e);

/* The vLLM module names of those layers with their expected status: every unfused and fused name,
 * the MoE probes, and for the MTP block its names under mtp.N, model.mtp.N and
 * model.layers.<num_hidden_layers + N>. all_experts = 0 lists experts 0 and the last one only. */
int dsv4_ct_vllm_names(const dsv4_recipe *r, const dsv4_config *cfg, const dsv4_ct_module *mods, size_t n,
                       int all_experts, dsv4_ct_vllm_name **out, size_t *count, dsv4_err *e);

/* Checks a quantization_config against such names: each quantized one matches its group's
 * targets (config group = its recipe group's first-appearance rank) and no other group's nor
 * ignore; each unquantized one matches ignore and no target. Patterns use recipe/target.h. */
int dsv4_ct_config_check(const json_t *qc, const dsv4_recipe *r, const dsv4_ct_module *mods, size_t n,
                         const dsv4_ct_vllm_name *names, size_t n_names, dsv4_err *e);

#endif
