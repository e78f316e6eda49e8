#ifndef FMODEL_CPNG_SHIM_H
#define FMODEL_CPNG_SHIM_H
#include <png.h>

/* PNG_IMAGE_VERSION, PNG_FORMAT_RGB and PNG_IMAGE_SIZE are macros: re-exported for Swift. */
static inline png_uint_32 fm_png_image_version(void) { return PNG_IMAGE_VERSION; }
static inline png_uint_32 fm_png_format_rgb(void) { return PNG_FORMAT_RGB; }
#endif
