/* Winograd F(4×4, 3×3) for float32 3×3 stride-1 convolutions over NHWC activations, in AVX2 +
   FMA (Lavin & Gray's transforms, interpolation points 0, ±1, ±2, ∞).

   A 6×6 patch of the input, transformed (Bᵀ d B), times the transformed kernel (G g Gᵀ) point
   by point and transformed back (Aᵀ m A), is a 4×4 block of the output: 36 multiplications
   per input and output channel instead of 144. Summed over the input channels, each of the 36
   points is a product of the tiles' transformed inputs [tiles × C] by that point's kernel
   [C × K]: 36 GEMMs (`fm_gemm_packed_f32`, each point's kernel packed once), with the
   transforms vectorised along the channels, which NHWC keeps contiguous (a partial last vector
   masked). The transforms' float32 rounding keeps
   the outputs within 1e-5 of their largest of the GEMM path's (TieredEngineTests).

   oneDNN 2.6 has Winograd only for AVX-512; on an AVX2-only Zen 3 its direct `jit:avx2`
   convolutions run FaceNet's stride-1 3×3 layers at 107-134 GFLOP/s at batch 32, which the
   runtime's trial weighs this against layer by layer. */
#include "fm_kernels.h"
#include "kernels_avx2.h"
#include "kernels_internal.h"
#include <math.h>
#include <pthread.h>

#define ALPHA 6 /* input tile side: 4 outputs + 3 taps − 1 */

int fm_winograd_available(void) { return fm_has_avx2(); }

size_t fm_winograd_tiles(const fm_winograd_shape *s) { return s->n * ((s->oh + 3) / 4) * ((s->ow + 3) / 4); }

/* G g Gᵀ for each input and output channel of an HWIO 3×3 kernel: u[point][c][k]. Done once
   per layer, in double. */
void fm_winograd_kernel(const float *w, size_t c, size_t k, float *u) {
    static const double G[ALPHA][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                       {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
    for (size_t ci = 0; ci < c; ci++)
        for (size_t ko = 0; ko < k; ko++) {
            double g[3][3], t[ALPHA][3];
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++) g[y][x] = w[((size_t)(y * 3 + x) * c + ci) * k + ko];
            for (int i = 0; i < ALPHA; i++)
                for (int x = 0; x < 3; x++) t[i][x] = G[i][0] * g[0][x] + G[i][1] * g[1][x] + G[i][2] * g[2][x];
            for (int i = 0; i < ALPHA; i++)
                for (int j = 0; j < ALPHA; j++)
                    u[((size_t)(i * ALPHA + j) * c + ci) * k + ko] = (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
        }
}

AVX2 static inline __m256 load(const float *p, int whole, __m256i mask) { return whole ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask); }

AVX2 static inline void store(float *p, __m256 v, int whole, __m256i mask) {
    if (whole) _mm256_storeu_ps(p, v); else _mm256_maskstore_ps(p, mask, v);
}

/* Bᵀ applied to six vectors `stride` apart in `in`, into six `stride` apart in `out`. */
AVX2 static inline void input_points(const __m256 *in, size_t si, __m256 *out, size_t so) {
    const __m256 d0 = in[0], d1 = in[si], d2 = in[2 * si], d3 = in[3 * si], d4 = in[4 * si], d5 = in[5 * si];
    const __m256 four = _mm256_set1_ps(4), five = _mm256_set1_ps(5), two = _mm256_set1_ps(2);
    out[0] = _mm256_fnmadd_ps(five, d2, _mm256_fmadd_ps(four, d0, d4));    /* 4d0 − 5d2 + d4 */
    const __m256 a = _mm256_fnmadd_ps(four, d2, d4), b = _mm256_fnmadd_ps(four, d1, d3);
    out[so] = _mm256_add_ps(a, b);                                       /* −4d1 − 4d2 + d3 + d4 */
    out[2 * so] = _mm256_sub_ps(a, b);                                   /* 4d1 − 4d2 − d3 + d4 */
    const __m256 c = _mm256_sub_ps(d4, d2), e = _mm256_mul_ps(two, _mm256_sub_ps(d3, d1));
    out[3 * so] = _mm256_add_ps(c, e);                                   /* −2d1 − d2 + 2d3 + d4 */
    out[4 * so] = _mm256_sub_ps(c, e);                                   /* 2d1 − d2 − 2d3 + d4 */
    out[5 * so] = _mm256_fnmadd_ps(five, d3, _mm256_fmadd_ps(four, d1, d5)); /* 4d1 − 5d3 + d5 */
}

/* Aᵀ applied to six vectors `stride` apart: four outputs. */
AVX2 static inline void output_points(const __m256 *in, size_t si, __m256 *out, size_t so) {
    const __m256 m0 = in[0], m1 = in[si], m2 = in[2 * si], m3 = in[3 * si], m4 = in[4 * si], m5 = in[5 * si];
    const __m256 s12 = _mm256_add_ps(m1, m2), d12 = _mm256_sub_ps(m1, m2);
    const __m256 s34 = _mm256_add_ps(m3, m4), d34 = _mm256_sub_ps(m3, m4);
    out[0] = _mm256_add_ps(_mm256_add_ps(m0, s12), s34);
    out[so] = _mm256_fmadd_ps(_mm256_set1_ps(2), d34, d12);
    out[2 * so] = _mm256_fmadd_ps(_mm256_set1_ps(4), s34, s12);
    out[3 * so] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8), d34, d12), m5);
}

