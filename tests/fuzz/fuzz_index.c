/* libFuzzer harness for the model.safetensors.index.json parser: any bytes in, no crash, no leak;
 * on success every listed name looks up to its shard, and every shard name is a plain file name. */
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    dsv4_index ix;
    dsv4_err e;
    if (dsv4_index_parse((const char *)data, size, "fuzz/model.safetensors.index.json", &ix, &e))
        return 0;
    for (size_t i = 0; i < ix.n; i++)
        if (dsv4_index_lookup(&ix, ix.names[i]) != ix.files[i])
            abort();
    for (size_t i = 0; i < ix.n_shards; i++)
        if (strchr(ix.shard_names[i], '/') || ix.shard_names[i][0] == '.')
            abort();
    dsv4_index_free(&ix);
    return 0;
}
