/* Comparisons the end-to-end test needs without python or jq: what a broken artifact changed
 * against its clean one (tensors, config.json, index, shards), and whether two config.json files
 * are equal as JSON once dsv4-fixup's provenance key is set aside. */
#ifndef DSV4_BREAK_DIFF_H
#define DSV4_BREAK_DIFF_H

#include <jansson.h>
#include <stdio.h>

#include "util/err.h"

/* Counts (and prints to `f` when not NULL, one "  path: what" line each) the leaves where two JSON
 * values differ; `ignore_key` (may be NULL) is a top-level key left out on both sides. */
size_t bt_json_diff(const json_t *a, const json_t *b, const char *ignore_key, FILE *f);

/* `--diff CLEAN BROKEN`: prints the summary line
 *   -R +A ~C cK ixI badB orphO
 * (tensors only in CLEAN, only in BROKEN, in both but with another dtype, shape or bytes; config.json
 * leaves that differ; 1 when BROKEN's index is not what its readable shards imply or a shard does
 * not open; shards that do not open;
 * model*.safetensors files the index does not name), then one line per difference. */
int bt_diff(const char *clean, const char *broken, FILE *f, dsv4_err *e);

/* `--config-equal A B` (config.json files or the folders holding them): 0 equal, 1 different
 * (differences printed to `f`), -1 unreadable. The "dsv4_fixup" provenance key is ignored. */
int bt_config_equal(const char *a, const char *b, FILE *f, dsv4_err *e);

#endif