/* Tile t of the output: its image and its top-left output pixel. */
static inline void tile_origin(const fm_winograd_shape *s, size_t t, size_t *image, long *oy, long *ox) {
    const size_t tw = (s->ow + 3) / 4, th = (s->oh + 3) / 4;
    *image = t / (th * tw);
    *oy = (long)(t % (th * tw) / tw) * 4;
    *ox = (long)(t % tw) * 4;
}

/* Bᵀ d B of tiles [t0, t1) into v[point][t − t0][c] (rows of `rows` tiles a point). */
AVX2 static void transform_input(const fm_winograd_shape *s, const float *x, size_t t0, size_t t1, size_t rows, float *v) {
    const size_t c = s->c;
    for (size_t t = t0; t < t1; t++) {
        size_t image;
        long oy, ox;
        tile_origin(s, t, &image, &oy, &ox);
        const float *src[ALPHA * ALPHA];
        for (int i = 0; i < ALPHA; i++)
            for (int j = 0; j < ALPHA; j++) {
                const long y = oy + i - s->pad_top, xx = ox + j - s->pad_left;
                const int inside = y >= 0 && y < (long)s->ih && xx >= 0 && xx < (long)s->iw;
                src[i * ALPHA + j] = inside ? x + ((image * s->ih + (size_t)y) * s->iw + (size_t)xx) * c : NULL;
            }
        float *dst = v + (t - t0) * c;
        for (size_t ch = 0; ch < c; ch += 8) {
            const int whole = ch + 8 <= c;
            const __m256i mask = lanes(c - ch);
            __m256 d[ALPHA * ALPHA], r[ALPHA * ALPHA], o[ALPHA * ALPHA];
            for (int p = 0; p < ALPHA * ALPHA; p++) d[p] = src[p] ? load(src[p] + ch, whole, mask) : _mm256_setzero_ps();
            for (int j = 0; j < ALPHA; j++) input_points(d + j, ALPHA, r + j, ALPHA); /* down the columns */
            for (int i = 0; i < ALPHA; i++) input_points(r + i * ALPHA, 1, o + i * ALPHA, 1); /* along the rows */
            for (int p = 0; p < ALPHA * ALPHA; p++) store(dst + (size_t)p * rows * c + ch, o[p], whole, mask);
        }
    }
}

