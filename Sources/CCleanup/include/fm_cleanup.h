#ifndef FMODEL_CCLEANUP_H
#define FMODEL_CCLEANUP_H
#include <stddef.h>
#include <sys/types.h>
/* And how the process starts and writes its standard streams, and the limits it needs
   (included here too, so that a build made before those headers existed sees them: a module's
   cache notices a header it knows change, not a new one in its directory). */
#include "fm_standard_streams.h"
#include "fm_process_limits.h"

/* What a process removes, or ends, when SIGINT, SIGTERM or SIGHUP ends it: the temporary files
   it writes before renaming them into place (a half-written .fmodel of hundreds of MB beside the
   user's output), its temporary directories, and the worker processes it waits on. A path is
   remembered while it exists and forgotten once it has been renamed into place or removed.
   And the files it reads through mappings, for SIGBUS (fm_cleanup_remember_mapping).
   Remembering has no effect until fm_cleanup_install() has run: the executables install the
   handlers, the libraries only remember. The handlers call only async-signal-safe functions. */

/* Catches SIGINT, SIGTERM and SIGHUP where they are not ignored (a process started under nohup
   keeps ignoring SIGHUP) and unblocks them in the calling thread. Ignores SIGXFSZ, so that a
   write past the file size limit fails with EFBIG, an error reported like any other, instead of
   ending the process half-way through a file; and SIGPIPE, so that a closed standard output
   (`fmodel import … | head -1`) does not end it either: the reports it prints are lost, the
   file it writes is not. Call from main before other threads start. On one of the three signals
   the handler ends the remembered children (SIGTERM; SIGKILL if one has not ended within 2 s)
   and waits for them, removes the remembered files, then the remembered (empty) directories,
   and ends the process by the same signal. Catches SIGBUS too, for the mappings below. */
void fm_cleanup_install(void);

/* Remembers a file to remove. Returns a ticket for fm_cleanup_forget, or -1 when every slot is
   taken (the file is then not removed on a signal) or the copy of the path cannot be made. */
int fm_cleanup_remember_file(const char *path);

/* Remembers a directory to remove (after the files, so that one remembered with its files is
   removed with them). Returns a ticket, or -1 as above. */
int fm_cleanup_remember_directory(const char *path);

/* Remembers a child process about to be started by the calling thread, to end and wait for
   before the paths are removed (it may be writing one of them). Call just before starting it,
   and fm_cleanup_started_child with its pid (0 if the start failed) just after: there is no
   moment in which a signal would end this process and leave the child running (it was
   remembered only once started). The handler waits for the pid on another thread, and on this
   one returns and leaves the signal to fm_cleanup_started_child, which then handles it (the
   process ends). Returns a ticket, or -1 when every slot is taken. */
int fm_cleanup_starting_child(void);
void fm_cleanup_started_child(int ticket, pid_t pid);

/* Remembers a file's read-only mapping: a fault reading it (SIGBUS, when the file shrank under
   the mapping: another program wrote over it in place) then ends the process with exit code 2
   and a message naming `path` on standard error, after the cleanup above, instead of a crash.
   A fault elsewhere goes to the SIGBUS handler that was there before. Returns a ticket, or -1. */
int fm_cleanup_remember_mapping(const void *start, size_t length, const char *path);

/* Ends the process with exit code `code` at once, after the cleanup the handler does (children
   ended, files and directories removed): for a failure no caller can recover from, such as
   memory that cannot be had. */
_Noreturn void fm_cleanup_exit(int code);

/* Forgets what a ticket remembered. A ticket of -1 is ignored. */
void fm_cleanup_forget(int ticket);

/* Removes now the file or (empty) directory a ticket remembered, as the handler would, and
   forgets it. A ticket of -1, or one for a child or a mapping, is ignored. */
void fm_cleanup_remove_now(int ticket);

/* 1 when `path` is remembered as a file or a directory, else 0. */
int fm_cleanup_remembers(const char *path);

/* Opens a new file with no name in `directory` for reading and writing (O_TMPFILE), mode
   0600: what a process writes there vanishes with the process, even one ended by SIGKILL,
   which no handler above sees, until the file is linked into the directory under a name
   (linkat). Returns the descriptor (closed on exec), or -1 with errno set; where the file
   system or the kernel has no such files, EOPNOTSUPP or EISDIR. */
int fm_open_unnamed(const char *directory);

/* A new file in memory with no name anywhere (memfd_create; `name` shows in /proc only), for
   reading and writing, closed on exec: gone with the last descriptor, whatever ends the
   process. Returns the descriptor, or -1 with errno set (ENOSYS where the kernel has none). */
int fm_memory_file(const char *name);
#endif
