/* The calibration's work folder (calib.h): calib.json (the run's identity), one atomic folder per
 * finished layer (layer-NNN/ or mtp-N/: the layer's quantized tensors as the artifact stores them,
 * its report.json), and the store that the conversion reads them from (its report: calib.json's
 * identity with every layer's report under "layers"). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact/convert.h"
#include "gptq/calib_internal.h"
#include "io/atomic.h"
#include "io/checkpoint.h"
#include "io/st_write.h"

struct dsv4_gptq_store {
    size_t n;
    dsv4_ckpt *layers;           /* the finished layer folders */
    json_t *report;
};

void calib_layer_dir(const char *work, const dsv4_config *c, int id, char *out, size_t n)
{
    if (id < c->n_layers)
        snprintf(out, n, "%s/layer-%03d", work, id);
    else
        snprintf(out, n, "%s/mtp-%d", work, id - c->n_layers);
}

int calib_layer_store(const char *work, clayer *L, json_t *report, dsv4_err *e)
{
    char dir[4096];
    calib_layer_dir(work, &L->m->cfg, L->id, dir, sizeof dir);
    dsv4_st_plan sp;
    dsv4_st_plan_init(&sp, 0, 0);
    size_t n = 0;
    const void **data = calloc(L->n_mods * 3 + 1, sizeof *data);
    if (!data)
        return dsv4_fail_rt(e, "out of memory");
    int rc = -1;
    for (size_t i = 0; i < L->n_mods; i++) {
        const dsv4_plan_job *j = L->mods[i].job;
        for (int k = 0; k < j->n_out; k++, n++) {
            if (dsv4_st_plan_add(&sp, j->out[k].name, j->out[k].dtype, j->out[k].ndim, j->out[k].shape, e))
                goto out;
            data[n] = L->mods[i].out[k];
        }
    }
    if (dsv4_st_plan_finish(&sp, e))
        goto out;
    dsv4_st_writer *w;
    if (dsv4_st_writer_open(&w, &sp, dir, NULL, e))
        goto out;
    for (size_t i = 0; i < n; i++)
        if (dsv4_st_writer_put(w, i, data[i], sp.tensors[i].nbytes, e)) {
            dsv4_st_writer_abort(w);
            goto out;
        }
    char *s = json_dumps(report, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (!s || dsv4_st_writer_add_file(w, "report.json", s, strlen(s), e)) {
        if (!s)
            dsv4_fail_rt(e, "out of memory");
        free(s);
        dsv4_st_writer_abort(w);
        goto out;
    }
    free(s);
    rc = dsv4_st_writer_close(w, e);
out:
    dsv4_st_plan_free(&sp);
    free(data);
    return rc;
}

int calib_layer_load(const char *work, clayer *L, dsv4_err *e)
{
    char dir[4096];
    calib_layer_dir(work, &L->m->cfg, L->id, dir, sizeof dir);
    struct stat st;
    if (stat(dir, &st) != 0)
        return 0;
    dsv4_ckpt c;
    if (dsv4_ckpt_open(dir, 0, &c, e))
        return -1;
    int rc = 1;
    for (size_t i = 0; i < L->n_mods && rc == 1; i++) {
        const dsv4_plan_job *j = L->mods[i].job;
        for (int k = 0; k < j->n_out; k++) {
            const dsv4_tensor *t = dsv4_ckpt_find(&c, j->out[k].name);
            uint64_t want = dsv4_plan_out_bytes(&j->out[k]);
            if (!t || dsv4_tensor_nbytes(t) != want || t->dtype != j->out[k].dtype) {
                rc = dsv4_fail(e, "%s: finished layer lacks %s (or holds it with another dtype or size); remove "
                               "the work folder to start over", dir, j->out[k].name);
                break;
            }
            if (!(L->mods[i].out[k] = malloc(want + 1))) {
                rc = dsv4_fail_rt(e, "out of memory");
                break;
            }
            memcpy(L->mods[i].out[k], t->data, want);
        }
    }
    dsv4_ckpt_close(&c);
    return rc;
}

int calib_fingerprint(const char *work, json_t *id, dsv4_err *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/calib.json", work);
    char *want = json_dumps(id, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (!want)
        return dsv4_fail_rt(e, "out of memory");
    struct stat st;
    int rc;
    if (stat(work, &st) != 0) {
        rc = mkdir(work, 0755) != 0 ? dsv4_fail_rt(e, "%s: cannot create the work folder", work)
                                    : dsv4_atomic_write(path, want, strlen(want), e);
    } else if (!S_ISDIR(st.st_mode)) {
        rc = dsv4_fail(e, "%s: the work folder is not a folder", work);
    } else if (access(path, F_OK) != 0) {
        rc = dsv4_atomic_write(path, want, strlen(want), e);
    } else {
        char *have;
        size_t n;
        rc = dsv4_read_file(path, 1u << 20, &have, &n, e);
        if (rc == 0) {
            if (n != strlen(want) || memcmp(have, want, n))
                rc = dsv4_fail(e, "%s: the work folder belongs to another calibration (its source, recipe, data, "
                               "options or device differ from this run's); remove it or choose another "
                               "--work-dir", path);
            free(have);
        }
    }
    free(want);
    return rc;
}

/* A finished layer's folder name: layer-<id> or mtp-<i> exactly (not an atomic write's temporary
 * sibling); *kind 0 for layers, 1 for MTP blocks. */
static int layer_dir_id(const char *name, int *kind, int *id)
{
    int n = 0;
    *kind = name[0] == 'm';
    if (sscanf(name, *kind ? "mtp-%d%n" : "layer-%d%n", id, &n) != 1 || name[n] || *id < 0)
        return 0;
    return strspn(name + (*kind ? 4 : 6), "0123456789") == strlen(name + (*kind ? 4 : 6));
}

static int is_layer_dir(const struct dirent *d)
{
    int kind, id;
    return layer_dir_id(d->d_name, &kind, &id);
}

/* Main layers in order, then the MTP blocks. */
static int by_layer(const struct dirent **a, const struct dirent **b)
{
    int ka, ia, kb, ib;
    layer_dir_id((*a)->d_name, &ka, &ia);
    layer_dir_id((*b)->d_name, &kb, &ib);
    return ka != kb ? ka - kb : (ia > ib) - (ia < ib);
}

/* calib.json of a work folder as the report's top level (the run's identity). */
static json_t *read_identity(const char *work_dir, dsv4_err *e)
{
    char path[4096], *buf;
    size_t len;
    snprintf(path, sizeof path, "%s/calib.json", work_dir);
    if (dsv4_read_file(path, 1u << 20, &buf, &len, e))
        return NULL;
    json_error_t je;
    json_t *j = json_loadb(buf, len, 0, &je);
    free(buf);
    if (!json_is_object(j)) {
        json_decref(j);
        dsv4_fail(e, "%s: expected the calibration's identity (a JSON object)%s%s", path, j ? "" : ": ",
                  j ? "" : je.text);
        return NULL;
    }
    return j;
}

int dsv4_gptq_store_open(const char *work_dir, dsv4_gptq_store **out, dsv4_err *e)
{
    dsv4_gptq_store *s = calloc(1, sizeof *s);
    if (!s)
        return dsv4_fail_rt(e, "out of memory");
    json_t *layers = json_array();
    if (!(s->report = read_identity(work_dir, e))) {
        json_decref(layers);
        free(s);
        return -1;
    }
    json_object_set_new(s->report, "layers", layers);
    /* every finished layer folder (a GPTQ run need not start at layer 0 nor cover every layer) */
    struct dirent **ents = NULL;
    int ne = scandir(work_dir, &ents, is_layer_dir, by_layer);
    if (ne < 0) {
        dsv4_fail_rt(e, "%s: cannot list the work folder: %s", work_dir, strerror(errno));
        dsv4_gptq_store_close(s);
        return -1;
    }
    size_t nn = (size_t)ne;
    s->layers = calloc(nn + 1, sizeof *s->layers);
    int rc = s->layers ? 0 : dsv4_fail_rt(e, "out of memory");
    for (size_t i = 0; i < nn && rc == 0; i++) {
        char dir[4096], rp[4200], *buf;
        size_t len;
        snprintf(dir, sizeof dir, "%s/%s", work_dir, ents[i]->d_name);
        if ((rc = dsv4_ckpt_open(dir, 0, &s->layers[i], e)))
            break;
        s->n++;
        snprintf(rp, sizeof rp, "%s/report.json", dir);
        if ((rc = dsv4_read_file(rp, 1u << 30, &buf, &len, e)))
            break;
        json_error_t je;
        json_t *j = json_loadb(buf, len, 0, &je);
        free(buf);
        if (!j) {
            rc = dsv4_fail(e, "%s:%d: %s", rp, je.line, je.text);
            break;
        }
        json_array_append_new(layers, j);
    }
    for (size_t i = 0; i < nn; i++)
        free(ents[i]);
    free(ents);
    if (rc) {
        dsv4_gptq_store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void dsv4_gptq_store_close(dsv4_gptq_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        dsv4_ckpt_close(&s->layers[i]);
    free(s->layers);
    json_decref(s->report);
    free(s);
}

const void *dsv4_gptq_store_get(const dsv4_gptq_store *s, const char *name, uint64_t *n)
{
    for (size_t i = 0; s && i < s->n; i++) {
        const dsv4_tensor *t = dsv4_ckpt_find(&s->layers[i], name);
        if (t) {
            *n = dsv4_tensor_nbytes(t);
            return t->data;
        }
    }
    return NULL;
}

json_t *dsv4_gptq_store_report(const dsv4_gptq_store *s) { return s->report; }
