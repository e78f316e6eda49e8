/* What the C benchmarks share: a clock, a sort order for medians, and fmodel's streamed
   product as streamedGEMM runs it (include after Sources/CKernels/kernels.c, with -fopenmp). */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H
#include <omp.h>
#include <stddef.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int ascending(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* y[m×n] = x[m×k] · w[k×n] as streamedGEMM does it: each thread a contiguous share of the
   kernel's rows (fm_gemm_rows_f32), partial sums (in `partial`, (threads − 1)·m·n floats) added
   after a barrier. */
static void streamed_product(const float *x, int m, int k, int n, const float *w, float *y, float *partial) {
#pragma omp parallel
    {
        int t = omp_get_thread_num(), team = omp_get_num_threads();
        size_t k0 = (size_t)k * t / team, k1 = (size_t)k * (t + 1) / team, count = (size_t)m * n;
        fm_gemm_rows_f32(x + k0, k, m, k1 - k0, w + k0 * n, n, t == 0 ? y : partial + (t - 1) * count);
#pragma omp barrier
        for (size_t i = count * t / team; i < count * (t + 1) / team; i++)
            for (int p = 0; p < team - 1; p++) y[i] += partial[p * count + i];
    }
}
#endif
