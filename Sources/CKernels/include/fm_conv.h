#ifndef FM_CONV_H
#define FM_CONV_H
#include <stddef.h>

/* A 2-D convolution run by a oneDNN primitive: NHWC activations, the HWIO kernel of an .fmodel
   reordered once into the layout the primitive's AVX-512 code wants. One object per batch size.
   float32: the epilogue dst = act(scale * (conv + bias) + dst_before) is fused as post-ops.
   int8 (src_type FM_SRC_U8 or FM_SRC_S8, an int8 kernel): dst holds the int32 accumulators,
   and the caller applies scales, bias and the rest. */
typedef struct fm_conv fm_conv;

typedef struct {
    int n, ih, iw, ic, oh, ow, oc, kh, kw;
    int stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
    float scale;        /* 1: none */
    int add_dst;        /* 1: add what dst holds before the call (a residual placed there) */
    int activation;     /* FM_ACT_* */
    float alpha;        /* leaky ReLU slope, ELU alpha */
    int src_type;       /* FM_SRC_* */
    int linked_src;     /* 1: a chain's inner side (float32): the layout the primitive prefers, */
    int linked_dst;     /*    memory the chain hands over; 0: the caller's NHWC */
} fm_conv_params;

/* FM_SRC_BF16: bfloat16 activations and kernel (converted from float32 by the reorder),
   float32 bias, destination and post-ops, as for FM_SRC_F32. */
enum { FM_SRC_F32 = 0, FM_SRC_U8 = 1, FM_SRC_S8 = 2, FM_SRC_BF16 = 3 };

enum { FM_ACT_LINEAR = 0, FM_ACT_RELU = 1, FM_ACT_RELU6 = 2, FM_ACT_LEAKY = 3, FM_ACT_SIGMOID = 4, FM_ACT_TANH = 5,
       FM_ACT_SWISH = 6, FM_ACT_ELU = 7, FM_ACT_GELU_ERF = 8, FM_ACT_GELU_TANH = 9,
       FM_ACT_HARD_SWISH = 10 };

/* NULL on failure, with a message in err. `bias` (may be NULL; float32 only) is read during the
   call; `weights` (HWIO: int8 for the int8 types, else float) must stay until the kernel is
   loaded. Make primitives outside any OpenMP parallel region: oneDNN sizes a primitive's
   per-thread buffers for the threads it sees when it is made (inside a region, one), and a
   Winograd primitive made there crashes when run on two. */
fm_conv *fm_conv_create(const fm_conv_params *p, const void *weights, const float *bias, char *err, size_t err_len);

/* Reorders the kernel into the primitive's layout (the bulk of the memory work): safe on any
   thread, several at once. fm_conv_run does it first if it has not been done. 0 on success. */
int fm_conv_load_weights(fm_conv *c);

/* Bytes of workspace each run needs (64-byte aligned): what the primitive and its reorders
   would otherwise keep for good, their scratchpads and Winograd's blocked activations, so
   that the caller's activation memory holds them only while a layer runs. May be 0. */
size_t fm_conv_workspace_size(const fm_conv *c);

/* 0 on success; `workspace` holds fm_conv_workspace_size bytes (NULL if 0). */
int fm_conv_run(fm_conv *c, const void *src, void *dst, void *workspace);

/* The primitive's implementation name (for reports). */
const char *fm_conv_implementation(const fm_conv *c);

/* What oneDNN runs here (the CPU, capped by ONEDNN_MAX_CPU_ISA if set): 1 when it has at least
   AVX512 (avx512_core), what its bf16 convolutions need; 1 when it has VNNI (AVX512 or AVX),
   without which its u8·s8 products go through vpmaddubsw's saturating int16 sums. */
int fm_dnnl_has_avx512(void);
int fm_dnnl_has_vnni(void);

void fm_conv_destroy(fm_conv *c);

/* A chain of float32 layers, each reading only what the one before wrote (FaceNet's stem:
   convolutions and a max pool), run inside oneDNN: between them the activations stay in the
   layout the primitives prefer (Winograd's blocked one) instead of going through NHWC, with a
   reorder only where two neighbours want different layouts. The input of the first layer and
   the output of the last are the caller's NHWC. The layers' activations alternate between two
   buffers the caller hands to each run (its free activation memory: the chain keeps none). */
typedef struct fm_chain fm_chain;

typedef struct {
    int max_pool;          /* 0: a convolution; 1: a max pool (uses n, ih, iw, ic, oh, ow, kh, kw, */
    fm_conv_params conv;   /*    the strides and the padding of `conv`, with oc = ic) */
    const void *weights;   /* convolution: as for fm_conv_create */
    const float *bias;
} fm_chain_layer;

/* NULL on failure, with a message in err; the first and the last layer must be convolutions.
   A chain pays through its Winograd layers (their reorders to and from NHWC go): without one,
   it is refused.
   The linked_* fields of the layers' parameters are set here. Make chains outside any OpenMP
   parallel region, as primitives. */
fm_chain *fm_chain_create(const fm_chain_layer *layers, int count, char *err, size_t err_len);

/* Reorders every convolution's kernel (see fm_conv_load_weights). 0 on success. */
int fm_chain_load_weights(fm_chain *c);

/* Bytes buffer 0 or 1 of a run must hold: the largest tensor the chain places there. */
size_t fm_chain_buffer_size(const fm_chain *c, int buffer);

/* Bytes of workspace a run needs besides (as fm_conv_workspace_size; the largest layer's). */
size_t fm_chain_workspace_size(const fm_chain *c);

/* Runs the chain with its inner activations in buffer0 and buffer1 (fm_chain_buffer_size bytes,
   64-byte aligned, apart from src and dst) and its layers' workspace in `workspace`.
   0 on success. */
int fm_chain_run(fm_chain *c, const float *src, float *dst, void *buffer0, void *buffer1, void *workspace);

/* fm_chain_run, waiting for each layer (with the reorder into it) and adding its milliseconds
   to step_ms[layer] (the chain's count of them): where a chain's time goes
   (Benchmarks/stem_chain.c). */
int fm_chain_run_timed(fm_chain *c, const float *src, float *dst, void *buffer0, void *buffer1, void *workspace,
                       double *step_ms);

/* The layers' implementations, and the reorders between them (for reports). */
const char *fm_chain_implementation(const fm_chain *c);

void fm_chain_destroy(fm_chain *c);

#endif
