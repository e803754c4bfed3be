// tinysense_image: MicroPython binding of image.c (camera frame preprocessing for CNN inputs).
//
//   rgb565_to_gray(src, dst, width, height, *, byteswap=False)
//   downscale_area(src, src_w, src_h, dst, dst_w, dst_h)
//   normalize(src, dst, *, mode='minmax', mean=128, std=64)
//   preprocess(src, format, src_w, src_h, dst, dst_w, dst_h, *, byteswap=False, normalize=None, mean=128, std=64)
//   RGB565 = 0, GRAYSCALE = 3   (the values of micropython-camera-API's PixelFormat)
//
// src: bytes, bytearray, array('B') / array('b') or a memoryview of them (camera.capture() returns a
// memoryview with typecode 'b'); dst: a writable uint8 buffer (bytearray, array('B') or a memoryview of them).
// Lengths must be exact: src holds width * height pixels (2 bytes each for RGB565), dst dst_w * dst_h bytes.
// All return None and allocate nothing; the exact arithmetic (luma, area weights, rounding, normalisation) is
// documented in image.h.
#include <string.h>

#include "py/binary.h"
#include "py/obj.h"
#include "py/runtime.h"

#include "image.h"

#define SRC_TYPES "bytes, bytearray, array('B'), array('b') or a memoryview of them"
#define DST_TYPES "bytearray, array('B') or a memoryview of them (uint8)"

static void get_src(mp_obj_t obj, const char *name, mp_buffer_info_t *info) {
    if (!mp_get_buffer(obj, info, MP_BUFFER_READ) || mp_obj_is_str(obj)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("%s must be " SRC_TYPES ", not %s"), name,
            mp_obj_get_type_str(obj));
    }
    const int tc = info->typecode;
    if (tc != BYTEARRAY_TYPECODE && tc != 'B' && tc != 'b') {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("%s: array typecode '%c' is not a byte type; use " SRC_TYPES), name, tc);
    }
}

static void get_dst(mp_obj_t obj, const char *name, mp_buffer_info_t *info) {
    if (!mp_get_buffer(obj, info, MP_BUFFER_WRITE)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("%s must be a writable " DST_TYPES ", not %s"), name,
            mp_obj_get_type_str(obj));
    }
    const int tc = info->typecode;
    if (tc != BYTEARRAY_TYPECODE && tc != 'B') {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("%s: array typecode '%c'; the output is uint8: use " DST_TYPES), name, tc);
    }
}

static bool overlap(const mp_buffer_info_t *a, const mp_buffer_info_t *b) {
    const uintptr_t a0 = (uintptr_t)a->buf;
    const uintptr_t b0 = (uintptr_t)b->buf;
    return a->len != 0 && b->len != 0 && a0 < b0 + b->len && b0 < a0 + a->len;
}

// Validates a width x height pair (named `what`) and returns the pixel count.
static size_t pixels_of(const char *what, mp_int_t w, mp_int_t h) {
    if (w <= 0 || h <= 0) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s size must be positive, got %dx%d"), what,
            (int)w, (int)h);
    }
    if ((mp_uint_t)w > IMAGE_MAX_SIDE || (mp_uint_t)h > IMAGE_MAX_SIDE
        || (uint64_t)w * (uint64_t)h > IMAGE_MAX_PIXELS) {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("%s size %dx%d is too large (at most %u per side and %u pixels)"), what, (int)w, (int)h,
            (unsigned int)IMAGE_MAX_SIDE, (unsigned int)IMAGE_MAX_PIXELS);
    }
    return (size_t)w * (size_t)h;
}

static void check_len(const char *name, const mp_buffer_info_t *info, size_t expected, const char *what,
    mp_int_t w, mp_int_t h) {
    if (info->len != expected) {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("%s holds %u bytes, but a %dx%d %s image is %u bytes"), name, (unsigned int)info->len,
            (int)w, (int)h, what, (unsigned int)expected);
    }
}

static const char *format_name(mp_int_t format) {
    if (format == IMAGE_RGB565) {
        return "RGB565";
    }
    if (format == IMAGE_GRAY) {
        return "GRAYSCALE";
    }
    mp_raise_msg_varg(&mp_type_ValueError,
        MP_ERROR_TEXT("format must be RGB565 (%d) or GRAYSCALE (%d), got %d"), IMAGE_RGB565, IMAGE_GRAY,
        (int)format);
}

// ---- rgb565_to_gray ----

