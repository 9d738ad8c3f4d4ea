/* Run-time loading of cuBLAS and cuSOLVER (kernels/cuda/cuda_libs.h): dlopen of the first file
 * found, dlsym of the functions the calibration ops call, and each backend's handles, created on
 * its stream the first time it runs a calibration op. */
#include "cuda_libs.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace dsv4cu {
namespace {

libs g_libs;
pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Opens the first of name.so.<ver>, name.so in $DSV4_CUDA_LIBDIR, on the loader's path, in
 * /usr/local/cuda/lib64; `at` receives the file opened or why none was. */
void *open_lib(const char *base, const char *ver, char *at, size_t atn)
{
    char cand[6][512];
    int n = 0;
    const char *dir = getenv("DSV4_CUDA_LIBDIR");
    if (dir && *dir) {
        snprintf(cand[n++], sizeof cand[0], "%s/%s.so.%s", dir, base, ver);
        snprintf(cand[n++], sizeof cand[0], "%s/%s.so", dir, base);
    }
    snprintf(cand[n++], sizeof cand[0], "%s.so.%s", base, ver);
    snprintf(cand[n++], sizeof cand[0], "%s.so", base);
    snprintf(cand[n++], sizeof cand[0], "/usr/local/cuda/lib64/%s.so.%s", base, ver);
    snprintf(cand[n++], sizeof cand[0], "/usr/local/cuda/lib64/%s.so", base);
    char last[256] = "";
    for (int i = 0; i < n; i++) {
        void *h = dlopen(cand[i], RTLD_NOW | RTLD_LOCAL);
        if (h) {
            snprintf(at, atn, "%s", cand[i]);
            return h;
        }
        const char *why = dlerror();
        snprintf(last, sizeof last, "%s", why ? why : "unknown error");
    }
    snprintf(at, atn, "%s.so.%s not found (tried $DSV4_CUDA_LIBDIR, the loader's path and /usr/local/cuda/lib64; "
             "last error: %s)", base, ver, last);
    return nullptr;
}

/* dlsym into a typed pointer; the first missing name goes to *miss. */
template <typename F> void sym(void *h, const char *name, F *fn, const char **miss)
{
    *fn = reinterpret_cast<F>(dlsym(h, name));
    if (!*fn && !*miss)
        *miss = name;
}

/* After the lookups: 1 when none was missing, else `at` says which (it held the file's name). */
int resolved(const char *miss, char *at, size_t atn)
{
    if (!miss)
        return 1;
    char file[300];
    snprintf(file, sizeof file, "%.299s", at);
    snprintf(at, atn, "%.299s lacks %.150s", file, miss);
    return 0;
}

void load(void)
{
    libs *L = &g_libs;
    const char *miss = nullptr;
    if (void *h = open_lib("libcublas", "13", L->blas_at, sizeof L->blas_at)) {
        sym(h, "cublasCreate_v2", &L->blasCreate, &miss);
        sym(h, "cublasSetStream_v2", &L->blasSetStream, &miss);
        sym(h, "cublasSgemm_v2", &L->Sgemm, &miss);
        sym(h, "cublasSsyrk_v2", &L->Ssyrk, &miss);
        sym(h, "cublasDestroy_v2", &L->blasDestroy, &miss);
        L->blas = resolved(miss, L->blas_at, sizeof L->blas_at); /* the library stays loaded either way */
    }
    miss = nullptr;
    if (void *h = open_lib("libcusolver", "12", L->solver_at, sizeof L->solver_at)) {
        sym(h, "cusolverDnCreate", &L->solverCreate, &miss);
        sym(h, "cusolverDnSetStream", &L->solverSetStream, &miss);
        sym(h, "cusolverDnDpotrf_bufferSize", &L->Dpotrf_bufferSize, &miss);
        sym(h, "cusolverDnDpotrf", &L->Dpotrf, &miss);
        sym(h, "cusolverDnDpotri_bufferSize", &L->Dpotri_bufferSize, &miss);
        sym(h, "cusolverDnDpotri", &L->Dpotri, &miss);
        sym(h, "cusolverDnDestroy", &L->solverDestroy, &miss);
        L->solver = resolved(miss, L->solver_at, sizeof L->solver_at);
    }
}

bool libs_disabled(void)
{
    const char *v = getenv("DSV4_NO_CUDA_LIBS");
    return v && *v && strcmp(v, "0") != 0;
}

} // namespace

