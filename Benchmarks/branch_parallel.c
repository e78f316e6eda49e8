/* Inter-op parallelism at batch 1, measured before it is built: an Inception block's branches
   as int8 oneDNN convolutions (u8 activations, s8 kernels, s32 out; the epilogues and
   quantizing passes left out), run two ways, alternating, best of ROUNDS:
     team     every convolution in turn on both threads (what fmodel does), and
     branches each thread a share of the branches, every convolution on that one thread (its
              primitive made for one thread), the two shares at once.
   Block35 (17×17, 256 channels in): branches 1×1 256→32 | 1×1 256→32, 3×3 32→32 | 1×1 256→32,
   3×3 32→32, 3×3 32→32; the shares {0, 1} and {2}. Block17 (8×8, 896 in): 1×1 896→128 |
   1×1 896→128, 1×7 128→128, 7×1 128→128; shares {0} and {1}. Block8 (3×3, 1792 in): 1×1
   1792→192 | 1×1 1792→192, 1×3 192→192, 3×1 192→192.

     gcc -O2 -fopenmp Benchmarks/branch_parallel.c -o /tmp/branch_parallel -ldnnl
     OMP_NUM_THREADS=2 /tmp/branch_parallel [ROUNDS=2000] */
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct { int ic, oc, kh, kw; } shape;
typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst;
} conv;

static dnnl_engine_t engine;

/* A u8·s8→s32 convolution, SAME padding, on hw×hw NHWC, for however many threads OpenMP
   gives now (oneDNN sizes its work split when the primitive is made). */
static conv make(shape s, int hw, void *src, void *dst) {
    conv c;
    dnnl_memory_desc_t sm, wany, dm;
    dnnl_dims_t sd = {1, s.ic, hw, hw}, wd = {s.oc, s.ic, s.kh, s.kw}, dd = {1, s.oc, hw, hw};
    dnnl_memory_desc_init_by_tag(&sm, 4, sd, dnnl_u8, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&wany, 4, wd, dnnl_s8, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dm, 4, dd, dnnl_s32, dnnl_nhwc);
    dnnl_dims_t st = {1, 1}, dl = {0, 0}, pl = {(s.kh - 1) / 2, (s.kw - 1) / 2}, pr = {(s.kh - 1) / 2, (s.kw - 1) / 2};
    dnnl_convolution_desc_t d;
    dnnl_dilated_convolution_forward_desc_init(&d, dnnl_forward_inference, dnnl_convolution_direct, &sm, &wany, NULL, &dm, st, dl,
                                               pl, pr);
    dnnl_primitive_desc_t pd;
    if (dnnl_primitive_desc_create(&pd, &d, NULL, engine, NULL) != dnnl_success) { fprintf(stderr, "no primitive\n"); exit(1); }
    dnnl_primitive_create(&c.prim, pd);
    const dnnl_memory_desc_t *wq = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_create(&c.wei, wq, engine, DNNL_MEMORY_ALLOCATE);
    void *w;
    dnnl_memory_get_data_handle(c.wei, &w);
    memset(w, 1, dnnl_memory_desc_get_size(wq));
    dnnl_memory_create(&c.src, &sm, engine, src);
    dnnl_memory_create(&c.dst, &dm, engine, dst);
    dnnl_primitive_desc_destroy(pd);
    return c;
}

static void run(dnnl_stream_t stream, conv *c) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, c->src}, {DNNL_ARG_WEIGHTS, c->wei}, {DNNL_ARG_DST, c->dst}};
    dnnl_primitive_execute(c->prim, stream, 3, args);
}

enum { MAX_LAYERS = 3, MAX_BRANCHES = 3 };
typedef struct {
    const char *name;
    int hw, cin, branches, share0;             /* branches [0, share0) on thread 0, the rest on thread 1 */
    int layers[MAX_BRANCHES];
    shape shapes[MAX_BRANCHES][MAX_LAYERS];
} block;

static const block blocks[] = {
    {"Block35", 17, 256, 3, 2, {1, 2, 3},
     {{{256, 32, 1, 1}}, {{256, 32, 1, 1}, {32, 32, 3, 3}}, {{256, 32, 1, 1}, {32, 32, 3, 3}, {32, 32, 3, 3}}}},
    {"Block17", 8, 896, 2, 1, {1, 3}, {{{896, 128, 1, 1}}, {{896, 128, 1, 1}, {128, 128, 1, 7}, {128, 128, 7, 1}}}},
    {"Block8", 3, 1792, 2, 1, {1, 3}, {{{1792, 192, 1, 1}}, {{1792, 192, 1, 1}, {192, 192, 1, 3}, {192, 192, 3, 1}}}},
};

int main(int argc, char **argv) {
    const int rounds = argc > 1 ? atoi(argv[1]) : 2000;
    dnnl_engine_create(&engine, dnnl_cpu, 0);
    dnnl_stream_t stream;
    dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    const int team = omp_get_max_threads();
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
        const block *k = &blocks[b];
        const size_t plane = (size_t)k->hw * k->hw;
        unsigned char *in = calloc(plane * k->cin, 1);
        conv teamed[MAX_BRANCHES][MAX_LAYERS], alone[MAX_BRANCHES][MAX_LAYERS];
        for (int v = 0; v < 2; v++) {
            omp_set_num_threads(v == 0 ? team : 1);
            for (int br = 0; br < k->branches; br++) {
                void *src = in;
                for (int l = 0; l < k->layers[br]; l++) {
                    shape s = k->shapes[br][l];
                    void *dst = calloc(plane * s.oc, 4);
                    /* The next layer reads u8: a buffer of its own (the values do not matter). */
                    (v == 0 ? teamed : alone)[br][l] = make(s, k->hw, src, dst);
                    src = calloc(plane * s.oc, 1);
                }
            }
        }
        omp_set_num_threads(team);
        double best[2] = {1e9, 1e9};
        for (int r = 0; r < rounds; r++) {
            double t = now();
            for (int br = 0; br < k->branches; br++)
                for (int l = 0; l < k->layers[br]; l++) run(stream, &teamed[br][l]);
            t = now() - t;
            best[0] = t < best[0] ? t : best[0];
            t = now();
#pragma omp parallel num_threads(2)
            {
                const int me = omp_get_thread_num();
                for (int br = me == 0 ? 0 : k->share0; br < (me == 0 ? k->share0 : k->branches); br++)
                    for (int l = 0; l < k->layers[br]; l++) run(stream, &alone[br][l]);
            }
            t = now() - t;
            best[1] = t < best[1] ? t : best[1];
        }
        printf("%-8s branches, best of %d: team %.1f us, each thread its branches %.1f us, ratio %.2f\n", k->name, rounds,
               best[0] * 1e6, best[1] * 1e6, best[1] / best[0]);
    }
    return 0;
}
