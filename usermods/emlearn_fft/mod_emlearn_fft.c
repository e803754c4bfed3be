// emlearn_fft: radix-2 FFT in float32 (call-compatible with emlearn-micropython).
//
//   emlearn_fft.FFT(n) -> FFT
//       n: transform size, a power of two in 2..65536 (else ValueError naming n). The sin/cos
//       tables are computed here in float at construction (no fill step needed).
//   emlearn_fft.fill(fft, n)   kept for emlearn-micropython code: checks that n equals the size
//                              fft was made with (ValueError naming both) and does nothing else.
//   FFT.run(real, imag)        forward complex FFT in place on two array('f') of length n
//                              (as numpy.fft.fft, no scaling).
//   FFT.rfft(x, out_real, out_imag)
//                              forward FFT of the n real samples x (array('f'), or array('h')
//                              int16 read as-is) into bins 0..n/2: out_real/out_imag are
//                              array('f') of length n/2 + 1 (as numpy.fft.rfft). Costs an n/2-point
//                              complex FFT plus one pass; x is left unchanged.
//   FFT.fill(sin, cos)         emlearn-micropython's method: replaces the tables with two array('f')
//                              of length n/2 (sin(2*pi*k/n), cos(2*pi*k/n)). Not needed here.
//   Wrong typecodes raise ValueError naming the typecode, wrong lengths ValueError naming the
//   lengths, shared memory between inputs and outputs ValueError; non-arrays raise TypeError. run/rfft
//   allocate nothing. NaN/inf samples do not crash; they spread through the output.
#include <stdint.h>
#include <string.h>

#include "py/binary.h"
#include "py/obj.h"
#include "py/runtime.h"

#include "fft_core.h"

#define FFT_MIN_N (2)
#define FFT_MAX_N (65536)

typedef struct _emlearn_fft_obj_t {
    mp_obj_base_t base;
    size_t n;
    float *cos_t;   // n/2 entries each, in data[]
    float *sin_t;
    float data[];
} emlearn_fft_obj_t;

static const mp_obj_type_t emlearn_fft_type;

static size_t fft_checked_size(mp_obj_t n_in) {
    const mp_int_t n = mp_obj_get_int(n_in);
    if (n < FFT_MIN_N || n > FFT_MAX_N || (n & (n - 1)) != 0) {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("FFT size must be a power of two in %d..%d, got %d"), FFT_MIN_N, FFT_MAX_N, (int)n);
    }
    return (size_t)n;
}

// The buffer of `obj`, or TypeError naming the argument; bytearray reports typecode 'B'.
static void fft_get_buffer(mp_obj_t obj, const char *name, mp_buffer_info_t *info, int flags) {
    if (!mp_get_buffer(obj, info, flags)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("%s must be a%s array, not %s"),
            name, (flags & MP_BUFFER_WRITE) ? " writable" : "n", mp_obj_get_type_str(obj));
    }
    if (info->typecode == BYTEARRAY_TYPECODE) {
        info->typecode = 'B';
    }
}

// The float buffer of `obj` (typecode 'f') holding exactly `expected` values.
static float *fft_float_array(mp_obj_t obj, const char *name, size_t expected, int flags) {
    mp_buffer_info_t bufinfo;
    fft_get_buffer(obj, name, &bufinfo, flags);
    if (bufinfo.typecode != 'f') {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s must be array('f'), got typecode '%c'"),
            name, (int)bufinfo.typecode);
    }
    const size_t length = bufinfo.len / sizeof(float);
    if (length != expected) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s has length %u, expected %u"),
            name, (unsigned)length, (unsigned)expected);
    }
    return bufinfo.buf;
}

static mp_obj_t emlearn_fft_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 1, 1, false);
    const size_t n = fft_checked_size(args[0]);
    emlearn_fft_obj_t *self = mp_obj_malloc_var(emlearn_fft_obj_t, data, float, n, type);
    self->n = n;
    self->cos_t = self->data;
    self->sin_t = self->data + n / 2;
    fft_fill_tables(self->cos_t, self->sin_t, n);
    return MP_OBJ_FROM_PTR(self);
}

