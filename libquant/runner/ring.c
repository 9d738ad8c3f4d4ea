/* Position-indexed rings of rows in backend memory (layer_internal.h): the window K=V ring and
 * the compressors' raw-projection rings. Consecutive positions are consecutive slots, so a range
 * is one copy, or two where it wraps around the end. */
#include "runner/layer_internal.h"

/* dir 0: src -> ring, 1: ring -> dst */
static int ring_copy(dsv4_ops *o, float *ring, int64_t cap, int64_t W, int64_t p0, int64_t n, float *flat, int dir,
                     dsv4_err *e)
{
    if (n > cap)
        return dsv4_fail(e, "ring of %lld rows: %lld consecutive positions do not fit", (long long)cap, (long long)n);
    for (int64_t i = 0; i < n;) {
        int64_t slot = (p0 + i) % cap, run = cap - slot < n - i ? cap - slot : n - i;
        size_t bytes = (size_t)(run * W) * sizeof(float);
        if (dir ? o->copy(o, flat + i * W, ring + slot * W, bytes, e) : o->copy(o, ring + slot * W, flat + i * W, bytes, e))
            return -1;
        i += run;
    }
    return 0;
}

int dsv4_ring_put(dsv4_ops *o, float *ring, int64_t cap, int64_t W, int64_t p0, int64_t n, const float *src,
                  dsv4_err *e)
{
    return ring_copy(o, ring, cap, W, p0, n, (float *)src, 0, e);
}

int dsv4_ring_get(dsv4_ops *o, const float *ring, int64_t cap, int64_t W, int64_t p0, int64_t n, float *dst,
                  dsv4_err *e)
{
    return ring_copy(o, (float *)ring, cap, W, p0, n, dst, 1, e);
}
