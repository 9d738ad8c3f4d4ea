/* Binary search by name over any table kept sorted by strcmp: the checkpoint's tensors, the
 * index's entries, the inventory, the write plan. */
#ifndef DSV4_SORTED_H
#define DSV4_SORTED_H

#include <stddef.h>
#include <stdint.h>

#define DSV4_NOT_FOUND SIZE_MAX

/* Position of `name` among n entries sorted by name, where name_at(ctx, i) is entry i's name;
 * DSV4_NOT_FOUND when absent. */
size_t dsv4_find_name(size_t n, const char *(*name_at)(const void *ctx, size_t i), const void *ctx,
                      const char *name);

#endif
