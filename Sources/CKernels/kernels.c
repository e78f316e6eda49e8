#include "fm_kernels.h"
#include "kernels_internal.h"
#include <malloc.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <immintrin.h>

static int has_avx512(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    return cached;
}

/* Without AVX-512: kernels_avx2.c (and winograd.c's transforms on any CPU that has it). */
int fm_has_avx2(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return cached;
}

/* The portable loops: the fallbacks, and the tails of the vector loops. */

void fm_min_max_scalar(const float *x, size_t n, float *lo, float *hi) {
    float a = *lo, b = *hi;
    for (size_t i = 0; i < n; i++) { a = x[i] < a ? x[i] : a; b = x[i] > b ? x[i] : b; }
    *lo = a; *hi = b;
}

void fm_quantize_u8_scalar(const float *x, size_t n, float inverse, float zero, float top, uint8_t *q) {
    for (size_t i = 0; i < n; i++) {
        float v = rintf(x[i] * inverse) + zero;
        v = v < 0 ? 0 : (v > top ? top : v);
        q[i] = (uint8_t)v;
    }
}

void fm_quantize_s8_scalar(const float *x, size_t n, float inverse, int8_t *q) {
    for (size_t i = 0; i < n; i++) {
        float v = rintf(x[i] * inverse);
        q[i] = (int8_t)(v < -127 ? -127 : (v > 127 ? 127 : v));
    }
}

static inline float activate(float v, int activation, float alpha) {
    switch (activation) {
    case FM_EPI_RELU: return v > 0 ? v : 0;
    case FM_EPI_RELU6: return v < 0 ? 0 : (v > 6 ? 6 : v);
    case FM_EPI_LEAKY: return v > 0 ? v : v * alpha;
    default: return v;
    }
}

/* Columns [c0, channels) of one epilogue row (res: that row of the residual, or NULL); what it
   writes is folded into *lo and *hi. */
void fm_epilogue_row_scalar(float *row, const void *in, size_t c0, size_t channels, const float *column_scale, const float *bias,
                            float scale, const float *res, int activation, float alpha, float *lo, float *hi) {
    for (size_t c = c0; c < channels; c++) {
        float v = column_scale ? (float)((const int32_t *)in)[c] * column_scale[c] : ((const float *)in)[c];
        if (bias) v += bias[c];
        v *= scale;
        if (res) v += res[c];
        row[c] = activate(v, activation, alpha);
        if (row[c] < *lo) *lo = row[c];
        if (row[c] > *hi) *hi = row[c];
    }
}

/* y[c] for columns [c0, n) of the int8 GEMV (see fm_gemv_s8). */
void fm_gemv_s8_scalar(const float *a, size_t k, size_t n, const int8_t *w, const float *w_scale, size_t c0, float *y) {
    for (size_t c = c0; c < n; c++) {
        float acc = 0;
        for (size_t i = 0; i < k; i++) acc += a[i] * (float)w[i * n + c];
        y[c] = acc * w_scale[c];
    }
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
    *lo = _mm512_reduce_min_ps(vlo);
    *hi = _mm512_reduce_max_ps(vhi);
    fm_min_max_scalar(x + i, n - i, lo, hi);
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
    fm_quantize_u8_scalar(x + i, n - i, inverse, zero, top, q + i);
}

__attribute__((target("avx512f,avx512bw")))
static void quantize_s8_avx512(const float *x, size_t n, float inverse, int8_t *q) {
    const __m512 vi = _mm512_set1_ps(inverse), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
    }
    fm_quantize_s8_scalar(x + i, n - i, inverse, q + i);
}

void fm_quantize_s8(const float *x, size_t n, float inverse, int8_t *q) {
    if (has_avx512()) quantize_s8_avx512(x, n, inverse, q);
    else if (fm_has_avx2()) fm_avx2_quantize_s8(x, n, inverse, q);
    else fm_quantize_s8_scalar(x, n, inverse, q);
}

void fm_min_max(const float *x, size_t n, float *lo, float *hi) {
    if (has_avx512()) min_max_avx512(x, n, lo, hi);
    else if (fm_has_avx2()) fm_avx2_min_max(x, n, lo, hi);
    else fm_min_max_scalar(x, n, lo, hi);
}

void fm_quantize_u8(const float *x, size_t n, float inverse, float zero, float top, uint8_t *q) {
    if (has_avx512()) quantize_avx512(x, n, inverse, zero, top, q);
    else if (fm_has_avx2()) fm_avx2_quantize_u8(x, n, inverse, zero, top, q);
    else fm_quantize_u8_scalar(x, n, inverse, zero, top, q);
}

