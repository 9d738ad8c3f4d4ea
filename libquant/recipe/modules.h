/* What a release module is to the loaders, and its names on the other sides. A module is a
 * weight's name without ".weight" (`layers.3.ffn.experts.5.w1`, `head`). Recipes match targets
 * against three names of each module: the release name, vLLM's internal name (the on-disk ->
 * internal mapping of seed_pipelines.md §1.5: `model.` prefix, `lm_head`, `attn.mla_attn.compressor`,
 * `shared_experts.down_proj`) and the transformers name (model/names.h, routed experts linearized
 * as llm-compressor sees them: `mlp.experts.E.gate_proj`; MTP blocks under `model.mtp.N.` as
 * MTP-aware pipelines name them). */
#ifndef DSV4_MODULES_H
#define DSV4_MODULES_H

#include <stddef.h>

typedef enum dsv4_mod_kind {
    DSV4_MOD_OTHER,   /* not a linear layer (embedding, norms) or not a module at all */
    DSV4_MOD_QLINEAR, /* a linear layer vLLM builds with the quantization config: attention wq_a,
                         wq_b, wkv, wo_a, wo_b, indexer.wq_b, shared and routed experts, MTP
                         e_proj / h_proj; the class target "Linear" means these */
    DSV4_MOD_ULINEAR, /* a linear layer vLLM always builds unquantized (quant_config=None):
                         compressor and indexer-compressor wkv / wgate, indexer.weights_proj,
                         ffn.gate, head; it stays BF16 and is listed in `ignore` */
} dsv4_mod_kind;

dsv4_mod_kind dsv4_module_kind(const char *module);

/* vLLM's internal name of a release module; 0, or -1 when it does not fit. */
int dsv4_module_vllm_name(const char *module, char *out, size_t cap);
/* The transformers name of a release module; 0, or -1 when there is none. */
int dsv4_module_hf_name(const char *module, char *out, size_t cap);

#endif
