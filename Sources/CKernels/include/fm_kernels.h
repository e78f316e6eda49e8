#ifndef FM_KERNELS_H
#define FM_KERNELS_H
#include <stddef.h>
#include <stdint.h>

/* Inner loops that Swift cannot vectorise on the x86-64 baseline (rounding needs SSE4.1,
   min/max must ignore NaN ordering): AVX-512 when the CPU has it, portable C otherwise. */

/* The smallest and largest of n floats, folded into *lo and *hi. */
void fm_min_max(const float *x, size_t n, float *lo, float *hi);

/* q[i] = clamp(rint(x[i] * inverse_scale) + zero_point, 0, top), as unsigned bytes. */
void fm_quantize_u8(const float *x, size_t n, float inverse_scale, float zero_point, float top, uint8_t *q);

/* q[i] = clamp(rint(x[i] * inverse_scale), -127, 127), as signed bytes (symmetric). */
void fm_quantize_s8(const float *x, size_t n, float inverse_scale, int8_t *q);

/* One pass over `rows` rows of `channels` values after a GEMM or convolution, written to y (rows
   `stride` apart):
   y = act(scale * (acc * column_scale[c] + bias[c]) + residual[r][c])
   where acc is read from src (rows `src_stride` apart): floats, or, with column_scale, int32
   accumulators. src may be y itself (the pass in place) or, for a layer that writes its channels
   into a wider tensor (a concat's), a buffer of its own. column_scale, bias and residual (rows
   `channels` apart) may be NULL. activation: FM_EPI_* (others are left to the caller).
   With range, also the smallest and largest value written (NaN ignored), for quantizing y next. */
enum { FM_EPI_LINEAR = 0, FM_EPI_RELU = 1, FM_EPI_RELU6 = 2, FM_EPI_LEAKY = 3 };
void fm_epilogue(float *y, size_t rows, size_t channels, size_t stride, const void *src, size_t src_stride,
                 const float *column_scale, const float *bias, float scale, const float *residual, int activation, float alpha,
                 float range[2]);

/* y[c] = w_scale[c] * sum_k a[k] * w[k][c] for the n columns of an int8 [k, n] kernel (a
   column block of a layer's kernel, contiguous): a matrix-vector product for one row of float
   activations, reading the int8 kernel once (weight-only int8: the activations stay float). */
void fm_gemv_s8(const float *a, size_t k, size_t n, const int8_t *w, const float *w_scale, float *y);

/* bfloat16 bits of n floats, rounded to nearest even (NaN stays NaN). */
void fm_to_bf16(const float *x, size_t n, uint16_t *y);

/* Copies rows of `width` floats, `src_stride` apart, into rows `dst_stride` apart: one input of a
   concatenation along the last axis, without a call per row. */
void fm_copy_rows(float *dst, size_t dst_stride, const float *src, size_t src_stride, size_t width, size_t rows);

/* Gives the heap's free pages back to the system (glibc's malloc_trim): after a batch size's
   first run, whose im2col and GEMM buffers are freed when the oneDNN primitives take over. */
void fm_release_free_heap(void);

/* The L2 cache of one core, as sysconf reports it (2 MB if it says nothing). */
size_t fm_l2_cache_bytes(void);

/* out[ch] = the largest x[(i * row_stride) + (j * n) + ch] over a window of rows by cols pixels
   (rows, cols >= 1): one output pixel of a max pool (a global one: the image as one row of
   pixels), each channel loaded once per window pixel and stored once. */
void fm_window_max(float *out, const float *x, size_t n, size_t row_stride, size_t rows, size_t cols);

/* A product with few rows, where reading the kernel is the work: y[r][c] = sum over i < k of
   x[r][i] * w[i][c] for r < m and all n columns of a float32 [k, n] row-major kernel; x has m
   rows ldx floats apart (a slice of longer rows: a thread's share of the sum), y m rows of n.
   The kernel is read eight rows at a time across all columns (eight sequential reads), each
   element feeding every row of x while loaded: one row in 256-column register blocks, more in
   blocks of up to twelve rows by 32 columns, prefetched 16 KB ahead. */
void fm_gemm_rows_f32(const float *x, size_t ldx, size_t m, size_t k, const float *w, size_t n, float *y);

/* The same product for any number of rows, columns [c0, c1) of y (m rows of n), on one
   thread (callers split the rows or the columns): no JIT, so nothing to make before the first
   call (oneDNN's dnnl_sgemm generates 3.3 MB of kernels in 30-44 ms at its first). On AVX2
   from 24 rows it packs each piece of the kernel it multiplies (128 columns by 256 rows) into
   a buffer of the thread's, kept from its first call. */
