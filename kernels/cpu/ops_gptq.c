/* The host GPTQ op (kernels/ops.h dsv4_gptq_args; spec/formats_algorithms.md §4.3–§4.8): argument
 * checks, act order (a stable argsort of diag(H), descending), dead columns, the damped Cholesky
 * chain H -> H⁻¹ -> U in fp64 through LAPACK with its damping retries and round-to-nearest fallback,
 * and the outputs in original column order. The scales and the column loop are ops_gptq_loop.c.
 *
 * The fp64 matrix A is filled on its row-major upper triangle, which is the column-major lower
 * triangle of the same memory, so LAPACK runs column-major 'L' on it with no transposed copy:
 * dpotrf gives A = L·Lᵀ, dpotri overwrites that triangle with A⁻¹, and dpotrf again gives
 * A⁻¹ = L'·L'ᵀ, whose row-major view is the upper factor U = L'ᵀ (A⁻¹ = UᵀU), the one torch's
 * cholesky(upper=True) returns (the factor is unique). */
#include <lapacke.h>
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/ops_cpu.h"
#include "cpu/ops_gptq.h"
#include "gptq_math.h"

#define DAMP_STEP 0.01
#define DAMP_LIMIT 1.0

/* The settings (dsv4_gptq_begin), then W and H's upper triangle must be finite. */
static int check_args(dsv4_gptq_args *a, dsv4_err *e)
{
    if (dsv4_gptq_begin(a, "gptq", e))
        return -1;
    for (int64_t i = 0; i < a->N * a->K; i++)
        if (!isfinite(a->W[i]))
            return dsv4_fail(e, "gptq: weight [%lld, %lld]: element [%lld, %lld] is not finite (%g)", (long long)a->N,
                             (long long)a->K, (long long)(i / a->K), (long long)(i % a->K), (double)a->W[i]);
    for (int64_t i = 0; i < a->K; i++)
        for (int64_t j = i; j < a->K; j++)
            if (!isfinite(a->H[i * a->K + j]))
                return dsv4_fail(e, "gptq: Hessian [%lld, %lld] of weight [%lld, %lld]: element [%lld, %lld] is not "
                                 "finite (%g)", (long long)a->K, (long long)a->K, (long long)a->N, (long long)a->K,
                                 (long long)i, (long long)j, (double)a->H[i * a->K + j]);
    return 0;
}

typedef struct diag_ix {
    float d;
    int64_t i;
} diag_ix;

/* diag descending, ties by column ascending: a stable descending argsort */
static int by_diag_desc(const void *x, const void *y)
{
    const diag_ix *p = x, *q = y;
    if (p->d != q->d)
        return p->d > q->d ? -1 : 1;
    return p->i < q->i ? -1 : p->i > q->i;
}

static void act_order(const dsv4_gptq_args *a, int64_t *perm, diag_ix *tmp)
{
    int64_t K = a->K;
    for (int64_t i = 0; i < K; i++) {
        tmp[i].d = a->H[i * K + i];
        tmp[i].i = i;
    }
    if (a->actorder != DSV4_ACTORDER_NONE)
        qsort(tmp, (size_t)K, sizeof *tmp, by_diag_desc);
    for (int64_t i = 0; i < K; i++)
        perm[i] = tmp[i].i;
}

/* A (row-major upper) = H in loop order with dead diagonals set to 1 and damp_frac·mean(diag)
 * added; then the chain of the file comment. Returns 0 when every factorization succeeded. */
static int factor(const float *H, const int64_t *perm, const uint8_t *dead, int64_t K, double frac, double *A)
{
    double mean = 0.0;
    for (int64_t i = 0; i < K; i++) {
        int64_t pi = perm[i];
        for (int64_t j = i; j < K; j++) {
            int64_t pj = perm[j], lo = pi < pj ? pi : pj, hi = pi < pj ? pj : pi;
            A[i * K + j] = H[lo * K + hi];
        }
        if (dead[i])
            A[i * K + i] = 1.0;
        mean += A[i * K + i];
    }
    double damp = frac * (mean / (double)K);
    for (int64_t i = 0; i < K; i++)
        A[i * K + i] += damp;
    if (LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)K, A, (lapack_int)K) != 0 ||
        LAPACKE_dpotri(LAPACK_COL_MAJOR, 'L', (lapack_int)K, A, (lapack_int)K) != 0 ||
        LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)K, A, (lapack_int)K) != 0)
        return -1;
    for (int64_t i = 0; i < K; i++) /* U in fp32 must be usable: a finite, positive diagonal */
        if (!((float)A[i * K + i] > 0.0f) || !isfinite((float)A[i * K + i]))
            return -1;
    return 0;
}

