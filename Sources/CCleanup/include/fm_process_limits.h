#ifndef FMODEL_PROCESS_LIMITS_H
#define FMODEL_PROCESS_LIMITS_H

#include <stddef.h>

/* What a process needs of its limits before it starts work (`ulimit -n`, `-u`, `-s`): the
   libraries fmodel runs on do not fail with an error past them, they crash or hang. Call from
   main, before other threads start. */

/* Makes sure the process may have `needed` files open at once (RLIMIT_NOFILE), and a
   descriptor past the highest one it has open (one inherited from the parent can be past the
   limit): a lower soft limit is raised to the hard limit, as a process may, and descriptors
   inherited past even that are closed (fmodel uses none it inherits past standard error; past
   the limit, Foundation's Process failed to start the worker, EBADF). Returns 0, or the
   hard limit when that is lower than `needed` (the limits are then left as they were). With
   a few descriptors free, the libraries fmodel starts threads and its import worker with end
   the process (SIGILL) where they cannot open one: Dispatch's event loop, Foundation's Process
   and its run loop. */
long fm_ensure_open_files(long needed);

/* Starts `count` threads that live at once, each with a stack of `stack_bytes` (0: the
   default), then ends them: 0 when all started, else the error of the first that did not
   (EAGAIN: the user's processes and threads at `ulimit -u`, or stacks past the memory there
   is). Past either the libraries fmodel computes with do not fail with an error: Dispatch
   waits, a second at a time, for a thread it can start (a hang), and OpenMP ends the process
   with exit code 1 ("libgomp: Thread creation failed"). */
int fm_probe_threads(int count, long stack_bytes);

/* Whether none of `cpus` (the `count` CPUs of the places libgomp binds its threads to) is one
   this process may run on: libgomp then ends the process (exit code 1, "Thread creation
   failed: Invalid argument") as it starts a team's second thread. Returns 1 then, with the
   CPUs the process may run on in `allowed` ("0-1", "2,4-7"); else 0. */
int fm_openmp_affinity_unusable(const int *cpus, size_t count, char *allowed, size_t capacity);

/* Makes sure the main thread's stack may grow to `main_bytes` (its soft RLIMIT_STACK raised,
   as far as the hard limit allows: the kernel checks the limit as the stack grows) and that
   threads start with stacks of at least `thread_bytes` (glibc sizes them by the limit at
   exec). Returns 0, or the hard limit in bytes when it is below `needed` (nothing changed).
   Under `ulimit -s 48` fmodel crashed (SIGSEGV) parsing its arguments, in the Swift runtime's
   type metadata. */
long fm_ensure_stack(long needed, long main_bytes, long thread_bytes);
#endif
