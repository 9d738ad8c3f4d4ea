/* The inference runner: DeepSeek-V4's forward (spec/dsv4_architecture.md §3–4) over a backend
 * (kernels/ops.h), with prefill, incremental decode, rollback and the MTP block.
 *
 * Three levels, each usable on its own:
 *  - dsv4_layer_forward: one decoder layer on a batch of activations, with only that layer's
 *    weights resident. Calibration (GPTQ) walks the layers with it and taps the inputs of the
 *    linears it quantizes.
 *  - dsv4_seq: one sequence's decode state (window rings, compressed entries, compressor and
 *    indexer state, per layer) and dsv4_forward, which appends tokens to it and returns logits.
 *    dsv4_seq_rewind drops the last tokens (speculative decoding's rollback).
 *  - dsv4_mtp_forward: the MTP block on the main model's final streams.
 *
 * The state keeps, per compressed layer, the raw compressor projections of the last 2·ratio +
 * max_chunk positions, so any length within max_chunk tokens of the newest is restorable exactly:
 * the compressed entries, the open block and the overlap rows are functions of those rows and the
 * length. */
#ifndef DSV4_RUNNER_H
#define DSV4_RUNNER_H

#include "runner/weights.h"

typedef struct dsv4_model {
    dsv4_config cfg;
    dsv4_ops *ops;
    dsv4_wsrc *src;
    dsv4_global_w g;
    dsv4_layer_w *layers;      /* n_layers + n_mtp entries; loaded ones have w.id == index */
    int n_loaded;
    float rope_main[64], rope_compress[64]; /* inv_freq tables, rope_head_dim/2 entries */
} dsv4_model;

enum {
    DSV4_LOAD_MTP = 1,         /* also load the MTP block(s) */
    DSV4_LOAD_LAYERS = 2,      /* load every main layer (without it: globals only, for layer walks) */
};

/* Opens an artifact and loads the weights `flags` asks for onto `ops`. */
int dsv4_model_open(const char *path, dsv4_ops *ops, int flags, dsv4_model *m, dsv4_err *e);
void dsv4_model_close(dsv4_model *m);
/* RoPE frequency table of a layer (SWA: θ=rope_theta; compressed: compress θ with YaRN). */
const float *dsv4_model_rope(const dsv4_model *m, int layer);
/* Fills the two tables from the config (spec §3.0). */
void dsv4_rope_tables(const dsv4_config *c, float *main_tab, float *compress_tab);

/* ---- layer state ---------------------------------------------------------------------------- */

typedef struct dsv4_cmp_state {  /* one compressor (attention's or the indexer's) */
    int64_t ratio, Dc, C;        /* C = 2 with overlap */
    int64_t cap;                 /* raw-row ring capacity (positions) */
    float *ra, *rb;              /* backend [cap, C·Dc]: raw kv / gate projections, slot = pos % cap */
    int64_t max_entries;
    float *ent;                  /* backend [max_entries, Dc] compressed entries */
    int64_t n_ent;               /* valid entries = len / ratio */
} dsv4_cmp_state;

typedef struct dsv4_layer_state {
    int64_t cap;                 /* window ring capacity = window + max_chunk */
    float *ring;                 /* backend [cap, head_dim] */
    int64_t *ring_pos;           /* host [cap], -1 = empty */
    int has_cmp, has_idx;
    dsv4_cmp_state cmp, idx;
} dsv4_layer_state;

typedef struct dsv4_seq {
    const dsv4_model *m;
    int64_t len;                 /* tokens consumed so far (next position) */
    int64_t max_len, max_chunk;
    dsv4_layer_state *ls;        /* n_layers + n_mtp */
    int64_t mtp_len;             /* positions the MTP block has consumed */
} dsv4_seq;

int dsv4_seq_init(const dsv4_model *m, int64_t max_len, int64_t max_chunk, dsv4_seq *s, dsv4_err *e);
void dsv4_seq_free(dsv4_seq *s);
/* Back to an empty sequence (states cleared, as spec §4.2 (e) requires). */
void dsv4_seq_reset(dsv4_seq *s);
/* Drops tokens so that len becomes new_len (and the MTP block's len at most new_len - 1... the
 * caller rewinds the MTP separately with mtp_new_len). Refused when more than max_chunk back. */
int dsv4_seq_rewind(dsv4_seq *s, int64_t new_len, int64_t mtp_new_len, dsv4_err *e);

/* ---- forward -------------------------------------------------------------------------------- */

/* Where calibration taps the activations entering a linear (issue 6). `x` is backend memory,
 * rows × cols with row stride cols; `expert` is the routed expert id for the expert sites
 * (DSV4_TAP_EXPERT_ALL for the one EXPERT_IN call that carries every token) and -1 otherwise. */
