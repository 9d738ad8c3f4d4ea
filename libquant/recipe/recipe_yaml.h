/* Typed reads of a libyaml document for the recipe parsers: every failure names the file, the
 * line and the column (1-based) of the node at fault. Plain scalars resolve as YAML 1.2's core
 * schema does (null, true/false, decimal integers, floats); quoted scalars are strings. Aliases
 * are refused (a node may be read once), so a hostile document cannot make a reader loop. */
#ifndef DSV4_RECIPE_YAML_H
#define DSV4_RECIPE_YAML_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "util/err.h"

typedef struct ry {
    yaml_document_t *doc;
    const char *path;
    dsv4_err *e;
    unsigned char *seen; /* per node: already read */
    size_t n_nodes;
} ry;

typedef enum ry_type { RY_NULL, RY_BOOL, RY_INT, RY_FLOAT, RY_STR, RY_SEQ, RY_MAP } ry_type;

/* "<path>:<line>:<col>: <message>" (n may be NULL: no position). Returns -1. */
int ry_fail(ry *y, const yaml_node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Marks a node read; fails on a second read (a YAML alias). */
int ry_enter(ry *y, const yaml_node_t *n);
ry_type ry_type_of(const yaml_node_t *n);
/* "null", "a boolean", "an integer", "a number", "a string", "a list", "a mapping". */
const char *ry_type_name(ry_type t);
/* The scalar's bytes (NUL-terminated by libyaml), or "" for a non-scalar. */
const char *ry_text(const yaml_node_t *n);

/* Value reads: `what` names the key in messages. */
int ry_str(ry *y, const yaml_node_t *n, const char *what, char *buf, size_t cap);
int ry_bool(ry *y, const yaml_node_t *n, const char *what, int *out);
int ry_int(ry *y, const yaml_node_t *n, const char *what, long long lo, long long hi, long long *out);
int ry_num(ry *y, const yaml_node_t *n, const char *what, double lo, double hi, double *out);
/* Bytes: an integer, or a string such as "5GiB", "500MB", "4096B". */
int ry_bytes(ry *y, const yaml_node_t *n, const char *what, uint64_t lo, uint64_t *out);
/* A list of strings (a single string counts as a list of one); appended to *list. */
int ry_strlist(ry *y, const yaml_node_t *n, const char *what, char ***list, size_t *count);

/* Checks a mapping: scalar, unique keys, each one of `allowed` (NULL-terminated). `where` names
 * the mapping in messages ("the recipe", "group 'experts'"). */
int ry_map(ry *y, const yaml_node_t *n, const char *where, const char *const *allowed);
/* The value of `key` in a checked mapping, or NULL. */
yaml_node_t *ry_get(ry *y, const yaml_node_t *map, const char *key);
/* Number of pairs / items, and the i-th key / value / item. */
size_t ry_len(const yaml_node_t *n);
yaml_node_t *ry_key_at(ry *y, const yaml_node_t *map, size_t i);
yaml_node_t *ry_val_at(ry *y, const yaml_node_t *map, size_t i);
yaml_node_t *ry_item(ry *y, const yaml_node_t *seq, size_t i);

#endif