__attribute__((target("avx512f,avx512bw")))
static void epilogue_avx512(float *y, size_t rows, size_t channels, size_t stride, const void *src, size_t src_stride,
                            const float *column_scale, const float *bias, float scale, const float *residual, int activation,
                            float alpha, float range[2]) {
    const __m512 vs = _mm512_set1_ps(scale), va = _mm512_set1_ps(alpha), zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6);
    __m512 lo = _mm512_set1_ps(INFINITY), hi = _mm512_set1_ps(-INFINITY);
    float slo = INFINITY, shi = -INFINITY;
    for (size_t r = 0; r < rows; r++) {
        float *row = y + r * stride;
        const float *in = (const float *)src + r * src_stride;  /* int32 with column_scale */
        const float *res = residual ? residual + r * channels : NULL;
        size_t c = 0;
        for (; c + 16 <= channels; c += 16) {
            __m512 v = column_scale ? _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(in + c)), _mm512_loadu_ps(column_scale + c))
                                    : _mm512_loadu_ps(in + c);
            if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + c));
            v = _mm512_mul_ps(v, vs);
            if (res) v = _mm512_add_ps(v, _mm512_loadu_ps(res + c));
            switch (activation) {
            case FM_EPI_RELU: v = _mm512_max_ps(v, zero); break;
            case FM_EPI_RELU6: v = _mm512_min_ps(_mm512_max_ps(v, zero), six); break;
            case FM_EPI_LEAKY: v = _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, va); break;
            default: break;
            }
            _mm512_storeu_ps(row + c, v);
            if (range) { lo = _mm512_min_ps(v, lo); hi = _mm512_max_ps(v, hi); }  /* NaN in v: lo/hi kept */
        }
        fm_epilogue_row_scalar(row, in, c, channels, column_scale, bias, scale, res, activation, alpha, &slo, &shi);
    }
    if (range) {
        float a = _mm512_reduce_min_ps(lo), b = _mm512_reduce_max_ps(hi);
        range[0] = a < slo ? a : slo;
        range[1] = b > shi ? b : shi;
    }
}

void fm_epilogue(float *y, size_t rows, size_t channels, size_t stride, const void *src, size_t src_stride,
                 const float *column_scale, const float *bias, float scale, const float *residual, int activation, float alpha,
                 float range[2]) {
    if (has_avx512()) {
        epilogue_avx512(y, rows, channels, stride, src, src_stride, column_scale, bias, scale, residual, activation, alpha, range);
        return;
    }
    if (fm_has_avx2()) {
        fm_avx2_epilogue(y, rows, channels, stride, src, src_stride, column_scale, bias, scale, residual, activation, alpha, range);
        return;
    }
    float lo = INFINITY, hi = -INFINITY;
    for (size_t r = 0; r < rows; r++)
        fm_epilogue_row_scalar(y + r * stride, (const float *)src + r * src_stride, 0, channels, column_scale, bias, scale,
                               residual ? residual + r * channels : NULL, activation, alpha, &lo, &hi);
    if (range) { range[0] = lo; range[1] = hi; }
}

__attribute__((target("avx512f,avx512bw")))
static void gemv_s8_avx512(const float *a, size_t k, size_t n, const int8_t *w, const float *w_scale, float *y) {
    size_t c = 0;
    /* 256 columns at a time: 16 accumulators of 16 floats, the kernel read row by row. */
    for (; c + 256 <= n; c += 256) {
        __m512 acc[16];
        for (int j = 0; j < 16; j++) acc[j] = _mm512_setzero_ps();
        for (size_t i = 0; i < k; i++) {
            const __m512 ai = _mm512_set1_ps(a[i]);
            const int8_t *row = w + i * n + c;
            /* 32 rows ahead (8 KiB in a 256-column block): the hardware prefetcher alone leaves
               fc1 at 0.75 ms instead of 0.49 (`fmodel bench --profile`, int8 model, batch 1, on
               the AVX-512 machine of the early sessions). On the 34th session's Zen 5, against 16
               rows ahead (`Benchmarks/layer_ab.py`, int8 model, batch 1, 9-11 rounds): fc1 0.927
               and 0.943, fc2 0.917 and 0.939; 48 rows fc1 0.908, 64 0.987, 8 1.081. */
            if (i + 32 < k)
                for (int l = 0; l < 4; l++) _mm_prefetch((const char *)(row + 32 * n + 64 * l), _MM_HINT_T0);
            for (int j = 0; j < 16; j++)
                acc[j] = _mm512_fmadd_ps(ai, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(row + 16 * j)))), acc[j]);
        }
        for (int j = 0; j < 16; j++) _mm512_storeu_ps(y + c + 16 * j, _mm512_mul_ps(acc[j], _mm512_loadu_ps(w_scale + c + 16 * j)));
    }
    for (; c + 16 <= n; c += 16) {
        __m512 acc = _mm512_setzero_ps();
        for (size_t i = 0; i < k; i++)
            acc = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(w + i * n + c)))), acc);
        _mm512_storeu_ps(y + c, _mm512_mul_ps(acc, _mm512_loadu_ps(w_scale + c)));
    }
    fm_gemv_s8_scalar(a, k, n, w, w_scale, c, y);
}

