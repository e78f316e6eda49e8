/* Few-row products with large kernels, as FaceNet's Block8 has them at batch 1 (nine pixels):
   oneDNN's convolution primitive (its copy of the kernel, its blocked layout) against
   fm_gemm_rows_f32 reading the row-major kernel in place, each thread a contiguous share of the
   kernel's rows, partial sums added after a barrier (fmodel's streamedGEMM). Six blocks of three
   1×1 layers (38 MB of kernels with the 3-tap ones left out, so they do not stay in the cache
   between rounds, and 120 MB read between rounds besides); the contenders alternate round by
   round; medians per layer, GB/s of kernel read, and the ratio to oneDNN.

   On an AVX2 CPU a third contender, "prepacked", reads a copy of each kernel laid out ahead of
   time in fm_avx2_pack's 16-column strips over the whole depth (each thread its share of the
   strips, fm_avx2_packed_rows): what a kernel stored in that layout in the `.fmodel` would
   give these layers, which fmodel does not do (its files hold row-major kernels, read in place;
   in the model, the same layout as a packed copy gained about 1%: Benchmarks/HISTORY.md).

     gcc -O2 -fopenmp -ISources/CKernels/include Benchmarks/streamed_gemm.c Sources/CKernels/kernels_avx2.c -o /tmp/streamed_gemm -ldnnl -lm
     OMP_NUM_THREADS=2 /tmp/streamed_gemm [ROUNDS=40] */
#include "../Sources/CKernels/kernels.c"
#include "../Sources/CKernels/dnnl_conv.c"
#include "bench_util.h"
#include "../Sources/CKernels/kernels_internal.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { BLOCKS = 6, SHAPES = 3, ROWS = 9, MAX_ROUNDS = 200, WAYS = 3 };
static const char *const names[WAYS] = {"oneDNN", "streamed", "prepacked"};

/* y[ROWS×n] = x[ROWS×k] · w, w laid out as fm_avx2_pack's strips over the whole depth (strip c
   at strips + c·k), each thread multiplying its share of the strips. */
static void prepacked_product(const float *x, int k, int n, const float *strips, float *y) {
#pragma omp parallel
    {
        const int count = (n + 15) / 16, t = omp_get_thread_num(), team = omp_get_num_threads();
        const int c0 = count * t / team * 16, c1 = count * (t + 1) / team * 16 < n ? count * (t + 1) / team * 16 : n;
        const float *rows[ROWS];
        for (int r = 0; r < ROWS; r++) rows[r] = x + (size_t)r * k;
        if (c1 > c0) fm_avx2_packed_rows(rows, ROWS, k, strips + (size_t)c0 * k, c1 - c0, y + c0, n, 0);
    }
}
static const int inputs[SHAPES] = {1792, 1792, 384}, units[SHAPES] = {192, 192, 1792};

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 40;
    rounds = rounds < 1 ? 1 : rounds > MAX_ROUNDS ? MAX_ROUNDS : rounds;
    const int ways = fm_has_avx2() ? WAYS : 2;
    float *w[BLOCKS][SHAPES], *strips[BLOCKS][SHAPES];
    fm_conv *conv[BLOCKS][SHAPES];
    for (int b = 0; b < BLOCKS; b++)
        for (int s = 0; s < SHAPES; s++) {
            size_t count = (size_t)inputs[s] * units[s];
            w[b][s] = aligned_alloc(64, count * 4);
            for (size_t i = 0; i < count; i++) w[b][s][i] = (float)((i * 2654435761u + b) % 1000) / 1000.0f - 0.5f;
            fm_conv_params p = {1, 3, 3, inputs[s], 3, 3, units[s], 1, 1, 1, 1, 1, 1, 0, 0, 1.0f, 0, FM_ACT_LINEAR, 0, FM_SRC_F32};
            char err[256];
            conv[b][s] = fm_conv_create(&p, w[b][s], NULL, err, sizeof err);
            if (!conv[b][s] || fm_conv_load_weights(conv[b][s])) { fprintf(stderr, "oneDNN: %s\n", err); return 1; }
            strips[b][s] = NULL;
            if (ways == WAYS) {
                strips[b][s] = aligned_alloc(64, (size_t)inputs[s] * round16(units[s]) * 4);
                fm_avx2_pack(w[b][s], units[s], inputs[s], units[s], strips[b][s]);
            }
        }
    size_t evict = (size_t)120 << 20;
    float *e = aligned_alloc(64, evict), *x = aligned_alloc(64, ROWS * 1792 * 4);
    float *y = aligned_alloc(64, ROWS * 1792 * 4), *partial = aligned_alloc(64, (size_t)omp_get_max_threads() * ROWS * 1792 * 4);
    memset(e, 1, evict);
    size_t space = 64;  /* the largest oneDNN workspace (scratchpads) */
    for (int b = 0; b < BLOCKS; b++)
        for (int s = 0; s < SHAPES; s++) space = fm_conv_workspace_size(conv[b][s]) > space ? fm_conv_workspace_size(conv[b][s]) : space;
    void *workspace = aligned_alloc(64, (space + 63) / 64 * 64);
    for (int i = 0; i < ROWS * 1792; i++) x[i] = 0.01f * (i % 37);
    static double t[WAYS][SHAPES][MAX_ROUNDS];
    volatile float sink = 0;
    for (int r = 0; r < rounds; r++)
        for (int way = 0; way < ways; way++) {
            for (size_t i = 0; i < evict / 4; i += 16) sink += e[i];
            for (int s = 0; s < SHAPES; s++) t[way][s][r] = 0;
            for (int b = 0; b < BLOCKS; b++)
                for (int s = 0; s < SHAPES; s++) {
                    double t0 = now();
                    if (way == 0) fm_conv_run(conv[b][s], x, y, workspace);
                    else if (way == 1) streamed_product(x, ROWS, inputs[s], units[s], w[b][s], y, partial);
                    else prepacked_product(x, inputs[s], units[s], strips[b][s], y);
                    t[way][s][r] += now() - t0;
                }
        }
    printf("%d rows, %d threads, medians of %d rounds (%s for oneDNN)\n", ROWS, omp_get_max_threads(), rounds,
           fm_conv_implementation(conv[0][0]));
    for (int s = 0; s < SHAPES; s++) {
        const double mb = 4.0 * inputs[s] * units[s] / 1e6;
        double ms[WAYS];
        printf("  1x1 %4d->%-4d", inputs[s], units[s]);
        for (int way = 0; way < ways; way++) {
            qsort(t[way][s], rounds, sizeof(double), ascending);
            ms[way] = t[way][s][rounds / 2] / BLOCKS * 1e3;
            printf("  %s %.3f ms (%4.1f GB/s", names[way], ms[way], mb / ms[way]);
            printf(way ? ", %.2fx)" : ")", ms[way] / ms[0]);
        }
        printf("\n");
    }
    return 0;
}
