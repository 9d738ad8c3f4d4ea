/* libFuzzer harness for the safetensors header parser. Input: 8 bytes of little-endian data-region
 * size (taken modulo 2^40, so offsets near the end are reachable), then the header JSON bytes.
 * A crash, a sanitizer report or a leak is a failure; on success the parsed table must be
 * internally consistent (sorted, tiling the data region). */
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t data_size = 0;
    for (int i = 7; i >= 0; i--)
        data_size = (data_size << 8) | data[i];
    data_size &= (1ULL << 40) - 1;
    dsv4_st_file f;
    dsv4_err e;
    if (dsv4_st_parse_header((const char *)data + 8, size - 8, data_size, "fuzz.safetensors", &f, &e)) {
        if (!memchr(e.msg, 0, sizeof e.msg))
            abort();
        return 0;
    }
    uint64_t pos = 0;
    for (size_t i = 0; i < f.n; i++) {
        const dsv4_tensor *t = &f.tensors[i];
        char buf[64];
        dsv4_shape_str(t, buf, sizeof buf);
        if (t->begin != pos || t->end < t->begin || dsv4_st_find(&f, t->name) == NULL)
            abort();
        pos = t->end;
    }
    if (pos != data_size)
        abort();
    for (size_t i = 0; i < f.n_meta; i++)
        if (!dsv4_st_meta(&f, f.meta_keys[i]))
            abort();
    dsv4_st_close(&f);
    return 0;
}