void fm_gemm_f32(const float *x, size_t ldx, size_t m, size_t k, const float *w, size_t n, float *y, size_t c0, size_t c1);

/* The same product for a few dozen rows, columns [c0, c1) of y only (a thread's share; c0 a
   multiple of 16): the kernel read in panels of 512 columns down its whole depth, 32 rows at
   a time, so that each piece read feeds every row of x from the cache. y has m rows of n. */
void fm_gemm_columns_f32(const float *x, size_t ldx, size_t m, size_t k, const float *w, size_t n, float *y, size_t c0,
                         size_t c1);

/* A kernel laid out once for fm_gemm_packed_f32 (the layout fm_gemm_f32 packs each call into on
   AVX2; kernels_internal.h): for kernels the runtime owns a copy of anyway, Winograd's
   transformed ones. Needs AVX2 + FMA (fm_packed_available). */
int fm_packed_available(void);

/* The floats of a packed [k, n] kernel: k × n rounded up to 16 columns. */
size_t fm_packed_floats(size_t k, size_t n);

/* The rows of a packed kernel's piece. */
size_t fm_pack_depth(void);

/* Packs a row-major [k, n] kernel into `packed` (fm_packed_floats(k, n) floats, 32-byte aligned).
   It goes in pieces of fm_pack_depth() rows: rows [k0, k0 + kb) with k0 a multiple of that may
   be packed alone, at packed + fm_packed_floats(k0, n). */
void fm_pack_kernel(const float *w, size_t k, size_t n, float *packed);

/* y[m×n] = x[m×k] · w[k×n] on this thread, w packed by fm_pack_kernel, x rows ldx apart
   (fm_gemm_packed_columns_f32 over all the columns). */
void fm_gemm_packed_f32(const float *x, size_t ldx, size_t m, size_t k, const float *packed, size_t n, float *y);

/* Columns [c0, c1) (c0 a multiple of 16) of y[m×n] = x[m×k] · w[k×n] on this thread, w packed
   by fm_pack_kernel: panels of 512 columns, each through the depth a packed piece at a time
   (AVX2 + FMA). */
void fm_gemm_packed_columns_f32(const float *x, size_t ldx, size_t m, size_t k, const float *packed, size_t n, float *y, size_t c0,
                                size_t c1);

/* Winograd F(4×4, 3×3) for a float32 3×3 stride-1 convolution (winograd.c): the geometry, NHWC. */
typedef struct {
    size_t n, ih, iw, c, oh, ow, k;
    long pad_top, pad_left;
} fm_winograd_shape;

/* True when the CPU has AVX2 and FMA, which the transforms are written in. */
int fm_winograd_available(void);

/* The number of 4×4 output tiles, all images. */
size_t fm_winograd_tiles(const fm_winograd_shape *s);

/* The transformed kernel, 36 × c × k floats, of an HWIO [3, 3, c, k] one. */
void fm_winograd_kernel(const float *w, size_t c, size_t k, float *u);

/* Output tiles [t0, t1) on this thread: y = act(scale · (conv(x) + bias)) (activation FM_EPI_*,
   bias may be NULL), with 36 × (t1 − t0) × (c + k) floats of scratch; u is the transformed
   kernel with each point's [c, k] packed by fm_pack_kernel, fm_packed_floats(c, k) floats apart. */
void fm_winograd_run(const fm_winograd_shape *s, const float *x, const float *u, size_t t0, size_t t1, float *scratch, float *y,
                     const float *bias, float scale, int activation, float alpha);

/* A float32 convolution without padding (VALID), any window and stride, no dilation
   (window_conv.c): the geometry, NHWC. */
typedef struct {
    size_t n, ih, iw, c, oh, ow, k, kh, kw, sh, sw;
} fm_window_shape;

/* True when the CPU has AVX2 and FMA, which the kernel is written in. */
int fm_window_conv_available(void);

/* Floats of the packing buffer fm_window_conv_f32 takes (256 KB). */
size_t fm_window_conv_buffer_floats(void);

/* Floats of the kernel laid out once for the convolution (fm_window_pack_kernel): the HWIO
   kernel's kh·kw·c rows, the columns rounded up to 16. */
size_t fm_window_packed_floats(const fm_window_shape *s);

/* Lays out the HWIO kernel w as fm_window_conv_f32 multiplies it (its pieces of each window
   row's kernel rows, packed in 16-column strips), into `packed` (fm_window_packed_floats,
   32-byte aligned): what every call would otherwise pack on each thread. */
