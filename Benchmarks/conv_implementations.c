/* Every oneDNN implementation of one float32 convolution shape, in oneDNN's order of preference
   (the first is what fmodel gets): its time with the kernel and activations in cache (best of 5),
   GFLOP/s, whether it reads NHWC in place, and its memory (the kernel in its layout, and what
   the primitive keeps besides: Winograd's buffers). The reference implementation is skipped.
   How the choices in Sources/CKernels/dnnl_conv.c were looked at, one layer at a time.

     gcc -O2 Benchmarks/conv_implementations.c -o /tmp/conv_implementations -ldnnl
     OMP_NUM_THREADS=2 /tmp/conv_implementations N H CIN COUT KH KW STRIDE SAME [winograd|blocked]

   The activations are NHWC; with `winograd` (oneDNN's Winograd algorithm) or `blocked` (its
   direct one) they are in the layout each implementation prefers, as inside a chain.

   e.g. FaceNet's Conv2d_4b at batch 32:  32 36 192 256 3 3 2 0
        the same on blocked activations:  32 36 192 256 3 3 2 0 blocked
        Mixed_6a's 192→192 3×3, Winograd:  1 17 192 192 3 3 1 1 winograd */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 9) {
        fprintf(stderr, "usage: %s N H CIN COUT KH KW STRIDE SAME(0|1) [winograd|blocked]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]), h = atoi(argv[2]), ic = atoi(argv[3]), oc = atoi(argv[4]), kh = atoi(argv[5]), kw = atoi(argv[6]);
    int s = atoi(argv[7]), same = atoi(argv[8]), blocked = argc > 9 && strcmp(argv[9], "blocked") == 0;
    int winograd = argc > 9 && !blocked;
    int ph = same ? kh / 2 : 0, pw = same ? kw / 2 : 0;
    int oh = (h + 2 * ph - kh) / s + 1, ow = (h + 2 * pw - kw) / s + 1;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_engine_create(&engine, dnnl_cpu, 0);
    dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    dnnl_dims_t sd = {n, ic, h, h}, dd = {n, oc, oh, ow}, wd = {oc, ic, kh, kw}, bd = {oc}, strides = {s, s};
    dnnl_dims_t pad_l = {ph, pw}, pad_r = {ph, pw};
    dnnl_memory_desc_t src_md, dst_md, w_md, b_md, nhwc;
    dnnl_format_tag_t act = winograd || blocked ? dnnl_format_tag_any : dnnl_nhwc;
    dnnl_memory_desc_init_by_tag(&src_md, 4, sd, dnnl_f32, act);
    dnnl_memory_desc_init_by_tag(&dst_md, 4, dd, dnnl_f32, act);
    dnnl_memory_desc_init_by_tag(&w_md, 4, wd, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x);
    dnnl_memory_desc_init_by_tag(&nhwc, 4, sd, dnnl_f32, dnnl_nhwc);
    dnnl_convolution_desc_t desc;
    if (dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, winograd ? dnnl_convolution_winograd : dnnl_convolution_direct,
                                           &src_md, &w_md, &b_md, &dst_md, strides, pad_l, pad_r) != dnnl_success) {
        fprintf(stderr, "oneDNN refused the descriptor\n");
        return 1;
    }
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t ops;
    dnnl_primitive_attr_create(&attr);
    dnnl_post_ops_create(&ops);
    dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
    dnnl_primitive_attr_set_post_ops(attr, ops);
    dnnl_primitive_desc_iterator_t it;
    if (dnnl_primitive_desc_iterator_create(&it, &desc, attr, engine, NULL) != dnnl_success) {
        fprintf(stderr, "no implementation\n");
        return 1;
    }
    double flops = 2.0 * n * oc * oh * ow * ic * kh * kw;
    printf("conv %dx%d %d->%d stride %d, batch %d, %dx%d -> %dx%d (%.3f GFLOP)\n", kh, kw, ic, oc, s, n, h, h, oh, ow, flops / 1e9);
    do {
        dnnl_primitive_desc_t pd = dnnl_primitive_desc_iterator_fetch(it);
        const char *impl = "?";
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        if (strstr(impl, "ref")) { dnnl_primitive_desc_destroy(pd); continue; }
        const dnnl_memory_desc_t *src = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
        const dnnl_memory_desc_t *wq = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        const dnnl_memory_desc_t *dst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
        int64_t kept = 0;
        dnnl_primitive_desc_query(pd, dnnl_query_memory_consumption_s64, 0, &kept);
        dnnl_primitive_t p;
        if (dnnl_primitive_create(&p, pd) != dnnl_success) { printf("  %-34s could not be made\n", impl); dnnl_primitive_desc_destroy(pd); continue; }
        dnnl_memory_t ms, mw, mb, md;
        dnnl_memory_create(&ms, src, engine, DNNL_MEMORY_ALLOCATE);
        dnnl_memory_create(&mw, wq, engine, DNNL_MEMORY_ALLOCATE);
        dnnl_memory_create(&mb, &b_md, engine, DNNL_MEMORY_ALLOCATE);
        dnnl_memory_create(&md, dst, engine, DNNL_MEMORY_ALLOCATE);
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_BIAS, mb}, {DNNL_ARG_DST, md}};
        int reps = flops > 1e9 ? 5 : (int)(2e9 / flops) + 1;
        double best = 1e9;
        for (int r = 0; r < 5; r++) {
            double t = now();
            for (int i = 0; i < reps; i++) dnnl_primitive_execute(p, stream, 4, args);
            dnnl_stream_wait(stream);
            t = (now() - t) / reps;
            if (t < best) best = t;
        }
        printf("  %-34s %8.3f ms %6.0f GFLOP/s  NHWC in place: %s  kernel %.2f MB (HWIO %.2f), kept besides %.2f MB\n", impl,
               best * 1e3, flops / best / 1e9, dnnl_memory_desc_equal(src, &nhwc) ? "yes" : "no", dnnl_memory_desc_get_size(wq) / 1e6,
               4.0 * oc * ic * kh * kw / 1e6, kept / 1e6);
        dnnl_memory_destroy(ms);
        dnnl_memory_destroy(mw);
        dnnl_memory_destroy(mb);
        dnnl_memory_destroy(md);
        dnnl_primitive_destroy(p);
        dnnl_primitive_desc_destroy(pd);
    } while (dnnl_primitive_desc_iterator_next(it) == dnnl_success);
    dnnl_primitive_desc_iterator_destroy(it);
    return 0;
}
