#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "fm_kernels.h"
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fm_available_cpus(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}

int fm_thread_runs_on_exactly(const int *cpus, size_t count) {
    cpu_set_t mine, given;
    CPU_ZERO(&mine);
    CPU_ZERO(&given);
    if (sched_getaffinity(0, sizeof mine, &mine) != 0) return 0;
    for (size_t i = 0; i < count; i++) {
        if (cpus[i] < 0 || cpus[i] >= CPU_SETSIZE) return 0;
        CPU_SET(cpus[i], &given);
    }
    return CPU_EQUAL(&mine, &given);
}

/* Whole CPUs a quota of `quota` µs per `period` µs allows: at least 1, 0 for none or nonsense. */
static long whole_cpus(long long quota, long long period) {
    if (quota <= 0 || period <= 0) return 0;
    long long cpus = quota / period;
    return cpus < 1 ? 1 : cpus > INT_MAX ? INT_MAX : (long)cpus;
}

/* The first line of a small file, or 0 when it cannot be read. */
static int read_line(const char *path, char *line, size_t size) {
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    int ok = fgets(line, (int)size, f) != NULL;
    fclose(f);
    return ok;
}

/* The least CPU limit of the cgroup `cgroup` under `mount` and of its parents up to the mount
   (v2's cpu.max, or v1's quota and period files); 0 for none. */
static long least_along(const char *mount, const char *cgroup, int v2) {
    char dir[PATH_MAX], path[PATH_MAX + 32], line[128];
    if (snprintf(dir, sizeof dir, "%s%s", mount, cgroup) >= (int)sizeof dir) return 0;
    size_t floor_len = strlen(mount);
    long least = 0;
    for (;;) {
        long cpus = 0;
        if (v2) {
            snprintf(path, sizeof path, "%s/cpu.max", dir);
            long long quota, period;
            if (read_line(path, line, sizeof line) && sscanf(line, "%lld %lld", &quota, &period) == 2) cpus = whole_cpus(quota, period);
        } else {
            long long quota = 0, period = 0;
            snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
            if (read_line(path, line, sizeof line)) quota = strtoll(line, NULL, 10);
            snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
            if (read_line(path, line, sizeof line)) period = strtoll(line, NULL, 10);
            cpus = whole_cpus(quota, period);
        }
        if (cpus > 0 && (least == 0 || cpus < least)) least = cpus;
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < floor_len) break;
        *slash = '\0';
    }
    return least;
}

int fm_cgroup_cpus(const char *root) {
    char path[PATH_MAX], line[4096];
    if (snprintf(path, sizeof path, "%sproc/self/cgroup", root) >= (int)sizeof path) return 0;
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    long least = 0;
    while (fgets(line, sizeof line, f)) {
        /* "ID:CONTROLLERS:PATH"; v2's controllers are empty. */
        char *first = strchr(line, ':'), *second = first ? strchr(first + 1, ':') : NULL;
        if (!second || second[1] != '/') continue;
        second[strcspn(second, "\n")] = '\0';
        /* The cgroup's path below the mount, "" for the root. */
        const char *cgroup = strcmp(second + 1, "/") ? second + 1 : "";
        *second = '\0';
        const char *controllers = first + 1;
        long cpus = 0;
        if (*controllers == '\0') {
            const char *mounts[] = {"sys/fs/cgroup", "sys/fs/cgroup/unified"};
            for (int i = 0; i < 2 && cpus == 0; i++) {
                char mount[PATH_MAX];
                snprintf(mount, sizeof mount, "%s%s", root, mounts[i]);
                cpus = least_along(mount, cgroup, 1);
            }
        } else {
            int has_cpu = 0;
            for (const char *c = controllers; *c;) {
                size_t n = strcspn(c, ",");
                if (n == 3 && strncmp(c, "cpu", 3) == 0) has_cpu = 1;
                c += n + (c[n] == ',');
            }
            if (!has_cpu) continue;
            char mount[PATH_MAX];
            if (snprintf(mount, sizeof mount, "%ssys/fs/cgroup/%s", root, controllers) >= (int)sizeof mount) continue;
            cpus = least_along(mount, cgroup, 0);
            if (cpus == 0 && strcmp(controllers, "cpu") != 0) {
                snprintf(mount, sizeof mount, "%ssys/fs/cgroup/cpu", root);
                cpus = least_along(mount, cgroup, 0);
            }
        }
        if (cpus > 0 && (least == 0 || cpus < least)) least = cpus;
    }
    fclose(f);
    return (int)least;
}
