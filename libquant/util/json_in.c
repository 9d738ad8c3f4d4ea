/* Strict JSON parsing with located errors (see json_in.h). */
#include "util/json_in.h"

json_t *dsv4_json_parse(const char *buf, size_t len, const char *path, const char *what, dsv4_err *e)
{
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        dsv4_fail(e, "%s: %s%snot valid JSON (line %d, column %d): %s", path, what ? what : "",
                  what ? " is " : "", jerr.line, jerr.column, jerr.text);
    return root;
}
