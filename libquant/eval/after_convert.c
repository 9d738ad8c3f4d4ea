/* Verification of a conversion's output inside its temporary folder (after_convert.h). */
#include "eval/after_convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic.h"
#include "util/pages.h"

int dsv4_after_convert_hook(void *ctx, const char *tmp_dir, dsv4_err *e)
{
    dsv4_after_convert *a = ctx;
    a->convert_peak_rss = dsv4_peak_rss();
    dsv4_check_opts co = a->co;
    co.report_name = a->out;
    if (dsv4_check_run(&a->ck, tmp_dir, a->source, &co, e))
        return dsv4_wrap(e, "verifying the new artifact");
    a->ran = 1;
    a->exit_code = dsv4_check_exit(&a->ck);
    a->report = dsv4_check_report(&a->ck, 0);
    char *s = json_dumps(a->report, JSON_INDENT(2));
    if (!s)
        return dsv4_fail_rt(e, "out of memory rendering %s", DSV4_VERIFY_REPORT);
    size_t n = strlen(s);
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, DSV4_VERIFY_REPORT);
    char *buf = malloc(n + 1);
    int rc = -1;
    if (!buf) {
        dsv4_fail_rt(e, "out of memory rendering %s", DSV4_VERIFY_REPORT);
    } else {
        memcpy(buf, s, n);
        buf[n] = '\n';
        rc = dsv4_atomic_write(path, buf, n + 1, e);
    }
    free(buf);
    free(s);
    return rc;
}

void dsv4_after_convert_free(dsv4_after_convert *a)
{
    dsv4_check_free(&a->ck);
    json_decref(a->report);
    a->report = NULL;
}
