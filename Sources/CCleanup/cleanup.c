#include "fm_cleanup.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Lock-free slots: a path (strdup'd) or pid is published with an atomic store and claimed with an
   atomic exchange, by fm_cleanup_forget or by the handler, whichever comes first; only the one
   that claims it uses it. A path the handler claims is not freed (the process is ending). */
enum { FILE_SLOTS = 32, DIRECTORY_SLOTS = 8, CHILD_SLOTS = 4, KIND_STRIDE = 64 };
enum { KIND_FILE = 0, KIND_DIRECTORY = 1, KIND_CHILD = 2 };

static char *files[FILE_SLOTS];
static char *directories[DIRECTORY_SLOTS];
static pid_t children[CHILD_SLOTS];
static const int handled[] = {SIGINT, SIGTERM, SIGHUP};

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

int fm_cleanup_remember_child(pid_t pid) {
    for (int i = 0; i < CHILD_SLOTS; i++) {
        pid_t expected = 0;
        if (__atomic_compare_exchange_n(&children[i], &expected, pid, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return KIND_CHILD * KIND_STRIDE + i;
    }
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
    }
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

static void on_signal(int sig) {
    int saved = errno;
    for (int i = 0; i < CHILD_SLOTS; i++) {
        pid_t pid = __atomic_exchange_n(&children[i], 0, __ATOMIC_SEQ_CST);
        if (pid > 0) end_child(pid);
    }
    for (int i = 0; i < FILE_SLOTS; i++) {
        char *p = __atomic_exchange_n(&files[i], NULL, __ATOMIC_SEQ_CST);
        if (p != NULL) unlink(p);
    }
    for (int i = 0; i < DIRECTORY_SLOTS; i++) {
        char *p = __atomic_exchange_n(&directories[i], NULL, __ATOMIC_SEQ_CST);
        if (p != NULL) rmdir(p);
    }
    /* End by the same signal: it is blocked while this handler runs, so it is delivered, with
       its default action, when the handler returns. (sigaction, not signal(): only the former
       is async-signal-safe.) */
    struct sigaction default_action = {0};
    default_action.sa_handler = SIG_DFL;
    sigaction(sig, &default_action, NULL);
    raise(sig);
    errno = saved;
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
        sigfillset(&action.sa_mask);
        sigaction(handled[i], &action, NULL);
        sigaddset(&unblock, handled[i]);
    }
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    signal(SIGXFSZ, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
}
