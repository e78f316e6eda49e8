#ifndef FMODEL_STANDARD_STREAMS_H
#define FMODEL_STANDARD_STREAMS_H
#include <stddef.h>

/* Standard input, output and error as fmodel starts and writes them.

   A process started without one of descriptors 0-2 (`fmodel … >&-`, or a parent that closed
   them) hands that number to the next file it opens: fmodel's temporary output took
   descriptor 1, and a line printed meanwhile would have gone into the model file. And a write
   to standard output or error can fail (a full disk behind `2>/dev/full`, a closed pipe, a
   closed descriptor): Foundation's FileHandle.write ends the process on one (SIGILL, where the
   command should have said its error and exited with 2). */

/* Opens a placeholder on each of descriptors 0, 1 and 2 the process was started without:
   /dev/null read-only (or the root directory, O_PATH, where there is no /dev/null), so that
   a write to it fails with EBADF as it did on the closed descriptor, and no file the process
   opens takes its number. Call from main before anything opens a file. */
void fm_reserve_standard_descriptors(void);

/* Makes sure the process may have `needed` files open at once (RLIMIT_NOFILE), and a
   descriptor past the highest one it has open (one inherited from the parent can be past the
   limit): a lower soft limit is raised to the hard limit, as a process may. Returns 0, or the
   hard limit when that is lower than `needed` (the limits are then left as they were). With a few descriptors free, the
   libraries fmodel starts threads and its import worker with end the process (SIGILL) where
   they cannot open one: Dispatch's event loop, Foundation's Process and its run loop. */
long fm_ensure_open_files(long needed);

/* Starts `count` threads that live at once, then ends them: 0 when all started, else the
   error of the first that did not (EAGAIN: the user's processes and threads at `ulimit -u`).
   Past that limit the libraries fmodel computes with do not fail with an error: Dispatch
   waits, a second at a time, for a thread it can start (a hang), and OpenMP ends the process
   with exit code 1 ("libgomp: Thread creation failed"). */
int fm_probe_threads(int count);

/* Writes all `length` bytes to `fd` (1 or 2), retrying short writes and EINTR. On a failure
   the rest is dropped and the first failure's errno is kept for fm_standard_failure.
   Async-signal-safe. */
void fm_standard_write(int fd, const void *bytes, size_t length);

/* The errno of the first write to `fd` (1 or 2) that failed since the last call, or 0; and
   forgets it. */
int fm_standard_failure(int fd);
#endif
