/* The runtime's own kernels in AVX2 + FMA, for CPUs without AVX-512 (AMD's Zen 3, Intel before
   Skylake-SP): the same loops as kernels.c's AVX-512 ones, 8 floats a vector, masked loads and
   stores for column tails. Without them those CPUs ran the portable loops: the multi-task
   model took 166 ms at batch 1 on a 2-core Zen 3 (`fmodel bench --profile`), fc1's kernel read
   one float at a time. */
#include "fm_kernels.h"
#include "kernels_avx2.h"
#include "kernels_internal.h"
#include <math.h>

AVX2 static inline float reduce_min(__m256 v) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_min_ss(m, _mm_shuffle_ps(m, m, 1)));
}

AVX2 static inline float reduce_max(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}

AVX2 void fm_avx2_min_max(const float *x, size_t n, float *lo, float *hi) {
    __m256 vlo = _mm256_set1_ps(*lo), vhi = _mm256_set1_ps(*hi);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        vlo = _mm256_min_ps(vlo, v);
        vhi = _mm256_max_ps(vhi, v);
    }
    *lo = reduce_min(vlo);
    *hi = reduce_max(vhi);
    fm_min_max_scalar(x + i, n - i, lo, hi);
}

/* Eight rounded floats, already clamped to a byte's range, as 32-bit integers. */
AVX2 static inline __m256i rounded(__m256 v) { return _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }

AVX2 void fm_avx2_quantize_u8(const float *x, size_t n, float inverse, float zero, float top, uint8_t *q) {
    const __m256 vi = _mm256_set1_ps(inverse), vz = _mm256_set1_ps(zero), vt = _mm256_set1_ps(top), v0 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i r = rounded(_mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, vz), v0), vt));
        __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        _mm_storel_epi64((__m128i *)(q + i), _mm_packus_epi16(w, w));
    }
    fm_quantize_u8_scalar(x + i, n - i, inverse, zero, top, q + i);
}

AVX2 void fm_avx2_quantize_s8(const float *x, size_t n, float inverse, int8_t *q) {
    const __m256 vi = _mm256_set1_ps(inverse), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i r = rounded(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi), lo), hi));
        __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        _mm_storel_epi64((__m128i *)(q + i), _mm_packs_epi16(w, w));
    }
    fm_quantize_s8_scalar(x + i, n - i, inverse, q + i);
}

AVX2 void fm_avx2_epilogue(float *y, size_t rows, size_t channels, size_t stride, const void *src, size_t src_stride,
                           const float *column_scale, const float *bias, float scale, const float *residual, int activation,
                           float alpha, float range[2]) {
    const __m256 vs = _mm256_set1_ps(scale);
    __m256 lo = _mm256_set1_ps(INFINITY), hi = _mm256_set1_ps(-INFINITY);
    float slo = INFINITY, shi = -INFINITY;
    for (size_t r = 0; r < rows; r++) {
        float *row = y + r * stride;
        const float *in = (const float *)src + r * src_stride;  /* int32 with column_scale */
        const float *res = residual ? residual + r * channels : NULL;
        size_t c = 0;
        for (; c + 8 <= channels; c += 8) {
            __m256 v = column_scale ? _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(in + c))),
                                                    _mm256_loadu_ps(column_scale + c))
                                    : _mm256_loadu_ps(in + c);
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + c));
            v = _mm256_mul_ps(v, vs);
            if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(res + c));
            v = activate(v, activation, alpha);
            _mm256_storeu_ps(row + c, v);
            if (range) { lo = _mm256_min_ps(v, lo); hi = _mm256_max_ps(v, hi); }  /* NaN in v: lo/hi kept */
        }
        fm_epilogue_row_scalar(row, in, c, channels, column_scale, bias, scale, res, activation, alpha, &slo, &shi);
    }
    if (range) {
        float a = reduce_min(lo), b = reduce_max(hi);
        range[0] = a < slo ? a : slo;
        range[1] = b > shi ? b : shi;
    }
}

/* Eight int8 weights as floats. */
AVX2 static inline __m256 weights8(const int8_t *w) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)w))); }

