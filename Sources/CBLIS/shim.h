#ifndef FMODEL_CBLIS_SHIM_H
#define FMODEL_CBLIS_SHIM_H
#include <stdint.h>

/* The two BLIS entry points fmodel calls, declared here rather than through blis.h (tens of
   thousands of lines of macros; its path is architecture-specific on Debian). Debian's libblis
   0.9.0 uses 64-bit dim_t/inc_t (BLIS_INT_TYPE_SIZE 64) and an int-sized trans_t. */
void bli_sgemm(int transa, int transb, int64_t m, int64_t n, int64_t k, float *alpha,
               float *a, int64_t rs_a, int64_t cs_a, float *b, int64_t rs_b, int64_t cs_b,
               float *beta, float *c, int64_t rs_c, int64_t cs_c);
void bli_thread_set_num_threads(int64_t value);

/* BLIS_NO_TRANSPOSE */
static inline int fm_blis_no_transpose(void) { return 0; }
#endif