void fm_gemv_s8(const float *a, size_t k, size_t n, const int8_t *w, const float *w_scale, float *y) {
    if (has_avx512()) gemv_s8_avx512(a, k, n, w, w_scale, y);
    else if (fm_has_avx2()) fm_avx2_gemv_s8(a, k, n, w, w_scale, y);
    else fm_gemv_s8_scalar(a, k, n, w, w_scale, 0, y);
}

static inline uint16_t bf16_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  /* quiet NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__attribute__((target("avx512f,avx512bw")))
static void to_bf16_avx512(const float *x, size_t n, uint16_t *y) {
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_loadu_si512(x + i);
        __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
        __mmask16 nan = _mm512_cmp_ps_mask(_mm512_castsi512_ps(u), _mm512_castsi512_ps(u), _CMP_UNORD_Q);
        r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x400000)));
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
    }
    for (; i < n; i++) y[i] = bf16_of(x[i]);
}

void fm_to_bf16(const float *x, size_t n, uint16_t *y) {
    if (has_avx512()) { to_bf16_avx512(x, n, y); return; }
    for (size_t i = 0; i < n; i++) y[i] = bf16_of(x[i]);
}

__attribute__((target("avx512f")))
static void window_max_avx512(float *out, const float *x, size_t n, size_t row_stride, size_t rows, size_t cols) {
    for (size_t ch = 0; ch < n; ch += 16) {
        const __mmask16 m = n - ch >= 16 ? 0xFFFF : (__mmask16)((1u << (n - ch)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + ch);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++) v = _mm512_max_ps(v, _mm512_maskz_loadu_ps(m, x + i * row_stride + j * n + ch));
        _mm512_mask_storeu_ps(out + ch, m, v);
    }
}

void fm_window_max(float *out, const float *x, size_t n, size_t row_stride, size_t rows, size_t cols) {
    if (has_avx512()) { window_max_avx512(out, x, n, row_stride, rows, cols); return; }
    if (fm_has_avx2()) { fm_avx2_window_max(out, x, n, row_stride, rows, cols); return; }
    for (size_t ch = 0; ch < n; ch++) {
        float v = x[ch];
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++) v = x[i * row_stride + j * n + ch] > v ? x[i * row_stride + j * n + ch] : v;
        out[ch] = v;
    }
}

/* fm_gemm_rows_f32 for one row: y[c] = sum over i < k of a[i] * w[i][c], 256 columns of
   accumulators, eight kernel rows at a time. */
__attribute__((target("avx512f")))
static void gemv_f32_avx512(const float *a, size_t k, size_t n, const float *w, float *y) {
    for (size_t c = 0; c < n; c++) y[c] = 0;
    for (size_t i = 0; i < k; i += 8) {
        const size_t rows = k - i < 8 ? k - i : 8;
        size_t c = 0;
        for (; c + 256 <= n; c += 256) {
            __m512 acc[16];
            for (int j = 0; j < 16; j++) acc[j] = _mm512_loadu_ps(y + c + 16 * j);
            for (size_t r = 0; r < rows; r++) {
                const __m512 ar = _mm512_set1_ps(a[i + r]);
                const float *row = w + (i + r) * n + c;
                for (int j = 0; j < 16; j++) acc[j] = _mm512_fmadd_ps(ar, _mm512_loadu_ps(row + 16 * j), acc[j]);
            }
            for (int j = 0; j < 16; j++) _mm512_storeu_ps(y + c + 16 * j, acc[j]);
        }
        for (; c + 16 <= n; c += 16) {
            __m512 acc = _mm512_loadu_ps(y + c);
            for (size_t r = 0; r < rows; r++) acc = _mm512_fmadd_ps(_mm512_set1_ps(a[i + r]), _mm512_loadu_ps(w + (i + r) * n + c), acc);
            _mm512_storeu_ps(y + c, acc);
        }
        for (; c < n; c++)
            for (size_t r = 0; r < rows; r++) y[c] += a[i + r] * w[(i + r) * n + c];
    }
}

/* The register block of fm_gemm_rows_f32 and fm_gemm_columns_f32: rows [0, R) of x, kernel rows
   [k0, k0 + kb) and columns [0, width) of w into y (both with rows n floats apart): R rows by
   32 columns of accumulators at a time, loaded from y unless k0 is 0; prefetching the kernel
   `ahead` rows on (0: not), or, with `stream` (gemm_stream_avx512: the block whole rows wide,
   so the kernel rows it reads are one contiguous run), from `stream` on, two cache lines for
   each 32 columns of a kernel row it reads (the two it reads, unless the last 32 are fewer),
   up to `stream_end`. */
