/* What fmodel's start-up checks of its limits and environment cost (ProcessLimits: `ulimit -n`,
   `-u` and `-s`; the runtime's team size): fm_ensure_open_files(64), which reads /proc/self/fd,
   fm_probe_threads(4, 0), which starts and ends four threads, fm_ensure_stack, and fm_cgroup_cpus,
   which reads /proc/self/cgroup and the CPU quota files, each timed five times in a fresh
   process, microseconds. The first of each is what a command pays; the later ones are warm.

     gcc -O2 -ISources/CCleanup/include -ISources/CKernels/include Benchmarks/process_limits.c \
         Sources/CCleanup/process_limits.c Sources/CKernels/cpus.c -o /tmp/process_limits -lpthread
     /tmp/process_limits
*/
#include <stdio.h>
#include <time.h>
#include "fm_kernels.h"
#include "fm_process_limits.h"

static double microseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

int main(void) {
    printf("fm_ensure_open_files(64):");
    for (int i = 0; i < 5; i++) {
        double start = microseconds();
        long hard = fm_ensure_open_files(64);
        printf(" %.1f%s", microseconds() - start, hard ? " (refused)" : "");
    }
    printf(" us\nfm_probe_threads(4, 0):");
    for (int i = 0; i < 5; i++) {
        double start = microseconds();
        int failure = fm_probe_threads(4, 0);
        printf(" %.1f%s", microseconds() - start, failure ? " (failed)" : "");
    }
    printf(" us\nfm_ensure_stack:");
    for (int i = 0; i < 5; i++) {
        double start = microseconds();
        long hard = fm_ensure_stack(256 << 10, 8 << 20, 2 << 20);
        printf(" %.1f%s", microseconds() - start, hard ? " (refused)" : "");
    }
    printf(" us\nfm_cgroup_cpus:");
    for (int i = 0; i < 5; i++) {
        double start = microseconds();
        int cpus = fm_cgroup_cpus("/");
        printf(" %.1f (%d)", microseconds() - start, cpus);
    }
    printf(" us\n");
    return 0;
}
