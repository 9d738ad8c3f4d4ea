/* Step 4 of the comparison (eval.h): greedy k = 1 speculative decoding with the MTP block as
 * drafter (dsv4_generate_spec) on prompts cut from the first rows, for the artifact and then the
 * source, each model loaded whole (main layers and MTP) and closed before the next. Counts
 * drafted / accepted drafts and the prompts the artifact continues exactly as the source. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_internal.h"

static int spec_side(ev_ctx *c, const char *path, int32_t *out, dsv4_eval_mtp *mt, int64_t K, int64_t P, int64_t n,
                     int64_t done0, dsv4_err *e)
{
    dsv4_model m;
    if (dsv4_model_open(path, c->ops, DSV4_LOAD_LAYERS | DSV4_LOAD_MTP, &m, e))
        return -1;
    dsv4_seq s;
    int64_t chunk = P < 128 ? P : 128;
    if (chunk < 2)
        chunk = 2;
    int rc = dsv4_seq_init(&m, P + n + 2, chunk, &s, e);
    for (int64_t k = 0; k < K && !rc; k++) {
        dsv4_spec_stats st;
        rc = dsv4_generate_spec(&s, dsv4_data_row(c->d, k), P, n, out + k * n, &st, e);
        if (rc) {
            dsv4_wrap(e, "%s: speculative decoding of prompt %lld", path, (long long)k);
            break;
        }
        mt->spec_drafted += st.drafted;
        mt->spec_accepted += st.accepted;
        mt->spec_main_calls += st.main_calls;
        mt->spec_generated += n;
        ev_progress(c->o, "spec", done0 + k + 1, 2 * K);
    }
    if (s.m)
        dsv4_seq_free(&s);
    dsv4_model_close(&m);
    mt->spec_ran = rc == 0;
    return rc;
}

int ev_spec(ev_ctx *c, const char *artifact, const char *source, dsv4_err *e)
{
    const dsv4_eval_opts *o = c->o;
    dsv4_eval_result *r = c->r;
    int64_t rows = c->d->rows, len = c->d->len;
    int64_t K = o && o->spec_prompts >= 0 ? o->spec_prompts : (rows < 4 ? rows : 4);
    int64_t P = o && o->spec_prompt_len > 0 ? o->spec_prompt_len : (len / 2 < 64 ? len / 2 : 64);
    int64_t n = o && o->spec_tokens > 0 ? o->spec_tokens : 32;
    if (K > rows)
        return dsv4_fail(e, "speculative decoding: %lld prompts asked for, the data has %lld rows", (long long)K,
                         (long long)rows);
    if (P < 1 || P > len + 1)
        return dsv4_fail(e, "speculative decoding: prompts of %lld tokens do not fit rows of %lld", (long long)P,
                         (long long)(len + 1));
    r->spec_prompts = K;
    r->spec_prompt_len = P;
    r->spec_tokens = n;
    if (K == 0)
        return 0;
    int32_t *out[2] = {malloc((size_t)(K * n) * sizeof(int32_t)), malloc((size_t)(K * n) * sizeof(int32_t))};
    int rc = 0;
    if (!out[0] || !out[1])
        rc = dsv4_fail_rt(e, "out of memory for %lld generated tokens", (long long)(2 * K * n));
    const char *path[2] = {artifact, source};
    for (int k = 0; k < 2 && !rc; k++)
        if (c->side[k]->mtp->ran)
            rc = spec_side(c, path[k], out[k], c->side[k]->mtp, K, P, n, k * K, e);
    if (!rc && r->art.spec_ran && r->src.spec_ran)
        for (int64_t k = 0; k < K; k++)
            r->spec_same += !memcmp(out[0] + k * n, out[1] + k * n, (size_t)n * sizeof(int32_t));
    free(out[0]);
    free(out[1]);
    return rc;
}
