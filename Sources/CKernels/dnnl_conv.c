#include "fm_conv.h"
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

struct fm_conv {
    dnnl_primitive_t primitive;
    dnnl_memory_t src, weights, bias, dst;
    /* Until fm_conv_load_weights: the caller's kernel and the reorder into `weights`. */
    dnnl_primitive_t weight_reorder;
    dnnl_memory_t user_weights;
    /* Where the primitive's activations are not NHWC (Winograd's blocked layout) and the side
       is not linked: the caller's NHWC memory and the reorder from or to it. */
    dnnl_primitive_t src_reorder, dst_reorder;
    dnnl_memory_t user_src, user_dst;
    /* The caller's workspace at each run holds what the primitives would otherwise keep: their
       scratchpads (one region at offset 0, as they run one after another; NULL memories where
       one needs none) and, where the side is reordered, the blocked source and destination. */
    dnnl_memory_t pad, src_pad, dst_pad;
    size_t pad_size, src_offset, dst_offset, workspace_size;
    int linked_src, linked_dst;
    int winograd;
    char implementation[64];
};

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static dnnl_status_t engine_status = dnnl_success;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void make_engine(void) {
    engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (engine_status == dnnl_success) engine_status = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
}

static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

/* The memory (no buffer) for the user-managed scratchpad primitive descriptor `pd` asks for,
   NULL when it asks for none; `region` grows to cover it. */
static dnnl_status_t scratchpad_of(const_dnnl_primitive_desc_t pd, dnnl_memory_t *m, size_t *region) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = md ? dnnl_memory_desc_get_size(md) : 0;
    *m = NULL;
    if (!bytes) return dnnl_success;
    *region = bytes > *region ? bytes : *region;
    return dnnl_memory_create(m, md, engine, DNNL_MEMORY_NONE);
}

/* Attributes asking for a user-managed scratchpad (the caller's workspace). */
static dnnl_status_t user_scratchpad(dnnl_primitive_attr_t *attr) {
    dnnl_status_t s = dnnl_primitive_attr_create(attr);
    return s == dnnl_success ? dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user) : s;
}

/* Room for a primitive's JIT code and tables, checked before oneDNN makes one: when its code
   buffer's mmap fails (under `ulimit -v`), oneDNN 2.6 writes through the null pointer (SIGSEGV
   in dnnl_primitive_create, `ulimit -v 350000` with `bench --batch 64` of the full model). The
   probe reserves address space only (no pages), so it costs a system call pair; without the
   room, the primitive is not made (dnnl_out_of_memory) and the caller takes its other path. */
enum { PRIMITIVE_HEADROOM = 64 << 20 };

