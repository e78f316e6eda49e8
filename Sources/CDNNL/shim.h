#ifndef FMODEL_CDNNL_SHIM_H
#define FMODEL_CDNNL_SHIM_H
#include <stdint.h>

/* The oneDNN (libdnnl 2.6) GEMM entry points fmodel calls, declared here rather than through
   dnnl.h, which drags in the whole primitive API. oneDNN picks its AVX-512 / VNNI JIT kernels at
   run time from the CPU it finds, whatever OPENBLAS_CORETYPE says, and threads with OpenMP.
   The return value is a dnnl_status_t: 0 is success. */
int dnnl_sgemm(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
               float *c, int64_t ldc);
int dnnl_gemm_u8s8s32(char transa, char transb, char offsetc, int64_t m, int64_t n, int64_t k,
                      float alpha, const uint8_t *a, int64_t lda, uint8_t ao, const int8_t *b,
                      int64_t ldb, int8_t bo, float beta, int32_t *c, int64_t ldc, const int32_t *co);

/* OpenMP (libgomp, which libdnnl links): fmodel runs its own parallel loops on the same thread
   team as oneDNN's GEMM, so that the two never compete for the cores. GOMP_parallel is the entry
   point GCC's `#pragma omp parallel` compiles to. */
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
/* `#pragma omp barrier`: waits for the whole team (returns at once outside a parallel region). */
void GOMP_barrier(void);
int omp_get_thread_num(void);
int omp_get_num_threads(void);
int omp_get_max_threads(void);
/* The calling thread's team size for the parallel regions it starts (oneDNN's among them). */
void omp_set_num_threads(int count);
/* Where the team's threads are bound (OpenMP 4.5): omp_proc_bind_false is 0; the places, each
   a set of CPUs, come from OMP_PLACES or GOMP_CPU_AFFINITY as libgomp took them. */
int omp_get_proc_bind(void);
int omp_get_num_places(void);
int omp_get_place_num_procs(int place);
void omp_get_place_proc_ids(int place, int *ids);
/* The most threads any team may have (OMP_THREAD_LIMIT), and how many parallel regions may be
   active at once (OMP_MAX_ACTIVE_LEVELS; 0: none, every region runs on its one thread). */
int omp_get_thread_limit(void);
int omp_get_max_active_levels(void);
#endif