const libs *cuda_libs(void)
{
    pthread_once(&g_once, load);
    return &g_libs;
}

calib *calib_get(dsv4_ops *o, dsv4_err *e)
{
    ctx *c = C(o);
    if (c->calib)
        return static_cast<calib *>(c->calib);
    calib *s = static_cast<calib *>(calloc(1, sizeof *s));
    if (!s) {
        dsv4_fail_rt(e, "out of memory creating the CUDA calibration state");
        return nullptr;
    }
    char why[700] = "";
    if (libs_disabled()) {
        snprintf(why, sizeof why, "DSV4_NO_CUDA_LIBS is set");
    } else {
        const libs *L = cuda_libs();
        if (L->blas) {
            cublasHandle_t h = nullptr;
            int st = L->blasCreate(&h);
            if (st == CUBLAS_STATUS_SUCCESS && (st = L->blasSetStream(h, c->st)) != CUBLAS_STATUS_SUCCESS)
                L->blasDestroy(h);
            if (st == CUBLAS_STATUS_SUCCESS) {
                s->blas = h;
            } else {
                snprintf(why, sizeof why, "cuBLAS handle creation failed with status %d (%.500s)", st, L->blas_at);
            }
        } else {
            snprintf(why, sizeof why, "%.600s", L->blas_at);
        }
        if (s->blas && L->solver) {
            cusolverDnHandle_t h = nullptr;
            int st = L->solverCreate(&h);
            if (st == CUSOLVER_STATUS_SUCCESS && (st = L->solverSetStream(h, c->st)) != CUSOLVER_STATUS_SUCCESS)
                L->solverDestroy(h);
            if (st == CUSOLVER_STATUS_SUCCESS) {
                s->solver = h;
            } else {
                snprintf(why, sizeof why, "cuSOLVER handle creation failed with status %d (%.500s)", st, L->solver_at);
            }
        } else if (s->blas) {
            snprintf(why, sizeof why, "%.600s", L->solver_at);
        }
        if (s->blas && s->solver)
            snprintf(s->path, sizeof s->path, "hess_acc: cublasSsyrk; gptq: cuSOLVER + cuBLAS (%.500s, %.500s)", L->blas_at,
                     L->solver_at);
        else if (s->blas)
            snprintf(s->path, sizeof s->path, "hess_acc: cublasSsyrk (%.500s); gptq: CPU op on host copies (%.600s)",
                     L->blas_at, why);
    }
    if (!s->blas)
        snprintf(s->path, sizeof s->path, "hess_acc: own SYRK kernel; gptq: CPU op on host copies (%.600s)", why);
    c->calib = s;
    return s;
}

void calib_release(ctx *c)
{
    calib *s = static_cast<calib *>(c->calib);
    if (!s)
        return;
    const libs *L = &g_libs; /* handles exist only when the libraries were loaded */
    if (s->solver)
        L->solverDestroy(s->solver);
    if (s->blas)
        L->blasDestroy(s->blas);
    dsv4_ops_release(s->cpu);
    free(s);
    c->calib = nullptr;
}

} // namespace dsv4cu

extern "C" const char *dsv4_cuda_gptq_path(dsv4_ops *o)
{
    if (!o || !o->name || strcmp(o->name, "cuda") != 0)
        return "cpu";
    dsv4_err e;
    dsv4cu::calib *s = dsv4cu::calib_get(o, &e);
    return s ? s->path : "unknown (the CUDA calibration state could not be created)";
}