typedef enum dsv4_tap_site {
    DSV4_TAP_ATTN_IN,    /* normed layer input: wq_a, wkv, compressor, indexer weights_proj */
    DSV4_TAP_Q_LORA,     /* q_norm(wq_a x): wq_b, indexer.wq_b */
    DSV4_TAP_WO_A,       /* per group input of wo_a: rows = T·o_groups (row t·G + g is group g's
                            input for token t), cols = in per group */
    DSV4_TAP_WO_B,       /* wo_b input */
    DSV4_TAP_FFN_IN,     /* normed MoE input: gate, shared w1/w3 */
    DSV4_TAP_SHARED_W2,  /* the shared expert's hidden, silu(min(w1 x, limit))·clamp(w3 x, ±limit): [T, inter] */
    DSV4_TAP_EXPERT_IN,  /* routed expert e's input rows (w1/w3): the tokens routed to e, in token
                            order (not emitted when none are), or every token once, expert =
                            DSV4_TAP_EXPERT_ALL, when some expert's mode is DSV4_TAP_ALL_TOKENS */
    DSV4_TAP_EXPERT_W2,  /* routed expert e's hidden (w2's input), before its routing weight, for
                            the same rows as its EXPERT_IN */
    DSV4_TAP_COUNT
} dsv4_tap_site;

#define DSV4_TAP_EXPERT_ALL (-2)
#define DSV4_TAP_BIT(site) (1u << (site))

/* What the expert sites carry for one routed expert. The layer's output always uses the real
 * routing; these modes only steer what is tapped. */
enum { DSV4_TAP_ROUTED = 0, DSV4_TAP_ALL_TOKENS = 1, DSV4_TAP_SKIP = 2 };

typedef struct dsv4_taps {
    void *ud;
    int (*fn)(void *ud, int layer, dsv4_tap_site site, int expert, const float *x, int64_t rows,
              int64_t cols, dsv4_err *e);
    unsigned sites;              /* DSV4_TAP_BIT mask of the sites to emit; 0 = every site */
    const uint8_t *expert_mode;  /* [n_routed_experts] DSV4_TAP_ROUTED / ALL_TOKENS / SKIP; NULL = all routed */
    int64_t *routed_counts;      /* [n_routed_experts] or NULL: each MoE call adds the tokens routed to
                                    each expert (whatever the modes and sites) */
} dsv4_taps;

/* One decoder layer: X [T, hc, d] (backend) in place, for tokens ids[T] (host) at positions
 * pos[T] (host, consecutive). With st NULL the layer runs stateless over the T tokens as one
 * sequence starting at pos[0] == 0 (prefill semantics); with st, it extends that state.
 * taps may be NULL. */
int dsv4_layer_forward(const dsv4_model *m, const dsv4_layer_w *w, dsv4_layer_state *st, float *X,
                       const int32_t *ids, const int64_t *pos, int64_t T, const dsv4_taps *taps,
                       dsv4_err *e);
/* Embedding into streams: X [T, hc, d] = embed[ids] repeated. */
int dsv4_embed_streams(const dsv4_model *m, const int32_t *ids, int64_t T, float *X, dsv4_err *e);
/* hc_head + final norm + head: logits [T, vocab] (backend). hc/norm from the globals or the MTP
 * layer (mtp != NULL). */
int dsv4_head_logits(const dsv4_model *m, const dsv4_layer_w *mtp, const float *X, int64_t T, float *logits,
                     dsv4_err *e);

/* The MTP block's input streams X [T, hc, d] (backend) from the main model's final streams H (HOST
 * [T, hc, d]) and the next tokens: h_proj(hnorm(H)) + e_proj(enorm(embed(next))) per stream. */
int dsv4_mtp_input(const dsv4_model *m, const dsv4_layer_w *w, const float *H, const int32_t *next_ids, int64_t T,
                   float *X, dsv4_err *e);

/* Appends T tokens (T <= max_chunk) at positions s->len.. and runs the main model. logits: HOST
 * [T, vocab] or NULL; streams_out: HOST [T, hc, d] final streams (the MTP input) or NULL. */
int dsv4_forward(dsv4_seq *s, const int32_t *ids, int64_t T, float *logits, float *streams_out, dsv4_err *e);
/* The MTP block over positions s->mtp_len .. s->mtp_len+T-1: inputs H (HOST [T, hc, d], the main
 * model's final streams at those positions) and next_ids[T] (the token after each position).
 * logits: HOST [T, vocab], the draft for position p+2. */
int dsv4_mtp_forward(dsv4_seq *s, const float *H, const int32_t *next_ids, int64_t T, float *logits,
                     dsv4_err *e);

/* ---- generation (runner/generate.c) --------------------------------------------------------- */

/* Index of the largest of v[n] (the first on ties, as torch.argmax): the greedy token. */
int32_t dsv4_argmax(const float *v, int64_t n);

/* Greedy: prefills prompt[P] into an empty sequence, then appends n argmax tokens one at a time;
 * out[n] receives them. */
int dsv4_generate_greedy(dsv4_seq *s, const int32_t *prompt, int64_t P, int64_t n, int32_t *out, dsv4_err *e);

typedef struct dsv4_spec_stats {
    int64_t drafted, accepted;   /* MTP drafts checked, drafts equal to the main model's token */
    int64_t main_calls;          /* main-model forward calls after the prefill */
} dsv4_spec_stats;

/* Greedy k = 1 speculative decoding with the MTP block as drafter (spec §3.6): prefill, then
 * repeatedly verify [t, draft] in one main-model call, accept (emit draft + bonus) or roll the
 * state back one token (dsv4_seq_rewind). Produces exactly the greedy tokens; out[n]. Needs the
 * model opened with DSV4_LOAD_MTP and max_chunk >= 2. */
int dsv4_generate_spec(dsv4_seq *s, const int32_t *prompt, int64_t P, int64_t n, int32_t *out,
                       dsv4_spec_stats *st, dsv4_err *e);

#endif
