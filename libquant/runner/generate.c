/* Generation with the runner: greedy decoding, and greedy k = 1 speculative decoding with the MTP
 * block as drafter (spec §3.6): verify [token, draft] in one main-model call, accept the draft
 * plus the bonus token or roll the main state back one position. Both produce the same tokens. */
#include <stdlib.h>
#include <string.h>

#include "runner/runner.h"

int32_t dsv4_argmax(const float *v, int64_t n)
{
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return (int32_t)b;
}

/* Prefills prompt[P] in chunks of max_chunk. last: logits of the last position; H (optional):
 * final streams of every position [P, hc, d]. */
static int prefill(dsv4_seq *s, const int32_t *prompt, int64_t P, float *last, float *H, dsv4_err *e)
{
    const dsv4_config *c = &s->m->cfg;
    int64_t V = c->vocab_size, sd = c->hc_mult * c->hidden_size;
    if (P < 1) return dsv4_fail(e, "generation needs a prompt of at least one token");
    float *L = malloc((size_t)(s->max_chunk * V) * sizeof(float));
    if (!L) return dsv4_fail_rt(e, "out of memory");
    int rc = 0;
    for (int64_t p = 0; p < P && !rc; p += s->max_chunk) {
        int64_t T = P - p < s->max_chunk ? P - p : s->max_chunk;
        rc = dsv4_forward(s, prompt + p, T, L, H ? H + p * sd : NULL, e);
        if (!rc && p + T == P) memcpy(last, L + (T - 1) * V, (size_t)V * sizeof(float));
    }
    free(L);
    return rc;
}

int dsv4_generate_greedy(dsv4_seq *s, const int32_t *prompt, int64_t P, int64_t n, int32_t *out, dsv4_err *e)
{
    int64_t V = s->m->cfg.vocab_size;
    float *L = malloc((size_t)V * sizeof(float));
    if (!L) return dsv4_fail_rt(e, "out of memory");
    dsv4_seq_reset(s);
    int rc = prefill(s, prompt, P, L, NULL, e);
    for (int64_t i = 0; i < n && !rc; i++) {
        out[i] = dsv4_argmax(L, V);
        if (i + 1 < n) rc = dsv4_forward(s, &out[i], 1, L, NULL, e);
    }
    free(L);
    return rc;
}

int dsv4_generate_spec(dsv4_seq *s, const int32_t *prompt, int64_t P, int64_t n, int32_t *out,
                       dsv4_spec_stats *st, dsv4_err *e)
{
    const dsv4_config *c = &s->m->cfg;
    int64_t V = c->vocab_size, sd = c->hc_mult * c->hidden_size;
    memset(st, 0, sizeof *st);
    if (s->max_chunk < 2) return dsv4_fail(e, "speculative decoding needs a sequence with max_chunk >= 2");
    if (n < 1) return 0;
    float *L = malloc((size_t)(s->max_chunk * V) * sizeof(float)), *H = malloc((size_t)((P + 2) * sd) * sizeof(float));
    int32_t *nx = malloc((size_t)(P + 2) * sizeof(int32_t));
    int rc = -1;
    if (!L || !H || !nx) { dsv4_fail_rt(e, "out of memory"); goto out; }
    dsv4_seq_reset(s);
    if (prefill(s, prompt, P, L, H, e)) goto out;
    int64_t k = 0;
    int32_t last = out[k++] = dsv4_argmax(L, V);
    /* MTP over the prompt: position i gets (H_i, t_{i+1}); the last one drafts t_{P+1}. */
    memcpy(nx, prompt + 1, (size_t)(P - 1) * sizeof(int32_t));
    nx[P - 1] = last;
    for (int64_t p = 0; p < P; p += s->max_chunk) {
        int64_t T = P - p < s->max_chunk ? P - p : s->max_chunk;
        if (dsv4_mtp_forward(s, H + p * sd, nx + p, T, L, e)) goto out;
    }
    int32_t draft = dsv4_argmax(L + ((P - 1) % s->max_chunk) * V, V); /* last row of the last MTP chunk */
    while (k < n) {
        int64_t Lpos = s->len;
        int32_t pair[2] = {last, draft};
        if (dsv4_forward(s, pair, 2, L, H, e)) goto out;
        st->main_calls++;
        st->drafted++;
        int32_t x = dsv4_argmax(L, V);
        if (x == draft) {
            st->accepted++;
            int32_t bonus = dsv4_argmax(L + V, V);
            out[k++] = draft;
            if (k < n) out[k++] = bonus;
            int32_t nn[2] = {draft, bonus};
            if (dsv4_mtp_forward(s, H, nn, 2, L, e)) goto out;
            draft = dsv4_argmax(L + V, V);
            last = bonus;
        } else {
            out[k++] = x;
            if (dsv4_seq_rewind(s, Lpos + 1, s->mtp_len, e)) goto out;
            if (dsv4_mtp_forward(s, H, &x, 1, L, e)) goto out;
            draft = dsv4_argmax(L, V);
            last = x;
        }
    }
    rc = 0;
out:
    free(L);
    free(H);
    free(nx);
    return rc;
}
