/* How fast the two cores read a working set of a given size, over and over (best of 5, GB/s):
   what the cache keeps and what streams from memory. The full multi-task model reads 158 MB of
   weights per image at batch 1.

     gcc -O2 -mavx2 -fopenmp Benchmarks/read_bandwidth.c -o /tmp/read_bandwidth   (AVX2: runs on
                                                   the AVX-512 machine and the AVX2-only Zen 3)
     /tmp/read_bandwidth 8 59 100 150 260      # MB
*/
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    for (int arg = 1; arg < argc; arg++) {
        size_t mb = strtoul(argv[arg], NULL, 10), n = mb * 1024 * 1024 / 4 / 64 * 64;
        float *a = aligned_alloc(64, n * 4);
        if (!a) return 1;
        memset(a, 0, n * 4);
        double best = 0;
        float sink = 0;
        for (int rep = 0; rep < 6; rep++) {
            double t = now();
            float total = 0;
#pragma omp parallel reduction(+ : total)
            {
                size_t id = omp_get_thread_num(), nt = omp_get_num_threads(), lo = n * id / nt / 64 * 64, hi = n * (id + 1) / nt / 64 * 64;
                __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
                for (size_t i = lo; i < hi; i += 32) {
                    s0 = _mm256_add_ps(s0, _mm256_load_ps(a + i));
                    s1 = _mm256_add_ps(s1, _mm256_load_ps(a + i + 8));
                    s2 = _mm256_add_ps(s2, _mm256_load_ps(a + i + 16));
                    s3 = _mm256_add_ps(s3, _mm256_load_ps(a + i + 24));
                }
                float lanes[8];
                _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
                for (int l = 0; l < 8; l++) total += lanes[l];
            }
            double rate = n * 4 / (now() - t) / 1e9;
            if (rep > 0 && rate > best) best = rate;  /* the first pass brings the pages in */
            sink += total;
        }
        printf("%6zu MB: %5.1f GB/s\n", mb, best + sink * 0);
        free(a);
    }
    return 0;
}
