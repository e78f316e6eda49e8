/* A dense layer with a large kernel on a few dozen rows (the multi-task model's fc1, 1792 → 8192,
   at batch 8 to 64): oneDNN's dnnl_sgemm (which packs the kernel on every call) against the two
   products that read fmodel's row-major kernel in place, on both threads: fm_gemm_rows_f32
   (each thread a share of the kernel's rows, partial sums added after a barrier: streamedGEMM)
   and fm_gemm_columns_f32 (each thread a share of the columns, in panels: columnGEMM), and the
   product of a copy packed once (fm_gemm_packed_columns_f32 on fm_pack_kernel's layout, each
   thread a share of the columns: packedColumnGEMM, AVX2). Six copies of the kernel (353 MB,
   more than the L3) taken in turn, so that none is in the cache when it is read; the four ways
   alternate; medians, GFLOP/s, ratios to sgemm.

     gcc -O2 -fopenmp -ISources/CKernels/include Benchmarks/dense_rows.c Sources/CKernels/kernels_avx2.c -o /tmp/dense_rows -ldnnl -lm
     OMP_NUM_THREADS=2 /tmp/dense_rows [KxN] [ROWS...]   (default 1792x8192, rows 8 16 24 32 48 64;
                                                     fc2 is 8192x256) */
#include "../Sources/CKernels/kernels.c"
#include "bench_util.h"
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { COPIES = 6, ROUNDS = 15 };
static int K = 1792, N = 8192;

/* The packed copy of each kernel copy. */
static float *packed[COPIES];

static void packed_split(const float *x, int m, const float *pk, float *y) {
#pragma omp parallel
    {
        int t = omp_get_thread_num(), team = omp_get_num_threads();
        size_t blocks = N / 16, c0 = blocks * t / team * 16, c1 = blocks * (t + 1) / team * 16;
        fm_gemm_packed_columns_f32(x, K, m, K, pk, N, y, c0, c1);
    }
}

static void columns_split(const float *x, int m, const float *w, float *y) {
#pragma omp parallel
    {
        int t = omp_get_thread_num(), team = omp_get_num_threads();
        size_t blocks = N / 16, c0 = blocks * t / team * 16, c1 = blocks * (t + 1) / team * 16;
        fm_gemm_columns_f32(x, K, m, K, w, N, y, c0, c1);
    }
}

int main(int argc, char **argv) {
    int defaults[] = {8, 16, 24, 32, 48, 64}, first = 1;
    if (argc > 1 && strchr(argv[1], 'x')) {
        if (sscanf(argv[1], "%dx%d", &K, &N) != 2 || K < 1 || N < 16 || N % 16) { fprintf(stderr, "KxN, N a multiple of 16\n"); return 2; }
        first = 2;
    }
    int count = argc > first ? argc - first : 6;
    float *w[COPIES];
    for (int c = 0; c < COPIES; c++) {
        w[c] = aligned_alloc(64, (size_t)K * N * 4);
        for (size_t i = 0; i < (size_t)K * N; i++) w[c][i] = (float)((i * 2654435761u + c) % 1000) / 1000.0f - 0.5f;
        packed[c] = aligned_alloc(64, fm_packed_floats(K, N) * 4);
        fm_pack_kernel(w[c], K, N, packed[c]);
    }
    float *x = aligned_alloc(64, 64 * K * 4), *y[4], *partial = aligned_alloc(64, (size_t)omp_get_max_threads() * 64 * N * 4);
    for (int v = 0; v < 4; v++) y[v] = aligned_alloc(64, (size_t)64 * N * 4);
    for (int i = 0; i < 64 * K; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    printf("%d × %d kernel, %d threads, medians of %d rounds (ms, GFLOP/s, ratio to dnnl_sgemm)\n", K, N, omp_get_max_threads(), ROUNDS);
    for (int a = 0; a < count; a++) {
        int m = argc > first ? atoi(argv[a + first]) : defaults[a];
        if (m < 1 || m > 64) { fprintf(stderr, "rows: 1 to 64\n"); return 2; }
        /* The four on one copy first: the largest difference to sgemm's product. */
        dnnl_sgemm('N', 'N', m, N, K, 1, x, K, w[0], N, 0, y[0], N);
        streamed_product(x, m, K, N, w[0], y[1], partial);
        columns_split(x, m, w[0], y[2]);
        packed_split(x, m, packed[0], y[3]);
        double most = 0;
        for (size_t i = 0; i < (size_t)m * N; i++) most = fmax(most, fmax(fabs(y[1][i] - y[0][i]), fmax(fabs(y[2][i] - y[0][i]), fabs(y[3][i] - y[0][i]))));
        static double t[4][ROUNDS];
        for (int r = 0, turn = 0; r < ROUNDS; r++)
            for (int v = 0; v < 4; v++, turn++) {
                const float *ww = w[turn % COPIES], *pk = packed[turn % COPIES];
                double t0 = now();
                if (v == 0) dnnl_sgemm('N', 'N', m, N, K, 1, x, K, ww, N, 0, y[0], N);
                else if (v == 1) streamed_product(x, m, K, N, ww, y[1], partial);
                else if (v == 2) columns_split(x, m, ww, y[2]);
                else packed_split(x, m, pk, y[3]);
                t[v][r] = now() - t0;
            }
        double ms[4];
        for (int v = 0; v < 4; v++) {
            qsort(t[v], ROUNDS, sizeof(double), ascending);
            ms[v] = t[v][ROUNDS / 2] * 1e3;
        }
        double flop = 2.0 * m * K * N;
        printf("  %2d rows  dnnl_sgemm %.2f (%3.0f)  rows split %.2f (%3.0f, %.2f)  columns split %.2f (%3.0f, %.2f)  packed copy %.2f (%3.0f, %.2f)  max |diff| %.1g\n",
               m, ms[0], flop / ms[0] / 1e6, ms[1], flop / ms[1] / 1e6, ms[1] / ms[0], ms[2], flop / ms[2] / 1e6, ms[2] / ms[0], ms[3], flop / ms[3] / 1e6, ms[3] / ms[0], most);
    }
    return 0;
}
