/* libFuzzer harness for the dsv4-manifest.json parser (manifest.h): any bytes in, no crash, no
 * leak; on success the entries are sorted by name and carry valid dtypes. */
#include <stdlib.h>
#include <string.h>

#include "io/manifest.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    dsv4_manifest m;
    dsv4_err e;
    if (dsv4_manifest_parse((const char *)data, size, "fuzz/dsv4-manifest.json", &m, &e))
        return 0;
    for (size_t i = 0; i < m.n; i++) {
        if (i && strcmp(m.v[i - 1].name, m.v[i].name) >= 0)
            abort();
        if (m.v[i].dtype < 0 || m.v[i].dtype >= DSV4_DTYPE_COUNT || m.v[i].ndim > DSV4_MAX_DIMS)
            abort();
    }
    dsv4_manifest_free(&m);
    return 0;
}
