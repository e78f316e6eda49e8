#ifndef FMODEL_JPEG_H
#define FMODEL_JPEG_H
#include <stddef.h>
#include <stdint.h>

/* JPEG decoding as TensorFlow's tf.io.decode_jpeg does it by default (its jpeg_mem.cc on the
   libjpeg API): the fast integer IDCT, fancy upsampling, and a file whose bytes end before its
   image does (or before its end marker) an error, where libjpeg's own memory source and
   TurboJPEG insert an end marker and return grey rows. Warnings (corrupt entropy data, a marker
   inside a scan) are not errors, as in TensorFlow. */

/* Why a call failed. */
typedef enum {
    FM_JPEG_OK = 0,
    FM_JPEG_TRUNCATED = 1,  /* the bytes end before the image (or its end marker) does */
    FM_JPEG_INVALID = 2,    /* libjpeg refused it; the message says why */
    FM_JPEG_NOT_RGB = 3,    /* CMYK or YCCK: not convertible to RGB by libjpeg */
} fm_jpeg_status;

/* The width and height the frame header declares. */
fm_jpeg_status fm_jpeg_size(const uint8_t *data, size_t size, int *width, int *height, char *message, size_t capacity);

/* Decodes into `rgb` (width × height × 3 bytes, rows top to bottom), which must have the size
   fm_jpeg_size gave. Rows are written in order, so on an error only those decoded so far have
   been touched. */
fm_jpeg_status fm_jpeg_decode(const uint8_t *data, size_t size, uint8_t *rgb, int width, int height, char *message,
                              size_t capacity);
#endif