/* U into H's memory (H is no longer needed): the factor, or I for the round-to-nearest fallback. */
static void store_u(float *H, const double *A, int64_t K)
{
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < K; j++)
            H[i * K + j] = j < i ? 0.0f : A ? (float)A[i * K + j] : (float)(i == j);
}

/* Steps 3 and 4 of the contract: dead columns, then factorizations with rising damping. */
static int inverse_factor(dsv4_gptq_args *a, dsv4_gq_job *j, uint8_t *dead, dsv4_err *e)
{
    int64_t K = a->K;
    for (int64_t c = 0; c < K; c++) {
        dead[c] = a->H[j->perm[c] * K + j->perm[c]] == 0.0f;
        if (!dead[c])
            continue;
        a->dead++;
        for (int64_t r = 0; r < a->N; r++)
            j->Wp[r * K + c] = 0.0f;
    }
    double *A = calloc((size_t)(K * K), sizeof(double));
    if (!A)
        return dsv4_fail_rt(e, "gptq: out of memory for the fp64 Hessian [%lld, %lld]", (long long)K, (long long)K);
    for (int i = 0;; i++) {
        double frac = a->damp_frac + DAMP_STEP * i;
        if (i > 0 && frac > DAMP_LIMIT + 1e-9)
            break;
        a->attempts++;
        a->damp_used = frac; /* after a fallback: the last fraction tried */
        if (factor(a->H, j->perm, dead, K, frac, A) == 0) {
            store_u(a->H, A, K);
            free(A);
            return 0;
        }
    }
    free(A);
    a->rtn_fallback = 1;
    store_u(a->H, NULL, K);
    return 0;
}

static int run(dsv4_gptq_args *a, dsv4_gq_job *j, uint8_t *dead, dsv4_err *e)
{
    int64_t N = a->N, K = a->K;
    for (int64_t r = 0; r < N; r++)
        for (int64_t c = 0; c < K; c++)
            j->Wp[r * K + c] = a->W[r * K + j->perm[c]];
    if (!a->recompute) /* from the original values: NONE/STATIC in original order, GROUP permuted */
        dsv4_cpu_gptq_scales(j, a->actorder == DSV4_ACTORDER_GROUP ? j->Wp : a->W);
    if (inverse_factor(a, j, dead, e))
        return -1;
    dsv4_cpu_gptq_loop(j);
    double loss = 0.0;
    for (int64_t r = 0; r < N; r++)
        loss += j->rowloss[r];
    a->loss = loss / 2.0;
    if (!isfinite(a->loss))
        return dsv4_fail_rt(e, "gptq: weight [%lld, %lld]: the quantization loss is not finite (the Hessian's inverse "
                            "factor overflowed fp32)", (long long)N, (long long)K);
    for (int64_t r = 0; r < N; r++)
        for (int64_t c = 0; c < K; c++)
            a->W[r * K + j->perm[c]] = j->Wp[r * K + c];
    if (a->actorder == DSV4_ACTORDER_GROUP)
        for (int64_t c = 0; c < K; c++)
            a->g_idx[j->perm[c]] = (int32_t)(c / a->group);
    return 0;
}

int dsv4_cpu_gptq(dsv4_ops *o, dsv4_gptq_args *a, dsv4_err *e)
{
    if (check_args(a, e))
        return -1;
    int64_t N = a->N, K = a->K;
    dsv4_gq_job j = {.a = a, .N = N, .K = K, .ng = K / a->group, .threads = openblas_get_num_threads()};
    int64_t *perm = malloc((size_t)K * sizeof *perm);
    int32_t *colg = malloc((size_t)K * sizeof *colg);
    diag_ix *tmp = malloc((size_t)K * sizeof *tmp);
    uint8_t *dead = malloc((size_t)K);
    j.Wp = malloc((size_t)(N * K) * sizeof(float));
    j.sv = malloc((size_t)(N * j.ng) * sizeof(float));
    j.rowloss = calloc((size_t)N, sizeof(double));
    j.err = malloc((size_t)(N * a->block) * sizeof(float));
    int rc;
    if (!perm || !colg || !tmp || !dead || !j.Wp || !j.sv || !j.rowloss || !j.err) {
        rc = dsv4_fail_rt(e, "gptq: out of memory for weight [%lld, %lld]", (long long)N, (long long)K);
    } else {
        act_order(a, perm, tmp);
        for (int64_t c = 0; c < K; c++)
            colg[c] = (int32_t)((a->actorder == DSV4_ACTORDER_STATIC ? perm[c] : c) / a->group);
        j.perm = perm;
        j.colg = colg;
        j.U = a->H;
        rc = run(a, &j, dead, e);
    }
    free(perm);
    free(colg);
    free(tmp);
    free(dead);
    free(j.Wp);
    free(j.sv);
    free(j.rowloss);
    free(j.err);
    return rc;
}
