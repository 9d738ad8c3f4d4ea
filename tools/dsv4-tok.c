/* dsv4-tok: encode text read from stdin with a Hugging Face tokenizer.json (ids printed on one
 * line, space-separated), or decode ids read from stdin back to text; --regex shows how a
 * pre-tokenizer pattern splits the text (the engine the tokenizer uses).
 * Exit codes: 0 done, 2 bad usage or input refused (unsupported tokenizer, invalid UTF-8, an id
 * that is no token), 1 runtime failure. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/regex.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

static void usage(FILE *f)
{
    fputs("usage: dsv4-tok [--special] TOKENIZER < text          print the ids of the text\n"
          "       dsv4-tok --decode [--skip-special] TOKENIZER < ids   print the text of the ids\n"
          "       dsv4-tok --info TOKENIZER                        vocabulary size, bos and eos ids\n"
          "       dsv4-tok --regex PATTERN < text                 byte offsets of each match\n"
          "  TOKENIZER       a tokenizer.json, or a folder holding one (and tokenizer_config.json)\n"
          "  --special       add the special tokens (BOS, ...) as tokenizer(text) does\n"
          "  --skip-special  drop special tokens when decoding\n",
          f);
}

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t k = fread(b + n, 1, cap - n, f);
        n += k;
        if (n < cap) {
            if (ferror(f)) {
                free(b);
                return NULL;
            }
            break;
        }
        cap *= 2;
        char *nb = realloc(b, cap + 1);
        if (!nb)
            free(b);
        b = nb;
    }
    if (b)
        b[n] = 0;
    *len = n;
    return b;
}

static int run_regex(const char *pattern, const char *text, size_t len)
{
    char why[256];
    dsv4_re *re;
    if (dsv4_re_compile(pattern, strlen(pattern), &re, why, sizeof why)) {
        fprintf(stderr, "dsv4-tok: regex \"%s\": %s\n", pattern, why);
        return 2;
    }
    uint32_t *cps;
    size_t *offs, n;
    if (tok_utf8_decode(text, len, &cps, &offs, &n)) {
        fprintf(stderr, "dsv4-tok: stdin is not valid UTF-8 (byte %zu)\n", tok_utf8_valid(text, len));
        dsv4_re_free(re);
        return 2;
    }
    size_t *sp;
    long k = dsv4_re_find_all(re, cps, n, &sp);
    if (k < 0)
        fprintf(stderr, "dsv4-tok: the regex ran out of its backtracking budget\n");
    for (long i = 0; i < k; i++)
        printf("%zu %zu\n", offs[sp[2 * i]], offs[sp[2 * i + 1]]);
    if (k >= 0)
        free(sp);
    free(cps);
    free(offs);
    dsv4_re_free(re);
    return k < 0 ? 2 : 0;
}

int main(int argc, char **argv)
{
    int decode = 0, special = 0, skip = 0, info = 0;
    const char *regex = NULL;
    static const struct option opts[] = {
        {"decode", no_argument, 0, 'd'}, {"special", no_argument, 0, 's'}, {"skip-special", no_argument, 0, 'k'},
        {"info", no_argument, 0, 'i'}, {"regex", required_argument, 0, 'r'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': decode = 1; break;
        case 's': special = 1; break;
        case 'k': skip = 1; break;
        case 'i': info = 1; break;
        case 'r': regex = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (regex ? optind != argc : optind != argc - 1 || (decode && (special || info)) || (skip && !decode)) {
        usage(stderr);
        return 2;
    }
    size_t len = 0;
    char *in = NULL;
    if (!info && !(in = read_all(stdin, &len))) {
        fprintf(stderr, "dsv4-tok: cannot read stdin\n");
        return 1;
    }
    if (regex) {
        int rc = run_regex(regex, in, len);
        free(in);
        return rc;
    }
    dsv4_err e = {0};
    dsv4_tok *t;
    if (dsv4_tok_load(argv[optind], &t, &e)) {
        fprintf(stderr, "dsv4-tok: %s\n", e.msg);
        free(in);
        return e.code ? e.code : 2;
    }
    int rc = 0;
    if (info) {
        printf("vocab_size %lld\nbos %d\neos %d\n", (long long)dsv4_tok_vocab_size(t), dsv4_tok_bos(t), dsv4_tok_eos(t));
    } else if (decode) {
        size_t n = 0, cap = 64;
        int32_t *ids = malloc(cap * sizeof *ids);
        char *p = in, *end;
        while (ids && *p) {
            if (strchr(" \t\r\n,[]", *p)) {
                p++;
                continue;
            }
            long v = strtol(p, &end, 10);
            if (end == p || v < 0 || v > INT32_MAX) {
                fprintf(stderr, "dsv4-tok: stdin: \"%.20s\" is not a token id\n", p);
                rc = 2;
                break;
            }
            if (n == cap) {
                int32_t *ni = realloc(ids, (cap *= 2) * sizeof *ni);
                if (!ni)
                    free(ids);
                ids = ni;
                if (!ids)
                    break;
            }
            ids[n++] = (int32_t)v;
            p = end;
        }
        char *text;
        size_t tl;
        if (!ids) {
            fprintf(stderr, "dsv4-tok: out of memory\n");
            rc = 1;
        } else if (!rc && dsv4_tok_decode(t, ids, n, skip, &text, &tl, &e)) {
            fprintf(stderr, "dsv4-tok: %s\n", e.msg);
            rc = e.code;
        } else if (!rc) {
            fwrite(text, 1, tl, stdout);
            free(text);
        }
        free(ids);
    } else {
        int32_t *ids;
        size_t n;
        if (dsv4_tok_encode(t, in, len, special, &ids, &n, &e)) {
            fprintf(stderr, "dsv4-tok: %s\n", e.msg);
            rc = e.code;
        } else {
            for (size_t i = 0; i < n; i++)
                printf(i ? " %d" : "%d", ids[i]);
            printf("\n");
            free(ids);
        }
    }
    dsv4_tok_free(t);
    free(in);
    return rc;
}
