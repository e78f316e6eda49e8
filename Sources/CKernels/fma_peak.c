/* The machine's float32 multiply-add ceiling, for the benchmarks: independent FMA chains in
   registers, no memory traffic, on the widest vectors the CPU has (AVX-512, else AVX2 + FMA).
   What no convolution can beat in nominal FLOPs without doing fewer multiplications
   (Winograd). */
#include "fm_kernels.h"
#include <immintrin.h>

/* FM_FMA_CHAINS (twelve) independent accumulators: enough to cover the FMA latency (4 cycles) on two pipes.
   The same loop twice, on each width's registers: one body on 16-float GCC vectors, inlined
   into both, made 24 AVX2 chains for 16 ymm registers, and the compiler spilled them. */
__attribute__((target("avx512f")))
static float chains_avx512(long iterations) {
    __m512 acc[FM_FMA_CHAINS];
    const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < FM_FMA_CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < iterations; k++) {
#pragma GCC unroll 12
        for (int i = 0; i < FM_FMA_CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    }
    float sum = 0;
    for (int i = 0; i < FM_FMA_CHAINS; i++) sum += _mm512_reduce_add_ps(acc[i]);
    return sum;
}

__attribute__((target("avx2,fma")))
static float chains_avx2(long iterations) {
    __m256 acc[FM_FMA_CHAINS];
    const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < FM_FMA_CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long k = 0; k < iterations; k++) {
#pragma GCC unroll 12
        for (int i = 0; i < FM_FMA_CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    }
    float lanes[8], sum = 0;
    for (int i = 0; i < FM_FMA_CHAINS; i++) {
        _mm256_storeu_ps(lanes, acc[i]);
        for (int j = 0; j < 8; j++) sum += lanes[j];
    }
    return sum;
}

int fm_fma_lanes(void) {
    if (__builtin_cpu_supports("avx512f")) return 16;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 8;
    return 0;
}

float fm_fma_chains(long iterations) {
    switch (fm_fma_lanes()) {
    case 16: return chains_avx512(iterations);
    case 8: return chains_avx2(iterations);
    default: return 0;
    }
}
