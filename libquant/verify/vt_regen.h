/* The repair of a quantization_config's targets: regenerate every config group's `targets` and the
 * `ignore` list from the schemes the modules are stored in, with the enumerated, anchored
 * patterns dsv4-quant writes (artifact/ct_config.h builds them), keeping each group's weights,
 * input_activations and format as they are. Possible only when every linear layer is present in a
 * recognized form and each quantized one fits exactly one group's args, and each group describes
 * at least one stored module; on a clean dsv4-quant artifact the result equals the original. */
#ifndef DSV4_VT_REGEN_H
#define DSV4_VT_REGEN_H

#include "verify/vt_targets.h"

/* The regenerated quantization_config (a new object), or NULL with one sentence in why. */
json_t *dsv4_vt_regen(const dsv4_vctx *v, const dsv4_vt_view *w, char *why, size_t cap);

/* Adds the CONFIG ops (tagged with the running rule) that turn the artifact's quantization_config
 * into the regenerated one: each group's targets that differ, and ignore. Every targets rule that
 * fails asks for the same ops, so each is repaired on its own (`--only`); the rewriter applies an
 * identical change of a key once. Returns the number of ops added (0 with why set when the repair
 * is impossible or changes nothing), or -1 out of memory. */
int dsv4_vt_regen_fix(dsv4_vctx *v, const dsv4_vt_view *w, char *why, size_t cap);

#endif
