#ifndef FMODEL_KERNELS_AVX2_H
#define FMODEL_KERNELS_AVX2_H
/* Inline AVX2 pieces that kernels_avx2.c and winograd.c share. Not part of the module's interface. */
#include "fm_kernels.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

/* Lanes [0, left) set (all eight from 8 on): the mask of a row's last, partial vector. */
AVX2 static inline __m256i lanes(size_t left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left > 8 ? 8 : (int)left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The epilogue's activation (FM_EPI_*; linear and any other code leave v as it is). */
AVX2 static inline __m256 activate(__m256 v, int activation, float alpha) {
    const __m256 zero = _mm256_setzero_ps();
    switch (activation) {
    case FM_EPI_RELU: return _mm256_max_ps(v, zero);
    case FM_EPI_RELU6: return _mm256_min_ps(_mm256_max_ps(v, zero), _mm256_set1_ps(6));
    case FM_EPI_LEAKY: return _mm256_blendv_ps(v, _mm256_mul_ps(v, _mm256_set1_ps(alpha)), _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
    default: return v;
    }
}

/* The epilogue without a residual, act(scale · (v + bias)), as fm_epilogue computes it: what
   Winograd's output transform and the line windows' last store apply in registers. */
AVX2 static inline __m256 finish(__m256 v, __m256 bias, float scale, int activation, float alpha) {
    return activate(_mm256_mul_ps(_mm256_add_ps(v, bias), _mm256_set1_ps(scale)), activation, alpha);
}
#endif
