#ifndef FMODEL_CZLIB_SHIM_H
#define FMODEL_CZLIB_SHIM_H
#include <zlib.h>

/* inflateInit2 is a macro: a raw deflate stream (no zlib header), as zip's method 8 keeps it. */
static inline int fm_inflate_init_raw(z_stream *stream) { return inflateInit2(stream, -MAX_WBITS); }
#endif