#define STREAM_DEPTH 8
#define STREAM_ROWS 12
__attribute__((target("avx512f"), always_inline))
static inline void gemm_rows_block_avx512(const int R, const float *x, size_t ldx, size_t k0, size_t kb, const float *w,
                                          size_t n, size_t width, float *y, size_t ahead, const char *stream,
                                          const char *stream_end) {
    for (size_t c = 0; c < width; c += 32) {
        const size_t left = width - c;
        const __mmask16 m0 = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
        const __mmask16 m1 = left >= 32 ? 0xFFFF : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
        __m512 acc[STREAM_ROWS][2];
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) {
            acc[r][0] = k0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m0, y + r * n + c);
            acc[r][1] = k0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m1, y + r * n + c + 16);
        }
        for (size_t i = k0; i < k0 + kb; i++) {
            const __m512 w0 = _mm512_maskz_loadu_ps(m0, w + i * n + c), w1 = _mm512_maskz_loadu_ps(m1, w + i * n + c + 16);
            if (stream) {
                if (stream < stream_end) {
                    _mm_prefetch(stream, _MM_HINT_T0);
                    _mm_prefetch(stream + 64, _MM_HINT_T0);
                }
                stream += 128;
            } else if (ahead) {
                _mm_prefetch((const char *)(w + (i + ahead) * n + c), _MM_HINT_T1);
                _mm_prefetch((const char *)(w + (i + ahead) * n + c + 16), _MM_HINT_T1);
            }
#pragma GCC unroll 12
            for (int r = 0; r < R; r++) {
                const __m512 a = _mm512_set1_ps(x[r * ldx + i]);
                acc[r][0] = _mm512_fmadd_ps(a, w0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(a, w1, acc[r][1]);
            }
        }
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) {
            _mm512_mask_storeu_ps(y + r * n + c, m0, acc[r][0]);
            _mm512_mask_storeu_ps(y + r * n + c + 16, m1, acc[r][1]);
        }
    }
}

/* Kernel rows [k0, k0 + kb) times all m rows of x, register block by register block, the first
   block of rows prefetching as gemm_rows_block_avx512 says (`ahead`, or `stream` up to
   `stream_end`). Each block of kernel rows (in cache after the first block of rows) feeds all
   of x. */
__attribute__((target("avx512f"), always_inline))
static inline void rows_blocks_avx512(const float *x, size_t ldx, size_t m, size_t k0, size_t kb, const float *w, size_t n,
                                      size_t width, float *y, size_t ahead, const char *stream, const char *stream_end) {
    for (size_t r0 = 0; r0 < m; r0 += STREAM_ROWS) {
        const float *xr = x + r0 * ldx;
        float *yr = y + r0 * n;
        const size_t pre = r0 == 0 ? ahead : 0;
        const char *lead = r0 == 0 ? stream : NULL;
        switch (m - r0 < STREAM_ROWS ? m - r0 : STREAM_ROWS) {
#define ROWS_CASE(R) case R: gemm_rows_block_avx512(R, xr, ldx, k0, kb, w, n, width, yr, pre, lead, stream_end); break;
        ROWS_CASE(1) ROWS_CASE(2) ROWS_CASE(3) ROWS_CASE(4) ROWS_CASE(5) ROWS_CASE(6)
        ROWS_CASE(7) ROWS_CASE(8) ROWS_CASE(9) ROWS_CASE(10) ROWS_CASE(11) ROWS_CASE(12)
#undef ROWS_CASE
        }
    }
}

/* The AVX-512 fm_rows_blocks_fn: prefetching `ahead` rows on, unless that passes row k. */
__attribute__((target("avx512f")))
static void gemm_rows_blocks_avx512(const float *x, size_t ldx, size_t m, size_t k, size_t k0, size_t kb, const float *w,
                                    size_t n, size_t width, float *y, size_t ahead) {
    rows_blocks_avx512(x, ldx, m, k0, kb, w, n, width, y, k0 + ahead < k ? ahead : 0, NULL, NULL);
}

/* fm_gemm_rows_f32 on AVX-512: the thread's share of the kernel STREAM_DEPTH_AVX512 rows at a
   time, each block down all rows of x, the first block of rows prefetching the share as one
   contiguous run (it is: the block spans whole rows), a block or STREAM_LEAD ahead of the
   block in hand, whichever is farther, into L1. The other paths prefetch each 32-column strip's
   own lines some rows on, which keeps six (Block8's 192 columns) to 56 (its 1792) runs of the
   kernel in flight at once, each a row apart.
   The multi-task model at batch 1 (`Benchmarks/layer_ab.py`, 7 rounds, against that way at 8
   rows deep): Block8's branch 1×1s 0.737×, its 1×3/3×1s 0.757×, its residual 384→1792 layers
   0.851×, Mixed_7a's strided 3×3s 0.762×, the model 0.911× (in a slow phase of the machine;
   fc1 and fc2, one-row products this does not run, 0.866×: groups this small swing by 10-30%
   from run to run); `Benchmarks/ab.sh`, 11 rounds: the multi-task model 0.984× per round,
   FaceNet 0.962×. fc1 and fc2 at batch 8 0.84× and 0.78×. Against this in the model (the
   same A/B, the whole model): 8 or 32 rows deep 1.000× and 1.025×, 8 or 32 KB ahead 1.003×
   and 1.014×, a block + 16 KB ahead 1.008×, into L2 0.999×. */
