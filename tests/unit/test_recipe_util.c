/* Recipe test helper (see test_recipe_util.h). */
#include "test_recipe_util.h"

#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "recipe/recipe.h"

void tr_refused(const char *yaml, int line, int col, const char *needle, const char *file, int src_line)
{
    dsv4_recipe r;
    dsv4_err e;
    char where[32];
    if (dsv4_recipe_parse(yaml, strlen(yaml), "t.yaml", &r, &e) == 0) {
        th_fail(file, src_line, "accepted: %s", yaml);
        dsv4_recipe_free(&r);
        return;
    }
    snprintf(where, sizeof where, "t.yaml:%d:%d: ", line, col);
    if (line && strncmp(e.msg, where, strlen(where)))
        th_fail(file, src_line, "expected \"%s\" at the start of \"%s\"", where, e.msg);
    if (!strstr(e.msg, needle))
        th_fail(file, src_line, "expected \"%s\" in \"%s\"", needle, e.msg);
    if (e.code != DSV4_EXIT_BADINPUT)
        th_fail(file, src_line, "exit code %d, expected %d", e.code, DSV4_EXIT_BADINPUT);
}