void fm_window_pack_kernel(const fm_window_shape *s, const float *w, float *packed);

/* Output pixels [p0, p1) (all images, in order) and channels [c0, c1) (c0 a multiple of 16)
   of y = conv(x, w), w HWIO, on this thread: the plain sums, im2col's product without im2col
   (the caller's epilogue follows). The kernel is `packed` (fm_window_pack_kernel) or, where
   that is NULL, w, packed as it goes into `buffer` (fm_window_conv_buffer_floats, 32-byte
   aligned) of the thread's own. */
void fm_window_conv_f32(const fm_window_shape *s, const float *x, const float *w, const float *packed, float *y, size_t p0, size_t p1,
                        size_t c0, size_t c1, float *buffer);

/* A float32 convolution whose window is one line of taps, 1×k or k×1, stride 1, no dilation
   (line_conv.c): the geometry, NHWC; pad is the padding before the line's first pixel. */
typedef struct {
    size_t n, ih, iw, c, oh, ow, k, taps;
    int vertical; /* 1: a k×1 window (taps down a column), 0: 1×k (along a row) */
    long pad;
} fm_line_shape;

/* True when the CPU has AVX2 and FMA, which the kernel is written in. */
int fm_line_conv_available(void);

/* The number of tasks (register blocks of output pixels sharing their taps inside the image). */
size_t fm_line_conv_tasks(const fm_line_shape *s);

/* What the last tap's store applies: y = act(scale · (sum + bias)) (activation FM_EPI_*, bias
   may be NULL). */
typedef struct {
    const float *bias;
    float scale;
    int activation;
    float alpha;
} fm_line_finish;

/* Tasks [t0, t1) of y = conv(x, w), output channels [c0, c1) (c0 a multiple of 16), on this
   thread; w HWIO ([taps, c, k]). Taps on the padding are skipped. finish NULL: the plain sums
   (the caller's epilogue follows). */
void fm_line_conv_f32(const fm_line_shape *s, const float *x, const float *w, float *y, size_t t0, size_t t1, size_t c0,
                      size_t c1, const fm_line_finish *finish);

/* Winograd F(4, 7) for a float32 1×7 or 7×1 stride-1 convolution (winograd.c; taps 7, AVX2 +
   FMA as fm_winograd_available says): a tile is four consecutive outputs along the line, and
   each of the ten points a [c, k] product. */
enum { FM_LINE_WINOGRAD_POINTS = 10 };

/* The number of tiles, all images. */
size_t fm_line_winograd_tiles(const fm_line_shape *s);

/* The transformed kernel, 10 × c × k floats, of an HWIO [1, 7, c, k] or [7, 1, c, k] one. */
void fm_line_winograd_kernel(const float *w, size_t c, size_t k, float *u);

/* Tiles [t0, t1) on this thread, as fm_winograd_run (10 × (t1 − t0) × (c + k) floats of scratch;
   each point's [c, k] of u packed by fm_pack_kernel). */
void fm_line_winograd_run(const fm_line_shape *s, const float *x, const float *u, size_t t0, size_t t1, float *scratch, float *y,
                          const float *bias, float scale, int activation, float alpha);

/* The float32 multiply-add ceiling (fma_peak.c): the vector width the chains run on (16 with
   AVX-512, 8 with AVX2 + FMA, 0 without), and `iterations` rounds of FM_FMA_CHAINS independent
   FMA chains on the calling thread, FM_FMA_CHAINS × lanes × 2 FLOPs a round; returns their sum,
   for the caller to keep so the work is not optimised away. */
#define FM_FMA_CHAINS 12
int fm_fma_lanes(void);
float fm_fma_chains(long iterations);

/* The CPUs this process may run on (its affinity mask: `taskset`, a cpuset), or 0 when it
   cannot be read. */
int fm_available_cpus(void);

/* 1 when the calling thread may run on exactly the `count` CPUs `cpus` (repeats allowed), else
   0 (or when its mask cannot be read): whether libgomp's binding of the initial thread took. */
int fm_thread_runs_on_exactly(const int *cpus, size_t count);

/* The whole CPUs the CPU quota of this process's cgroups allows (cgroup v1 cpu.cfs_quota_us over
   cpu.cfs_period_us, v2 cpu.max; its own cgroup's and its parents', the least; rounded down, at
   least 1), or 0 when none is set or none can be read. `root` prefixes "proc/self/cgroup" and
   "sys/fs/cgroup": "/" but for tests. */
int fm_cgroup_cpus(const char *root);

#endif
