#include "fm_image_decoders.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#include <jerror.h>
#include <jpeglib.h>

/* One decode: libjpeg's state, its source and its error manager, on the heap. libjpeg reports
   errors by calling error_exit, which must not return: it jumps back to the setjmp in the
   function that opened the session, with libjpeg's message kept in `message`. After that jump
   only memory reached through the (unchanged) session pointer is read: automatic variables
   changed since the setjmp are indeterminate (C11 7.13.2.1), and a release build did read a
   stale error code from one. */
typedef struct {
    struct jpeg_error_mgr errors; /* first: error_exit finds the session from `info->err` */
    struct jpeg_decompress_struct info;
    struct jpeg_source_mgr source;
    jmp_buf jump;
    char *message;
    size_t capacity;
} session;

static void fail(j_common_ptr info) {
    session *s = (session *)info->err;
    if (s->capacity > 0) {
        char text[JMSG_LENGTH_MAX];
        info->err->format_message(info, text);
        snprintf(s->message, s->capacity, "%s", text);
    }
    longjmp(s->jump, 1);
}

/* Warnings are neither printed nor errors (TensorFlow decodes through them too). */
static void quiet(j_common_ptr info, int level) {
    (void)info;
    (void)level;
}

/* The source: all the bytes at once; asking for more is an error (TensorFlow's
   MemFillInputBuffer with try_recover_truncated off), not the end marker libjpeg's own
   jpeg_mem_src makes up. */
static void init_source(j_decompress_ptr info) { (void)info; }
static void term_source(j_decompress_ptr info) { (void)info; }

static boolean fill_input_buffer(j_decompress_ptr info) {
    ERREXIT(info, JERR_INPUT_EOF);
    return FALSE;
}

static void skip_input_data(j_decompress_ptr info, long count) {
    if (count <= 0) return;
    if ((size_t)count > info->src->bytes_in_buffer) ERREXIT(info, JERR_INPUT_EOF);
    info->src->next_input_byte += count;
    info->src->bytes_in_buffer -= (size_t)count;
}

/* A session reading `data`, its errors not yet caught: the caller's next step is
   setjmp(s->jump), then `start`. NULL when there is no memory for it. */
static session *open_session(const uint8_t *data, size_t size, char *message, size_t capacity) {
    session *s = calloc(1, sizeof *s);
    if (!s) {
        if (capacity > 0) snprintf(message, capacity, "no memory for the decoder");
        return NULL;
    }
    s->message = message;
    s->capacity = capacity;
    s->info.err = jpeg_std_error(&s->errors);
    s->errors.error_exit = fail;
    s->errors.emit_message = quiet;
    s->source.next_input_byte = data;
    s->source.bytes_in_buffer = size;
    s->source.init_source = init_source;
    s->source.fill_input_buffer = fill_input_buffer;
    s->source.skip_input_data = skip_input_data;
    s->source.resync_to_restart = jpeg_resync_to_restart;
    s->source.term_source = term_source;
    return s;
}

/* Creates libjpeg's state and reads the header (errors jump to the caller's setjmp). */
static void start(session *s) {
    jpeg_create_decompress(&s->info);
    s->info.src = &s->source;
    jpeg_read_header(&s->info, TRUE);
}

/* Ends the session: the status for the error libjpeg raised, or `status` if none did. */
static fm_decode_status close_session(session *s, int failed, fm_decode_status status) {
    if (failed) status = s->errors.msg_code == JERR_INPUT_EOF ? FM_DECODE_TRUNCATED : FM_DECODE_INVALID;
    jpeg_destroy_decompress(&s->info);
    free(s);
    return status;
}

fm_decode_status fm_jpeg_size(const uint8_t *data, size_t size, int *width, int *height, char *message, size_t capacity) {
    session *s = open_session(data, size, message, capacity);
    if (!s) return FM_DECODE_INVALID;
    if (setjmp(s->jump)) return close_session(s, 1, FM_DECODE_INVALID);
    start(s);
    *width = (int)s->info.image_width;
    *height = (int)s->info.image_height;
    return close_session(s, 0, FM_DECODE_OK);
}

/* One row of libjpeg's CMYK as RGB, as TensorFlow's jpeg_mem.cc converts it: Adobe's inverted
   CMYK (k·c/255, …), else (255−k)(255−c)/255. */
static void cmyk_to_rgb(const JSAMPLE *cmyk, uint8_t *rgb, int width, int adobe) {
    for (int i = 0; i < width; i++) {
        const int c = cmyk[4 * i], m = cmyk[4 * i + 1], y = cmyk[4 * i + 2], k = cmyk[4 * i + 3];
        if (adobe) {
            rgb[3 * i] = (uint8_t)(k * c / 255);
            rgb[3 * i + 1] = (uint8_t)(k * m / 255);
            rgb[3 * i + 2] = (uint8_t)(k * y / 255);
        } else {
            rgb[3 * i] = (uint8_t)((255 - k) * (255 - c) / 255);
            rgb[3 * i + 1] = (uint8_t)((255 - k) * (255 - m) / 255);
            rgb[3 * i + 2] = (uint8_t)((255 - k) * (255 - y) / 255);
        }
    }
}

fm_decode_status fm_jpeg_decode(const uint8_t *data, size_t size, uint8_t *rgb, int width, int height, char *message,
                              size_t capacity) {
    session *s = open_session(data, size, message, capacity);
    if (!s) return FM_DECODE_INVALID;
    if (setjmp(s->jump)) return close_session(s, 1, FM_DECODE_INVALID);
    start(s);
    const int cmyk = s->info.jpeg_color_space == JCS_CMYK || s->info.jpeg_color_space == JCS_YCCK;
    s->info.out_color_space = cmyk ? JCS_CMYK : JCS_RGB; /* libjpeg makes no RGB of CMYK */
    s->info.dct_method = JDCT_IFAST;
    s->info.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&s->info);
    const int components = cmyk ? 4 : 3;
    if ((int)s->info.output_width != width || (int)s->info.output_height != height ||
        s->info.output_components != components) {
        if (capacity > 0)
            snprintf(message, capacity, "decodes to %u×%u×%d, not the %d×%d×%d its header declared", s->info.output_width,
                     s->info.output_height, s->info.output_components, width, height, components);
        return close_session(s, 0, FM_DECODE_INVALID);
    }
    const size_t stride = (size_t)width * 3;
    /* A CMYK row, in libjpeg's pool: freed with the session, after an error too. */
    JSAMPARRAY cmyk_row = cmyk ? (*s->info.mem->alloc_sarray)((j_common_ptr)&s->info, JPOOL_IMAGE, (JDIMENSION)width * 4, 1) : NULL;
    while (s->info.output_scanline < s->info.output_height) {
        uint8_t *out = rgb + (size_t)s->info.output_scanline * stride;
        JSAMPROW row = cmyk ? cmyk_row[0] : out;
        if (jpeg_read_scanlines(&s->info, &row, 1) != 1) ERREXIT(&s->info, JERR_INPUT_EOF); /* cannot suspend */
        if (cmyk) cmyk_to_rgb(row, out, width, s->info.saw_Adobe_marker);
    }
    jpeg_finish_decompress(&s->info); /* reads on to the end marker, as TensorFlow does */
    return close_session(s, 0, FM_DECODE_OK);
}
