/* Binary search by name (see sorted.h). */
#include "util/sorted.h"

#include <string.h>

size_t dsv4_find_name(size_t n, const char *(*name_at)(const void *ctx, size_t i), const void *ctx,
                      const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(name_at(ctx, mid), name);
        if (r == 0)
            return mid;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return DSV4_NOT_FOUND;
}
