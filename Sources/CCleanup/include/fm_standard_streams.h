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

/* Writes all `length` bytes to `fd` (1 or 2), retrying short writes and EINTR. On a failure
   the rest is dropped and the first failure's errno is kept for fm_standard_failure.
   Async-signal-safe. */
void fm_standard_write(int fd, const void *bytes, size_t length);

/* The errno of the first write to `fd` (1 or 2) that failed since the last call, or 0; and
   forgets it. */
int fm_standard_failure(int fd);
#endif
