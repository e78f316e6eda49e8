/* Float32 convolutions without padding (VALID), any window and stride, no dilation, over NHWC
   activations, in AVX2 + FMA, without im2col: FaceNet's strided 3×3 reductions (Conv2d_4b,
   Mixed_6a's and Mixed_7a's) and, on a first run, its VALID stride-1 3×3s.

   With no padding every tap of every output pixel is inside the image, and under one row of
   the window (dy) a pixel's taps are one contiguous run of kW·C floats of NHWC input (its kW
   input pixels side by side along the row). So the product over kernel rows [dy·kW·C + o,
   dy·kW·C + o + kb) reads each output pixel's inputs in place, through a pointer a row, as
   fm_gemm_f32 reads im2col's rows: the kernel's piece packed into 16-column strips
   (fm_avx2_pack), up to FM_PACK_ROWS pixels at a time over each strip (fm_packed_rows).
   im2col wrote every input value kH·kW/(sH·sW) times (2.25 for 3×3 stride 2) and the product
   read it back; here the reads come from the input itself. */
#include "fm_kernels.h"
#include "kernels_internal.h"

/* Columns packed at a time (the buffer: FM_PACK_DEPTH × this, 256 KB): every layer of the
   model in one panel, so that the input is read once a piece of the depth. */
#define PANEL 256

int fm_window_conv_available(void) { return fm_has_avx2(); }

size_t fm_window_conv_buffer_floats(void) { return FM_PACK_DEPTH * PANEL; }

/* Near-equal pieces of at most FM_PACK_DEPTH kernel rows within a run of `run` rows. */
static size_t pieces_of(size_t run) { return (run + FM_PACK_DEPTH - 1) / FM_PACK_DEPTH; }

size_t fm_window_packed_floats(const fm_window_shape *s) { return s->kh * s->kw * s->c * round16(s->k); }

void fm_window_pack_kernel(const fm_window_shape *s, const float *w, float *packed) {
    const size_t run = s->kw * s->c, pieces = pieces_of(run);
    for (size_t dy = 0; dy < s->kh; dy++)
        for (size_t piece = 0; piece < pieces; piece++) {
            const size_t o0 = run * piece / pieces, o1 = run * (piece + 1) / pieces;
            fm_avx2_pack(w + (dy * run + o0) * s->k, s->k, o1 - o0, s->k, packed + (dy * run + o0) * round16(s->k));
        }
}

void fm_window_conv_f32(const fm_window_shape *s, const float *x, const float *w, const float *packed, float *y, size_t p0, size_t p1,
                        size_t c0, size_t c1, float *buffer) {
    const size_t run = s->kw * s->c, pieces = pieces_of(run), pixels = s->oh * s->ow;
    const float *rows[FM_PACK_ROWS];
    for (size_t panel = c0; panel < c1; panel += PANEL) {
        const size_t width = c1 - panel < PANEL ? c1 - panel : PANEL;
        for (size_t dy = 0; dy < s->kh; dy++)
            for (size_t piece = 0; piece < pieces; piece++) {
                /* Pieces of near-equal depth within the run of dy's kernel rows. */
                const size_t o0 = run * piece / pieces, o1 = run * (piece + 1) / pieces, kb = o1 - o0;
                const float *strips = buffer;
                if (packed)
                    strips = packed + (dy * run + o0) * round16(s->k) + panel * kb; /* the panel's first strip */
                else
                    fm_avx2_pack(w + (dy * run + o0) * s->k + panel, s->k, kb, width, buffer);
                for (size_t q0 = p0; q0 < p1; q0 += FM_PACK_ROWS) {
                    const size_t count = p1 - q0 < FM_PACK_ROWS ? p1 - q0 : FM_PACK_ROWS;
                    for (size_t r = 0; r < count; r++) {
                        const size_t p = q0 + r, image = p / pixels, oy = p % pixels / s->ow, ox = p % s->ow;
                        rows[r] = x + ((image * s->ih + oy * s->sh + dy) * s->iw + ox * s->sw) * s->c + o0;
                    }
                    fm_packed_rows(rows, count, kb, strips, width, y + q0 * s->k + panel, s->k, dy > 0 || piece > 0);
                }
            }
    }
}
