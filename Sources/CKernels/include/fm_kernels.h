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

#endif
