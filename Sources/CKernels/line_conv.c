/* Float32 convolutions whose window is one line of taps — 1×k or k×1, stride 1, no dilation
   (Inception-ResNet's 1×7/7×1 and 1×3/3×1) — over NHWC activations, in AVX2 + FMA, without
   im2col: each output pixel's taps read in place (along a row of NHWC they are one contiguous
   run of pixels, down a column one pixel a row apart), and the taps that fall on the padding
   skipped, not multiplied by laid-out zeros. On Block17's 8-pixel rows a 1×7 window has 44
   taps inside the image out of 56, so im2col's product does 27% more multiplications.

   The output pixels at one position along the line (a column of output pixels for 1×k, a row
   for k×1) share their taps inside the image: they are cut into register blocks of up to six,
   and a block runs like fm_gemm_f32's (six rows by 16 columns of accumulators, one kernel row
   at a time), its six rows read through a pointer each. The depth goes in pieces of whole
   taps, about 256 kernel rows (a 16-column block of them, 16 KB, stays in L1 while the blocks
   of pixels pass over it; the later pieces add to the output, and the last a pixel has adds
   the bias and applies the activation in its store), the columns in panels whose piece fits
   half the L2. Without the pieces (each block through all its taps at once) the
   1×7 at batch 32 ran at 118 GFLOP/s of its real multiplications, with them 132; the 7×1 at
   115 and 110, within the noise (/tmp harness, kernel and activations in cache, one process
   each, medians of 60 runs). In the model at batch 32 (`bench
   --profile`, five alternating processes): Block17's ten 1×7s 37.5 → 28.8 ms against im2col +
   dnnl_sgemm (the trial keeps this over oneDNN's jit:avx2 now), the 7×1s 35.4 → 31.1. */
#include "fm_kernels.h"
#include "kernels_avx2.h"
#include "kernels_internal.h"

#define LINE_ROWS 6

int fm_line_conv_available(void) { return fm_has_avx2(); }

/* Pixels sharing a position along the line (all images), and the line's output length. */
static size_t group_size(const fm_line_shape *s) { return s->n * (s->vertical ? s->ow : s->oh); }
static size_t positions(const fm_line_shape *s) { return s->vertical ? s->oh : s->ow; }
static size_t blocks_per_group(const fm_line_shape *s) { return (group_size(s) + LINE_ROWS - 1) / LINE_ROWS; }

size_t fm_line_conv_tasks(const fm_line_shape *s) { return positions(s) * blocks_per_group(s); }

/* R rows (pointers to the first valid tap's input pixel) by the 16 columns from c (masked past
   width), through `taps` taps `step` floats apart and their c channels each; w at that tap's
   first kernel row. accumulate: add to y instead of setting it; f: finish the sums with it. */
AVX2 __attribute__((always_inline)) static inline void block(const int R, const int masked, const float *const *x, size_t step,
                                                             size_t taps, size_t channels, const float *w, size_t n, size_t c,
                                                             size_t width, float *const *y, int accumulate, const fm_line_finish *f) {
    const __m256i m0 = masked ? lanes(width - c) : _mm256_set1_epi32(-1);
    const __m256i m1 = masked ? lanes(width - c > 8 ? width - c - 8 : 0) : _mm256_set1_epi32(-1);
    __m256 acc[LINE_ROWS][2];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        if (!accumulate) {
            acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        } else {
            acc[r][0] = masked ? _mm256_maskload_ps(y[r] + c, m0) : _mm256_loadu_ps(y[r] + c);
            acc[r][1] = masked ? _mm256_maskload_ps(y[r] + c + 8, m1) : _mm256_loadu_ps(y[r] + c + 8);
        }
    }
    const float *wi = w + c;
    for (size_t t = 0; t < taps; t++) {
        const float *xt[LINE_ROWS];
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) xt[r] = x[r] + t * step;
        for (size_t i = 0; i < channels; i++, wi += n) {
            const __m256 w0 = masked ? _mm256_maskload_ps(wi, m0) : _mm256_loadu_ps(wi);
            const __m256 w1 = masked ? _mm256_maskload_ps(wi + 8, m1) : _mm256_loadu_ps(wi + 8);
#pragma GCC unroll 6
            for (int r = 0; r < R; r++) {
                const __m256 a = _mm256_broadcast_ss(xt[r] + i);
                acc[r][0] = _mm256_fmadd_ps(a, w0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(a, w1, acc[r][1]);
            }
        }
    }
    if (f) {
        const __m256 b0 = f->bias ? (masked ? _mm256_maskload_ps(f->bias + c, m0) : _mm256_loadu_ps(f->bias + c)) : _mm256_setzero_ps();
        const __m256 b1 = f->bias ? (masked ? _mm256_maskload_ps(f->bias + c + 8, m1) : _mm256_loadu_ps(f->bias + c + 8)) : _mm256_setzero_ps();
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            acc[r][0] = finish(acc[r][0], b0, f->scale, f->activation, f->alpha);
            acc[r][1] = finish(acc[r][1], b1, f->scale, f->activation, f->alpha);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        if (masked) {
            _mm256_maskstore_ps(y[r] + c, m0, acc[r][0]);
            _mm256_maskstore_ps(y[r] + c + 8, m1, acc[r][1]);
        } else {
            _mm256_storeu_ps(y[r] + c, acc[r][0]);
            _mm256_storeu_ps(y[r] + c + 8, acc[r][1]);
        }
    }
}