/* y[c, c + 8J) of the int8 GEMV over rows [i0, i1): J accumulators of 8 floats (J a constant where
   it is inlined, so that they stay in registers), starting from zero at the first row or from
   the sums y holds, and scaled into y after the last. `ahead`: bytes of the row 16 on to
   prefetch (the first pass over a piece of the rows fetches the piece's whole width). */
AVX2 __attribute__((always_inline)) static inline void gemv_s8_block(const int J, const float *a, size_t i0, size_t i1, size_t k,
                                                                     size_t n, const int8_t *w, const float *w_scale, float *y,
                                                                     size_t ahead) {
    __m256 acc[12];
    for (int j = 0; j < J; j++) acc[j] = i0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(y + 8 * j);
    for (size_t i = i0; i < i1; i++) {
        const __m256 ai = _mm256_set1_ps(a[i]);
        const int8_t *row = w + i * n;
        if (i + 16 < k)
            for (size_t l = 0; l < ahead; l += 64) _mm_prefetch((const char *)(row + 16 * n + l), _MM_HINT_T0);
        for (int j = 0; j < J; j++) acc[j] = _mm256_fmadd_ps(ai, weights8(row + 8 * j), acc[j]);
    }
    for (int j = 0; j < J; j++) _mm256_storeu_ps(y + 8 * j, i1 == k ? _mm256_mul_ps(acc[j], _mm256_loadu_ps(w_scale + 8 * j)) : acc[j]);
}

AVX2 void fm_avx2_gemv_s8(const float *a, size_t k, size_t n, const int8_t *w, const float *w_scale, float *y) {
    /* Pieces of 16 KB of the kernel's rows, all the columns' passes over each while it is in L1:
       passes of 96 columns, then 64, 32, 16 and 8 (one vector at a time, each pass over the rows
       waited on its one accumulator, four cycles an FMA, and a 256-column block's last 64
       columns took longer than its first 192). */
    const size_t vectors = n / 8 * 8, piece = n >= 1024 ? 16 : 16384 / (n ? n : 1);
    if (k == 0) { /* no rows (a thread's empty share of the depth): the sums are 0 */
        for (size_t c = 0; c < n; c++) y[c] = 0;
        return;
    }
    for (size_t i0 = 0; i0 < k; i0 += piece) {
        const size_t i1 = i0 + piece < k ? i0 + piece : k;
        size_t c = 0, ahead = n;
        for (; c + 96 <= vectors; c += 96, ahead = 0) gemv_s8_block(12, a, i0, i1, k, n, w + c, w_scale + c, y + c, ahead);
        if (c + 64 <= vectors) { gemv_s8_block(8, a, i0, i1, k, n, w + c, w_scale + c, y + c, ahead); c += 64; ahead = 0; }
        if (c + 32 <= vectors) { gemv_s8_block(4, a, i0, i1, k, n, w + c, w_scale + c, y + c, ahead); c += 32; ahead = 0; }
        if (c + 16 <= vectors) { gemv_s8_block(2, a, i0, i1, k, n, w + c, w_scale + c, y + c, ahead); c += 16; ahead = 0; }
        if (c + 8 <= vectors) gemv_s8_block(1, a, i0, i1, k, n, w + c, w_scale + c, y + c, ahead);
    }
    fm_gemv_s8_scalar(a, k, n, w, w_scale, vectors, y);
}

AVX2 void fm_avx2_window_max(float *out, const float *x, size_t n, size_t row_stride, size_t rows, size_t cols) {
    size_t ch = 0;
    /* Whole vectors with plain loads (masked ones are slower on Zen 3), then the masked tail. */
    for (; ch + 8 <= n; ch += 8) {
        __m256 v = _mm256_loadu_ps(x + ch);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++) v = _mm256_max_ps(v, _mm256_loadu_ps(x + i * row_stride + j * n + ch));
        _mm256_storeu_ps(out + ch, v);
    }
    for (; ch < n; ch += 8) {
        const __m256i m = lanes(n - ch);
        __m256 v = _mm256_maskload_ps(x + ch, m);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++) v = _mm256_max_ps(v, _mm256_maskload_ps(x + i * row_stride + j * n + ch, m));
        _mm256_maskstore_ps(out + ch, m, v);
    }
}

