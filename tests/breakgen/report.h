/* Reading dsv4-verify's JSON for the end-to-end test, without python or jq: the rule ids that
 * failed (by severity) and were skipped in a report, or every rule id and those that need the
 * source in `--list-rules --json`. */
#ifndef DSV4_BREAK_REPORT_H
#define DSV4_BREAK_REPORT_H

#include <stdio.h>

#include "util/err.h"

/* `--report FILE`: for a report (an object) prints three lines
 *   errors ID,ID,...      rules with status "fail" and severity "error"
 *   warnings ID,...       rules with status "fail" and severity "warning"
 *   skipped ID,...        the report's "skipped" list
 * and for a rule list (an array) two lines
 *   rules ID,...          every rule
 *   source ID,...         the rules with needs_source true
 * ids sorted, "-" for an empty list. Fails (code 2) on a file that is not such JSON. */
int bt_report(const char *path, FILE *f, dsv4_err *e);

#endif