static dnnl_status_t make_primitive(dnnl_primitive_t *primitive, const_dnnl_primitive_desc_t pd) {
    void *room = mmap(NULL, PRIMITIVE_HEADROOM, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (room == MAP_FAILED) return dnnl_out_of_memory;
    munmap(room, PRIMITIVE_HEADROOM);
    return dnnl_primitive_create(primitive, pd);
}

#define CHECK(call, what)                                                                   \
    do {                                                                                    \
        dnnl_status_t s_ = (call);                                                          \
        if (s_ != dnnl_success) {                                                           \
            snprintf(err, err_len, "oneDNN %s failed (status %d)", what, (int)s_);          \
            goto fail;                                                                      \
        }                                                                                   \
    } while (0)

/* Winograd F(4×4, 3×3) does 2.25× fewer multiplications: for float32 3×3 stride-1
   convolutions with 32+ inputs and 64+ outputs, if oneDNN has it here (on blocked activations,
   reordered in and out). Measured on FaceNet: its 32→64 layer gains at batch 32 (whole model
   282 → 277 ms) and breaks even at batch 1; its 32→32 layers do not pay for the reorders
   (Conv2d_2a: +0.7 ms at batch 1, nothing at batch 32). Inside a chain (blocked on both sides,
   no reorders) Conv2d_2a gains: a trial build that gave it Winograd at every batch size ran the
   stem (Benchmarks/stem_chain.c) in 66.8 instead of 69.5 ms at batch 32 but 2.7 instead of 2.4
   at batch 1 on the AVX-512 machine of the early sessions, so it took it from batch 8 on; on
   the 30th session's Zen 5 (AVX-512, oneDNN's F(2×2) kernel) it gains at batch 1 too, the stem
   1.75 → 1.67 ms (Benchmarks/layer_ab.py, 7 rounds twice; the model 0.99). */
static int winograd_candidate(const fm_conv_params *p) {
    return p->src_type == FM_SRC_F32 && p->kh == 3 && p->kw == 3 && p->stride_h == 1 && p->stride_w == 1
        && p->dilation_h == 1 && p->dilation_w == 1 && !p->add_dst && p->ic >= 32
        && (p->oc >= 64 || (p->linked_src && p->linked_dst)) && !getenv("FMODEL_NO_WINOGRAD");
}

fm_conv *fm_conv_create(const fm_conv_params *p, const void *weights, const float *bias, char *err, size_t err_len) {
    pthread_once(&engine_once, make_engine);
    if (engine_status != dnnl_success) {
        snprintf(err, err_len, "oneDNN engine unavailable (status %d)", (int)engine_status);
        return NULL;
    }
    fm_conv *c = calloc(1, sizeof *c);
    if (!c) { snprintf(err, err_len, "out of memory"); return NULL; }
    dnnl_memory_desc_t src_md, user_w_md, any_w_md, bias_md, dst_md;
    dnnl_convolution_desc_t desc;
    dnnl_primitive_attr_t attr = NULL, reorder_attr = NULL, pad_attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL, reorder_pd = NULL;

    dnnl_dims_t src_dims = {p->n, p->ic, p->ih, p->iw}, dst_dims = {p->n, p->oc, p->oh, p->ow};
    dnnl_dims_t w_dims = {p->oc, p->ic, p->kh, p->kw}, b_dims = {p->oc};
    dnnl_dims_t strides = {p->stride_h, p->stride_w}, dilates = {p->dilation_h - 1, p->dilation_w - 1};
    dnnl_dims_t pad_l = {p->pad_top, p->pad_left};
    /* Right padding as oneDNN's output-size formula wants it; never negative (VALID with a
       stride may leave input rows unused, which the floor division absorbs). */
    int pb = (p->oh - 1) * p->stride_h + (p->kh - 1) * p->dilation_h + 1 - p->ih - p->pad_top;
    int pr = (p->ow - 1) * p->stride_w + (p->kw - 1) * p->dilation_w + 1 - p->iw - p->pad_left;
    dnnl_dims_t pad_r = {pb > 0 ? pb : 0, pr > 0 ? pr : 0};

    int integer = p->src_type == FM_SRC_U8 || p->src_type == FM_SRC_S8, bf16 = p->src_type == FM_SRC_BF16;
    if (integer) bias = NULL;
    dnnl_data_type_t src_dt = p->src_type == FM_SRC_U8 ? dnnl_u8 : p->src_type == FM_SRC_S8 ? dnnl_s8 : bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_data_type_t user_w_dt = integer ? dnnl_s8 : dnnl_f32, w_dt = integer ? dnnl_s8 : bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_data_type_t dst_dt = integer ? dnnl_s32 : dnnl_f32;
    CHECK(dnnl_memory_desc_init_by_tag(&src_md, 4, src_dims, src_dt, dnnl_nhwc), "source descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 4, dst_dims, dst_dt, dnnl_nhwc), "destination descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&user_w_md, 4, w_dims, user_w_dt, dnnl_hwio), "kernel descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&any_w_md, 4, w_dims, w_dt, dnnl_format_tag_any), "kernel descriptor");
    CHECK(dnnl_memory_desc_init_by_tag(&bias_md, 1, b_dims, dnnl_f32, dnnl_x), "bias descriptor");
    CHECK(user_scratchpad(&attr), "attributes");
    CHECK(user_scratchpad(&pad_attr), "attributes");
    CHECK(dnnl_post_ops_create(&ops), "post-ops");
    if (!integer) {  /* the int8 path leaves the epilogue to the caller */
        if (p->add_dst) CHECK(dnnl_post_ops_append_sum(ops, 1.0f), "sum post-op");
        switch (p->activation) {
        case FM_ACT_LINEAR: break;
        case FM_ACT_RELU: CHECK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f), "ReLU post-op"); break;
        case FM_ACT_LEAKY: CHECK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, p->alpha, 0.0f), "leaky ReLU post-op"); break;
        case FM_ACT_RELU6: CHECK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_clip, 0.0f, 6.0f), "ReLU6 post-op"); break;
        case FM_ACT_SIGMOID: CHECK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_logistic, 0.0f, 0.0f), "sigmoid post-op"); break;
        case FM_ACT_TANH: CHECK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_tanh, 0.0f, 0.0f), "tanh post-op"); break;
        case FM_ACT_SWISH: CHECK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_swish, 1.0f, 0.0f), "swish post-op"); break;
        case FM_ACT_ELU: CHECK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_elu, p->alpha, 0.0f), "ELU post-op"); break;
        case FM_ACT_GELU_ERF: CHECK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f), "GELU post-op"); break;
        case FM_ACT_GELU_TANH: CHECK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_gelu_tanh, 0.0f, 0.0f), "GELU post-op"); break;
        /* oneDNN 2.6's hardswish is s · relu6(s + 3) / 6, its alpha and beta ignored. */
        case FM_ACT_HARD_SWISH: CHECK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_hardswish, 0.0f, 0.0f), "hard swish post-op"); break;
        default: snprintf(err, err_len, "activation %d has no oneDNN post-op", p->activation); goto fail;
        }
        CHECK(dnnl_primitive_attr_set_post_ops(attr, ops), "post-ops");
    }
    int winograd = 0;
    if (winograd_candidate(p)) {
        dnnl_memory_desc_t src_any, dst_any;
        if (dnnl_memory_desc_init_by_tag(&src_any, 4, src_dims, dnnl_f32, dnnl_format_tag_any) == dnnl_success
            && dnnl_memory_desc_init_by_tag(&dst_any, 4, dst_dims, dnnl_f32, dnnl_format_tag_any) == dnnl_success
            && dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_winograd, &src_any, &any_w_md,
                                                  bias ? &bias_md : NULL, &dst_any, strides, pad_l, pad_r) == dnnl_success
            && dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL) == dnnl_success)
            winograd = 1;
        /* At batch 1 not oneDNN's F(4×4) kernel, jit_wino_4x3, on a map of fewer than 64 of
           its 4×4 tiles (FaceNet's Mixed_6a 192→192, 17×17: 25): its buffers are sized for
           large batches (the kernel 5.31 MB for 1.33 MB of weights and 12.98 MB besides,
           Benchmarks/conv_implementations.c), three times the batch's activations, for no gain
           in the model (the multi-task model without it: ab.sh 1.004, peak RSS 185 against
           190-196 MB above the baseline; on the 30th session's Zen 5, Mixed_6a 1.15× slower
           with it, layer_ab.py, 7 rounds). The stem's Conv2d_4a, 36×36 (81 tiles), gains on
           that machine: the stem 2.00 → 1.75 ms (9 rounds). Its F(2×2) kernel, where oneDNN
           has it, stays. */
        if (winograd && p->n == 1 && ((p->oh + 3) / 4) * ((p->ow + 3) / 4) < 64) {
            const char *name = NULL;
            dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
            if (name && strstr(name, "wino_4x3")) {
                dnnl_primitive_desc_destroy(pd);
                pd = NULL;
                winograd = 0;
            }
        }
    }
    if (!winograd) {
        /* Inside a chain (linked on both sides) a convolution works in oneDNN's blocked
           layout, nChw16c: left to choose, brgconv takes NHWC, and every Winograd layer would
           pay its reorders again. The chain's first reads the caller's NHWC and writes what it
           prefers; its last writes the caller's NHWC and reads what it prefers, the chain
           reordering into that. For FaceNet's stride-2 3×3s after a Winograd layer that is
           brgconv on NHWC: Conv2d_4b at batch 8 3.6 ms against jit:avx512_core's 4.3-4.9 on
           nChw16c (Benchmarks/conv_implementations.c … blocked), the stem 11.6 → 11.1 ms with
           the reorder (Benchmarks/stem_chain.c); in the multi-task model (layer_ab.py, 7-9
           rounds) at batch 32 the stem 0.913×, Mixed_6a 0.926×, the model 0.949×; at batch 1
           the stem 0.94-0.96×. */
        dnnl_memory_desc_t src_direct = src_md, dst_direct = dst_md;
        if (p->linked_src)
            CHECK(dnnl_memory_desc_init_by_tag(&src_direct, 4, src_dims, src_dt,
                                               p->ic % 16 || !p->linked_dst ? dnnl_format_tag_any : dnnl_nChw16c),
                  "source descriptor");
        if (p->linked_src && p->linked_dst && p->oc % 16 == 0)
            CHECK(dnnl_memory_desc_init_by_tag(&dst_direct, 4, dst_dims, dst_dt, dnnl_nChw16c), "destination descriptor");
        else if (p->linked_dst)
            CHECK(dnnl_memory_desc_init_by_tag(&dst_direct, 4, dst_dims, dst_dt, dnnl_format_tag_any), "destination descriptor");
        CHECK(dnnl_dilated_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct, &src_direct,
                                                         &any_w_md, bias ? &bias_md : NULL, &dst_direct, strides, dilates, pad_l, pad_r),
              "convolution descriptor");
        CHECK(dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL), "convolution");
        if (p->src_type == FM_SRC_F32 && p->ow <= 4) {
            const char *wanted = p->kh * p->kw > 1 ? "jit:avx512_core" : "jit_1x1:avx512_core";
            /* Outputs three pixels wide (Mixed_7a's stride-2 layers, Block8's 1×3 and 3×1 at
               batch 32): oneDNN's first choice, brgconv, blocks along the width and runs them
               at 233-275 GFLOP/s, its direct jit:avx512_core at 255-426
               (Benchmarks/conv_implementations.c); the multi-task model at batch 32, ab.sh
               0.985. Block8's 1×1 layers likewise take jit_1x1 (344 → 358-371 GFLOP/s in
               cache; the model 0.989). At batch 1 such layers stream. */
            dnnl_primitive_desc_iterator_t it = NULL;
            if (dnnl_primitive_desc_iterator_create(&it, &desc, attr, engine, NULL) == dnnl_success) {
                do {
                    dnnl_primitive_desc_t candidate = dnnl_primitive_desc_iterator_fetch(it);
                    const char *name = NULL;
                    dnnl_primitive_desc_query(candidate, dnnl_query_impl_info_str, 0, &name);
                    if (name && strcmp(name, wanted) == 0) {
                        dnnl_primitive_desc_destroy(pd);
                        pd = candidate;
                        break;
                    }
                    dnnl_primitive_desc_destroy(candidate);
                } while (dnnl_primitive_desc_iterator_next(it) == dnnl_success);
                dnnl_primitive_desc_iterator_destroy(it);
            }
        }
    }
    c->winograd = winograd;
    const char *implementation = NULL;
    CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &implementation), "implementation query");
    snprintf(c->implementation, sizeof c->implementation, "%s", implementation ? implementation : "?");
    CHECK(make_primitive(&c->primitive, pd), "convolution primitive");
    CHECK(scratchpad_of(pd, &c->pad, &c->pad_size), "scratchpad memory");

    const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    CHECK(dnnl_memory_create(&c->weights, w_md, engine, DNNL_MEMORY_ALLOCATE), "kernel memory");
    CHECK(dnnl_memory_create(&c->user_weights, &user_w_md, engine, (void *)weights), "kernel memory");
    /* The layer's scale (a residual branch's) goes into the kernel and bias as they are copied,
       (W·x + b)·s = (s·W)·x + s·b, rather than into a post-op every run. */
    float scale = integer ? 1.0f : p->scale;
    if (scale != 1.0f) {
        CHECK(dnnl_primitive_attr_create(&reorder_attr), "kernel reorder attributes");
        CHECK(dnnl_primitive_attr_set_output_scales(reorder_attr, 1, 0, &scale), "kernel scale");
    }
    CHECK(dnnl_reorder_primitive_desc_create(&reorder_pd, &user_w_md, engine, w_md, engine, reorder_attr), "kernel reorder");
    CHECK(make_primitive(&c->weight_reorder, reorder_pd), "kernel reorder");
    if (bias) {
        CHECK(dnnl_memory_create(&c->bias, &bias_md, engine, DNNL_MEMORY_ALLOCATE), "bias memory");
        void *handle = NULL;
        CHECK(dnnl_memory_get_data_handle(c->bias, &handle), "bias memory");
        for (int i = 0; i < p->oc; i++) ((float *)handle)[i] = bias[i] * scale;
    }
    const dnnl_memory_desc_t *conv_src = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *conv_dst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    /* Each side: linked (memory a chain hands over), NHWC in place (the caller's pointer at
       each run), or the primitive's own layout reordered from or to the caller's NHWC. */
    c->linked_src = p->linked_src;
    c->linked_dst = p->linked_dst;
    int reorder_src = !p->linked_src && !dnnl_memory_desc_equal(conv_src, &src_md);
    int reorder_dst = !p->linked_dst && !dnnl_memory_desc_equal(conv_dst, &dst_md);
    CHECK(dnnl_memory_create(&c->src, conv_src, engine, DNNL_MEMORY_NONE), "source memory");
    CHECK(dnnl_memory_create(&c->dst, conv_dst, engine, DNNL_MEMORY_NONE), "destination memory");
    if (reorder_src) {
        dnnl_primitive_desc_t rpd = NULL;
        CHECK(dnnl_memory_create(&c->user_src, &src_md, engine, DNNL_MEMORY_NONE), "source memory");
        CHECK(dnnl_reorder_primitive_desc_create(&rpd, &src_md, engine, conv_src, engine, pad_attr), "source reorder");
        dnnl_status_t made = make_primitive(&c->src_reorder, rpd);
        if (made == dnnl_success) made = scratchpad_of(rpd, &c->src_pad, &c->pad_size);
        dnnl_primitive_desc_destroy(rpd);
        CHECK(made, "source reorder");
    }
    if (reorder_dst) {
        dnnl_primitive_desc_t rpd = NULL;
        CHECK(dnnl_memory_create(&c->user_dst, &dst_md, engine, DNNL_MEMORY_NONE), "destination memory");
        CHECK(dnnl_reorder_primitive_desc_create(&rpd, conv_dst, engine, &dst_md, engine, pad_attr), "destination reorder");
        dnnl_status_t made = make_primitive(&c->dst_reorder, rpd);
        if (made == dnnl_success) made = scratchpad_of(rpd, &c->dst_pad, &c->pad_size);
        dnnl_primitive_desc_destroy(rpd);
        CHECK(made, "destination reorder");
    }
    c->src_offset = align64(c->pad_size);
    c->dst_offset = c->src_offset + align64(reorder_src ? dnnl_memory_desc_get_size(conv_src) : 0);
    c->workspace_size = c->dst_offset + align64(reorder_dst ? dnnl_memory_desc_get_size(conv_dst) : 0);
    dnnl_primitive_desc_destroy(reorder_pd);
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(ops);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_attr_destroy(pad_attr);
    if (reorder_attr) dnnl_primitive_attr_destroy(reorder_attr);
    return c;
