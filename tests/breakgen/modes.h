/* The breakage modes of dsv4-break: each one edits a clean artifact (bart.h) the way one real
 * pipeline broke its artifact (spec/seed_pipelines.md §2–§3, failure modes of §6.3). Modes are
 * grouped by concern, one file per group (modes_*.c); main.c lists them in this order. */
#ifndef DSV4_BREAK_MODES_H
#define DSV4_BREAK_MODES_H

#include "bart.h"

/* Room for any tensor name a mode builds (release names are far shorter). */
#define DSV4_NAME_MAX_BREAK 512

typedef struct bt_mode {
    const char *name;           /* "mtp-stripped" */
    const char *what;           /* one line for --list */
    int needs_source;           /* 1: the mode reads the source checkpoint (--source) */
    int (*run)(bt_art *a, const dsv4_ckpt *src, dsv4_err *e);
} bt_mode;

extern const bt_mode bt_modes_mtp[];     /* modes_mtp.c: the MTP block and its aliases */
extern const bt_mode bt_modes_fp32[];    /* modes_fp32.c: the FP32 set, router bias and tid2eid */
extern const bt_mode bt_modes_names[];   /* modes_names.c: tensor names */
extern const bt_mode bt_modes_quant[];   /* modes_quant.c: quantized forms and scale conventions */
extern const bt_mode bt_modes_config[];  /* modes_config.c: config.json keys and targets */
extern const bt_mode bt_modes_files[];   /* modes_files.c: index, shards, missing tensors */

/* Helpers shared by the modes (modes_util.c). */

/* The names of the tensors for which pred(t, ctx) is true, copied (the list survives edits).
 * Fails (naming `what`) when none matches. */
typedef struct bt_names {
    size_t n;
    char **v;
} bt_names;
int bt_select(bt_art *a, int (*pred)(const bt_tensor *t, const void *ctx), const void *ctx, const char *what,
              bt_names *out, dsv4_err *e);
void bt_names_free(bt_names *l);

int bt_has_prefix(const char *s, const char *prefix);
int bt_has_suffix(const char *s, const char *suffix);
/* The tensor must exist with this dtype (clear error otherwise). */
bt_tensor *bt_need(bt_art *a, const char *name, dsv4_dtype dtype, dsv4_err *e);

/* FP8 block RTN of a BF16/F32 weight [n, k] as llm-compressor's FP8_BLOCK preset: the weight is
 * replaced by F8_E4M3 and `scale_name` gets the BF16 [ceil(n/128), ceil(k/128)] scale. */
int bt_fp8_block_quantize(bt_art *a, const char *weight, const char *scale_name, dsv4_err *e);

/* quantization_config's group whose targets mention `needle` (e.g. "experts"), or NULL. */
json_t *bt_ct_group(bt_art *a, const char *needle, dsv4_err *e);
/* The config's object at a dotted path ("quantization_config"), borrowed. NULL with an error when
 * absent or not an object. A mode that edits the config sets a->config_changed. */
json_t *bt_config_obj(bt_art *a, const char *dotted, dsv4_err *e);

#endif