AVX2 __attribute__((always_inline)) static inline void columns(const int R, const float *const *x, size_t step, size_t taps,
                                                               size_t channels, const float *w, size_t n, size_t c0, size_t c1,
                                                               float *const *y, int accumulate, const fm_line_finish *f) {
    size_t c = c0;
    for (; c + 16 <= c1; c += 16) block(R, 0, x, step, taps, channels, w, n, c, c1, y, accumulate, f);
    if (c < c1) block(R, 1, x, step, taps, channels, w, n, c, c1, y, accumulate, f);
}

/* Task `task`'s pixels (a block of a group, the groups' blocks near equal) through taps
   [a, b) of the window (those of them inside the image), columns [c0, c1); the first of
   them inside the image sets y, the others add to it, the last finishes it with `f`. */
AVX2 static void task_piece(const fm_line_shape *s, const float *x, const float *w, float *y, size_t task, size_t a, size_t b,
                            size_t c0, size_t c1, const fm_line_finish *f) {
    const size_t per = blocks_per_group(s), group = group_size(s), other = group / s->n, p = task / per, blk = task % per;
    const size_t first = group * blk / per, last = group * (blk + 1) / per;
    const size_t length = s->vertical ? s->ih : s->iw;
    /* Taps [t0, t1) land inside the image at position p. */
    const long start = (long)p - s->pad, end = (long)length - start;
    const size_t t0 = start < 0 ? (size_t)-start : 0;
    const size_t t1 = end < (long)s->taps ? (size_t)(end > 0 ? end : 0) : s->taps;
    const size_t from = a > t0 ? a : t0, to = b < t1 ? b : t1;
    /* A stride-1 SAME or VALID window has a tap inside the image at every position (its
       centre, or all of them): a pixel's first piece with one sets y. */
    if (from >= to) return;
    const size_t step = s->vertical ? s->iw * s->c : s->c, along = (size_t)(start + (long)from);
    const float *rows[LINE_ROWS];
    float *outs[LINE_ROWS];
    for (size_t g = first; g < last; g++) {
        /* Pixel q across the line of image `image`; its input under tap `from` is along the
           line at start + from. */
        const size_t image = g / other, q = g % other;
        rows[g - first] = x + ((image * s->ih + (s->vertical ? along : q)) * s->iw + (s->vertical ? q : along)) * s->c;
        outs[g - first] = y + ((image * s->oh + (s->vertical ? p : q)) * s->ow + (s->vertical ? q : p)) * s->k;
    }
    const float *wt = w + from * s->c * s->k;
    const int accumulate = from > t0;
    if (to < t1) f = NULL;
    switch (last - first) {
    case 1: columns(1, rows, step, to - from, s->c, wt, s->k, c0, c1, outs, accumulate, f); break;
    case 2: columns(2, rows, step, to - from, s->c, wt, s->k, c0, c1, outs, accumulate, f); break;
    case 3: columns(3, rows, step, to - from, s->c, wt, s->k, c0, c1, outs, accumulate, f); break;
    case 4: columns(4, rows, step, to - from, s->c, wt, s->k, c0, c1, outs, accumulate, f); break;
    case 5: columns(5, rows, step, to - from, s->c, wt, s->k, c0, c1, outs, accumulate, f); break;
    default: columns(6, rows, step, to - from, s->c, wt, s->k, c0, c1, outs, accumulate, f); break;
    }
}

void fm_line_conv_f32(const fm_line_shape *s, const float *x, const float *w, float *y, size_t t0, size_t t1, size_t c0,
                      size_t c1, const fm_line_finish *finish) {
    /* Taps a piece: a 16-column block of the kernel through them in 16 KB (the L1 keeps it
       while the blocks of pixels pass over it); columns a panel: the piece in half the L2. */
    size_t piece = 256 / s->c;
    if (piece < 1) piece = 1;
    size_t panel = fm_gemm_panel_bytes() / (piece * s->c * sizeof(float)) / 16 * 16;
    if (panel < 16) panel = 16;
    for (size_t p0 = c0; p0 < c1; p0 += panel) {
        const size_t p1 = p0 + panel < c1 ? p0 + panel : c1;
        for (size_t a = 0; a < s->taps; a += piece)
            for (size_t task = t0; task < t1; task++) task_piece(s, x, w, y, task, a, a + piece < s->taps ? a + piece : s->taps, p0, p1,
                                                         finish);
    }
}
