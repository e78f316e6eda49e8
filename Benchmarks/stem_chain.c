/* FaceNet's stem (Conv2d_1a … Conv2d_4b: six convolutions and a max pool, seeded weights) run
   two ways, alternating, best of ROUNDS: layer by layer in NHWC as single oneDNN primitives
   (fm_conv_run; Winograd layers reordering in and out; the max pool as a oneDNN NHWC pooling
   primitive), and as one fm_chain (blocked layout between the layers). Prints both, the ratio,
   the chain's implementations, the largest difference between the two outputs, and, from one
   more run of the chain per round timed step by step (fm_chain_run_timed), each layer's
   fastest milliseconds in it, with the reorder into it (and, for the last, the reorder out):
   best of the rounds too, as conv_implementations.c gives a layer alone.

     gcc -O2 -ISources/CKernels/include Benchmarks/stem_chain.c -o /tmp/stem_chain -ldnnl -lm
     OMP_NUM_THREADS=2 /tmp/stem_chain BATCH [ROUNDS=10] */
#include "../Sources/CKernels/dnnl_conv.c"
#include <math.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* in: input height (= width); pool: a 3×3 stride-2 max pool (oc = ic). */
typedef struct { int ic, oc, k, stride, same, in, out, pool; } layer;
static const layer stem[] = {
    {3, 32, 3, 2, 0, 160, 79, 0},   {32, 32, 3, 1, 0, 79, 77, 0}, {32, 64, 3, 1, 1, 77, 77, 0}, {64, 64, 3, 2, 0, 77, 38, 1},
    {64, 80, 1, 1, 0, 38, 38, 0},   {80, 192, 3, 1, 0, 38, 36, 0}, {192, 256, 3, 2, 0, 36, 17, 0},
};
enum { LAYERS = sizeof stem / sizeof stem[0] };

