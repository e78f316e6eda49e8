#ifndef FMODEL_IMAGE_DECODERS_H
#define FMODEL_IMAGE_DECODERS_H
#include <stddef.h>
#include <stdint.h>

/* Image decoding as TensorFlow's decode ops do it by default, on the libraries' own APIs, where
   their errors (setjmp/longjmp) and their sources can be TensorFlow's. Each decoder has a size
   call (the header's width and height) and a decode call into `rgb` (width × height × 3 bytes,
   rows top to bottom) of the size it gave; `message` (`capacity` bytes) says why on an error.

   JPEG as tf.io.decode_jpeg does it by default (its jpeg_mem.cc on the
   libjpeg API): the fast integer IDCT, fancy upsampling, CMYK converted as TensorFlow converts
   it (libjpeg makes no RGB of it), and a file whose bytes end before its
   image does (or before its end marker) an error, where libjpeg's own memory source and
   TurboJPEG insert an end marker and return grey rows. Warnings (corrupt entropy data, a marker
   inside a scan) are not errors, as in TensorFlow. */

/* Why a call failed. */
typedef enum {
    FM_DECODE_OK = 0,
    FM_DECODE_TRUNCATED = 1,  /* the bytes end before the image (or its end marker) does */
    FM_DECODE_INVALID = 2,    /* the library refused it; the message says why */
} fm_decode_status;

/* The width and height the frame header declares. */
fm_decode_status fm_jpeg_size(const uint8_t *data, size_t size, int *width, int *height, char *message, size_t capacity);

/* Decodes into `rgb` (width × height × 3 bytes, rows top to bottom), which must have the size
   fm_jpeg_size gave. Rows are written in order, so on an error only those decoded so far have
   been touched. */
fm_decode_status fm_jpeg_decode(const uint8_t *data, size_t size, uint8_t *rgb, int width, int height, char *message,
                              size_t capacity);

/* PNG as tf.io.decode_png(channels=3) does it (its png_io.cc on libpng's API): a palette
   expanded, grey made RGB, alpha dropped (not composited, as libpng's simplified API does),
   16 bits a sample cut to their high 8 (not converted as linear light), and a file that ends
   before its IEND chunk an error. */
fm_decode_status fm_png_size(const uint8_t *data, size_t size, int *width, int *height, char *message, size_t capacity);
fm_decode_status fm_png_decode(const uint8_t *data, size_t size, uint8_t *rgb, int width, int height, char *message,
                               size_t capacity);
#endif