#define STREAM_DEPTH_AVX512 16
#define STREAM_LEAD 16384
__attribute__((target("avx512f")))
static void gemm_stream_avx512(const float *x, size_t ldx, size_t m, size_t k, const float *w, size_t n, float *y) {
    const char *end = (const char *)(w + k * n);
    for (size_t k0 = 0; k0 < k; k0 += STREAM_DEPTH_AVX512) {
        const size_t kb = k - k0 < STREAM_DEPTH_AVX512 ? k - k0 : STREAM_DEPTH_AVX512;
        const size_t block = kb * n * sizeof(float);
        const char *lead = (const char *)(w + k0 * n) + (block > STREAM_LEAD ? block : STREAM_LEAD);
        rows_blocks_avx512(x, ldx, m, k0, kb, w, n, n, y, 0, lead, end);
    }
}

/* The loop all three products share, in either instruction set (`blocks`: the AVX-512 or the
   AVX2 register blocks): columns [c0, c1) of y in panels `panel` columns wide, each through the
   kernel's depth `depth` rows at a time, each piece down all rows of x (accumulating in y), the
   first block of rows prefetching `ahead` kernel rows on. They differ in those three numbers only. */
static void gemm_panels(fm_rows_blocks_fn *blocks, const float *x, size_t ldx, size_t m, size_t k, const float *w, size_t n,
                        float *y, size_t c0, size_t c1, size_t panel, size_t depth, size_t ahead) {
    for (size_t p = c0; p < c1; p += panel) {
        const size_t width = c1 - p < panel ? c1 - p : panel;
        for (size_t k0 = 0; k0 < k; k0 += depth)
            blocks(x, ldx, m, k, k0, k - k0 < depth ? k - k0 : depth, w + p, n, width, y + p, ahead);
    }
}

/* The register blocks of this CPU, or NULL for the portable loop. */
static fm_rows_blocks_fn *rows_blocks(void) {
    return has_avx512() ? gemm_rows_blocks_avx512 : fm_has_avx2() ? fm_avx2_rows_blocks : NULL;
}

size_t fm_l2_cache_bytes(void) {
    static long cached = 0;
    if (cached == 0) {
        long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
        cached = l2 > 0 ? l2 : 2 << 20;
    }
    return (size_t)cached;
}

/* Half the L2 cache: fm_gemm_f32's panel of kernel (and line_conv.c's), and twice the farthest
   fm_gemm_rows_f32 prefetches ahead on AVX2. */
size_t fm_gemm_panel_bytes(void) { return fm_l2_cache_bytes() / 2; }

/* fm_gemm_rows_f32 on AVX2, as on AVX-512 until gemm_stream_avx512: all columns at once, eight
   kernel rows at a time, prefetching 16 KB ahead
   and at least a block of rows: the nine-row products read their kernels at 19-23 GB/s
   (`Benchmarks/streamed_gemm.c`, AVX-512); a trial build without the prefetch read about 12 GB/s,
   slower than oneDNN. Not where a block of rows ahead is more than a quarter of the L2: the
   lines fetched a block ahead are used only once the block in hand has been read across its
   width, and what the two hold no longer fits. fc1's 8192-column rows on the Zen 3
   (512 KB of L2; a block ahead is 256 KB): one row in 1.09-1.14x dnnl_sgemm's time with it,
   0.98-1.00x without (`Benchmarks/dense_rows.c 1792x8192 1`, three runs each); Block8's 768-byte
   and 7 KB rows still gain from it (`Benchmarks/streamed_gemm.c`, 1792 -> 192: 1.34-1.39x
   oneDNN's time with it, 1.69-1.88x in a trial build without). */
static size_t stream_ahead(size_t n) {
    size_t ahead = 16384 / (n * 4);
    ahead = ahead < STREAM_DEPTH ? STREAM_DEPTH : ahead;
    return ahead * n * sizeof(float) > fm_gemm_panel_bytes() / 2 ? 0 : ahead;
}

/* fm_gemm_columns_f32: panels of 512 columns, each through the whole depth 32 kernel rows at a
   time (the panel's 32 × 2 KB, from the cache for the second and third block of rows), the
   first block of rows prefetching the next 32. fc1's 1792 × 8192 kernel at 32 rows on both
   threads (`Benchmarks/dense_rows.c`): 5.09 ms against dnnl_sgemm's 6.51. Other depths and
   widths, a prefetch burst per block of rows and the column blocks outside the loop over
   blocks of rows were slower in a trial (figures in the issue #6 note). */
#define PANEL_WIDTH 512
#define PANEL_DEPTH 32

