#include "fm_kernels.h"
#include <math.h>
#include <immintrin.h>

static int has_avx512(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    return cached;
}

__attribute__((target("avx512f,avx512bw")))
static void min_max_avx512(const float *x, size_t n, float *lo, float *hi) {
    __m512 vlo = _mm512_set1_ps(*lo), vhi = _mm512_set1_ps(*hi);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        vlo = _mm512_min_ps(vlo, v);
        vhi = _mm512_max_ps(vhi, v);
    }
    float a = _mm512_reduce_min_ps(vlo), b = _mm512_reduce_max_ps(vhi);
    for (; i < n; i++) { a = x[i] < a ? x[i] : a; b = x[i] > b ? x[i] : b; }
    *lo = a; *hi = b;
}

__attribute__((target("avx512f,avx512bw")))
static void quantize_avx512(const float *x, size_t n, float inverse, float zero, float top, uint8_t *q) {
    const __m512 vi = _mm512_set1_ps(inverse), vz = _mm512_set1_ps(zero), vt = _mm512_set1_ps(top), v0 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), vi, v0);
        v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(v, vz), v0), vt);
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
    }
    for (; i < n; i++) {
        float v = rintf(x[i] * inverse) + zero;
        v = v < 0 ? 0 : (v > top ? top : v);
        q[i] = (uint8_t)v;
    }
}

void fm_min_max(const float *x, size_t n, float *lo, float *hi) {
    if (has_avx512()) { min_max_avx512(x, n, lo, hi); return; }
    float a = *lo, b = *hi;
    for (size_t i = 0; i < n; i++) { a = x[i] < a ? x[i] : a; b = x[i] > b ? x[i] : b; }
    *lo = a; *hi = b;
}

void fm_quantize_u8(const float *x, size_t n, float inverse, float zero, float top, uint8_t *q) {
    if (has_avx512()) { quantize_avx512(x, n, inverse, zero, top, q); return; }
    for (size_t i = 0; i < n; i++) {
        float v = rintf(x[i] * inverse) + zero;
        v = v < 0 ? 0 : (v > top ? top : v);
        q[i] = (uint8_t)v;
    }
}
