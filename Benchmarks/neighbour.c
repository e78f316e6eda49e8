/* A noisy neighbour for `contention.py`: busy for ON ms out of every ON + OFF, either on the CPU
   alone (`cpu`) or copying through a 256 MiB buffer (`memory`: it takes memory bandwidth and
   evicts the shared L3, as another tenant's job can). Runs until killed; pin it with taskset.

     gcc -O2 Benchmarks/neighbour.c -o Benchmarks/out/neighbour      (contention.py does this)
     taskset -c 1 Benchmarks/out/neighbour memory 2 8
*/
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
    if (argc != 4 || (strcmp(argv[1], "cpu") && strcmp(argv[1], "memory"))) {
        fprintf(stderr, "usage: neighbour cpu|memory ON_MS OFF_MS\n");
        return 2;
    }
    int memory = !strcmp(argv[1], "memory");
    double on = atof(argv[2]) * 1e-3, off = atof(argv[3]) * 1e-3;
    if (on <= 0 || off < 0) {
        fprintf(stderr, "neighbour: ON_MS must be above 0 and OFF_MS not below 0\n");
        return 2;
    }
    const size_t size = (size_t)256 << 20, step = (size_t)1 << 20;
    char *a = memory ? malloc(size) : NULL, *b = memory ? malloc(size) : NULL;
    if (memory && (!a || !b)) return 1;
    if (memory) memset(a, 1, size), memset(b, 2, size);
    volatile double spin = 0;
    size_t at = 0;
    struct timespec pause = {(time_t)off, (long)((off - (time_t)off) * 1e9)};
    for (;;) {
        double start = now();
        while (now() - start < on) {
            if (memory) {
                memcpy(b + at, a + at, step);
                at = (at + step) % size;
            } else {
                spin += 1;
            }
        }
        if (off > 0) nanosleep(&pause, NULL);
    }
}
