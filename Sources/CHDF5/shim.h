#ifndef FMODEL_CHDF5_SHIM_H
#define FMODEL_CHDF5_SHIM_H
#include <hdf5.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

/* HDF5's predefined type ids and property defaults are macros over globals that need
   H5open(): Swift cannot see them, so they are re-exported here as functions. */
static inline hid_t fm_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t fm_H5T_C_S1(void) { return H5T_C_S1; }
static inline hid_t fm_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t fm_H5S_ALL(void) { return H5S_ALL; }
static inline unsigned fm_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline size_t fm_H5T_VARIABLE(void) { return H5T_VARIABLE; }

/* Turn off HDF5's automatic error printing; errors reach Swift as status codes. */
static inline void fm_H5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* The import worker ends when the process that started it does (a parent killed by a timeout
   would otherwise leave it reading, or looping in libhdf5, on its own): by SIGTERM, which its
   handler (Cleanup) takes to remove the temporary file it is writing beside the output before
   it ends. SIGKILL, as before, left that file (`kill -9` of fmodel 0.6–0.7 s into an import of
   the 478 MB .h5: 152 MB). prctl is variadic, which Swift cannot call. Returns 0, or -1 when the
   parent had already gone before the call: the worker's parent is no longer `parent` (fmodel's
   pid; it was taken for gone only when the parent was init, but an orphan goes to the nearest
   subreaper, such as a service manager's) or, when that is unknown (0), is init. */
static inline int fm_end_with_parent(pid_t parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) return -1;
    pid_t now = getppid();
    return (parent > 0 ? now != parent : now == 1) ? -1 : 0;
}
#endif