/* fm_gemm_f32: column panels whose kernel slice fits half the L2 cache (at least 32 columns; 1 MB
   on the AVX-512 machine these figures come from, its L2 2 MB; half of what sysconf says elsewhere),
   each through the depth in pieces of GEMM_DEPTH rows, each piece down all rows of x twelve at
   a time (accumulating in y), so that the piece of the kernel is read from memory once, by the
   first block of rows, and from L2 by the others. That first block prefetches the kernel
   GEMM_AHEAD rows on: without it, the model's 289 × 1728 × 384 product with its kernel out of
   L2 took 2.48 ms instead of 1.83 (8, 32 and 64 rows ahead within 3%; depths of 128 to 4096
   and panels of 0.5 to 2 MB within the noise, /tmp harness). Its depth and panels are not
   fm_gemm_columns_f32's: with 512-column panels 32 rows deep the model's conv products would
   not keep their panel in L2, and with these fc1 at 32 rows takes 6.6 ms instead of 5.0
   (`Benchmarks/dense_rows.c` with the one call swapped). */
#define GEMM_DEPTH 256
#define GEMM_AHEAD 32

/* The products on a CPU with neither AVX-512 nor AVX2: columns [c0, c1) of y, one dot product
   at a time. */
static void gemm_scalar(const float *x, size_t ldx, size_t m, size_t k, const float *w, size_t n, float *y, size_t c0,
                        size_t c1) {
    for (size_t r = 0; r < m; r++)
        for (size_t c = c0; c < c1; c++) {
            float acc = 0;
            for (size_t i = 0; i < k; i++) acc += x[r * ldx + i] * w[i * n + c];
            y[r * n + c] = acc;
        }
}

void fm_gemm_rows_f32(const float *x, size_t ldx, size_t m, size_t k, const float *w, size_t n, float *y) {
    /* One row (a dense layer at batch 1): on AVX-512 256 columns of accumulators, eight kernel
       rows at a time, no software prefetch — the hardware prefetcher follows its 1 KB row
       pieces; on AVX2 four kernel rows at a time into y in L1 (fm_avx2_gemv_f32). */
    if (has_avx512() && m == 1) { gemv_f32_avx512(x, k, n, w, y); return; }
    if (fm_has_avx2() && m == 1) { fm_avx2_gemv_f32(x, k, n, w, y); return; }
    if (has_avx512()) { gemm_stream_avx512(x, ldx, m, k, w, n, y); return; }
    fm_rows_blocks_fn *blocks = rows_blocks();
    if (blocks) { gemm_panels(blocks, x, ldx, m, k, w, n, y, 0, n, n, STREAM_DEPTH, stream_ahead(n)); return; }
    gemm_scalar(x, ldx, m, k, w, n, y, 0, n);
}

/* Columns of kernel fm_gemm_f32 packs at a time on AVX2: with FM_PACK_DEPTH rows, 128 KB a
   thread, kept (thread-local) from its first call. */
#define PACK_WIDTH 128

/* Rows from which fm_gemm_f32 packs on AVX2: each packed strip then feeds at least four
   blocks of six rows. */
#define PACK_MIN_ROWS 24

/* The thread's packing buffer (NULL if it cannot be had: the caller multiplies unpacked). */
static float *pack_buffer(void) {
    static _Thread_local float *buffer;
    if (!buffer) buffer = aligned_alloc(64, FM_PACK_DEPTH * PACK_WIDTH * sizeof(float));
    return buffer;
}

static void packed_piece(const float *x, size_t ldx, size_t m, size_t kb, const float *strips, size_t width, float *y, size_t n,
                         int accumulate);

/* fm_gemm_f32 on AVX2: panels of PACK_WIDTH columns, each through the depth FM_PACK_DEPTH rows
   at a time, each piece packed (fm_avx2_pack) and multiplied by all rows of x. On the Zen 3
   over the model's im2col products at batch 1, kernels out of L2 (`Benchmarks/gemm_path.c`,
   two runs): 1.02-1.06× dnnl_sgemm's time, the unpacked loop 1.20-1.28× (its 16 columns of
   256 kernel rows 512 bytes to 1.5 KB apart fall into a few of L1's sets; a packed strip is
   16 KB in order). */
static void gemm_packed_avx2(const float *x, size_t ldx, size_t m, size_t k, const float *w, size_t n, float *y, size_t c0,
                             size_t c1, float *buffer) {
    for (size_t p = c0; p < c1; p += PACK_WIDTH) {
        const size_t width = c1 - p < PACK_WIDTH ? c1 - p : PACK_WIDTH;
        for (size_t k0 = 0; k0 < k; k0 += FM_PACK_DEPTH) {
            const size_t kb = k - k0 < FM_PACK_DEPTH ? k - k0 : FM_PACK_DEPTH;
            fm_avx2_pack(w + k0 * n + p, n, kb, width, buffer);
            packed_piece(x + k0, ldx, m, kb, buffer, width, y + p, n, k0 > 0);
        }
    }
}

