#define _GNU_SOURCE /* gettid */
#include "fm_cleanup.h"
#include "fm_standard_streams.h"
#include <fcntl.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Lock-free slots: a path (strdup'd) or pid is published with an atomic store and claimed with an
   atomic exchange, by fm_cleanup_forget or by the handler, whichever comes first; only the one
   that claims it uses it. A path the handler claims is not freed (the process is ending). */
enum { FILE_SLOTS = 32, DIRECTORY_SLOTS = 8, CHILD_SLOTS = 4, MAPPING_SLOTS = 64, KIND_STRIDE = 64 };
enum { KIND_FILE = 0, KIND_DIRECTORY = 1, KIND_CHILD = 2, KIND_MAPPING = 3 };
/* A child slot holds the child's pid, or while the child is being started, minus the id of the
   thread starting it (fm_cleanup_starting_child). */

/* A mapping, published whole: the handler reads it only through its slot's pointer. */
struct mapping {
    const char *start;
    size_t length;
    char path[];
};

static char *files[FILE_SLOTS];
static char *directories[DIRECTORY_SLOTS];
static pid_t children[CHILD_SLOTS];
static struct mapping *mappings[MAPPING_SLOTS];
static const int handled[] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction previous_bus;

static int remember_path(char **slots, int count, int kind, const char *path) {
    char *copy = strdup(path);
    if (copy == NULL) return -1;
    for (int i = 0; i < count; i++) {
        char *expected = NULL;
        if (__atomic_compare_exchange_n(&slots[i], &expected, copy, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return kind * KIND_STRIDE + i;
    }
    free(copy);
    return -1;
}

int fm_cleanup_remember_file(const char *path) { return remember_path(files, FILE_SLOTS, KIND_FILE, path); }

int fm_cleanup_remember_directory(const char *path) {
    return remember_path(directories, DIRECTORY_SLOTS, KIND_DIRECTORY, path);
}

static int remember_child(pid_t pid) {
    for (int i = 0; i < CHILD_SLOTS; i++) {
        pid_t expected = 0;
        if (__atomic_compare_exchange_n(&children[i], &expected, pid, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return KIND_CHILD * KIND_STRIDE + i;
    }
    return -1;
}

/* A signal that came to a thread while it was starting a child, handled once the pid is known. */
static int deferred_signal;
static void on_signal(int sig);

int fm_cleanup_starting_child(void) { return remember_child(-(pid_t)gettid()); }

void fm_cleanup_started_child(int ticket, pid_t pid) {
    int i = ticket % KIND_STRIDE;
    if (ticket < 0 || ticket / KIND_STRIDE != KIND_CHILD || i >= CHILD_SLOTS) return;
    __atomic_store_n(&children[i], pid > 0 ? pid : 0, __ATOMIC_SEQ_CST);
    int sig = __atomic_exchange_n(&deferred_signal, 0, __ATOMIC_SEQ_CST);
    if (sig != 0) on_signal(sig);
}

int fm_cleanup_remember_mapping(const void *start, size_t length, const char *path) {
    size_t n = strlen(path) + 1;
    struct mapping *m = malloc(sizeof *m + n);
    if (m == NULL) return -1;
    m->start = start;
    m->length = length;
    memcpy(m->path, path, n);
    for (int i = 0; i < MAPPING_SLOTS; i++) {
        struct mapping *expected = NULL;
        if (__atomic_compare_exchange_n(&mappings[i], &expected, m, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return KIND_MAPPING * KIND_STRIDE + i;
    }
    free(m);
    return -1;
}

void fm_cleanup_forget(int ticket) {
    if (ticket < 0) return;
    int kind = ticket / KIND_STRIDE, i = ticket % KIND_STRIDE;
    switch (kind) {
    case KIND_FILE:
        if (i < FILE_SLOTS) free(__atomic_exchange_n(&files[i], NULL, __ATOMIC_SEQ_CST));
        break;
    case KIND_DIRECTORY:
        if (i < DIRECTORY_SLOTS) free(__atomic_exchange_n(&directories[i], NULL, __ATOMIC_SEQ_CST));
        break;
    case KIND_CHILD:
        if (i < CHILD_SLOTS) __atomic_store_n(&children[i], 0, __ATOMIC_SEQ_CST);
        break;
    case KIND_MAPPING:
        if (i < MAPPING_SLOTS) free(__atomic_exchange_n(&mappings[i], NULL, __ATOMIC_SEQ_CST));
        break;
    }
}

void fm_cleanup_remove_now(int ticket) {
    if (ticket < 0) return;
    int kind = ticket / KIND_STRIDE, i = ticket % KIND_STRIDE;
    char *p = NULL;
    if (kind == KIND_FILE && i < FILE_SLOTS) p = __atomic_exchange_n(&files[i], NULL, __ATOMIC_SEQ_CST);
    if (kind == KIND_DIRECTORY && i < DIRECTORY_SLOTS) p = __atomic_exchange_n(&directories[i], NULL, __ATOMIC_SEQ_CST);
    if (p == NULL) return;
    if (kind == KIND_FILE) unlink(p); else rmdir(p);
    free(p);
}

static int remembered_in(char **slots, int count, const char *path) {
    for (int i = 0; i < count; i++) {
        const char *p = __atomic_load_n(&slots[i], __ATOMIC_SEQ_CST);
        if (p != NULL && strcmp(p, path) == 0) return 1;
    }
    return 0;
}

int fm_cleanup_remembers(const char *path) {
    return remembered_in(files, FILE_SLOTS, path) || remembered_in(directories, DIRECTORY_SLOTS, path);
}

/* Ends a child: SIGTERM (its own handler removes what it writes), then SIGKILL if it has not
   ended within 2 s (a worker whose SIGTERM is still blocked). A child already reaped elsewhere
   makes waitpid fail at once. */
static void end_child(pid_t pid) {
    kill(pid, SIGTERM);
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (int waited = 0; waited < 200; waited++) {
        if (waitpid(pid, NULL, WNOHANG) != 0) return;
        nanosleep(&tick, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Whether the calling thread is starting a child (its slot holds minus this thread's id). */
static int starting_here(void) {
    pid_t mark = -(pid_t)gettid();
    for (int i = 0; i < CHILD_SLOTS; i++)
        if (__atomic_load_n(&children[i], __ATOMIC_SEQ_CST) == mark) return 1;
    return 0;
}

/* Ends the remembered children, removes the remembered files, then the directories. A child
   another thread is starting is waited for (up to 2 s) until that thread publishes its pid. */
static void clean_up(void) {
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (int i = 0; i < CHILD_SLOTS; i++) {
        for (int waited = 0; waited < 200 && __atomic_load_n(&children[i], __ATOMIC_SEQ_CST) < 0; waited++)
            nanosleep(&tick, NULL);
        pid_t pid = __atomic_exchange_n(&children[i], 0, __ATOMIC_SEQ_CST);
        if (pid > 0) end_child(pid);
    }
    for (int i = 0; i < FILE_SLOTS; i++) {
        char *p = __atomic_exchange_n(&files[i], NULL, __ATOMIC_SEQ_CST);
        if (p != NULL) unlink(p);
    }
    /* Last remembered first: a directory made inside another was made after it. */
    for (int i = DIRECTORY_SLOTS - 1; i >= 0; i--) {
        char *p = __atomic_exchange_n(&directories[i], NULL, __ATOMIC_SEQ_CST);
        if (p != NULL) rmdir(p);
    }
}

/* The handler of the three signals, and fm_cleanup_started_child's for one it deferred. On a
   thread starting a child, whose pid is not known yet, the signal is deferred: the handler
   returns (SA_RESTART: the start goes on), and the thread handles it once it publishes the pid. */
static void on_signal(int sig) {
    int saved = errno;
    if (starting_here()) {
        __atomic_store_n(&deferred_signal, sig, __ATOMIC_SEQ_CST);
        errno = saved;
        return;
    }
    clean_up();
    /* End by the same signal: it is blocked while this handler runs, so it is delivered, with
       its default action, when the handler returns. (sigaction, not signal(): only the former
       is async-signal-safe.) */
    struct sigaction default_action = {0};
    default_action.sa_handler = SIG_DFL;
    sigaction(sig, &default_action, NULL);
    raise(sig);
    errno = saved;
}

void fm_cleanup_exit(int code) {
    clean_up();
    _exit(code);
}

static void say(const char *text) { fm_standard_write(2, text, strlen(text)); }

/* Set by the first thread to fault in a remembered mapping. */
static int bus_reported;

/* A fault in a remembered mapping: the file shrank under it. Said, cleaned up, exit code 2 (as
   for any bad input). Threads that read the mapping together all fault: the first says it and
   ends the process, the others wait for that (they wrote "error: error: PATHPATH: …" together
   before). A fault elsewhere: the handler that was there before is put back, and the faulting
   access, made again on return, goes to it. */
static void on_bus(int sig, siginfo_t *info, void *context) {
    const char *address = info->si_addr;
    for (int i = 0; i < MAPPING_SLOTS; i++) {
        const struct mapping *m = __atomic_load_n(&mappings[i], __ATOMIC_SEQ_CST);
        if (m == NULL || address < m->start || address >= m->start + m->length) continue;
        if (__atomic_exchange_n(&bus_reported, 1, __ATOMIC_SEQ_CST)) {
            for (;;) pause();
        }
        say("error: ");
        say(m->path);
        say(": the file shrank while it was being read (another program wrote over it in place?)\n");
        clean_up();
        _exit(2);
    }
    (void)sig;
    (void)context;
    sigaction(SIGBUS, &previous_bus, NULL);
}

void fm_cleanup_install(void) {
    sigset_t unblock;
    sigemptyset(&unblock);
    for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++) {
        struct sigaction old;
        if (sigaction(handled[i], NULL, &old) != 0 || old.sa_handler == SIG_IGN) continue;
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = on_signal;
        action.sa_flags = SA_RESTART;
        sigfillset(&action.sa_mask);
        sigaction(handled[i], &action, NULL);
        sigaddset(&unblock, handled[i]);
    }
    struct sigaction bus;
    memset(&bus, 0, sizeof bus);
    bus.sa_sigaction = on_bus;
    bus.sa_flags = SA_SIGINFO;
    sigfillset(&bus.sa_mask);
    sigaction(SIGBUS, &bus, &previous_bus);
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    signal(SIGXFSZ, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
}

int fm_memory_file(const char *name) {
#ifdef MFD_CLOEXEC
    return memfd_create(name, MFD_CLOEXEC);
#else
    (void)name;
    errno = ENOSYS;
    return -1;
#endif
}

int fm_open_unnamed(const char *directory) {
#ifdef O_TMPFILE
    return open(directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#else
    (void)directory;
    errno = EOPNOTSUPP;
    return -1;
#endif
}
