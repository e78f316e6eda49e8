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
   would otherwise leave it reading, or looping in libhdf5, on its own). prctl is variadic, which
   Swift cannot call. Returns 0, or -1 when the parent had already gone (the worker was
   handed to init) before the call. */
static inline int fm_end_with_parent(void) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return -1;
    return getppid() == 1 ? -1 : 0;
}
#endif