fail:
    if (reorder_pd) dnnl_primitive_desc_destroy(reorder_pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (pad_attr) dnnl_primitive_attr_destroy(pad_attr);
    if (reorder_attr) dnnl_primitive_attr_destroy(reorder_attr);
    fm_conv_destroy(c);
    return NULL;
}

int fm_conv_load_weights(fm_conv *c) {
    if (!c->weight_reorder) return 0;
    /* A stream of its own: kernels may be loaded on several threads at once. */
    dnnl_stream_t local = NULL;
    if (dnnl_stream_create(&local, engine, dnnl_stream_default_flags) != dnnl_success) return 1;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, c->user_weights}, {DNNL_ARG_TO, c->weights}};
    int failed = dnnl_primitive_execute(c->weight_reorder, local, 2, args) != dnnl_success || dnnl_stream_wait(local) != dnnl_success;
    dnnl_stream_destroy(local);
    dnnl_primitive_destroy(c->weight_reorder);
    dnnl_memory_destroy(c->user_weights);
    c->weight_reorder = NULL;
    c->user_weights = NULL;
    return failed;
}

/* Points `m` (if any) at `at`: 0 on success. */
static int place(dnnl_memory_t m, void *at) { return m && dnnl_memory_set_data_handle(m, at) != dnnl_success; }

