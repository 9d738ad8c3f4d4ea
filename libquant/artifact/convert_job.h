/* Running one artifact plan job (plan.h) into destination buffers. */
#ifndef DSV4_CONVERT_JOB_H
#define DSV4_CONVERT_JOB_H

#include "artifact/plan.h"

typedef struct dsv4_job_report {
    int exact;          /* 0 when a conversion meant to be lossless was not */
    int64_t inexact;    /* values or blocks that were not reproduced exactly */
    double max_abs_err;
} dsv4_job_report;

/* Runs job j: dst[k] receives out[k] (sized by its dtype and shape). group_size is the recipe
 * group's (INT4). */
int dsv4_job_run(const dsv4_plan_job *j, int group_size, uint8_t *const dst[3], dsv4_job_report *rep,
                 dsv4_err *e);

#endif
