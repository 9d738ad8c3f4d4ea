/* dsv4-break: writes a copy of a clean dsv4-quant artifact broken in one way a real pipeline broke
 * its artifact, for the dsv4-verify / dsv4-fixup end-to-end tests (tests/cli/verify_fixup.sh,
 * tests/breakgen/cases.tsv). Also the comparisons that test needs (--diff, --config-equal, --report).
 *
 *   dsv4-break MODE CLEAN OUT [--source SRC]   write OUT (which must not exist)
 *   dsv4-break --list                          every mode, one line each
 *   dsv4-break --diff CLEAN BROKEN             what BROKEN changed (diff.h)
 *   dsv4-break --config-equal A B              config.json equality, "dsv4_fixup" ignored
 *   dsv4-break --report FILE                   rule ids in dsv4-verify's JSON (report.h)
 * Exit codes: 0 ok (equal), 1 runtime failure, 2 bad usage or input, 3 configs differ. */
#include <stdio.h>
#include <string.h>

#include "diff.h"
#include "modes.h"
#include "report.h"

static const bt_mode *const *groups(void)
{
    static const bt_mode *const g[] = {bt_modes_mtp,    bt_modes_fp32,   bt_modes_names,
                                       bt_modes_quant,  bt_modes_config, bt_modes_files, NULL};
    return g;
}

static const bt_mode *find_mode(const char *name)
{
    for (const bt_mode *const *g = groups(); *g; g++)
        for (const bt_mode *m = *g; m->name; m++)
            if (!strcmp(m->name, name))
                return m;
    return NULL;
}

static int usage(FILE *f)
{
    fprintf(f, "usage: dsv4-break MODE CLEAN_ARTIFACT OUT [--source SRC]\n"
               "       dsv4-break --list\n"
               "       dsv4-break --diff CLEAN BROKEN\n"
               "       dsv4-break --config-equal A B\n"
               "       dsv4-break --report VERIFY_JSON\n");
    return f == stdout ? 0 : DSV4_EXIT_BADINPUT;
}

static int fail(const dsv4_err *e)
{
    fprintf(stderr, "dsv4-break: %s\n", e->msg);
    return e->code ? e->code : DSV4_EXIT_RUNTIME;
}

static int run_mode(const bt_mode *m, const char *clean, const char *out, const char *source)
{
    dsv4_err e = {0};
    bt_art a;
    dsv4_ckpt src;
    int have_src = 0, rc = 0;
    if (m->needs_source && !source) {
        fprintf(stderr, "dsv4-break: mode %s reads the source checkpoint: give --source SRC\n", m->name);
        return DSV4_EXIT_BADINPUT;
    }
    if (source) {
        if (dsv4_ckpt_open(source, 0, &src, &e))
            return fail(&e);
        have_src = 1;
    }
    if (bt_open(&a, clean, &e) || m->run(&a, have_src ? &src : NULL, &e) || bt_write(&a, out, &e))
        rc = fail(&e);
    else
        printf("dsv4-break: %s: wrote %s (%zu tensors)\n", m->name, out, a.n);
    bt_close(&a);
    if (have_src)
        dsv4_ckpt_close(&src);
    return rc;
}

int main(int argc, char **argv)
{
    dsv4_err e = {0};
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
        return usage(stdout);
    if (argc == 2 && !strcmp(argv[1], "--list")) {
        for (const bt_mode *const *g = groups(); *g; g++)
            for (const bt_mode *m = *g; m->name; m++)
                printf("%-28s %s%s\n", m->name, m->what, m->needs_source ? " [needs --source]" : "");
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "--diff"))
        return bt_diff(argv[2], argv[3], stdout, &e) ? fail(&e) : 0;
    if (argc == 4 && !strcmp(argv[1], "--config-equal")) {
        int rc = bt_config_equal(argv[2], argv[3], stdout, &e);
        return rc < 0 ? fail(&e) : rc ? DSV4_EXIT_GATE : 0;
    }
    if (argc == 3 && !strcmp(argv[1], "--report"))
        return bt_report(argv[2], stdout, &e) ? fail(&e) : 0;
    if (argc != 4 && !(argc == 6 && !strcmp(argv[4], "--source")))
        return usage(stderr);
    const bt_mode *m = find_mode(argv[1]);
    if (!m) {
        fprintf(stderr, "dsv4-break: unknown mode '%s' (dsv4-break --list shows them)\n", argv[1]);
        return DSV4_EXIT_BADINPUT;
    }
    return run_mode(m, argv[2], argv[3], argc == 6 ? argv[5] : NULL);
}