static mp_obj_t tinysense_image_rgb565_to_gray(size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    enum { ARG_src, ARG_dst, ARG_width, ARG_height, ARG_byteswap };
    static const mp_arg_t allowed_args[] = {
        { MP_QSTR_src, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_rom_obj = MP_ROM_NONE} },
        { MP_QSTR_dst, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_rom_obj = MP_ROM_NONE} },
        { MP_QSTR_width, MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = 0} },
        { MP_QSTR_height, MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = 0} },
        { MP_QSTR_byteswap, MP_ARG_KW_ONLY | MP_ARG_BOOL, {.u_bool = false} },
    };
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed_args)];
    mp_arg_parse_all(n_args, pos_args, kw_args, MP_ARRAY_SIZE(allowed_args), allowed_args, args);
    mp_buffer_info_t src;
    mp_buffer_info_t dst;
    get_src(args[ARG_src].u_obj, "src", &src);
    get_dst(args[ARG_dst].u_obj, "dst", &dst);
    const mp_int_t w = args[ARG_width].u_int;
    const mp_int_t h = args[ARG_height].u_int;
    const size_t n = pixels_of("image", w, h);
    check_len("src", &src, 2 * n, "RGB565", w, h);
    check_len("dst", &dst, n, "gray", w, h);
    if (overlap(&src, &dst) && src.buf != dst.buf) {
        mp_raise_ValueError(MP_ERROR_TEXT("src and dst overlap; only dst at the start of src (in place) is allowed"));
    }
    image_rgb565_to_gray((const uint8_t *)src.buf, (uint8_t *)dst.buf, n, args[ARG_byteswap].u_bool);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_KW(tinysense_image_rgb565_to_gray_obj, 4, tinysense_image_rgb565_to_gray);

// ---- resampling (downscale_area, preprocess) ----

static void resample(const mp_buffer_info_t *src, mp_int_t format, mp_int_t src_w, mp_int_t src_h,
    const mp_buffer_info_t *dst, mp_int_t dst_w, mp_int_t dst_h, bool byteswap) {
    const char *name = format_name(format);
    const size_t n_src = pixels_of("source", src_w, src_h);
    const size_t n_dst = pixels_of("destination", dst_w, dst_h);
    check_len("src", src, n_src * image_bytes_per_pixel((int)format), name, src_w, src_h);
    check_len("dst", dst, n_dst, "gray", dst_w, dst_h);
    if (overlap(src, dst)) {
        mp_raise_ValueError(MP_ERROR_TEXT("src and dst must not overlap"));
    }
    // The checks above cover every status but IMAGE_OK.
    (void)image_resample_area((const uint8_t *)src->buf, (int)format, byteswap, (uint32_t)src_w, (uint32_t)src_h,
        (uint8_t *)dst->buf, (uint32_t)dst_w, (uint32_t)dst_h);
}

static mp_obj_t tinysense_image_downscale_area(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    mp_buffer_info_t src;
    mp_buffer_info_t dst;
    get_src(args[0], "src", &src);
    get_dst(args[3], "dst", &dst);
    resample(&src, IMAGE_GRAY, mp_obj_get_int(args[1]), mp_obj_get_int(args[2]), &dst, mp_obj_get_int(args[4]),
        mp_obj_get_int(args[5]), false);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(tinysense_image_downscale_area_obj, 6, 6, tinysense_image_downscale_area);

// ---- normalize ----

typedef enum { NORM_NONE, NORM_MINMAX, NORM_MEAN_STD } norm_mode_t;

static norm_mode_t norm_mode(mp_obj_t mode, bool none_ok) {
    if (mode == mp_const_none && none_ok) {
        return NORM_NONE;
    }
    if (mp_obj_is_str(mode)) {
        size_t len;
        const char *s = mp_obj_str_get_data(mode, &len);
        if (len == 6 && memcmp(s, "minmax", 6) == 0) {
            return NORM_MINMAX;
        }
        if (len == 8 && memcmp(s, "mean_std", 8) == 0) {
            return NORM_MEAN_STD;
        }
    }
    mp_raise_ValueError(none_ok ? MP_ERROR_TEXT("normalize must be None, 'minmax' or 'mean_std'")
        : MP_ERROR_TEXT("mode must be 'minmax' or 'mean_std'"));
}

static void normalize(norm_mode_t mode, const uint8_t *src, uint8_t *dst, size_t n, mp_int_t mean, mp_int_t std) {
    if (mode == NORM_MINMAX) {
        image_normalize_minmax(src, dst, n);
    } else if (mode == NORM_MEAN_STD) {
        if (mean < 0 || mean > 255) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("mean must be in 0..255, got %d"), (int)mean);
        }
        if (std < 1 || std > 255) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("std must be in 1..255, got %d"), (int)std);
        }
        image_normalize_mean_std(src, dst, n, (uint8_t)mean, (uint8_t)std);
    }
}