/* The primitive and its reorders, on the caller's src and dst (ignored on a linked side) and
   workspace (fm_conv_workspace_size bytes). */
static int conv_execute(fm_conv *c, const void *src, void *dst, void *workspace) {
    if (c->weight_reorder && fm_conv_load_weights(c)) return 1;
    char *w = workspace;
    if (place(c->pad, w) || place(c->src_pad, w) || place(c->dst_pad, w)) return 1;
    if (c->src_reorder && place(c->src, w + c->src_offset)) return 1;
    if (c->dst_reorder && place(c->dst, w + c->dst_offset)) return 1;
    if (c->src_reorder) {
        if (dnnl_memory_set_data_handle(c->user_src, (void *)src) != dnnl_success) return 1;
        dnnl_exec_arg_t in[3] = {{DNNL_ARG_FROM, c->user_src}, {DNNL_ARG_TO, c->src}, {DNNL_ARG_SCRATCHPAD, c->src_pad}};
        if (dnnl_primitive_execute(c->src_reorder, stream, c->src_pad ? 3 : 2, in) != dnnl_success) return 1;
    } else if (!c->linked_src && dnnl_memory_set_data_handle(c->src, (void *)src) != dnnl_success) {
        return 1;
    }
    if (c->dst_reorder) {
        if (dnnl_memory_set_data_handle(c->user_dst, dst) != dnnl_success) return 1;
    } else if (!c->linked_dst && dnnl_memory_set_data_handle(c->dst, dst) != dnnl_success) {
        return 1;
    }
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, c->src}, {DNNL_ARG_WEIGHTS, c->weights}, {DNNL_ARG_DST, c->dst}};
    int n = 3;
    if (c->bias) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, c->bias};
    if (c->pad) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, c->pad};
    if (dnnl_primitive_execute(c->primitive, stream, n, args) != dnnl_success) return 1;
    if (c->dst_reorder) {
        dnnl_exec_arg_t out[3] = {{DNNL_ARG_FROM, c->dst}, {DNNL_ARG_TO, c->user_dst}, {DNNL_ARG_SCRATCHPAD, c->dst_pad}};
        if (dnnl_primitive_execute(c->dst_reorder, stream, c->dst_pad ? 3 : 2, out) != dnnl_success) return 1;
    }
    return 0;
}