void fm_gemm_f32(const float *x, size_t ldx, size_t m, size_t k, const float *w, size_t n, float *y, size_t c0, size_t c1) {
    float *buffer;
    if (!has_avx512() && fm_has_avx2() && m >= PACK_MIN_ROWS && (buffer = pack_buffer())) {
        gemm_packed_avx2(x, ldx, m, k, w, n, y, c0, c1, buffer);
        return;
    }
    fm_rows_blocks_fn *blocks = rows_blocks();
    if (blocks) {
        /* AVX-512 (2 MB of L2 where measured): the panel's whole depth in half the L2. AVX2 (the
           Zen 3's 512 KB) below PACK_MIN_ROWS: one depth piece of it, so that a deep product's
           rows are not read again for every 32 columns (`gemm_path.c` before the packing, three
           runs each: 64 × 2304 × 384 at 1.46-1.48× dnnl_sgemm's time instead of 1.53-1.70×,
           289 × 1728 × 256 1.13-1.33× instead of 1.20-1.40×). */
        const size_t depth = has_avx512() || k < GEMM_DEPTH ? k : GEMM_DEPTH;
        size_t panel = fm_gemm_panel_bytes() / (depth * sizeof(float)) / 32 * 32;
        gemm_panels(blocks, x, ldx, m, k, w, n, y, c0, c1, panel < 32 ? 32 : panel, GEMM_DEPTH, GEMM_AHEAD);
        return;
    }
    gemm_scalar(x, ldx, m, k, w, n, y, c0, c1);
}

int fm_packed_available(void) { return fm_has_avx2(); }

size_t fm_packed_floats(size_t k, size_t n) { return k * round16(n); }

size_t fm_pack_depth(void) { return FM_PACK_DEPTH; }

void fm_pack_kernel(const float *w, size_t k, size_t n, float *packed) {
    for (size_t k0 = 0; k0 < k; k0 += FM_PACK_DEPTH)
        fm_avx2_pack(w + k0 * n, n, k - k0 < FM_PACK_DEPTH ? k - k0 : FM_PACK_DEPTH, n, packed + k0 * round16(n));
}

/* fm_avx2_packed_rows's product on AVX-512: R (at most 12) rows by one or two 16-column strips
   (`S`) through kb kernel rows, 24 accumulators of 16 floats, the strips read in order as
   fm_avx2_pack laid them out. Each output sums its products in the same order as the AVX2
   block's. On the AVX2 block fmodel's Winograd and its window convolutions ran at most half
   the AVX-512 CPU's multiply-add rate: on the Zen 5 Block17's 1×7s and 7×1s as F(4, 7) at
   batch 32 took 0.72-0.74 ms a layer in the trial, 0.42-0.49 with this block. */
#define AVX512_PACKED_ROWS 12
__attribute__((target("avx512f"), always_inline))
static inline void packed_block_avx512(const int R, const int S, const float *const *x, size_t kb, const float *strip, float *y,
                                       size_t n, __mmask16 m0, __mmask16 m1, int accumulate) {
    __m512 acc[AVX512_PACKED_ROWS][2];
    const float *next = strip + 16 * kb;
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) {
        acc[r][0] = accumulate ? _mm512_maskz_loadu_ps(m0, y + r * n) : _mm512_setzero_ps();
        if (S == 2) acc[r][1] = accumulate ? _mm512_maskz_loadu_ps(m1, y + r * n + 16) : _mm512_setzero_ps();
    }
    for (size_t i = 0; i < kb; i++) {
        const __m512 w0 = _mm512_loadu_ps(strip + 16 * i), w1 = S == 2 ? _mm512_loadu_ps(next + 16 * i) : w0;
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) {
            const __m512 a = _mm512_set1_ps(x[r][i]);
            acc[r][0] = _mm512_fmadd_ps(a, w0, acc[r][0]);
            if (S == 2) acc[r][1] = _mm512_fmadd_ps(a, w1, acc[r][1]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) {
        _mm512_mask_storeu_ps(y + r * n, m0, acc[r][0]);
        if (S == 2) _mm512_mask_storeu_ps(y + r * n + 16, m1, acc[r][1]);
    }
}

/* One or two strips (`S`, known at run time) for a block of R rows (a constant). */
__attribute__((target("avx512f"), always_inline))
static inline void packed_strips_avx512(const int R, int S, const float *const *x, size_t kb, const float *strip, float *y,
                                        size_t n, __mmask16 m0, __mmask16 m1, int accumulate) {
    if (S == 2) packed_block_avx512(R, 2, x, kb, strip, y, n, m0, m1, accumulate);
    else packed_block_avx512(R, 1, x, kb, strip, y, n, m0, m1, accumulate);
}

