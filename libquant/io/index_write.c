/* model.safetensors.index.json rendering (see index_write.h). */
#include "io/index_write.h"

int dsv4_index_render(const dsv4_st_plan *p, dsv4_jbuf *out, dsv4_err *e)
{
    if (!p->finished)
        return dsv4_fail(e, "index: the plan is not finished");
    dsv4_jbuf_printf(out, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {",
                     (unsigned long long)p->total_bytes);
    for (size_t k = 0; k < p->n; k++) {
        const dsv4_st_plan_tensor *t = &p->tensors[p->by_name[k]];
        dsv4_jbuf_puts(out, k ? ",\n    " : "\n    ");
        dsv4_jbuf_str_ascii(out, t->name);
        dsv4_jbuf_puts(out, ": ");
        dsv4_jbuf_str_ascii(out, p->shards[t->shard].name);
    }
    dsv4_jbuf_puts(out, p->n ? "\n  }\n}\n" : "}\n}\n");
    return out->oom ? dsv4_fail_rt(e, "index: out of memory") : 0;
}
