/* Tensor-name maps between DeepSeek's release naming (`layers.N.attn.wq_a.weight`, `.scale`) and
 * transformers 5.x naming (`model.layers.N.self_attn.q_a_proj.weight`, `.weight_scale_inv`), in
 * both directions (spec/dsv4_architecture.md §2.6, seed_pipelines.md §1.4). Routed experts are
 * per-expert tensors in the release and fused in transformers (`mlp.experts.gate_up_proj`
 * [E, 2·inter, hidden] = w1 rows then w3 rows, `mlp.experts.down_proj` [E, hidden, inter]); a map
 * result says which slice of the fused tensor a release tensor is. llm-compressor's linearized
 * experts (`mlp.experts.E.gate_proj/up_proj/down_proj`) map back per expert. transformers has no
 * MTP block: release `mtp.*` names have no HF name (the HF→release direction still accepts the
 * `model.mtp.N.*` names that MTP-aware pipelines write). */
#ifndef DSV4_NAMES_H
#define DSV4_NAMES_H

#include <stdint.h>

#include "model/config.h"

#define DSV4_NAME_MAX 256

typedef enum dsv4_map_kind {
    DSV4_MAP_NONE = 0, /* no mapping: not a tensor name of this model (note says why) */
    DSV4_MAP_DIRECT,   /* one tensor <-> one tensor: `name` */
    DSV4_MAP_FUSED,    /* release -> HF: rows [row_begin, row_end) of expert `expert` of the fused tensor `name` */
    DSV4_MAP_SPLIT,    /* HF -> release: `name` is fused over experts; map slices with dsv4_name_from_hf_fused */
    DSV4_MAP_NO_HF,    /* release mtp.*: transformers has no MTP block, so there is no HF name */
} dsv4_map_kind;

typedef struct dsv4_name_map {
    dsv4_map_kind kind;
    char name[DSV4_NAME_MAX];  /* the name on the other side (FUSED: the fused tensor; SPLIT: the release prefix) */
    int expert;                /* FUSED (and dsv4_name_from_hf_fused): expert index; -1 otherwise */
    int64_t row_begin, row_end;/* FUSED: the expert's rows along dim 1 of the fused tensor; -1 without a config */
    char note[200];            /* NONE / NO_HF / SPLIT: one sentence of explanation */
} dsv4_name_map;

/* Release -> transformers. cfg (may be NULL) gives the fused row ranges of routed experts. Emits
 * `...indexer.scorer.weights_proj` (transformers >= 5.10.1). */
dsv4_map_kind dsv4_name_to_hf(const char *release, const dsv4_config *cfg, dsv4_name_map *m);
/* transformers -> release. Accepts both `...indexer.scorer.weights_proj` and the older
 * `...indexer.weights_proj`, the fused expert tensors (kind SPLIT), linearized per-expert names and
 * `model.mtp.N.*`. */
dsv4_map_kind dsv4_name_from_hf(const char *hf, dsv4_name_map *m);
/* The release tensor holding row `row` (along dim 1) of expert `expert` of a fused HF expert tensor
 * (`...mlp.experts.gate_up_proj`, `...down_proj`, or their `_scale_inv`). Needs cfg for the row split;
 * m->row_begin/row_end give the release tensor's whole row range. */
dsv4_map_kind dsv4_name_from_hf_fused(const char *hf_fused, int expert, int64_t row, const dsv4_config *cfg,
                                      dsv4_name_map *m);
/* "none", "direct", "fused", "split", "no_hf". */
const char *dsv4_map_kind_name(dsv4_map_kind k);

#endif
