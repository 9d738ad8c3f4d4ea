/* One model's perplexity over token rows through the sequence forward (ppl.h). */
#include "eval/ppl.h"

#include <stdlib.h>

int dsv4_ppl_run(const dsv4_model *m, const dsv4_eval_data *d, int64_t chunk, dsv4_eval_progress_fn progress,
                 void *progress_ctx, dsv4_nll_acc *acc, dsv4_err *e)
{
    int64_t L = d->len, V = m->cfg.vocab_size;
    if (chunk < 1 || chunk > L)
        chunk = L;
    dsv4_seq s;
    if (dsv4_seq_init(m, L, chunk, &s, e))
        return -1;
    float *logits = malloc((size_t)(chunk * V) * sizeof(float));
    int rc = logits ? 0 : dsv4_fail_rt(e, "out of memory for %lld x %lld logits", (long long)chunk, (long long)V);
    for (int64_t r = 0; r < d->rows && !rc; r++) {
        const int32_t *row = dsv4_data_row(d, r);
        dsv4_seq_reset(&s);
        for (int64_t p0 = 0; p0 < L && !rc; p0 += chunk) {
            int64_t T = L - p0 < chunk ? L - p0 : chunk;
            rc = dsv4_forward(&s, row + p0, T, logits, NULL, e);
            for (int64_t t = 0; t < T && !rc; t++)
                rc = dsv4_nll_add(acc, logits + t * V, V, row[p0 + t + 1], e);
        }
        if (rc)
            dsv4_wrap(e, "%s: row %lld", d->path, (long long)(r + d->offset));
        else if (progress)
            progress(progress_ctx, "ppl", r + 1, d->rows);
    }
    free(logits);
    dsv4_seq_free(&s);
    return rc;
}