/* A register block's accumulators, R rows by 16 columns of y (rows n apart; m0 and m1 mask the
   two vectors of a partial block): zero, or what y holds (`accumulate`: a later piece of the
   depth); and their store. */
AVX2 __attribute__((always_inline)) static inline void load_sums(const int R, const int masked, __m256 acc[][2], const float *y,
                                                                 size_t n, __m256i m0, __m256i m1, int accumulate) {
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        if (!accumulate) {
            acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        } else {
            acc[r][0] = masked ? _mm256_maskload_ps(y + r * n, m0) : _mm256_loadu_ps(y + r * n);
            acc[r][1] = masked ? _mm256_maskload_ps(y + r * n + 8, m1) : _mm256_loadu_ps(y + r * n + 8);
        }
    }
}

AVX2 __attribute__((always_inline)) static inline void store_sums(const int R, const int masked, __m256 acc[][2], float *y, size_t n,
                                                                  __m256i m0, __m256i m1) {
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        if (masked) {
            _mm256_maskstore_ps(y + r * n, m0, acc[r][0]);
            _mm256_maskstore_ps(y + r * n + 8, m1, acc[r][1]);
        } else {
            _mm256_storeu_ps(y + r * n, acc[r][0]);
            _mm256_storeu_ps(y + r * n + 8, acc[r][1]);
        }
    }
}

/* The register block: R (at most 6) rows by 16 columns of accumulators (12 of the 16 ymm
   registers), through kernel rows [k0, k0 + kb). `masked`: the last, partial block of columns
   (a constant where it is inlined, so the full blocks use plain loads). */
#define AVX2_ROWS 6
AVX2 __attribute__((always_inline)) static inline void block(const int R, const int masked, const float *x, size_t ldx, size_t k0,
                                                             size_t kb, const float *w, size_t n, size_t c, size_t width, float *y,
                                                             size_t ahead) {
    const __m256i m0 = masked ? lanes(width - c) : _mm256_set1_epi32(-1);
    const __m256i m1 = masked ? lanes(width - c > 8 ? width - c - 8 : 0) : _mm256_set1_epi32(-1);
    __m256 acc[AVX2_ROWS][2];
    load_sums(R, masked, acc, y + c, n, m0, m1, k0 > 0);
    for (size_t i = k0; i < k0 + kb; i++) {
        const float *wi = w + i * n + c;
        const __m256 w0 = masked ? _mm256_maskload_ps(wi, m0) : _mm256_loadu_ps(wi);
        const __m256 w1 = masked ? _mm256_maskload_ps(wi + 8, m1) : _mm256_loadu_ps(wi + 8);
        if (ahead) _mm_prefetch((const char *)(wi + ahead * n), _MM_HINT_T1);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const __m256 a = _mm256_broadcast_ss(x + r * ldx + i);
            acc[r][0] = _mm256_fmadd_ps(a, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(a, w1, acc[r][1]);
        }
    }
    store_sums(R, masked, acc, y + c, n, m0, m1);
}

AVX2 __attribute__((always_inline)) static inline void rows_block(const int R, const float *x, size_t ldx, size_t k0, size_t kb,
                                                                  const float *w, size_t n, size_t width, float *y, size_t ahead) {
    size_t c = 0;
    for (; c + 16 <= width; c += 16) block(R, 0, x, ldx, k0, kb, w, n, c, width, y, ahead);
    if (c < width) block(R, 1, x, ldx, k0, kb, w, n, c, width, y, ahead);
}

