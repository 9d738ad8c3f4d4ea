/* Applies a list of fix ops (verify/fix.h) to an artifact folder, crash-safely.
 *
 * The new artifact is built in a sibling folder `<target>.tmp-<pid>` (io/atomic.h): shards no op
 * touches and every other file (tokenizer, generation config, reports) are hard links to the old
 * ones (copied with copy_file_range where a link is impossible); a shard whose tensors only get new
 * names or shapes gets a new header and its data section copied by the kernel (copy_file_range:
 * no tensor byte passes through user space, and filesystems with reflinks share the blocks); any
 * other touched shard is rewritten with its tensors laid out as io/st_plan.h lays them out (so a
 * repaired shard is byte-identical to what dsv4-quant writes for the same tensors). New tensors go
 * to the shard their op names (`near`). The index is regenerated from the final shard headers
 * (io/index_write.h) when the artifact has one; dsv4-manifest.json, when present, is regenerated
 * with the hashes of unchanged tensors carried over. config.json gets the CONFIG ops and a
 * provenance record appended to its "dsv4_fixup" list: {"tool": "dsv4-fixup", "version": ...,
 * "rules": [ids of the rules whose ops were applied]}.
 *
 * Commit: with `out`, the folder is renamed to `out` (which must not exist). In place, the new
 * folder and the artifact are swapped with renameat2(RENAME_EXCHANGE) and the old tree is then
 * removed, so a process killed at any instant leaves the artifact path holding either the old
 * artifact or the new one (a leftover `<artifact>.tmp-<pid>` is removed by the next run). */
#ifndef DSV4_REWRITE_H
#define DSV4_REWRITE_H

#include <jansson.h>
#include <stdint.h>

#include "io/checkpoint.h"
#include "verify/fix.h"

/* Progress events, in the order they happen (for progress displays and the crash-safety test). */
enum {
    DSV4_RW_EV_BEGUN,       /* the temporary folder exists */
    DSV4_RW_EV_SHARD,       /* a shard is in the temporary folder (`done` of `total`) */
    DSV4_RW_EV_BUILT,       /* every file is there and synced; the commit is next */
    DSV4_RW_EV_SWAPPED,     /* in place: the folders are exchanged; the old tree is removed next */
    DSV4_RW_EV_COMMITTED,   /* the result is at its path and the parent folder synced */
};
typedef void (*dsv4_rewrite_progress_fn)(void *ctx, int event, size_t done, size_t total);

typedef struct dsv4_rewrite_opts {
    const char *out;        /* new folder; NULL rewrites the artifact in place */
    int dry_run;            /* check the ops and fill the stats, write nothing */
    int threads;            /* rewritten shards in parallel; 0: automatic */
    int quiet;              /* no progress on stderr */
    dsv4_rewrite_progress_fn progress; /* optional; called from one thread at a time */
    void *progress_ctx;
} dsv4_rewrite_opts;

typedef struct dsv4_rewrite_stats {
    size_t shards_linked;       /* unchanged, hard-linked (or copied) */
    size_t shards_header_only;  /* new header, data copied by the kernel */
    size_t shards_rewritten;
    size_t renamed, reshaped, put, dropped, config_ops;
    uint64_t bytes_written;     /* bytes written from user space (headers, new tensors) */
    uint64_t bytes_kernel_copied;
    int index_rewritten, manifest_rewritten, config_rewritten;
} dsv4_rewrite_stats;

/* `art` is the opened artifact (its tensors' bytes are read from its mappings), `config` its
 * config.json (NULL when it has none; CONFIG ops then fail). Ops are validated first: a RENAME
 * whose old name is absent, a new name that collides, a RESHAPE that changes the byte count, a
 * DROP/RESHAPE of an absent tensor, two ops on one tensor that contradict each other are refused
 * (code 2) before anything is written. An empty list writes nothing. */
int dsv4_rewrite(const dsv4_ckpt *art, const json_t *config, const dsv4_fix_list *ops,
                 const dsv4_rewrite_opts *o, dsv4_rewrite_stats *st, dsv4_err *e);

#endif
