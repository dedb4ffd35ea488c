/* image.c - PNG (libpng) and JPEG (libjpeg-turbo) decoding into 8-bit
 * pixels, and tf.image.resize's bilinear resize.  See image.h. */
#include "image.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

enum image_kind image_sniff(const void *data, size_t len)
{
    const unsigned char *p = data;
    if (len >= 8 && png_sig_cmp(p, 0, 8) == 0)
        return IMAGE_KIND_PNG;
    if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
        return IMAGE_KIND_JPEG;
    return IMAGE_KIND_UNKNOWN;
}

/* --- PNG ----------------------------------------------------------------------------- */

struct png_src {
    const unsigned char *data;
    size_t len, pos;
    char error[200];
};

static void png_err(png_structp png, png_const_charp msg)
{
    struct png_src *s = png_get_error_ptr(png);
    snprintf(s->error, sizeof(s->error), "%s", msg);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep out, png_size_t n)
{
    struct png_src *s = png_get_io_ptr(png);
    if (n > s->len - s->pos)
        png_error(png, "truncated PNG data");
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

struct png_job {
    png_structp png;
    png_infop info;
    uint8_t *pixels;
    png_bytep *rows;
};

static int decode_png(const void *data, size_t len, int channels, uint8_t **ret_pixels,
                      int *ret_h, int *ret_w, const char *field, struct diag *d)
{
    struct png_src src = {.data = data, .len = len};
    struct png_job *j = calloc(1, sizeof(*j));
    if (!j)
        return diag_set(d, -ENOMEM, field, "out of memory");
    int err = 0;
    j->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_err, png_warn);
    if (j->png)
        j->info = png_create_info_struct(j->png);
    if (!j->png || !j->info) {
        err = diag_set(d, -ENOMEM, field, "out of memory");
        goto out;
    }
    if (setjmp(png_jmpbuf(j->png))) {
        err = diag_set(d, -EINVAL, field, "%s: corrupt PNG: %s", field,
                       src.error[0] ? src.error : "decoding failed");
        goto out;
    }
    png_set_read_fn(j->png, &src, png_read_mem);
    png_set_user_limits(j->png, 65535, 65535);
    png_read_info(j->png, j->info);
    png_uint_32 w = png_get_image_width(j->png, j->info);
    png_uint_32 h = png_get_image_height(j->png, j->info);
    if ((uint64_t)w * h > IMAGE_MAX_PIXELS) {
        err = diag_set(d, -EFBIG, field, "%s: %ux%u pixels, more than %d", field, (unsigned)w,
                       (unsigned)h, IMAGE_MAX_PIXELS);
        goto out;
    }
    int type = png_get_color_type(j->png, j->info);
    int depth = png_get_bit_depth(j->png, j->info);
    bool trns = png_get_valid(j->png, j->info, PNG_INFO_tRNS) != 0;
    bool color = (type & PNG_COLOR_MASK_COLOR) != 0;
    bool alpha = (type & PNG_COLOR_MASK_ALPHA) != 0;
    if (depth == 16)
        png_set_strip_16(j->png);
    if (type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(j->png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(j->png);
    if (trns && channels == 4) {
        png_set_tRNS_to_alpha(j->png);
        alpha = true;
    }
    if (channels == 1 && color)
        png_set_rgb_to_gray(j->png, 1, 0.299, 0.587);
    if (channels >= 3 && !color)
        png_set_gray_to_rgb(j->png);
    if (channels != 4 && alpha)
        png_set_strip_alpha(j->png);
    if (channels == 4 && !alpha)
        png_set_add_alpha(j->png, 0xff, PNG_FILLER_AFTER);
    png_set_interlace_handling(j->png);
    png_read_update_info(j->png, j->info);
    if (png_get_channels(j->png, j->info) != channels ||
        png_get_rowbytes(j->png, j->info) != (size_t)w * (size_t)channels) {
        err = diag_set(d, -EINVAL, field, "%s: unsupported PNG layout", field);
        goto out;
    }
    j->pixels = malloc((size_t)w * h * (size_t)channels);
    j->rows = malloc(h * sizeof(*j->rows));
    if (!j->pixels || !j->rows) {
        err = diag_set(d, -ENOMEM, field, "out of memory");
        goto out;
    }
    for (png_uint_32 y = 0; y < h; y++)
        j->rows[y] = j->pixels + (size_t)y * w * (size_t)channels;
    png_read_image(j->png, j->rows);
    png_read_end(j->png, NULL);
    *ret_pixels = j->pixels;
    j->pixels = NULL;
    *ret_h = (int)h;
    *ret_w = (int)w;
out:
    if (j->png)
        png_destroy_read_struct(&j->png, j->info ? &j->info : NULL, NULL);
    free(j->pixels);
    free(j->rows);
    free(j);
    return err;
}

/* --- JPEG ---------------------------------------------------------------------------- */

struct jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jmp;
    char message[JMSG_LENGTH_MAX];
};

static void jpeg_fail(j_common_ptr cinfo)
{
    struct jpeg_err *e = (struct jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jmp, 1);
}

static void jpeg_note(j_common_ptr cinfo, int level)
{
    if (level < 0) /* a warning: corrupt data libjpeg would paper over */
        jpeg_fail(cinfo);
}

struct jpeg_job {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_err err;
    uint8_t *pixels;
    bool created;
};

static int decode_jpeg(const void *data, size_t len, int channels, uint8_t **ret_pixels,
                       int *ret_h, int *ret_w, const char *field, struct diag *d)
{
    struct jpeg_job *j = calloc(1, sizeof(*j));
    if (!j)
        return diag_set(d, -ENOMEM, field, "out of memory");
    int err = 0;
    j->cinfo.err = jpeg_std_error(&j->err.mgr);
    j->err.mgr.error_exit = jpeg_fail;
    j->err.mgr.emit_message = jpeg_note;
    if (setjmp(j->err.jmp)) {
        err = diag_set(d, -EINVAL, field, "%s: corrupt JPEG: %s", field, j->err.message);
        goto out;
    }
    jpeg_create_decompress(&j->cinfo);
    j->created = true;
    jpeg_mem_src(&j->cinfo, data, (unsigned long)len);
    jpeg_read_header(&j->cinfo, TRUE);
    if (j->cinfo.jpeg_color_space == JCS_CMYK || j->cinfo.jpeg_color_space == JCS_YCCK) {
        err = diag_set(d, -EINVAL, field, "%s: CMYK JPEG images are not supported", field);
        goto out;
    }
    if ((uint64_t)j->cinfo.image_width * j->cinfo.image_height > IMAGE_MAX_PIXELS) {
        err = diag_set(d, -EFBIG, field, "%s: %ux%u pixels, more than %d", field,
                       j->cinfo.image_width, j->cinfo.image_height, IMAGE_MAX_PIXELS);
        goto out;
    }
    j->cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE
                               : channels == 3 ? JCS_RGB
                                               : JCS_EXT_RGBA;
    jpeg_start_decompress(&j->cinfo);
    int w = (int)j->cinfo.output_width, h = (int)j->cinfo.output_height;
    if (j->cinfo.output_components != channels) {
        err = diag_set(d, -EINVAL, field, "%s: unsupported JPEG colour layout", field);
        goto out;
    }
    j->pixels = malloc((size_t)w * (size_t)h * (size_t)channels);
    if (!j->pixels) {
        err = diag_set(d, -ENOMEM, field, "out of memory");
        goto out;
    }
    while (j->cinfo.output_scanline < j->cinfo.output_height) {
        JSAMPROW row = j->pixels + (size_t)j->cinfo.output_scanline * (size_t)w * (size_t)channels;
        jpeg_read_scanlines(&j->cinfo, &row, 1);
    }
    jpeg_finish_decompress(&j->cinfo);
    *ret_pixels = j->pixels;
    j->pixels = NULL;
    *ret_h = h;
    *ret_w = w;
out:
    if (j->created)
        jpeg_destroy_decompress(&j->cinfo);
    free(j->pixels);
    free(j);
    return err;
}

int image_decode(const void *data, size_t len, int channels, uint8_t **ret_pixels, int *ret_h,
                 int *ret_w, const char *field, struct diag *d)
{
    if (channels != 1 && channels != 3 && channels != 4)
        return diag_set(d, -EINVAL, field, "channels must be 1, 3 or 4");
    switch (image_sniff(data, len)) {
    case IMAGE_KIND_PNG:
        return decode_png(data, len, channels, ret_pixels, ret_h, ret_w, field, d);
    case IMAGE_KIND_JPEG:
        return decode_jpeg(data, len, channels, ret_pixels, ret_h, ret_w, field, d);
    case IMAGE_KIND_UNKNOWN:
        break;
    }
    return diag_set(d, -EINVAL, field, "%s: not a PNG or JPEG image", field);
}

/* --- resize -------------------------------------------------------------------------- */

struct lerp {
    int lo, hi;
    float t;
};

/* TensorFlow's compute_interpolation_weights with HalfPixelScaler. */
static void weights(struct lerp *out, int out_size, int in_size)
{
    float scale = (float)in_size / (float)out_size;
    for (int i = 0; i < out_size; i++) {
        float in = ((float)i + 0.5f) * scale - 0.5f;
        float in_f = floorf(in);
        int lo = (int)in_f, hi = (int)ceilf(in);
        out[i].lo = lo < 0 ? 0 : lo;
        out[i].hi = hi > in_size - 1 ? in_size - 1 : hi;
        out[i].t = in - in_f;
    }
}

void image_resize_bilinear(uint8_t *out, int oh, int ow, const uint8_t *in, int ih, int iw,
                           int c)
{
    if (oh == ih && ow == iw) {
        memcpy(out, in, (size_t)oh * (size_t)ow * (size_t)c);
        return;
    }
    struct lerp *ys = malloc((size_t)oh * sizeof(*ys));
    struct lerp *xs = malloc((size_t)ow * sizeof(*xs));
    if (!ys || !xs) { /* tiny allocations; fall back to nearest on failure */
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                memcpy(out + ((size_t)y * ow + x) * c,
                       in + ((size_t)(y * ih / oh) * iw + (size_t)(x * iw / ow)) * c, (size_t)c);
        free(ys);
        free(xs);
        return;
    }
    weights(ys, oh, ih);
    weights(xs, ow, iw);
    for (int y = 0; y < oh; y++) {
        const uint8_t *top = in + (size_t)ys[y].lo * iw * c;
        const uint8_t *bot = in + (size_t)ys[y].hi * iw * c;
        float ty = ys[y].t;
        for (int x = 0; x < ow; x++) {
            const struct lerp *lx = &xs[x];
            for (int k = 0; k < c; k++) {
                float tl = top[lx->lo * c + k], tr = top[lx->hi * c + k];
                float bl = bot[lx->lo * c + k], br = bot[lx->hi * c + k];
                float t = tl + (tr - tl) * lx->t;
                float b = bl + (br - bl) * lx->t;
                float v = t + (b - t) * ty;
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                out[((size_t)y * ow + x) * c + k] = (uint8_t)lrintf(v);
            }
        }
    }
    free(ys);
    free(xs);
}
