/* The manifest's "calibration" section (io/manifest.h): rendered after "tensors", one layer per
 * line in bytewise order, compact with sorted keys; parsed back into the same JSON; absent when
 * there is none; a section that is not an object of layers is refused. */
#include "harness.h"
#include "io/manifest.h"

#include <stdlib.h>
#include <string.h>

static int render(const json_t *cal, dsv4_jbuf *b, dsv4_err *e)
{
    dsv4_st_plan p;
    dsv4_st_plan_init(&p, 1u << 20, 0);
    int64_t shape[1] = {4};
    dsv4_hash128 h[1] = {{1, 2}};
    int rc = dsv4_st_plan_add(&p, "w", DSV4_F32, 1, shape, e) || dsv4_st_plan_finish(&p, e) ||
             dsv4_manifest_render(&p, h, cal, b, e);
    dsv4_st_plan_free(&p);
    return rc;
}

TEST(manifest_calibration_section)
{
    dsv4_err e;
    json_t *cal = json_pack("{s:{s:[i,i],s:[s,s]},s:{s:[i,i],s:[s,s]}}", "layers.10", "tokens", 3, 0, "hessians",
                            "routed", "rtn", "layers.2", "tokens", 5, 7, "hessians", "routed", "all_tokens");
    dsv4_jbuf b = {0};
    REQUIRE(render(cal, &b, &e) == 0);
    REQUIRE(!b.oom);
    const char *want = "\n  },\n  \"calibration\": {\n"
                       "    \"layers.10\": {\"hessians\":[\"routed\",\"rtn\"],\"tokens\":[3,0]},\n"
                       "    \"layers.2\": {\"hessians\":[\"routed\",\"all_tokens\"],\"tokens\":[5,7]}\n  }\n}\n";
    CHECK_MSG(strstr(b.p, want) != NULL, "rendered:\n%s", b.p);
    dsv4_manifest m;
    REQUIRE(dsv4_manifest_parse(b.p, b.n, "m.json", &m, &e) == 0);
    CHECK(m.n == 1 && !strcmp(m.v[0].name, "w"));
    CHECK(m.calibration && json_equal(m.calibration, cal));
    dsv4_manifest_free(&m);
    dsv4_jbuf_free(&b);

    /* none: no key, and nothing parsed */
    dsv4_jbuf c = {0};
    REQUIRE(render(NULL, &c, &e) == 0);
    CHECK(!strstr(c.p, "calibration"));
    REQUIRE(dsv4_manifest_parse(c.p, c.n, "m.json", &m, &e) == 0);
    CHECK(m.calibration == NULL);
    dsv4_manifest_free(&m);

    /* refused: a section that is not an object, rendered or parsed */
    json_t *arr = json_array();
    dsv4_jbuf d = {0};
    CHECK(render(arr, &d, &e) != 0 && strstr(e.msg, "calibration section must be an object"));
    char *bad = malloc(c.n + 64);
    memcpy(bad, c.p, c.n);
    bad[c.n] = 0;
    char *end = strrchr(bad, '}');
    strcpy(end, ", \"calibration\": [1]}\n");
    CHECK(dsv4_manifest_parse(bad, strlen(bad), "m.json", &m, &e) != 0 && strstr(e.msg, "m.json: \"calibration\""));
    free(bad);
    json_decref(arr);
    json_decref(cal);
    dsv4_jbuf_free(&c);
    dsv4_jbuf_free(&d);
}