/* A oneDNN max pool on NHWC activations, as fmodel's own pool reads and writes them. */
static dnnl_primitive_t nhwc_pool(const layer *l, int n, dnnl_memory_t *src, dnnl_memory_t *dst) {
    dnnl_memory_desc_t s, d;
    dnnl_dims_t sd = {n, l->ic, l->in, l->in}, dd = {n, l->ic, l->out, l->out}, st = {2, 2}, k = {3, 3}, dil = {0, 0}, pad = {0, 0};
    dnnl_memory_desc_init_by_tag(&s, 4, sd, dnnl_f32, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&d, 4, dd, dnnl_f32, dnnl_nhwc);
    dnnl_pooling_v2_desc_t desc;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p = NULL;
    if (dnnl_pooling_v2_forward_desc_init(&desc, dnnl_forward_inference, dnnl_pooling_max, &s, &d, st, k, dil, pad, pad) != dnnl_success
        || dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL) != dnnl_success)
        return NULL;
    dnnl_primitive_create(&p, pd);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_create(src, &s, engine, DNNL_MEMORY_NONE);
    dnnl_memory_create(dst, &d, engine, DNNL_MEMORY_NONE);
    return p;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s BATCH [ROUNDS]\n", argv[0]); return 2; }
    int n = atoi(argv[1]), rounds = argc > 2 ? atoi(argv[2]) : 10;
    fm_chain_layer layers[LAYERS];
    fm_conv *single[LAYERS] = {0};
    dnnl_primitive_t pool = NULL;
    dnnl_memory_t pool_src = NULL, pool_dst = NULL;
    char err[512];
    size_t largest = 0;
    for (int i = 0; i < LAYERS; i++) {
        const layer *l = &stem[i];
        int pad = l->same ? ((l->out - 1) * l->stride + l->k - l->in) / 2 : 0;
        fm_conv_params p = {n, l->in, l->in, l->ic, l->out, l->out, l->oc, l->k, l->k, l->stride, l->stride, 1, 1, pad, pad,
                            1.0f, 0, FM_ACT_RELU, 0, FM_SRC_F32, 0, 0};
        size_t count = (size_t)l->k * l->k * l->ic * l->oc;
        float *w = malloc(count * 4), *b = malloc(l->oc * 4);
        for (size_t j = 0; j < count; j++) w[j] = ((float)((j * 2654435761u) % 2001) / 1000.0f - 1.0f) / sqrtf(l->k * l->k * l->ic);
        for (int j = 0; j < l->oc; j++) b[j] = 0.01f * (j % 7);
        layers[i] = (fm_chain_layer){l->pool, p, w, b};
        if (l->pool) {
            pool = nhwc_pool(l, n, &pool_src, &pool_dst);
        } else if (!(single[i] = fm_conv_create(&p, w, b, err, sizeof err)) || fm_conv_load_weights(single[i])) {
            fprintf(stderr, "layer %d: %s\n", i, err);
            return 1;
        }
        size_t out = (size_t)n * l->out * l->out * l->oc * 4;
        largest = out > largest ? out : largest;
    }
    if (!pool) { fprintf(stderr, "oneDNN pooling unavailable\n"); return 1; }
    fm_chain *chain = fm_chain_create(layers, LAYERS, err, sizeof err);
    if (!chain || fm_chain_load_weights(chain)) { fprintf(stderr, "chain: %s\n", err); return 1; }
    size_t in = (size_t)n * 160 * 160 * 3, out = (size_t)n * 17 * 17 * 256;
    float *x = malloc(in * 4), *y1 = malloc(out * 4), *y2 = malloc(out * 4), *a = malloc(largest), *b = malloc(largest);
    /* the chain's two inner buffers */
    void *c0 = aligned_alloc(64, (fm_chain_buffer_size(chain, 0) + 63) / 64 * 64);
    void *c1 = aligned_alloc(64, (fm_chain_buffer_size(chain, 1) + 63) / 64 * 64);
    size_t space = fm_chain_workspace_size(chain);  /* and the workspace of its layers and of the single ones */
    for (int i = 0; i < LAYERS; i++) space = single[i] && fm_conv_workspace_size(single[i]) > space ? fm_conv_workspace_size(single[i]) : space;
    void *workspace = aligned_alloc(64, (space + 63) / 64 * 64 + 64);
    for (size_t j = 0; j < in; j++) x[j] = (float)((j * 7919) % 1000) / 500.0f - 1.0f;
    double one_by_one = 1e9, chained = 1e9, fastest[LAYERS];
    for (int i = 0; i < LAYERS; i++) fastest[i] = 1e9;
    for (int r = 0; r < rounds; r++) {
        double t = now();
        const float *cur = x;
        float *buffers[2] = {a, b};
        for (int i = 0; i < LAYERS; i++) {
            float *o = i == LAYERS - 1 ? y1 : buffers[i % 2];
            if (stem[i].pool) {
                dnnl_memory_set_data_handle(pool_src, (void *)cur);
                dnnl_memory_set_data_handle(pool_dst, o);
                dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, pool_src}, {DNNL_ARG_DST, pool_dst}};
                dnnl_primitive_execute(pool, stream, 2, args);
                dnnl_stream_wait(stream);
            } else if (fm_conv_run(single[i], cur, o, workspace)) {
                fprintf(stderr, "layer %d failed\n", i);
                return 1;
            }
            cur = o;
        }
        t = now() - t;
        one_by_one = t < one_by_one ? t : one_by_one;
        t = now();
        if (fm_chain_run(chain, x, y2, c0, c1, workspace)) { fprintf(stderr, "chain failed\n"); return 1; }
        t = now() - t;
        chained = t < chained ? t : chained;
        double steps[LAYERS] = {0};
        if (fm_chain_run_timed(chain, x, y2, c0, c1, workspace, steps)) { fprintf(stderr, "chain failed\n"); return 1; }
        for (int i = 0; i < LAYERS; i++) fastest[i] = steps[i] < fastest[i] ? steps[i] : fastest[i];
    }
    double most = 0;
    for (size_t j = 0; j < out; j++) most = fabs(y1[j] - y2[j]) > most ? fabs(y1[j] - y2[j]) : most;
    printf("FaceNet stem, batch %d, best of %d: layer by layer %.3f ms, chain %.3f ms, chain/layers %.2f; max |difference| %.2g\n",
           n, rounds, one_by_one * 1e3, chained * 1e3, chained / one_by_one, most);
    printf("chain: %s\n", fm_chain_implementation(chain));
    for (int i = 0; i < LAYERS; i++)
        printf("  layer %d (%s %d→%d, %d×%d → %d×%d): %.3f ms\n", i, stem[i].pool ? "max pool" : stem[i].k == 1 ? "1×1" : "3×3",
               stem[i].ic, stem[i].oc, stem[i].in, stem[i].in, stem[i].out, stem[i].out, fastest[i]);
    return 0;
}
