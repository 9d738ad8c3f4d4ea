/* dsv4_plan_build: inventory of the config, the source under release names, the jobs, then the
 * artifact's config.json (see plan.h). */
#include <stdlib.h>
#include <string.h>

#include "artifact/plan_internal.h"

const char *dsv4_job_kind_name(dsv4_job_kind k)
{
    static const char *const n[] = {"copy", "bf16", "fp8_pass", "fp8_rtn", "fp8_from_fp4", "int4", "nvfp4"};
    return (unsigned)k < sizeof n / sizeof *n ? n[k] : "?";
}

int dsv4_job_is_gptq(const dsv4_plan_job *j, const dsv4_recipe *r)
{
    return j->group >= 0 && (size_t)j->group < r->n_groups && r->groups[j->group].method == DSV4_METHOD_GPTQ;
}

int dsv4_plan_has_gptq(const dsv4_plan *p, const dsv4_recipe *r)
{
    for (size_t i = 0; i < p->n; i++)
        if (dsv4_job_is_gptq(&p->jobs[i], r))
            return 1;
    return 0;
}

void dsv4_plan_free(dsv4_plan *p)
{
    for (size_t i = 0; i < p->n; i++)
        for (int k = 0; k < p->jobs[i].n_out; k++)
            free(p->jobs[i].out[k].name);
    free(p->jobs);
    for (size_t i = 0; i < p->n_views; i++)
        free(p->views[i].name);
    free(p->views);
    json_decref(p->config);
    memset(p, 0, sizeof *p);
}

int dsv4_plan_build(const dsv4_ckpt *src, const dsv4_config *cfg, const json_t *source_config, const dsv4_recipe *r,
                    dsv4_plan *p, dsv4_err *e)
{
    plan_ctx c;
    memset(&c, 0, sizeof c);
    memset(p, 0, sizeof *p);
    c.ck = src;
    c.cfg = cfg;
    c.r = r;
    c.p = p;
    c.e = e;
    int rc = -1;
    if (!r->rx) {
        dsv4_fail(e, "%s: the recipe was not loaded (dsv4_recipe_load / dsv4_recipe_parse)", r->path);
        return -1;
    }
    if (dsv4_inventory_build(cfg, &c.inv, e))
        return -1;
    if (plan_src_build(src, &c.inv, cfg, &c.src, e) == 0 && plan_jobs(&c) == 0 && plan_config(&c, source_config) == 0)
        rc = 0;
    for (size_t i = 0; i < c.n_mods; i++)
        free((char *)c.mods[i].module);
    free(c.mods);
    p->views = c.src.views; /* the jobs read them: they live as long as the plan */
    p->n_views = c.src.n_views;
    c.src.views = NULL;
    c.src.n_views = 0;
    plan_src_free(&c.src);
    dsv4_inventory_free(&c.inv);
    if (rc)
        dsv4_plan_free(p);
    return rc;
}