/* Aᵀ m A of tiles [t0, t1) from m[point][t − t0][k], with the epilogue, into the output's pixels. */
AVX2 static void transform_output(const fm_winograd_shape *s, const float *m, size_t t0, size_t t1, size_t rows, float *y,
                                  const float *bias, float scale, int activation, float alpha) {
    const size_t k = s->k;
    for (size_t t = t0; t < t1; t++) {
        size_t image;
        long oy, ox;
        tile_origin(s, t, &image, &oy, &ox);
        const size_t height = s->oh - (size_t)oy < 4 ? s->oh - (size_t)oy : 4, width = s->ow - (size_t)ox < 4 ? s->ow - (size_t)ox : 4;
        float *out = y + ((image * s->oh + (size_t)oy) * s->ow + (size_t)ox) * k;
        const float *src = m + (t - t0) * k;
        for (size_t ch = 0; ch < k; ch += 8) {
            const int whole = ch + 8 <= k;
            const __m256i mask = lanes(k - ch);
            __m256 d[ALPHA * ALPHA], r[4 * ALPHA], o[16];
            for (int p = 0; p < ALPHA * ALPHA; p++) d[p] = load(src + (size_t)p * rows * k + ch, whole, mask);
            for (int j = 0; j < ALPHA; j++) output_points(d + j, ALPHA, r + j, ALPHA);
            for (int i = 0; i < 4; i++) output_points(r + i * ALPHA, 1, o + i * 4, 1);
            const __m256 b = bias ? load(bias + ch, whole, mask) : _mm256_setzero_ps();
            for (size_t i = 0; i < height; i++)
                for (size_t j = 0; j < width; j++)
                    store(out + (i * s->ow + j) * k + ch, finish(o[i * 4 + j], b, scale, activation, alpha), whole, mask);
        }
    }
}

void fm_winograd_run(const fm_winograd_shape *s, const float *x, const float *u, size_t t0, size_t t1, float *scratch, float *y,
                     const float *bias, float scale, int activation, float alpha) {
    const size_t rows = t1 - t0, c = s->c, k = s->k;
    float *v = scratch, *m = scratch + ALPHA * ALPHA * rows * c;
    transform_input(s, x, t0, t1, rows, v);
    const size_t point = fm_packed_floats(c, k);
    for (size_t p = 0; p < ALPHA * ALPHA; p++) fm_gemm_packed_f32(v + p * rows * c, c, rows, c, u + p * point, k, m + p * rows * k);
    transform_output(s, m, t0, t1, rows, y, bias, scale, activation, alpha);
}

/* Winograd F(4, 7) for float32 1×7 and 7×1 stride-1 convolutions (Block17's), in one dimension:
   ten consecutive input pixels along the line, transformed (Bᵀ d), times the transformed
   kernel (G g) point by point and transformed back (Aᵀ m), are four outputs: ten
   multiplications per input and output channel instead of 28, and on Block17's 8-pixel lines
   20 instead of the 44 taps inside the image that the GEMM path's line_conv.c multiplies.
   The matrices are Toom-Cook's for the points 0, ±1, ±2, ±1/2, 3/4, −5/4 and ∞, made in
   double from the points (the kernel's G g then in double too). Of the last pairs tried
   (`Benchmarks/winograd_points.py`, float32 sums over 128 channels) it has the least error on
   signed inputs and within 5% of the least on a ReLU's: 6.3e-6 and 5.3e-6 of the largest
   output, against 2.5e-5 and 1.6e-5 with ±3 (the direct sum's 4e-7, the one-dimensional
   F(4, 3)'s 2.3e-6 and 1.2e-6). */
#define LINE_OUT 4
#define LINE_TAPS 7
#define LINE_ALPHA (LINE_OUT + LINE_TAPS - 1)

/* G in double (the kernel transform runs in double); Aᵀ and Bᵀ as the float32 the transforms
   multiply by. */
static double line_g[LINE_ALPHA][LINE_TAPS];
static float line_at[LINE_OUT][LINE_ALPHA], line_bt[LINE_ALPHA][LINE_ALPHA];
static pthread_once_t line_once = PTHREAD_ONCE_INIT;