__attribute__((target("avx512f")))
static void packed_rows_avx512(const float *const *rows, size_t m, size_t kb, const float *strips, size_t width, float *y,
                               size_t n, int accumulate) {
    for (size_t c = 0; c < width; c += 32) {
        const size_t cols = width - c < 32 ? width - c : 32;
        const int S = cols > 16 ? 2 : 1;
        const __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
        const __mmask16 m1 = cols >= 32 ? 0xFFFF : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1) : 0;
        const float *strip = strips + c * kb;
        for (size_t r = 0; r < m; r += AVX512_PACKED_ROWS) {
            const size_t R = m - r < AVX512_PACKED_ROWS ? m - r : AVX512_PACKED_ROWS;
            const float *const *x = rows + r;
            float *out = y + r * n + c;
#define ROWS(R) packed_strips_avx512(R, S, x, kb, strip, out, n, m0, m1, accumulate)
            switch (R) {
            case 1: ROWS(1); break;
            case 2: ROWS(2); break;
            case 3: ROWS(3); break;
            case 4: ROWS(4); break;
            case 5: ROWS(5); break;
            case 6: ROWS(6); break;
            case 7: ROWS(7); break;
            case 8: ROWS(8); break;
            case 9: ROWS(9); break;
            case 10: ROWS(10); break;
            case 11: ROWS(11); break;
            default: ROWS(12); break;
            }
#undef ROWS
        }
    }
}

void fm_packed_rows(const float *const *rows, size_t m, size_t kb, const float *strips, size_t width, float *y, size_t n,
                    int accumulate) {
    if (has_avx512()) packed_rows_avx512(rows, m, kb, strips, width, y, n, accumulate);
    else fm_avx2_packed_rows(rows, m, kb, strips, width, y, n, accumulate);
}

/* fm_packed_rows over rows of x in chunks of FM_PACK_ROWS. */
static void packed_piece(const float *x, size_t ldx, size_t m, size_t kb, const float *strips, size_t width, float *y, size_t n,
                         int accumulate) {
    const float *rows[FM_PACK_ROWS];
    for (size_t r0 = 0; r0 < m; r0 += FM_PACK_ROWS) {
        const size_t count = m - r0 < FM_PACK_ROWS ? m - r0 : FM_PACK_ROWS;
        for (size_t r = 0; r < count; r++) rows[r] = x + (r0 + r) * ldx;
        fm_packed_rows(rows, count, kb, strips, width, y + r0 * n, n, accumulate);
    }
}

void fm_gemm_packed_f32(const float *x, size_t ldx, size_t m, size_t k, const float *packed, size_t n, float *y) {
    fm_gemm_packed_columns_f32(x, ldx, m, k, packed, n, y, 0, n);
}

void fm_gemm_packed_columns_f32(const float *x, size_t ldx, size_t m, size_t k, const float *packed, size_t n, float *y, size_t c0,
                                size_t c1) {
    for (size_t p = c0; p < c1; p += PANEL_WIDTH) {
        const size_t width = c1 - p < PANEL_WIDTH ? c1 - p : PANEL_WIDTH;
        for (size_t k0 = 0; k0 < k; k0 += FM_PACK_DEPTH) {
            const size_t kb = k - k0 < FM_PACK_DEPTH ? k - k0 : FM_PACK_DEPTH;
            packed_piece(x + k0, ldx, m, kb, packed + k0 * round16(n) + p * kb, width, y + p, n, k0 > 0);
        }
    }
}

void fm_gemm_columns_f32(const float *x, size_t ldx, size_t m, size_t k, const float *w, size_t n, float *y, size_t c0,
                         size_t c1) {
    fm_rows_blocks_fn *blocks = rows_blocks();
    if (blocks) { gemm_panels(blocks, x, ldx, m, k, w, n, y, c0, c1, PANEL_WIDTH, PANEL_DEPTH, PANEL_DEPTH); return; }
    gemm_scalar(x, ldx, m, k, w, n, y, c0, c1);
}

__attribute__((target("avx512f")))
static void copy_rows_avx512(float *dst, size_t dst_stride, const float *src, size_t src_stride, size_t width, size_t rows) {
    const __mmask16 tail = (__mmask16)((1u << (width % 16)) - 1);
    for (size_t r = 0; r < rows; r++) {
        const float *s = src + r * src_stride;
        float *d = dst + r * dst_stride;
        size_t c = 0;
        for (; c + 16 <= width; c += 16) _mm512_storeu_ps(d + c, _mm512_loadu_ps(s + c));
        if (tail) _mm512_mask_storeu_ps(d + c, tail, _mm512_maskz_loadu_ps(tail, s + c));
    }
}

void fm_copy_rows(float *dst, size_t dst_stride, const float *src, size_t src_stride, size_t width, size_t rows) {
    if (has_avx512()) { copy_rows_avx512(dst, dst_stride, src, src_stride, width, rows); return; }
    for (size_t r = 0; r < rows; r++) memcpy(dst + r * dst_stride, src + r * src_stride, width * sizeof(float));
}

void fm_release_free_heap(void) { malloc_trim(0); }
