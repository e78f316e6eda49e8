#ifndef FMODEL_KERNELS_INTERNAL_H
#define FMODEL_KERNELS_INTERNAL_H
/* What kernels.c (dispatch, the portable loops, AVX-512) and kernels_avx2.c (AVX2 + FMA, for
   CPUs without AVX-512, such as AMD's Zen 3) share. Not part of the module's interface. */
#include <stddef.h>
#include <stdint.h>

/* True when the CPU has AVX2 and FMA (checked once). */
int fm_has_avx2(void);

/* Half the L2 cache (1 MB where sysconf does not say): the bytes of kernel a product keeps
   there while its blocks of rows pass over it. */
size_t fm_gemm_panel_bytes(void);

/* The portable loops: the fallbacks, and the tails of the vector loops. */
void fm_min_max_scalar(const float *x, size_t n, float *lo, float *hi);
void fm_quantize_u8_scalar(const float *x, size_t n, float inverse, float zero, float top, uint8_t *q);
void fm_quantize_s8_scalar(const float *x, size_t n, float inverse, int8_t *q);
void fm_epilogue_row_scalar(float *row, const void *in, size_t c0, size_t channels, const float *column_scale, const float *bias,
                            float scale, const float *res, int activation, float alpha, float *lo, float *hi);
void fm_gemv_s8_scalar(const float *a, size_t k, size_t n, const int8_t *w, const float *w_scale, size_t c0, float *y);

/* Kernel rows [k0, k0 + kb) and columns [0, width) of w (rows n floats apart) times all m rows
   of x (rows ldx apart), into y (rows n apart; accumulated unless k0 is 0), register block by
   register block; the first block of rows prefetches the kernel `ahead` rows on (0: not). */
typedef void fm_rows_blocks_fn(const float *x, size_t ldx, size_t m, size_t k, size_t k0, size_t kb, const float *w,
                               size_t n, size_t width, float *y, size_t ahead);

/* AVX2 + FMA versions of the public kernels (same arguments). */
void fm_avx2_min_max(const float *x, size_t n, float *lo, float *hi);
void fm_avx2_quantize_u8(const float *x, size_t n, float inverse, float zero, float top, uint8_t *q);
void fm_avx2_quantize_s8(const float *x, size_t n, float inverse, int8_t *q);
void fm_avx2_epilogue(float *y, size_t rows, size_t channels, size_t stride, const void *src, size_t src_stride,
                      const float *column_scale, const float *bias, float scale, const float *residual, int activation, float alpha,
                      float range[2]);
void fm_avx2_gemv_s8(const float *a, size_t k, size_t n, const int8_t *w, const float *w_scale, float *y);
void fm_avx2_window_max(float *out, const float *x, size_t n, size_t row_stride, size_t rows, size_t cols);
/* fm_gemm_rows_f32 for one row: y[c] = sum over i < k of a[i] * w[i][c]. */
void fm_avx2_gemv_f32(const float *a, size_t k, size_t n, const float *w, float *y);
fm_rows_blocks_fn fm_avx2_rows_blocks;

/* The packed kernel (kernels_avx2.c): a [k, n] kernel as depth pieces of FM_PACK_DEPTH rows
   (the last may be shorter), each piece as strips of 16 columns, kb × 16 floats a strip, in
   order, the last strip's columns past n zero; a piece of kb rows is kb × round16(n) floats,
   32-byte aligned. fm_avx2_pack lays out kernel rows [0, kb) and columns [0, width) of w (rows
   n floats apart) so. */
#define FM_PACK_DEPTH 256
/* n rounded up to whole strips. */
static inline size_t round16(size_t n) { return (n + 15) / 16 * 16; }
#define FM_PACK_ROWS 144
void fm_avx2_pack(const float *w, size_t n, size_t kb, size_t width, float *strips);
/* Multiplies such a piece by m (at most FM_PACK_ROWS) rows of x given by pointers (each at the
   piece's first value of its row, kb floats) into columns [0, width) of m consecutive rows of
   y (n apart; added to y if `accumulate`). */
void fm_avx2_packed_rows(const float *const *rows, size_t m, size_t kb, const float *strips, size_t width, float *y, size_t n,
                         int accumulate);
/* fm_avx2_packed_rows, on AVX-512 where the CPU has it (kernels.c), each output summed in the
   same order. */
void fm_packed_rows(const float *const *rows, size_t m, size_t kb, const float *strips, size_t width, float *y, size_t n,
                    int accumulate);
#endif