static mp_obj_t tinysense_image_normalize(size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    enum { ARG_src, ARG_dst, ARG_mode, ARG_mean, ARG_std };
    static const mp_arg_t allowed_args[] = {
        { MP_QSTR_src, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_rom_obj = MP_ROM_NONE} },
        { MP_QSTR_dst, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_rom_obj = MP_ROM_NONE} },
        { MP_QSTR_mode, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_rom_obj = MP_ROM_QSTR(MP_QSTR_minmax)} },
        { MP_QSTR_mean, MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = 128} },
        { MP_QSTR_std, MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = 64} },
    };
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed_args)];
    mp_arg_parse_all(n_args, pos_args, kw_args, MP_ARRAY_SIZE(allowed_args), allowed_args, args);
    mp_buffer_info_t src;
    mp_buffer_info_t dst;
    get_src(args[ARG_src].u_obj, "src", &src);
    get_dst(args[ARG_dst].u_obj, "dst", &dst);
    const norm_mode_t mode = norm_mode(args[ARG_mode].u_obj, false);
    if (src.len != dst.len) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("src and dst must have the same length, got %u and %u"),
            (unsigned int)src.len, (unsigned int)dst.len);
    }
    if (src.len > IMAGE_MAX_PIXELS) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("at most %u pixels, got %u"),
            (unsigned int)IMAGE_MAX_PIXELS, (unsigned int)src.len);
    }
    if (overlap(&src, &dst) && src.buf != dst.buf) {
        mp_raise_ValueError(MP_ERROR_TEXT("src and dst overlap; only the same buffer (in place) is allowed"));
    }
    normalize(mode, (const uint8_t *)src.buf, (uint8_t *)dst.buf, src.len, args[ARG_mean].u_int,
        args[ARG_std].u_int);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_KW(tinysense_image_normalize_obj, 2, tinysense_image_normalize);

// ---- preprocess: resample (+ RGB565 luma) and optionally normalise dst in place ----

static mp_obj_t tinysense_image_preprocess(size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    enum { ARG_src, ARG_format, ARG_src_w, ARG_src_h, ARG_dst, ARG_dst_w, ARG_dst_h, ARG_byteswap, ARG_normalize,
           ARG_mean, ARG_std };
    static const mp_arg_t allowed_args[] = {
        { MP_QSTR_src, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_rom_obj = MP_ROM_NONE} },
        { MP_QSTR_format, MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = 0} },
        { MP_QSTR_src_w, MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = 0} },
        { MP_QSTR_src_h, MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = 0} },
        { MP_QSTR_dst, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_rom_obj = MP_ROM_NONE} },
        { MP_QSTR_dst_w, MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = 0} },
        { MP_QSTR_dst_h, MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = 0} },
        { MP_QSTR_byteswap, MP_ARG_KW_ONLY | MP_ARG_BOOL, {.u_bool = false} },
        { MP_QSTR_normalize, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_rom_obj = MP_ROM_NONE} },
        { MP_QSTR_mean, MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = 128} },
        { MP_QSTR_std, MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = 64} },
    };
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed_args)];
    mp_arg_parse_all(n_args, pos_args, kw_args, MP_ARRAY_SIZE(allowed_args), allowed_args, args);
    mp_buffer_info_t src;
    mp_buffer_info_t dst;
    get_src(args[ARG_src].u_obj, "src", &src);
    get_dst(args[ARG_dst].u_obj, "dst", &dst);
    const norm_mode_t mode = norm_mode(args[ARG_normalize].u_obj, true);
    const mp_int_t mean = args[ARG_mean].u_int;
    const mp_int_t std = args[ARG_std].u_int;
    if (mode == NORM_MEAN_STD) { // check before any work
        normalize(mode, NULL, NULL, 0, mean, std);
    }
    resample(&src, args[ARG_format].u_int, args[ARG_src_w].u_int, args[ARG_src_h].u_int, &dst,
        args[ARG_dst_w].u_int, args[ARG_dst_h].u_int, args[ARG_byteswap].u_bool);
    normalize(mode, (const uint8_t *)dst.buf, (uint8_t *)dst.buf, dst.len, mean, std);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_KW(tinysense_image_preprocess_obj, 7, tinysense_image_preprocess);

static const mp_rom_map_elem_t tinysense_image_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_tinysense_image) },
    { MP_ROM_QSTR(MP_QSTR_rgb565_to_gray), MP_ROM_PTR(&tinysense_image_rgb565_to_gray_obj) },
    { MP_ROM_QSTR(MP_QSTR_downscale_area), MP_ROM_PTR(&tinysense_image_downscale_area_obj) },
    { MP_ROM_QSTR(MP_QSTR_normalize), MP_ROM_PTR(&tinysense_image_normalize_obj) },
    { MP_ROM_QSTR(MP_QSTR_preprocess), MP_ROM_PTR(&tinysense_image_preprocess_obj) },
    { MP_ROM_QSTR(MP_QSTR_RGB565), MP_ROM_INT(IMAGE_RGB565) },
    { MP_ROM_QSTR(MP_QSTR_GRAYSCALE), MP_ROM_INT(IMAGE_GRAY) },
};
static MP_DEFINE_CONST_DICT(tinysense_image_globals, tinysense_image_globals_table);

const mp_obj_module_t tinysense_image_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&tinysense_image_globals,
};

MP_REGISTER_MODULE(MP_QSTR_tinysense_image, tinysense_image_module);