static mp_obj_t emlearn_fft_run(mp_obj_t self_in, mp_obj_t real_in, mp_obj_t imag_in) {
    emlearn_fft_obj_t *self = MP_OBJ_TO_PTR(self_in);
    float *re = fft_float_array(real_in, "real", self->n, MP_BUFFER_RW);
    float *im = fft_float_array(imag_in, "imag", self->n, MP_BUFFER_RW);
    if (re == im) {
        mp_raise_ValueError(MP_ERROR_TEXT("real and imag must be different arrays"));
    }
    fft_complex(re, im, self->n, self->cos_t, self->sin_t, 1);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(emlearn_fft_run_obj, emlearn_fft_run);

static mp_obj_t emlearn_fft_rfft(size_t n_args, const mp_obj_t *args) {
    emlearn_fft_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    const size_t n = self->n;
    mp_buffer_info_t x;
    fft_get_buffer(args[1], "x", &x, MP_BUFFER_READ);
    size_t x_length;
    if (x.typecode == 'f') {
        x_length = x.len / sizeof(float);
    } else if (x.typecode == 'h') {
        x_length = x.len / sizeof(int16_t);
    } else {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("x must be array('f') or array('h'), got typecode '%c'"), (int)x.typecode);
    }
    if (x_length != n) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("x has length %u, expected %u"),
            (unsigned)x_length, (unsigned)n);
    }
    float *re = fft_float_array(args[2], "out_real", n / 2 + 1, MP_BUFFER_WRITE);
    float *im = fft_float_array(args[3], "out_imag", n / 2 + 1, MP_BUFFER_WRITE);
    // The packing step reads x while writing the outputs: they must not share memory.
    const uint8_t *x_begin = x.buf, *x_end = x_begin + x.len;
    const uint8_t *re_begin = (const uint8_t *)re, *im_begin = (const uint8_t *)im;
    const size_t out_bytes = (n / 2 + 1) * sizeof(float);
    if ((re_begin < x_end && x_begin < re_begin + out_bytes) || (im_begin < x_end && x_begin < im_begin + out_bytes)
        || (re_begin < im_begin + out_bytes && im_begin < re_begin + out_bytes)) {
        mp_raise_ValueError(MP_ERROR_TEXT("x, out_real and out_imag must not share memory"));
    }
    fft_real(x.typecode == 'f' ? x.buf : NULL, x.typecode == 'h' ? x.buf : NULL, re, im, n,
        self->cos_t, self->sin_t);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(emlearn_fft_rfft_obj, 4, 4, emlearn_fft_rfft);

static mp_obj_t emlearn_fft_fill_method(mp_obj_t self_in, mp_obj_t sin_in, mp_obj_t cos_in) {
    emlearn_fft_obj_t *self = MP_OBJ_TO_PTR(self_in);
    const float *s = fft_float_array(sin_in, "sin", self->n / 2, MP_BUFFER_READ);
    const float *c = fft_float_array(cos_in, "cos", self->n / 2, MP_BUFFER_READ);
    memmove(self->sin_t, s, self->n / 2 * sizeof(float));
    memmove(self->cos_t, c, self->n / 2 * sizeof(float));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(emlearn_fft_fill_method_obj, emlearn_fft_fill_method);

static const mp_rom_map_elem_t emlearn_fft_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_run), MP_ROM_PTR(&emlearn_fft_run_obj) },
    { MP_ROM_QSTR(MP_QSTR_rfft), MP_ROM_PTR(&emlearn_fft_rfft_obj) },
    { MP_ROM_QSTR(MP_QSTR_fill), MP_ROM_PTR(&emlearn_fft_fill_method_obj) },
};
static MP_DEFINE_CONST_DICT(emlearn_fft_locals_dict, emlearn_fft_locals_dict_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    emlearn_fft_type,
    MP_QSTR_FFT,
    MP_TYPE_FLAG_NONE,
    make_new, emlearn_fft_make_new,
    locals_dict, &emlearn_fft_locals_dict
    );

static mp_obj_t emlearn_fft_fill(mp_obj_t fft_in, mp_obj_t n_in) {
    if (!mp_obj_is_type(fft_in, &emlearn_fft_type)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("fill() needs an FFT object, got %s"),
            mp_obj_get_type_str(fft_in));
    }
    emlearn_fft_obj_t *self = MP_OBJ_TO_PTR(fft_in);
    const mp_int_t n = mp_obj_get_int(n_in);
    if (n < 0 || (size_t)n != self->n) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("fill() got n=%d for an FFT of size %u"),
            (int)n, (unsigned)self->n);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(emlearn_fft_fill_obj, emlearn_fft_fill);

static const mp_rom_map_elem_t emlearn_fft_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_emlearn_fft) },
    { MP_ROM_QSTR(MP_QSTR_FFT), MP_ROM_PTR(&emlearn_fft_type) },
    { MP_ROM_QSTR(MP_QSTR_fill), MP_ROM_PTR(&emlearn_fft_fill_obj) },
};
static MP_DEFINE_CONST_DICT(emlearn_fft_module_globals, emlearn_fft_module_globals_table);

const mp_obj_module_t emlearn_fft_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&emlearn_fft_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_emlearn_fft, emlearn_fft_module);
