#include "fm_image_decoders.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One decode, on the heap for the reason jpeg_decoder.c gives: libpng's errors longjmp back to
   the setjmp(png_jmpbuf) of the function that opened the session, and afterwards only memory
   reached through the session pointer is read. */
typedef struct {
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t size, offset;
    int truncated;
    char *message;
    size_t capacity;
} session;

static void fail(png_structp png, png_const_charp text) {
    session *s = png_get_error_ptr(png);
    if (s->capacity > 0) snprintf(s->message, s->capacity, "%s", text);
    png_longjmp(png, 1);
}

/* Warnings (an ancillary chunk's bad CRC, an unknown chunk) are neither printed nor errors. */
static void quiet(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

/* The source: asking for bytes past the end is an error, as TensorFlow's read callback makes it. */
static void source(png_structp png, png_bytep out, size_t count) {
    session *s = png_get_io_ptr(png);
    if (count > s->size - s->offset) {
        s->truncated = 1;
        png_error(png, "the file ends before the image does");
    }
    memcpy(out, s->data + s->offset, count);
    s->offset += count;
}

/* A session reading `data`, its errors not yet caught: the caller's next step is
   setjmp(png_jmpbuf(s->png)). NULL when libpng cannot be set up. */
static session *open_session(const uint8_t *data, size_t size, char *message, size_t capacity) {
    session *s = calloc(1, sizeof *s);
    if (s) {
        s->data = data;
        s->size = size;
        s->message = message;
        s->capacity = capacity;
        s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, fail, quiet);
        if (s->png) s->info = png_create_info_struct(s->png);
        if (s->info) {
            png_set_read_fn(s->png, s, source);
            return s;
        }
        png_destroy_read_struct(s->png ? &s->png : NULL, NULL, NULL);
        free(s);
    }
    if (capacity > 0) snprintf(message, capacity, "no memory for the decoder");
    return NULL;
}

/* Ends the session: FM_DECODE_TRUNCATED or _INVALID after an error, else `status`. */
static fm_decode_status close_session(session *s, int failed, fm_decode_status status) {
    if (failed) status = s->truncated ? FM_DECODE_TRUNCATED : FM_DECODE_INVALID;
    png_destroy_read_struct(&s->png, &s->info, NULL);
    free(s);
    return status;
}

fm_decode_status fm_png_size(const uint8_t *data, size_t size, int *width, int *height, char *message, size_t capacity) {
    session *s = open_session(data, size, message, capacity);
    if (!s) return FM_DECODE_INVALID;
    if (setjmp(png_jmpbuf(s->png))) return close_session(s, 1, FM_DECODE_INVALID);
    png_read_info(s->png, s->info);
    *width = (int)png_get_image_width(s->png, s->info);
    *height = (int)png_get_image_height(s->png, s->info);
    return close_session(s, 0, FM_DECODE_OK);
}

fm_decode_status fm_png_decode(const uint8_t *data, size_t size, uint8_t *rgb, int width, int height, char *message,
                               size_t capacity) {
    session *s = open_session(data, size, message, capacity);
    if (!s) return FM_DECODE_INVALID;
    if (setjmp(png_jmpbuf(s->png))) return close_session(s, 1, FM_DECODE_INVALID);
    png_read_info(s->png, s->info);
    const int type = png_get_color_type(s->png, s->info), depth = png_get_bit_depth(s->png, s->info);
    /* TensorFlow's CommonInitDecode for three 8-bit channels. */
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png);
    if (!(type & PNG_COLOR_MASK_COLOR)) {
        if (depth < 8) png_set_expand_gray_1_2_4_to_8(s->png);
        png_set_gray_to_rgb(s->png);
    }
    /* A palette's transparency (tRNS) becomes an alpha channel with its colours (libpng's
       palette_to_rgb expands it too), stripped as a stored one is: such files were refused
       ("decodes to rows of 96 bytes"), which TensorFlow decodes to their colours. */
    if ((type & PNG_COLOR_MASK_ALPHA) || png_get_valid(s->png, s->info, PNG_INFO_tRNS)) png_set_strip_alpha(s->png);
    if (depth > 8) png_set_strip_16(s->png);
    const int passes = png_set_interlace_handling(s->png);
    png_read_update_info(s->png, s->info);
    const size_t stride = (size_t)width * 3;
    if ((int)png_get_image_width(s->png, s->info) != width || (int)png_get_image_height(s->png, s->info) != height ||
        png_get_channels(s->png, s->info) != 3 || png_get_rowbytes(s->png, s->info) != stride) {
        if (capacity > 0)
            snprintf(message, capacity, "decodes to rows of %zu bytes, not the %d×3 its header declared",
                     (size_t)png_get_rowbytes(s->png, s->info), width);
        return close_session(s, 0, FM_DECODE_INVALID);
    }
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < height; y++) png_read_row(s->png, rgb + (size_t)y * stride, NULL);
    png_read_end(s->png, NULL); /* on to IEND, as TensorFlow reads it */
    return close_session(s, 0, FM_DECODE_OK);
}
