/* What dsv4-inspect reports, built as JSON so that tools can print it for people or machines:
 * files, layout and naming, tensors by dtype and role, layers and their attention types, MTP and
 * FP32-set state, and every deviation from the inventory the config implies; and, for one tensor,
 * its dequantized statistics and checksum. Header-only except for the one-tensor report. */
#ifndef DSV4_INSPECT_H
#define DSV4_INSPECT_H

#include <jansson.h>

#include "io/checkpoint.h"
#include "util/err.h"

/* Opens PATH (folder, .safetensors, or index .json) and its config.json when there is one, and
 * builds the report. Returns NULL with `e` set when the checkpoint or its config cannot be read. */
json_t *dsv4_inspect_report(const char *path, dsv4_err *e);

/* Statistics of one tensor: FP8-block and FP4 weights are dequantized with their `.scale`
 * sibling (on the GPU when there is one), float dtypes are decoded, integers read as is.
 * `device` is "auto", "cpu" or "cuda". */
json_t *dsv4_inspect_tensor(const dsv4_ckpt *c, const char *name, const char *device, dsv4_err *e);

/* A shape as a JSON array of integers. */
json_t *dsv4_shape_json(const int64_t *shape, int ndim);

#endif
