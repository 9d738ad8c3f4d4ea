/* Comparison of an expected inventory with an opened checkpoint: which tensors are missing, which
 * are unexpected, and which have the wrong dtype or shape. Verifiers and converters report these
 * lists; an empty diff means the checkpoint has exactly the release layout. */
#ifndef DSV4_INVENTORY_DIFF_H
#define DSV4_INVENTORY_DIFF_H

#include "io/checkpoint.h"
#include "model/inventory.h"

typedef struct dsv4_diff_entry {
    const dsv4_inv_tensor *want; /* NULL for an unexpected tensor */
    const dsv4_tensor *got;      /* NULL for a missing tensor */
} dsv4_diff_entry;

typedef struct dsv4_diff_list {
    size_t n;
    dsv4_diff_entry *v;          /* in name order */
} dsv4_diff_list;

typedef struct dsv4_inv_diff {
    dsv4_diff_list missing, unexpected, wrong_dtype, wrong_shape; /* a tensor may be in both wrong_* */
    size_t n_matched;            /* present with the expected dtype and shape */
} dsv4_inv_diff;

/* Compares by name. The checkpoint's by_name table must be sorted (dsv4_ckpt_open sorts it). */
int dsv4_inventory_diff(const dsv4_inventory *inv, const dsv4_ckpt *c, dsv4_inv_diff *d, dsv4_err *e);
void dsv4_inv_diff_free(dsv4_inv_diff *d);
/* True when nothing is missing, unexpected or wrong. */
int dsv4_inv_diff_clean(const dsv4_inv_diff *d);
/* One line for an entry: "<name>: expected F8_E4M3 [1024, 4096], found BF16 [1024, 4096]"
 * ("missing" / "unexpected" for the one-sided entries). Returns buf. */
char *dsv4_diff_entry_str(const dsv4_diff_entry *x, char *buf, size_t cap);
/* "[a, b]" of an inventory tensor. */
char *dsv4_inv_shape_str(const dsv4_inv_tensor *t, char *buf, size_t cap);

#endif
