/* dsv4-inspect: look inside a DeepSeek-V4 checkpoint without reading its tensor data (or one
 * tensor, dequantized, with --tensor). Prints for people, or JSON with --json.
 * Exit codes: 0 read and reported (deviations are reported, not failures), 2 unreadable or
 * invalid input or bad usage, 1 runtime failure. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/inspect.h"

#define LIST_DEFAULT 20

static void usage(FILE *f)
{
    fputs("usage: dsv4-inspect [--json] [--all] [--tensor NAME]... [--device auto|cpu|cuda] PATH\n"
          "  PATH            a checkpoint folder, a .safetensors file or a model.safetensors.index.json\n"
          "  --json          print the report as JSON\n"
          "  --all           list every deviation (default: the first 20 of each kind)\n"
          "  --tensor NAME   dequantize one tensor and print its statistics and checksum\n"
          "  --device D      where --tensor dequantizes: auto (GPU when there is one), cpu, cuda\n",
          f);
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* A JSON array of integers as "[a, b]" (in a rotating static buffer). */
static const char *shape(json_t *o, const char *k)
{
    static char buf[4][128];
    static int slot;
    char *b = buf[slot++ % 4];
    size_t off = 0, i;
    json_t *v;
    off += (size_t)snprintf(b, sizeof buf[0], "[");
    json_array_foreach(json_object_get(o, k), i, v) {
        if (off < sizeof buf[0])
            off += (size_t)snprintf(b + off, sizeof buf[0] - off, "%s%lld", i ? ", " : "",
                                    (long long)json_integer_value(v));
    }
    if (off < sizeof buf[0])
        snprintf(b + off, sizeof buf[0] - off, "]");
    return b;
}

static long long num(json_t *o, const char *k) { return (long long)json_integer_value(json_object_get(o, k)); }

static void print_counts(const char *title, json_t *obj)
{
    const char *k;
    json_t *v;
    printf("%s\n", title);
    json_object_foreach(obj, k, v) {
        printf("  %-20s %8lld tensors %16lld bytes", k, num(v, "tensors"), num(v, "bytes"));
        if (json_object_get(v, "expected_tensors") &&
            (num(v, "expected_tensors") != num(v, "tensors") || num(v, "expected_bytes") != num(v, "bytes")))
            printf("   (expected %lld tensors, %lld bytes)", num(v, "expected_tensors"), num(v, "expected_bytes"));
        printf("\n");
    }
}

static void print_diff(const char *kind, json_t *list, int all)
{
    size_t n = json_array_size(list);
    for (size_t i = 0; i < n && (all || i < LIST_DEFAULT); i++) {
        json_t *x = json_array_get(list, i);
        printf("  %-11s %s", kind, str(x, "name"));
        if (json_object_get(x, "expected_dtype"))
            printf("  expected %s %s", str(x, "expected_dtype"), shape(x, "expected_shape"));
        if (json_object_get(x, "found_dtype"))
            printf("%s found %s %s", json_object_get(x, "expected_dtype") ? "," : " ", str(x, "found_dtype"),
                   shape(x, "found_shape"));
        printf("\n");
    }
    if (!all && n > LIST_DEFAULT)
        printf("  %-11s ... and %zu more (--all lists them)\n", kind, n - LIST_DEFAULT);
}