size_t fm_conv_workspace_size(const fm_conv *c) { return c->workspace_size; }

int fm_conv_run(fm_conv *c, const void *src, void *dst, void *workspace) {
    if (c->linked_src || c->linked_dst) return 1;
    return conv_execute(c, src, dst, workspace) || dnnl_stream_wait(stream) != dnnl_success;
}

const char *fm_conv_implementation(const fm_conv *c) { return c->implementation; }

/* The ISA values are nested bit sets: an ISA's bits include those of the ones it extends. */
static int dnnl_isa_has(dnnl_cpu_isa_t isa) { return (dnnl_get_effective_cpu_isa() & isa) == isa; }

int fm_dnnl_has_avx512(void) { return dnnl_isa_has(dnnl_cpu_isa_avx512_core); }

int fm_dnnl_has_vnni(void) { return dnnl_isa_has(dnnl_cpu_isa_avx512_core_vnni) || dnnl_isa_has(dnnl_cpu_isa_avx2_vnni); }

void fm_conv_destroy(fm_conv *c) {
    if (!c) return;
    if (c->primitive) dnnl_primitive_destroy(c->primitive);
    if (c->src) dnnl_memory_destroy(c->src);
    if (c->weights) dnnl_memory_destroy(c->weights);
    if (c->bias) dnnl_memory_destroy(c->bias);
    if (c->dst) dnnl_memory_destroy(c->dst);
    if (c->weight_reorder) dnnl_primitive_destroy(c->weight_reorder);
    if (c->user_weights) dnnl_memory_destroy(c->user_weights);
    if (c->src_reorder) dnnl_primitive_destroy(c->src_reorder);
    if (c->dst_reorder) dnnl_primitive_destroy(c->dst_reorder);
    if (c->user_src) dnnl_memory_destroy(c->user_src);
    if (c->user_dst) dnnl_memory_destroy(c->user_dst);
    if (c->pad) dnnl_memory_destroy(c->pad);
    if (c->src_pad) dnnl_memory_destroy(c->src_pad);
    if (c->dst_pad) dnnl_memory_destroy(c->dst_pad);
    free(c);
}

