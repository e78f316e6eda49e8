#define _GNU_SOURCE /* pthread_getattr_default_np */
#include "fm_process_limits.h"
#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
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

int fm_probe_threads(int count) {
    pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
    pthread_t threads[64];
    int started = 0, failure = 0;
    if (count > 64) count = 64;
    /* Each waits on the gate held here, so that all are alive at once. */
    pthread_mutex_lock(&gate);
    while (started < count && (failure = pthread_create(&threads[started], NULL, wait_for_release, &gate)) == 0) started++;
    pthread_mutex_unlock(&gate);
    for (int i = 0; i < started; i++) pthread_join(threads[i], NULL);
    return failure;
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
