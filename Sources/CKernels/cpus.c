#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "fm_kernels.h"
#include <sched.h>

int fm_available_cpus(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}
