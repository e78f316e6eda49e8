#include "fm_jpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

/* libjpeg reports errors by calling error_exit, which must not return: it jumps back to the
   call that set `jump`, with libjpeg's message kept in `message`. */
typedef struct {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char *message;
    size_t capacity;
} error_context;

static void fail(j_common_ptr info) {
    error_context *context = (error_context *)info->err;
    if (context->capacity > 0) {
        char text[JMSG_LENGTH_MAX];
        info->err->format_message(info, text);
        snprintf(context->message, context->capacity, "%s", text);
    }
    longjmp(context->jump, 1);
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

/* The status for the error libjpeg raised. */
static fm_jpeg_status status_of(j_decompress_ptr info) {
    return info->err->msg_code == JERR_INPUT_EOF ? FM_JPEG_TRUNCATED : FM_JPEG_INVALID;
}

/* Sets up `info` to read `data`, with errors jumping back to the caller's setjmp. */
static void begin(j_decompress_ptr info, error_context *context, struct jpeg_source_mgr *source, const uint8_t *data,
                  size_t size) {
    info->err = jpeg_std_error(&context->manager);
    context->manager.error_exit = fail;
    context->manager.emit_message = quiet;
    jpeg_create_decompress(info);
    source->next_input_byte = data;
    source->bytes_in_buffer = size;
    source->init_source = init_source;
    source->fill_input_buffer = fill_input_buffer;
    source->skip_input_data = skip_input_data;
    source->resync_to_restart = jpeg_resync_to_restart;
    source->term_source = term_source;
    info->src = source;
}

fm_jpeg_status fm_jpeg_size(const uint8_t *data, size_t size, int *width, int *height, char *message, size_t capacity) {
    struct jpeg_decompress_struct info;
    struct jpeg_source_mgr source;
    error_context context = {.message = message, .capacity = capacity};
    if (setjmp(context.jump)) {
        fm_jpeg_status status = status_of(&info);
        jpeg_destroy_decompress(&info);
        return status;
    }
    begin(&info, &context, &source, data, size);
    jpeg_read_header(&info, TRUE);
    *width = (int)info.image_width;
    *height = (int)info.image_height;
    const int cmyk = info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK;
    jpeg_destroy_decompress(&info);
    if (cmyk && capacity > 0) snprintf(message, capacity, "a CMYK image (fmodel decodes RGB and greyscale JPEG)");
    return cmyk ? FM_JPEG_NOT_RGB : FM_JPEG_OK;
}

fm_jpeg_status fm_jpeg_decode(const uint8_t *data, size_t size, uint8_t *rgb, int width, int height, char *message,
                              size_t capacity) {
    struct jpeg_decompress_struct info;
    struct jpeg_source_mgr source;
    error_context context = {.message = message, .capacity = capacity};
    if (setjmp(context.jump)) {
        fm_jpeg_status status = status_of(&info);
        jpeg_destroy_decompress(&info);
        return status;
    }
    begin(&info, &context, &source, data, size);
    jpeg_read_header(&info, TRUE);
    info.out_color_space = JCS_RGB;
    info.dct_method = JDCT_IFAST;
    info.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&info);
    if ((int)info.output_width != width || (int)info.output_height != height || info.output_components != 3) {
        if (capacity > 0) snprintf(message, capacity, "decodes to %u×%u×%d, not the %d×%d×3 its header declared",
                                   info.output_width, info.output_height, info.output_components, width, height);
        jpeg_destroy_decompress(&info);
        return FM_JPEG_INVALID;
    }
    const size_t stride = (size_t)width * 3;
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = rgb + (size_t)info.output_scanline * stride;
        if (jpeg_read_scanlines(&info, &row, 1) != 1) ERREXIT(&info, JERR_INPUT_EOF);  /* cannot suspend: no partial rows */
    }
    jpeg_finish_decompress(&info);  /* reads on to the end marker, as TensorFlow does */
    jpeg_destroy_decompress(&info);
    return FM_JPEG_OK;
}
