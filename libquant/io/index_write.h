/* Renders model.safetensors.index.json for a plan, formatted as transformers writes it
 * (json.dumps(index, indent=2, sort_keys=True) + "\n"): {"metadata": {"total_size": N},
 * "weight_map": {name: shard, ...}} with names sorted bytewise (= by code point) and non-ASCII
 * escaped as \uxxxx. total_size is the sum of tensor bytes; total_parameters, which newer
 * transformers add, is left out (packed dtypes make a parameter count ambiguous). */
#ifndef DSV4_INDEX_WRITE_H
#define DSV4_INDEX_WRITE_H

#include "io/json_out.h"
#include "io/st_plan.h"

/* Appends the index text to `out` (the plan must be finished). */
int dsv4_index_render(const dsv4_st_plan *p, dsv4_jbuf *out, dsv4_err *e);

#endif