AVX2 void fm_avx2_rows_blocks(const float *x, size_t ldx, size_t m, size_t k, size_t k0, size_t kb, const float *w, size_t n,
                              size_t width, float *y, size_t ahead) {
    for (size_t r0 = 0; r0 < m; r0 += AVX2_ROWS) {
        const float *xr = x + r0 * ldx;
        float *yr = y + r0 * n;
        const size_t pre = r0 == 0 && k0 + ahead < k ? ahead : 0;
        switch (m - r0 < AVX2_ROWS ? m - r0 : AVX2_ROWS) {
        case 1: rows_block(1, xr, ldx, k0, kb, w, n, width, yr, pre); break;
        case 2: rows_block(2, xr, ldx, k0, kb, w, n, width, yr, pre); break;
        case 3: rows_block(3, xr, ldx, k0, kb, w, n, width, yr, pre); break;
        case 4: rows_block(4, xr, ldx, k0, kb, w, n, width, yr, pre); break;
        case 5: rows_block(5, xr, ldx, k0, kb, w, n, width, yr, pre); break;
        default: rows_block(6, xr, ldx, k0, kb, w, n, width, yr, pre); break;
        }
    }
}

/* One row through four kernel rows at a time: y (n floats, in L1) loaded, the four rows'
   products added, stored, eight columns at a time, so the kernel is read in order, four rows
   side by side. Where a row is 1 KB or less (fc2's 8192 x 256), the loads of the rows 16 on
   are prefetched into L1: without, the hardware prefetcher left those reads at 15-18 GB/s on
   the Zen 3 (the register blocks of fm_avx2_rows_blocks as well), with, 21-24
   (`Benchmarks/dense_rows.c 8192x256 1`); 2 KB rows and longer (fc1's 32 KB) gained nothing
   from it in a /tmp harness (the note). */
AVX2 void fm_avx2_gemv_f32(const float *a, size_t k, size_t n, const float *w, float *y) {
    const size_t ahead = n <= 256 ? 16 : 0, full = n / 8 * 8;
    const __m256i tail = lanes(n - full);
    for (size_t c = 0; c < n; c++) y[c] = 0;
    size_t i = 0;
    for (; i + 4 <= k; i += 4) {
        const float *w0 = w + i * n;
        if (ahead && i + ahead < k)
            for (size_t b = 0; b < 4 * n; b += 16) _mm_prefetch((const char *)(w0 + ahead * n + b), _MM_HINT_T0);
        const __m256 a0 = _mm256_set1_ps(a[i]), a1 = _mm256_set1_ps(a[i + 1]), a2 = _mm256_set1_ps(a[i + 2]),
                     a3 = _mm256_set1_ps(a[i + 3]);
        size_t c = 0;
        for (; c < full; c += 8) {
            __m256 acc = _mm256_loadu_ps(y + c);
            acc = _mm256_fmadd_ps(a0, _mm256_loadu_ps(w0 + c), acc);
            acc = _mm256_fmadd_ps(a1, _mm256_loadu_ps(w0 + n + c), acc);
            acc = _mm256_fmadd_ps(a2, _mm256_loadu_ps(w0 + 2 * n + c), acc);
            acc = _mm256_fmadd_ps(a3, _mm256_loadu_ps(w0 + 3 * n + c), acc);
            _mm256_storeu_ps(y + c, acc);
        }
        if (c < n) {
            __m256 acc = _mm256_maskload_ps(y + c, tail);
            acc = _mm256_fmadd_ps(a0, _mm256_maskload_ps(w0 + c, tail), acc);
            acc = _mm256_fmadd_ps(a1, _mm256_maskload_ps(w0 + n + c, tail), acc);
            acc = _mm256_fmadd_ps(a2, _mm256_maskload_ps(w0 + 2 * n + c, tail), acc);
            acc = _mm256_fmadd_ps(a3, _mm256_maskload_ps(w0 + 3 * n + c, tail), acc);
            _mm256_maskstore_ps(y + c, tail, acc);
        }
    }
    for (; i < k; i++)
        for (size_t c = 0; c < n; c++) y[c] += a[i] * w[i * n + c];
}