/* c[0..len] · (x − root): the coefficients, lowest first, grow by one. */
static void times_root(double *c, int len, double root) {
    c[len + 1] = 0;
    for (int i = len + 1; i > 0; i--) c[i] = c[i - 1] - root * c[i];
    c[0] = -root * c[0];
}

/* Aᵀ, G and Bᵀ of F(4, 7) by the Toom-Cook construction with a point at infinity: the finite
   point f's column of Aᵀ holds its powers, its row of G the powers over ∏(f − q) for the
   other finite points q, its row of Bᵀ the coefficients of ∏(x − q); ∞ contributes the last
   output's, the last tap's and the coefficients of ∏(x − q) over all finite points. */
static void make_line_matrices(void) {
    static const double points[LINE_ALPHA - 1] = {0, 1, -1, 2, -2, 0.5, -0.5, 0.75, -1.25};
    for (int p = 0; p < LINE_ALPHA; p++) {
        double poly[LINE_ALPHA] = {1};
        int len = 0;
        for (int q = 0; q < LINE_ALPHA - 1; q++)
            if (q != p) times_root(poly, len++, points[q]);
        for (int l = 0; l < LINE_ALPHA; l++) line_bt[p][l] = l <= len ? (float)poly[l] : 0;
        const int finite = p < LINE_ALPHA - 1;
        double norm = 1;
        for (int q = 0; finite && q < LINE_ALPHA - 1; q++)
            if (q != p) norm *= points[p] - points[q];
        for (int i = 0; i < LINE_OUT; i++) line_at[i][p] = finite ? (float)pow(points[p], i) : i == LINE_OUT - 1;
        for (int j = 0; j < LINE_TAPS; j++) line_g[p][j] = finite ? pow(points[p], j) / norm : j == LINE_TAPS - 1;
    }
}

/* Σ coefficient · d over the LINE_ALPHA vectors: a row of Bᵀ or Aᵀ. Straight through, zeros
   and all: skipping the zero coefficients, a branch each, was slower (the note). */
AVX2 static inline __m256 combine(const float *coefficients, const __m256 *d) {
    __m256 sum = _mm256_mul_ps(_mm256_set1_ps(coefficients[0]), d[0]);
#pragma GCC unroll 10
    for (int l = 1; l < LINE_ALPHA; l++) sum = _mm256_fmadd_ps(_mm256_set1_ps(coefficients[l]), d[l], sum);
    return sum;
}

size_t fm_line_winograd_tiles(const fm_line_shape *s) {
    const size_t along = s->vertical ? s->oh : s->ow, across = s->vertical ? s->ow : s->oh;
    return s->n * across * ((along + LINE_OUT - 1) / LINE_OUT);
}

void fm_line_winograd_kernel(const float *w, size_t c, size_t k, float *u) {
    pthread_once(&line_once, make_line_matrices);
    for (size_t ci = 0; ci < c; ci++)
        for (size_t ko = 0; ko < k; ko++)
            for (int p = 0; p < LINE_ALPHA; p++) {
                double sum = 0;
                for (int j = 0; j < LINE_TAPS; j++) sum += line_g[p][j] * w[((size_t)j * c + ci) * k + ko];
                u[((size_t)p * c + ci) * k + ko] = (float)sum;
            }
}

/* Tile t: its image, its first output's position along the line, and its position across. */
static inline void line_tile(const fm_line_shape *s, size_t t, size_t *image, long *along, size_t *across) {
    const size_t length = s->vertical ? s->oh : s->ow, width = s->vertical ? s->ow : s->oh;
    const size_t per = (length + LINE_OUT - 1) / LINE_OUT;
    if (s->vertical) { /* tiles (image, position down, column): neighbours side by side */
        *across = t % width;
        *along = (long)(t / width % per) * LINE_OUT;
        *image = t / width / per;
    } else { /* tiles (image, row, position along) */
        *along = (long)(t % per) * LINE_OUT;
        *across = t / per % width;
        *image = t / per / width;
    }
}