static void print_report(json_t *r, int all)
{
    json_t *ix = json_object_get(r, "index"), *cfg = json_object_get(r, "config");
    printf("checkpoint  %s\n", str(r, "path"));
    printf("layout      %s (names: %s%s%s)\n", str(r, "layout"), str(r, "naming"),
           *str(r, "quant_method") ? ", quant_method " : "", str(r, "quant_method"));
    printf("files       %lld, %lld tensors, %lld bytes of tensor data", num(r, "files"), num(r, "tensors"),
           num(r, "bytes"));
    if (json_object_get(ix, "total_size"))
        printf("; index total_size %lld%s", num(ix, "total_size"),
               num(ix, "total_size") == num(r, "bytes") ? " (matches)" : " (DIFFERS)");
    printf("\n");
    json_t *ct = json_object_get(r, "compressed_tensors");
    if (ct) {
        size_t i;
        json_t *s;
        printf("compressed-tensors format %s, %lld packed weights\n", str(ct, "format"), num(ct, "packed_weights"));
        json_array_foreach(json_object_get(ct, "schemes"), i, s) printf("  %s\n", json_string_value(s));
    }
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(r, "problems"), i, p) printf("problem     %s\n", json_string_value(p));
    if (json_is_object(cfg))
        printf("config      %s (%s keys): %lld layers + %lld MTP, hidden %lld, %lld experts top-%lld, vocab %lld, "
               "%lld hash layers, experts %s\n",
               str(cfg, "path"), str(cfg, "key_style"), num(cfg, "layers"), num(cfg, "mtp_layers"),
               num(cfg, "hidden_size"), num(cfg, "routed_experts"), num(cfg, "experts_per_token"),
               num(cfg, "vocab_size"), num(cfg, "hash_layers"), str(cfg, "expert_dtype"));
    else
        printf("config      none: %s\n", str(r, "note"));
    print_counts("by dtype", json_object_get(r, "by_dtype"));
    if (!json_is_object(cfg))
        return;
    print_counts("by role", json_object_get(r, "by_role"));
    printf("layers     ");
    json_t *l;
    json_t *layers = json_object_get(r, "layers");
    json_array_foreach(layers, i, l) {
        printf(" %s %s%s", str(l, "name"), str(l, "attention"), !strcmp(str(l, "routing"), "hash") ? "+hash" : "");
        if (!json_is_true(json_object_get(l, "ok")))
            printf(" (FOUND %s ratio %lld, %s routing)",
                   json_object_get(l, "found_attention") ? str(l, "found_attention") : "no attention",
                   num(l, "found_ratio"), json_object_get(l, "found_routing") ? str(l, "found_routing") : "unclear");
        printf(i + 1 < json_array_size(layers) ? " |" : "\n");
    }
    json_t *mtp = json_object_get(r, "mtp"), *fp = json_object_get(r, "fp32_set"), *inv = json_object_get(r, "inventory");
    printf("MTP         %s (%lld of %lld expected tensors right, %lld mtp.* tensors found)\n",
           !json_is_true(json_object_get(mtp, "present")) ? "MISSING"
           : json_is_true(json_object_get(mtp, "complete")) ? "present, complete"
                                                             : "present, INCOMPLETE",
           num(mtp, "ok"), num(mtp, "expected"), num(mtp, "found"));
    printf("FP32 set    %s (%lld of %lld present as F32)\n", json_is_true(json_object_get(fp, "intact")) ? "intact" : "BROKEN",
           num(fp, "ok"), num(fp, "expected"));
    printf("inventory   %s: %lld of %lld expected tensors match (%s)\n",
           json_is_true(json_object_get(inv, "clean")) ? "matches" : "DEVIATES", num(inv, "matched"),
           num(inv, "expected"), str(inv, "against"));
    print_diff("missing", json_object_get(inv, "missing"), all);
    print_diff("unexpected", json_object_get(inv, "unexpected"), all);
    print_diff("dtype", json_object_get(inv, "wrong_dtype"), all);
    print_diff("shape", json_object_get(inv, "wrong_shape"), all);
}

static void print_tensor(json_t *t)
{
    json_t *dq = json_object_get(t, "dequantized");
    printf("tensor      %s\n", str(t, "name"));
    printf("file        %s\n", str(t, "file"));
    printf("stored      %s %s, %lld bytes, xxh3-128 %s\n", str(t, "dtype"), shape(t, "shape"), num(t, "bytes"),
           str(t, "xxh3_128"));
    if (dq)
        printf("dequant     %s with %s -> float32 %s (on %s)\n", str(dq, "as"), str(dq, "scale"),
               shape(dq, "logical_shape"), str(dq, "device"));
    printf("values      %lld", num(t, "count"));
    if (json_object_get(t, "min"))
        printf(", min %.6g, max %.6g, mean %.6g, absmax %.6g", json_real_value(json_object_get(t, "min")),
               json_real_value(json_object_get(t, "max")), json_real_value(json_object_get(t, "mean")),
               json_real_value(json_object_get(t, "absmax")));
    printf(", %lld non-finite\n", num(t, "nonfinite"));
}

int main(int argc, char **argv)
{
    int json = 0, all = 0, ntensors = 0;
    const char *device = "auto";
    const char **tensors = calloc((size_t)argc, sizeof(char *));
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},   {"all", no_argument, 0, 'a'},
                                         {"tensor", required_argument, 0, 't'}, {"device", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},   {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j': json = 1; break;
        case 'a': all = 1; break;
        case 't': tensors[ntensors++] = optarg; break;
        case 'd': device = optarg; break;
        case 'h': usage(stdout); free(tensors); return 0;
        default: usage(stderr); free(tensors); return 2;
        }
    }
    if (optind != argc - 1 || (strcmp(device, "auto") && strcmp(device, "cpu") && strcmp(device, "cuda"))) {
        usage(stderr);
        free(tensors);
        return 2;
    }
    const char *path = argv[optind];
    dsv4_err e = {{0}, 0};
    json_t *out = NULL;
    int rc = 0;
    if (ntensors == 0) {
        out = dsv4_inspect_report(path, &e);
    } else {
        dsv4_ckpt c;
        if (dsv4_ckpt_open(path, DSV4_CKPT_LENIENT, &c, &e) == 0) {
            out = json_array();
            for (int i = 0; i < ntensors && out; i++) {
                json_t *t = dsv4_inspect_tensor(&c, tensors[i], device, &e);
                if (!t) {
                    json_decref(out);
                    out = NULL;
                } else {
                    json_array_append_new(out, t);
                }
            }
            dsv4_ckpt_close(&c);
        }
    }
    if (!out) {
        fprintf(stderr, "dsv4-inspect: %s\n", e.msg);
        rc = e.code ? e.code : 1;
    } else if (json) {
        json_t *doc = ntensors ? json_pack("{s:O}", "tensors", out) : json_incref(out);
        json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
        json_decref(doc);
    } else if (ntensors) {
        size_t i;
        json_t *t;
        json_array_foreach(out, i, t) {
            if (i)
                printf("\n");
            print_tensor(t);
        }
    } else {
        print_report(out, all);
    }
    json_decref(out);
    free(tensors);
    return rc;
}