/* The packed register block: R (at most 6) rows by 16 columns through kb kernel rows that
   fm_avx2_pack laid out as one strip (16 floats a row, contiguous, zero past the kernel's last
   column), so that the strip streams through L1 in order instead of 16 columns of rows a
   kernel row apart, which on 512-byte to 1.5 KB rows land in a few of L1's sets. `cols`: the
   columns of y this strip covers (all 16 unless it is the last, `masked`); `accumulate`: add
   to y (a depth piece after the first). */
AVX2 __attribute__((always_inline)) static inline void packed_block(const int R, const int masked, const float *const *x,
                                                                    size_t kb, const float *strip, float *y, size_t n,
                                                                    size_t cols, int accumulate) {
    const __m256i m0 = masked ? lanes(cols) : _mm256_set1_epi32(-1);
    const __m256i m1 = masked ? lanes(cols > 8 ? cols - 8 : 0) : _mm256_set1_epi32(-1);
    __m256 acc[AVX2_ROWS][2];
    load_sums(R, masked, acc, y, n, m0, m1, accumulate);
#pragma GCC unroll 4
    for (size_t i = 0; i < kb; i++) {
        const __m256 w0 = _mm256_load_ps(strip + 16 * i), w1 = _mm256_load_ps(strip + 16 * i + 8);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const __m256 a = _mm256_broadcast_ss(x[r] + i);
            acc[r][0] = _mm256_fmadd_ps(a, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(a, w1, acc[r][1]);
        }
    }
    store_sums(R, masked, acc, y, n, m0, m1);
}

AVX2 __attribute__((always_inline)) static inline void packed_rows(const int masked, size_t R, const float *const *x, size_t kb,
                                                                   const float *strip, float *y, size_t n, size_t cols,
                                                                   int accumulate) {
    switch (R) {
    case 1: packed_block(1, masked, x, kb, strip, y, n, cols, accumulate); break;
    case 2: packed_block(2, masked, x, kb, strip, y, n, cols, accumulate); break;
    case 3: packed_block(3, masked, x, kb, strip, y, n, cols, accumulate); break;
    case 4: packed_block(4, masked, x, kb, strip, y, n, cols, accumulate); break;
    case 5: packed_block(5, masked, x, kb, strip, y, n, cols, accumulate); break;
    default: packed_block(6, masked, x, kb, strip, y, n, cols, accumulate); break;
    }
}

/* At most FM_PACK_ROWS rows (their kb floats each, 144 KB at 256 deep, stay in L2), strip by
   strip (a strip, 16 KB at 256 deep, stays in L1 while the blocks of six rows pass over it). */
AVX2 void fm_avx2_packed_rows(const float *const *rows, size_t m, size_t kb, const float *strips, size_t width, float *y, size_t n,
                              int accumulate) {
    for (size_t c = 0; c < width; c += 16) {
        const float *strip = strips + c * kb;
        for (size_t r = 0; r < m; r += AVX2_ROWS) {
            const size_t R = m - r < AVX2_ROWS ? m - r : AVX2_ROWS;
            if (c + 16 <= width) packed_rows(0, R, rows + r, kb, strip, y + r * n + c, n, 16, accumulate);
            else packed_rows(1, R, rows + r, kb, strip, y + r * n + c, n, width - c, accumulate);
        }
    }
}

AVX2 void fm_avx2_pack(const float *w, size_t n, size_t kb, size_t width, float *strips) {
    for (size_t c = 0; c < width; c += 16) {
        float *d = strips + c * kb;
        const float *s = w + c;
        if (c + 16 <= width) {
            for (size_t i = 0; i < kb; i++) {
                _mm256_store_ps(d + 16 * i, _mm256_loadu_ps(s + i * n));
                _mm256_store_ps(d + 16 * i + 8, _mm256_loadu_ps(s + i * n + 8));
            }
        } else {
            const __m256i m0 = lanes(width - c), m1 = lanes(width - c > 8 ? width - c - 8 : 0);
            for (size_t i = 0; i < kb; i++) {
                _mm256_store_ps(d + 16 * i, _mm256_maskload_ps(s + i * n, m0));
                _mm256_store_ps(d + 16 * i + 8, _mm256_maskload_ps(s + i * n + 8, m1));
            }
        }
    }
}