/* The pixel at `along` on line `across` of `image`, in a map of `ih` × `iw` pixels of `c`. */
static inline size_t line_pixel(const fm_line_shape *s, size_t image, size_t ih, size_t iw, size_t c, long along, size_t across) {
    return ((image * ih + (s->vertical ? (size_t)along : across)) * iw + (s->vertical ? across : (size_t)along)) * c;
}

/* Bᵀ d of tiles [t0, t1) into v[point][t − t0][c]. */
AVX2 static void line_transform_input(const fm_line_shape *s, const float *x, size_t t0, size_t t1, size_t rows, float *v) {
    const size_t c = s->c, length = s->vertical ? s->ih : s->iw;
    for (size_t t = t0; t < t1; t++) {
        size_t image, across;
        long along;
        line_tile(s, t, &image, &along, &across);
        const float *src[LINE_ALPHA];
        for (int l = 0; l < LINE_ALPHA; l++) {
            const long at = along + l - s->pad;
            src[l] = at >= 0 && at < (long)length ? x + line_pixel(s, image, s->ih, s->iw, c, at, across) : NULL;
        }
        float *dst = v + (t - t0) * c;
        for (size_t ch = 0; ch < c; ch += 8) {
            const int whole = ch + 8 <= c;
            const __m256i mask = lanes(c - ch);
            __m256 d[LINE_ALPHA];
            for (int l = 0; l < LINE_ALPHA; l++) d[l] = src[l] ? load(src[l] + ch, whole, mask) : _mm256_setzero_ps();
            for (int p = 0; p < LINE_ALPHA; p++) store(dst + (size_t)p * rows * c + ch, combine(line_bt[p], d), whole, mask);
        }
    }
}

/* Aᵀ m of tiles [t0, t1) from m[point][t − t0][k], with the epilogue, into the output's pixels. */
AVX2 static void line_transform_output(const fm_line_shape *s, const float *m, size_t t0, size_t t1, size_t rows, float *y,
                                       const float *bias, float scale, int activation, float alpha) {
    const size_t k = s->k, length = s->vertical ? s->oh : s->ow;
    for (size_t t = t0; t < t1; t++) {
        size_t image, across;
        long along;
        line_tile(s, t, &image, &along, &across);
        const size_t count = length - (size_t)along < LINE_OUT ? length - (size_t)along : LINE_OUT;
        float *out[LINE_OUT];
        for (size_t i = 0; i < count; i++) out[i] = y + line_pixel(s, image, s->oh, s->ow, k, along + (long)i, across);
        const float *src = m + (t - t0) * k;
        for (size_t ch = 0; ch < k; ch += 8) {
            const int whole = ch + 8 <= k;
            const __m256i mask = lanes(k - ch);
            __m256 d[LINE_ALPHA];
            for (int p = 0; p < LINE_ALPHA; p++) d[p] = load(src + (size_t)p * rows * k + ch, whole, mask);
            const __m256 b = bias ? load(bias + ch, whole, mask) : _mm256_setzero_ps();
            for (size_t i = 0; i < count; i++)
                store(out[i] + ch, finish(combine(line_at[i], d), b, scale, activation, alpha), whole, mask);
        }
    }
}

void fm_line_winograd_run(const fm_line_shape *s, const float *x, const float *u, size_t t0, size_t t1, float *scratch, float *y,
                          const float *bias, float scale, int activation, float alpha) {
    pthread_once(&line_once, make_line_matrices);
    const size_t rows = t1 - t0, c = s->c, k = s->k;
    float *v = scratch, *m = scratch + LINE_ALPHA * rows * c;
    line_transform_input(s, x, t0, t1, rows, v);
    const size_t point = fm_packed_floats(c, k);
    for (size_t p = 0; p < LINE_ALPHA; p++) fm_gemm_packed_f32(v + p * rows * c, c, rows, c, u + p * point, k, m + p * rows * k);
    line_transform_output(s, m, t0, t1, rows, y, bias, scale, activation, alpha);
}
