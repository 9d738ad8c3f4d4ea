/* The bytes of a PUT fix op (verify/fix.h): COPY, BF16 (dsv4-quant's BF16 job, byte for byte),
 * CAST (float <-> float, exact or refused) and CT_DEQUANT (compressed-tensors FP8 block -> BF16).
 * The rewriter (rewrite.h) checks every PUT before it writes anything, then produces each into
 * its place in the new shard. */
#ifndef DSV4_FIXUP_PRODUCE_H
#define DSV4_FIXUP_PRODUCE_H

#include <stdint.h>

#include "verify/fix.h"

/* Bytes of the op's declared dtype and shape; -1 when they are not a whole number of bytes. */
int64_t dsv4_fix_op_nbytes(const dsv4_fix_op *op);

/* Checks that a PUT can be produced: `from` present with its bytes, dtypes and shapes that fit the
 * produce kind, scales of the right shape, and for CAST that every value survives the conversion
 * (the first element that does not is named). 0, or -1 with code 2. */
int dsv4_fix_produce_check(const dsv4_fix_op *op, dsv4_err *e);

/* Writes the PUT's bytes (dsv4_fix_op_nbytes of them) into dst. Call the check first. */
int dsv4_fix_produce(const dsv4_fix_op *op, uint8_t *dst, dsv4_err *e);

/* "copy of head.weight", "bf16 of layers.0.attn.wq_a.weight (+ layers.0.attn.wq_a.scale)": what a
 * PUT is made from, for --dry-run and reports. Returns buf. */
char *dsv4_fix_produce_text(const dsv4_fix_op *op, char *buf, size_t cap);

#endif