struct fm_chain {
    int count;
    fm_conv **convs;                 /* per layer; NULL for a pool */
    dnnl_primitive_t *pools;         /* per layer; NULL for a convolution */
    dnnl_memory_t *in, *out;         /* per layer: what it reads and writes (pools' own; the convolutions') */
    dnnl_primitive_t *links;         /* per layer after the first: the reorder into its input, or NULL (shared) */
    dnnl_memory_t *pads;             /* per layer, 2 each: the pool's (or NULL) and the link's scratchpad, or NULL */
    size_t workspace_size;           /* the largest of its layers' workspaces and scratchpads */
    int *buffer_of;                  /* per memory (2 a layer: in, out): which of the run's two buffers, 1-based (0: none) */
    size_t buffer_size[2];           /* bytes each of the two buffers needs (its largest tensor) */
    char implementation[512];
};

void fm_chain_destroy(fm_chain *c) {
    if (!c) return;
    for (int i = 0; i < c->count; i++) {
        if (c->convs && c->convs[i]) fm_conv_destroy(c->convs[i]);
        if (c->pools && c->pools[i]) {
            dnnl_primitive_destroy(c->pools[i]);
            if (c->in[i]) dnnl_memory_destroy(c->in[i]);
            if (c->out[i]) dnnl_memory_destroy(c->out[i]);
        }
        if (c->links && c->links[i]) dnnl_primitive_destroy(c->links[i]);
        for (int j = 2 * i; c->pads && j < 2 * i + 2; j++)
            if (c->pads[j]) dnnl_memory_destroy(c->pads[j]);
    }
    free(c->convs);
    free(c->pools);
    free(c->in);
    free(c->out);
    free(c->links);
    free(c->pads);
    free(c->buffer_of);
    free(c);
}

static void append(char *to, size_t size, const char *what) {
    size_t used = strlen(to);
    snprintf(to + used, size - used, "%s%s", used ? " > " : "", what);
}

