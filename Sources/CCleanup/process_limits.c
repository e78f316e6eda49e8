#define _GNU_SOURCE /* pthread_getattr_default_np */
#include "fm_process_limits.h"
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Calls `visit` with each descriptor open in this process but the listing's own (none without
   /proc). */
static void each_open_descriptor(void (*visit)(long fd, long *context), long *context) {
    DIR *fds = opendir("/proc/self/fd");
    if (fds == NULL) return;
    for (struct dirent *entry; (entry = readdir(fds)) != NULL;) {
        char *end;
        long fd = strtol(entry->d_name, &end, 10);
        if (*end == 0 && end != entry->d_name && fd != dirfd(fds)) visit(fd, context);
    }
    closedir(fds);
}

static void keep_highest(long fd, long *highest) {
    if (fd > *highest) *highest = fd;
}

/* Closes the descriptor if it is at or past `*first`. */
static void close_from(long fd, long *first) {
    if (fd >= *first) close((int)fd);
}

/* The highest descriptor open in this process, or -1 (no /proc). */
static long highest_open_descriptor(void) {
    long highest = -1;
    each_open_descriptor(keep_highest, &highest);
    return highest;
}

long fm_ensure_open_files(long needed) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 0;
    /* Past the highest descriptor open too: Foundation's Process closes every descriptor up to
       the highest one open for the child, and fails (EBADF) on one at or past the soft limit,
       as one inherited from the parent can be. */
    long highest = highest_open_descriptor();
    rlim_t wanted = (rlim_t)(highest + 1 > needed ? highest + 1 : needed);
    if (limit.rlim_cur >= wanted) return 0;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < (rlim_t)needed) return (long)limit.rlim_max;
    /* The hard limit (what a process may raise its soft limit to), or what is wanted where the
       hard limit is infinite, which the soft limit cannot be. */
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        limit.rlim_cur = limit.rlim_max != RLIM_INFINITY && limit.rlim_max < wanted ? limit.rlim_max : wanted;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    /* Descriptors inherited past even the hard limit are closed: fmodel uses none it inherits
       past standard error, and Process would fail on them. */
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && (rlim_t)highest >= limit.rlim_cur) {
        long first = (long)limit.rlim_cur;
        each_open_descriptor(close_from, &first);
    }
    return 0;
}

static void *wait_for_release(void *gate) {
    pthread_mutex_lock(gate);
    pthread_mutex_unlock(gate);
    return NULL;
}

int fm_probe_threads(int count, long stack_bytes) {
    pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
    pthread_t threads[64];
    pthread_attr_t attributes;
    int started = 0, failure = 0;
    if (count > 64) count = 64;
    if (pthread_attr_init(&attributes) != 0) return EAGAIN;
    if (stack_bytes > 0 && (failure = pthread_attr_setstacksize(&attributes, (size_t)stack_bytes)) != 0) {
        pthread_attr_destroy(&attributes);
        return failure;
    }
    /* Each waits on the gate held here, so that all are alive at once. */
    pthread_mutex_lock(&gate);
    while (started < count &&
           (failure = pthread_create(&threads[started], stack_bytes > 0 ? &attributes : NULL, wait_for_release, &gate)) == 0)
        started++;
    pthread_mutex_unlock(&gate);
    for (int i = 0; i < started; i++) pthread_join(threads[i], NULL);
    pthread_attr_destroy(&attributes);
    return failure;
}

int fm_openmp_affinity_unusable(const int *cpus, size_t count, char *allowed, size_t capacity) {
    long configured = sysconf(_SC_NPROCESSORS_CONF);
    if (configured < 1) configured = 1;
    const size_t size = CPU_ALLOC_SIZE(configured), bits = 8 * size;
    cpu_set_t *mask = CPU_ALLOC(bits);
    if (mask == NULL) return 0;
    if (count == 0 || sched_getaffinity(0, size, mask) != 0) goto ignored;
    for (size_t i = 0; i < count; i++)
        if (cpus[i] >= 0 && (size_t)cpus[i] < bits && CPU_ISSET_S(cpus[i], size, mask)) goto ignored;
    /* The CPUs it may run on, as ranges: "0-1", "2,4-7". */
    size_t used = 0;
    if (capacity > 0) allowed[0] = 0;
    for (size_t cpu = 0; cpu < bits; cpu++) {
        if (!CPU_ISSET_S(cpu, size, mask) || (cpu > 0 && CPU_ISSET_S(cpu - 1, size, mask))) continue;
        size_t end = cpu;
        while (end + 1 < bits && CPU_ISSET_S(end + 1, size, mask)) end++;
        int n = end > cpu ? snprintf(allowed + used, capacity - used, "%s%zu-%zu", used ? "," : "", cpu, end)
                          : snprintf(allowed + used, capacity - used, "%s%zu", used ? "," : "", cpu);
        if (n < 0 || (size_t)n >= capacity - used) break;
        used += (size_t)n;
    }
    CPU_FREE(mask);
    return 1;
ignored:
    CPU_FREE(mask);
    return 0;
}

long fm_ensure_stack(long needed, long main_bytes, long thread_bytes) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_STACK, &limit) != 0) return 0;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < (rlim_t)needed) return (long)limit.rlim_max;
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < (rlim_t)main_bytes) {
        limit.rlim_cur = limit.rlim_max != RLIM_INFINITY && limit.rlim_max < (rlim_t)main_bytes ? limit.rlim_max : (rlim_t)main_bytes;
        setrlimit(RLIMIT_STACK, &limit);
    }
    pthread_attr_t attributes;
    size_t size = 0;
    if (pthread_getattr_default_np(&attributes) != 0) return 0;
    if (pthread_attr_getstacksize(&attributes, &size) == 0 && size < (size_t)thread_bytes &&
        pthread_attr_setstacksize(&attributes, (size_t)thread_bytes) == 0)
        pthread_setattr_default_np(&attributes);
    pthread_attr_destroy(&attributes);
    return 0;
}
