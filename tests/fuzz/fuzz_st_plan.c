/* libFuzzer harness tying the writer to the reader: decodes tensor declarations from the input,
 * plans them (any shard size), renders every shard header and parses it back with the strict
 * header parser. Whatever the names (escapes, control characters, non-ASCII), each header must
 * parse and give back exactly the planned names, dtypes, shapes and offsets; the index and
 * manifest texts must parse back too.
 * Input records: dtype byte, ndim byte (mod 5), ndim dimension bytes, name length byte, name. */
#include <stdlib.h>
#include <string.h>

#include "io/index_write.h"
#include "io/manifest.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_shard(const dsv4_st_plan *p, const dsv4_st_plan_shard *s)
{
    dsv4_st_file f;
    dsv4_err e;
    if (dsv4_st_parse_header(s->header, s->header_len, s->data_bytes, s->name, &f, &e))
        abort();
    if (f.n != s->n || !dsv4_st_meta(&f, "format"))
        abort();
    for (size_t k = 0; k < s->n; k++) {
        const dsv4_st_plan_tensor *t = &p->tensors[s->order[k]];
        const dsv4_tensor *byname = dsv4_st_find(&f, t->name);
        if (!byname || byname->dtype != t->dtype || byname->ndim != t->ndim ||
            byname->begin != t->begin || byname->end != t->end)
            abort();
        for (int d = 0; d < t->ndim; d++)
            if (byname->shape[d] != t->shape[d])
                abort();
    }
    dsv4_st_close(&f);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 2)
        return 0;
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, data[0] * 16u, data[1] & 1 ? DSV4_ST_ALWAYS_INDEX : 0);
    size_t i = 2;
    while (i + 3 <= size && p.n < 64) {
        dsv4_dtype dt = (dsv4_dtype)(data[i++] % DSV4_DTYPE_COUNT);
        int ndim = data[i++] % 5;
        int64_t shape[4];
        if (i + (size_t)ndim + 1 > size)
            break;
        for (int d = 0; d < ndim; d++)
            shape[d] = data[i++] % 7;
        size_t len = data[i++] % 24;
        if (i + len > size)
            break;
        char name[32];
        memcpy(name, data + i, len);
        name[len] = 0;
        i += len;
        if (strlen(name) == len)
            dsv4_st_plan_add(&p, name, dt, ndim, shape, &e); /* refusals are fine */
    }
    if (dsv4_st_plan_finish(&p, &e) == 0) {
        for (size_t s = 0; s < p.n_shards; s++)
            check_shard(&p, &p.shards[s]);
        dsv4_jbuf b = {0};
        dsv4_index ix;
        if (dsv4_index_render(&p, &b, &e) || dsv4_index_parse(b.p, b.n, "index", &ix, &e) || ix.n != p.n)
            abort();
        dsv4_index_free(&ix);
        dsv4_jbuf_free(&b);
        dsv4_hash128 *h = calloc(p.n ? p.n : 1, sizeof *h);
        dsv4_manifest m;
        if (!h || dsv4_manifest_render(&p, h, NULL, &b, &e) || dsv4_manifest_parse(b.p, b.n, "m", &m, &e) ||
            m.n != p.n || m.total_size != p.total_bytes)
            abort();
        dsv4_manifest_free(&m);
        dsv4_jbuf_free(&b);
        free(h);
    }
    dsv4_st_plan_free(&p);
    return 0;
}