fm_chain *fm_chain_create(const fm_chain_layer *layers, int count, char *err, size_t err_len) {
    int i = 0;
    if (count < 2 || layers[0].max_pool || layers[count - 1].max_pool) {
        snprintf(err, err_len, "a chain needs two layers or more, from a convolution to a convolution");
        return NULL;
    }
    /* Worth it for a layer that would take Winograd on its own (then the 32→32 ones beside
       it may too): a chain of FaceNet's Block35 branch, whose only candidate is 32→32, ran
       slower than its layers at batch 32 (2.07 against 1.87 ms, `fmodel bench --profile`). */
    int candidates = 0;
    for (int j = 0; j < count; j++) {
        fm_conv_params p = layers[j].conv;
        p.linked_src = p.linked_dst = 0;
        candidates += !layers[j].max_pool && winograd_candidate(&p);
    }
    if (!candidates) {
        snprintf(err, err_len, "no Winograd layer: nothing to gain over running the layers one by one");
        return NULL;
    }
    fm_chain *c = calloc(1, sizeof *c);
    if (!c) { snprintf(err, err_len, "out of memory"); return NULL; }
    c->count = count;
    c->convs = calloc(count, sizeof *c->convs);
    c->pools = calloc(count, sizeof *c->pools);
    c->in = calloc(count, sizeof *c->in);
    c->out = calloc(count, sizeof *c->out);
    c->links = calloc(count, sizeof *c->links);
    c->pads = calloc(2 * count, sizeof *c->pads);
    dnnl_primitive_attr_t pad_attr = NULL;
    c->buffer_of = calloc(2 * count, sizeof *c->buffer_of);
    int *buffer_of = c->buffer_of;
    if (!c->convs || !c->pools || !c->in || !c->out || !c->links || !c->pads || !buffer_of) {
        snprintf(err, err_len, "out of memory");
        fm_chain_destroy(c);
        return NULL;
    }
    CHECK(user_scratchpad(&pad_attr), "attributes");
    size_t *largest = c->buffer_size;
    int next = 0;  /* the buffer the next tensor goes to */
    for (i = 0; i < count; i++) {
        const fm_chain_layer *l = &layers[i];
        if (!l->max_pool) {
            fm_conv_params p = l->conv;
            p.linked_src = i > 0;
            p.linked_dst = i < count - 1;
            c->convs[i] = fm_conv_create(&p, l->weights, l->bias, err, err_len);
            if (!c->convs[i]) goto fail;
            c->workspace_size = c->convs[i]->workspace_size > c->workspace_size ? c->convs[i]->workspace_size : c->workspace_size;
            c->in[i] = c->convs[i]->src;
            c->out[i] = c->convs[i]->dst;
            append(c->implementation, sizeof c->implementation, c->convs[i]->implementation);
        } else {
            const fm_conv_params *p = &l->conv;
            const dnnl_memory_desc_t *src_md = NULL;
            CHECK(dnnl_memory_get_memory_desc(c->out[i - 1], &src_md), "source descriptor");
            dnnl_memory_desc_t dst_md;
            dnnl_dims_t dst_dims = {p->n, p->ic, p->oh, p->ow}, strides = {p->stride_h, p->stride_w}, kernel = {p->kh, p->kw};
            dnnl_dims_t dilation = {0, 0}, pad_l = {p->pad_top, p->pad_left};
            int pb = (p->oh - 1) * p->stride_h + p->kh - p->ih - p->pad_top, pr = (p->ow - 1) * p->stride_w + p->kw - p->iw - p->pad_left;
            dnnl_dims_t pad_r = {pb > 0 ? pb : 0, pr > 0 ? pr : 0};
            CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 4, dst_dims, dnnl_f32, dnnl_format_tag_any), "destination descriptor");
            dnnl_pooling_v2_desc_t desc;
            CHECK(dnnl_pooling_v2_forward_desc_init(&desc, dnnl_forward_inference, dnnl_pooling_max, src_md, &dst_md, strides, kernel,
                                                    dilation, pad_l, pad_r), "max pool descriptor");
            dnnl_primitive_desc_t pd = NULL;
            CHECK(dnnl_primitive_desc_create(&pd, &desc, pad_attr, engine, NULL), "max pool");
            const char *implementation = NULL;
            dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &implementation);
            append(c->implementation, sizeof c->implementation, implementation ? implementation : "?");
            dnnl_status_t made = make_primitive(&c->pools[i], pd);
            if (made == dnnl_success) made = scratchpad_of(pd, &c->pads[2 * i], &c->workspace_size);
            if (made == dnnl_success) made = dnnl_memory_create(&c->in[i], src_md, engine, DNNL_MEMORY_NONE);
            if (made == dnnl_success)
                made = dnnl_memory_create(&c->out[i], dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), engine, DNNL_MEMORY_NONE);
            dnnl_primitive_desc_destroy(pd);
            CHECK(made, "max pool");
        }
        /* Between this layer and the one before: one buffer, or a reorder into a second. */
        if (i > 0) {
            const dnnl_memory_desc_t *from = NULL, *to = NULL;
            CHECK(dnnl_memory_get_memory_desc(c->out[i - 1], &from), "source descriptor");
            CHECK(dnnl_memory_get_memory_desc(c->in[i], &to), "source descriptor");
            if (dnnl_memory_desc_equal(from, to)) {
                buffer_of[2 * i] = buffer_of[2 * i - 1];
            } else {
                dnnl_primitive_desc_t rpd = NULL;
                CHECK(dnnl_reorder_primitive_desc_create(&rpd, from, engine, to, engine, pad_attr), "reorder");
                dnnl_status_t made = make_primitive(&c->links[i], rpd);
                if (made == dnnl_success) made = scratchpad_of(rpd, &c->pads[2 * i + 1], &c->workspace_size);
                dnnl_primitive_desc_destroy(rpd);
                CHECK(made, "reorder");
                buffer_of[2 * i] = 1 + next;
                size_t size = dnnl_memory_desc_get_size(to);
                largest[next] = size > largest[next] ? size : largest[next];
                next = 1 - next;
                append(c->implementation, sizeof c->implementation, "reorder");
            }
        }
        if (i < count - 1) {
            const dnnl_memory_desc_t *md = NULL;
            CHECK(dnnl_memory_get_memory_desc(c->out[i], &md), "destination descriptor");
            buffer_of[2 * i + 1] = 1 + next;
            size_t size = dnnl_memory_desc_get_size(md);
            largest[next] = size > largest[next] ? size : largest[next];
            next = 1 - next;
        }
    }
    int winograd = 0;
    for (i = 0; i < count; i++) winograd |= c->convs[i] && c->convs[i]->winograd;
    if (!winograd) {
        snprintf(err, err_len, "no Winograd layer: nothing to gain over running the layers one by one");
        goto fail;
    }
    dnnl_primitive_attr_destroy(pad_attr);
    return c;
