/* The GEMM path's product (fm_gemm_f32 split between the threads as `gemm` in
   Sources/FModelRuntime/Kernels/GEMM.swift does: by rows from 192 rows, else by columns)
   against oneDNN's dnnl_sgemm, on the full model's convolutions at batch 1 as im2col products.
   First the cost of each one's first call in this fresh process (dnnl_sgemm compiles its
   kernels then), then each shape with 16 copies of the kernel taken in turn, so that none is
   in L2 when it is read; the two alternate; medians of 7, GFLOP/s, ratio fm_gemm_f32/sgemm.

     gcc -O2 -fopenmp -ISources/CKernels/include Benchmarks/gemm_path.c Sources/CKernels/kernels_avx2.c -o /tmp/gemm_path -ldnnl -lm
     OMP_NUM_THREADS=2 /tmp/gemm_path */
#include "../Sources/CKernels/kernels.c"
#include "bench_util.h"
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>

#define COPIES 16
#define ROUNDS 7
#define COLUMN_SPLIT_ROWS 192

static void gemm_path(const float *a, int m, int k, const float *b, int n, float *c) {
#pragma omp parallel
    {
        int t = omp_get_thread_num(), team = omp_get_num_threads();
        if (m < COLUMN_SPLIT_ROWS) {
            int blocks = (n + 31) / 32, c0 = blocks * t / team * 32, c1 = blocks * (t + 1) / team * 32;
            if (c1 > n) c1 = n;
            if (c0 < c1) fm_gemm_f32(a, k, m, k, b, n, c, c0, c1);
        } else {
            int blocks = (m + 11) / 12, r0 = blocks * t / team * 12, r1 = blocks * (t + 1) / team * 12;
            if (r1 > m) r1 = m;
            if (r0 < r1) fm_gemm_f32(a + (size_t)r0 * k, k, r1 - r0, k, b, n, c + (size_t)r0 * n, 0, n);
        }
    }
}

static void sgemm(const float *a, int m, int k, const float *b, int n, float *c) {
    dnnl_sgemm('N', 'N', m, n, k, 1, a, k, b, n, 0, c, n);
}

static float *randoms(size_t count) {
    float *x = malloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++) x[i] = (rand() % 2001) / 1000.0f - 1;
    return x;
}

int main(void) {
    /* rows (output pixels at batch 1), depth (kh·kw·cin), columns (cout) */
    static const int shapes[][3] = {
        {6241, 27, 32},     /* Conv2d_1a */
        {5929, 288, 32},    /* Conv2d_2a */
        {5929, 288, 64},    /* Conv2d_2b */
        {1444, 64, 80},     /* Conv2d_3b */
        {1296, 720, 192},   /* Conv2d_4a */
        {289, 1728, 256},   /* Conv2d_4b */
        {289, 256, 32},     /* Block35 1x1 */
        {289, 96, 256},     /* Block35 up */
        {64, 2304, 384},    /* Mixed_6a 3x3/2 */
        {64, 896, 128},     /* Block17 1x1 */
        {64, 896, 128},     /* Block17 1x7 */
        {64, 256, 896},     /* Block17 up */
    };
    const int count = sizeof shapes / sizeof shapes[0];
    float *a = randoms(64 * 64), *b = randoms(64 * 64), *c = randoms(64 * 64);
    double t = now();
    gemm_path(a, 64, 64, b, 64, c);
    printf("first call, 64^3: fm_gemm_f32 %.2f ms (the OpenMP team starting)", (now() - t) * 1e3);
    t = now();
    sgemm(a, 64, 64, b, 64, c);
    printf(", dnnl_sgemm %.2f ms\n", (now() - t) * 1e3);
    free(a), free(b), free(c);
    double flops = 0, total[2] = {0, 0};
    for (int s = 0; s < count; s++) {
        int m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        float *x = randoms((size_t)m * k), *y = malloc((size_t)m * n * sizeof(float)), *w[COPIES];
        for (int i = 0; i < COPIES; i++) w[i] = randoms((size_t)k * n);
        double times[2][ROUNDS];
        for (int r = 0; r < ROUNDS; r++)
            for (int way = 0; way < 2; way++) {
                double start = now();
                for (int i = 0; i < COPIES; i++) (way ? sgemm : gemm_path)(x, m, k, w[i], n, y);
                times[way][r] = (now() - start) / COPIES;
            }
        qsort(times[0], ROUNDS, sizeof(double), ascending);
        qsort(times[1], ROUNDS, sizeof(double), ascending);
        double f = 2.0 * m * n * k, ours = times[0][ROUNDS / 2], theirs = times[1][ROUNDS / 2];
        printf("%5d x %4d x %4d  fm_gemm_f32 %7.3f ms %5.0f GFLOP/s  dnnl_sgemm %7.3f ms %5.0f GFLOP/s  ratio %.2f\n", m, k, n,
               ours * 1e3, f / ours / 1e9, theirs * 1e3, f / theirs / 1e9, ours / theirs);
        flops += f, total[0] += ours, total[1] += theirs;
        for (int i = 0; i < COPIES; i++) free(w[i]);
        free(x), free(y);
    }
    printf("all: fm_gemm_f32 %.2f ms (%.0f GFLOP/s), dnnl_sgemm %.2f ms (%.0f GFLOP/s), ratio %.2f\n", total[0] * 1e3,
           flops / total[0] / 1e9, total[1] * 1e3, flops / total[1] / 1e9, total[0] / total[1]);
    return 0;
}