fail:
    if (i < count) {  /* which layer it was */
        char inner[256];
        snprintf(inner, sizeof inner, "%s", err);
        snprintf(err, err_len, "chain layer %d: %s", i, inner);
    }
    if (pad_attr) dnnl_primitive_attr_destroy(pad_attr);
    fm_chain_destroy(c);
    return NULL;
}

int fm_chain_load_weights(fm_chain *c) {
    for (int i = 0; i < c->count; i++)
        if (c->convs[i] && fm_conv_load_weights(c->convs[i])) return 1;
    return 0;
}

size_t fm_chain_buffer_size(const fm_chain *c, int buffer) { return c->buffer_size[buffer]; }

size_t fm_chain_workspace_size(const fm_chain *c) { return c->workspace_size; }

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int fm_chain_run(fm_chain *c, const float *src, float *dst, void *buffer0, void *buffer1, void *workspace) {
    return fm_chain_run_timed(c, src, dst, buffer0, buffer1, workspace, NULL);
}

int fm_chain_run_timed(fm_chain *c, const float *src, float *dst, void *buffer0, void *buffer1, void *workspace,
                       double *step_ms) {
    void *buffers[2] = {buffer0, buffer1};
    for (int i = 0; i < c->count; i++) {
        if (i > 0 && dnnl_memory_set_data_handle(c->in[i], buffers[c->buffer_of[2 * i] - 1]) != dnnl_success) return 1;
        if (i < c->count - 1 && dnnl_memory_set_data_handle(c->out[i], buffers[c->buffer_of[2 * i + 1] - 1]) != dnnl_success) return 1;
    }
    for (int i = 0; i < 2 * c->count; i++)
        if (place(c->pads[i], workspace)) return 1;
    for (int i = 0; i < c->count; i++) {
        const double start = step_ms ? seconds_now() : 0;
        if (c->links[i]) {
            dnnl_memory_t pad = c->pads[2 * i + 1];
            dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, c->out[i - 1]}, {DNNL_ARG_TO, c->in[i]}, {DNNL_ARG_SCRATCHPAD, pad}};
            if (dnnl_primitive_execute(c->links[i], stream, pad ? 3 : 2, args) != dnnl_success) return 1;
        }
        if (c->convs[i]) {
            if (conv_execute(c->convs[i], src, dst, workspace)) return 1;
        } else {
            dnnl_memory_t pad = c->pads[2 * i];
            dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, c->in[i]}, {DNNL_ARG_DST, c->out[i]}, {DNNL_ARG_SCRATCHPAD, pad}};
            if (dnnl_primitive_execute(c->pools[i], stream, pad ? 3 : 2, args) != dnnl_success) return 1;
        }
        if (step_ms) {
            if (dnnl_stream_wait(stream) != dnnl_success) return 1;
            step_ms[i] += (seconds_now() - start) * 1e3;
        }
    }
    return dnnl_stream_wait(stream) != dnnl_success;
}

const char *fm_chain_implementation(const fm_chain *c) { return c->implementation; }
