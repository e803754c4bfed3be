// tinysense_features: time-series features of 1-3 axis sensor windows, written into a float array
// in one call (a tinysense module, not part of emlearn-micropython).
//
//   Features(window_length, n_axes, *, samplerate=100, spectral=True, magnitude=None) -> Features
//       window_length: samples per axis, 4 .. 4096; n_axes: 1, 2 or 3 (x, y, z interleaved);
//       samplerate: Hz (finite, > 0), used by the spectral features; spectral: add the six
//       spectral features per channel; magnitude: add the channel "mag" = sqrt(x^2 + y^2 + z^2)
//       (default: when n_axes >= 2). Scratch memory (window_length + 2 * fft_size floats, or
//       2 * window_length without spectral features) is allocated here, once.
//   Features.compute(window, out)
//       window: array('h') or array('f') of window_length * n_axes interleaved samples
//       (x0 y0 z0 x1 y1 z1 ...); out: array('f') of n_features() values. Allocates nothing.
//       ValueError names a wrong typecode, a wrong length, or the index of a NaN/inf sample;
//       TypeError a non-array argument. Float samples beyond about 1e18 in magnitude overflow
//       float32 in the squared features (they come out inf/NaN; nothing crashes).
//   Features.n_features()  number of features: channels * (11 + 6 if spectral)
//   Features.names()       list of names in output order: "x_mean", ..., "mag_pow_8hz_up"
//   Features.fft_size()    FFT length of the spectral features (0 without them)
//
// Definitions (std with ddof=0, numpy 'linear' quartiles, energy = mean of squares, zero crossings,
// zero-padded FFT, the spectral bands) are in features_core.h.
#include <string.h>

#include "py/binary.h"
#include "py/obj.h"
#include "py/runtime.h"

#include "features_core.h"

#define FEAT_NAME_MAX 24

typedef struct _tinysense_features_obj_t {
    mp_obj_base_t base;
    feat_config_t cfg;
    float data[];
} tinysense_features_obj_t;

static mp_obj_t tinysense_features_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw,
    const mp_obj_t *args) {
    enum { ARG_window_length, ARG_n_axes, ARG_samplerate, ARG_spectral, ARG_magnitude };
    static const mp_arg_t allowed_args[] = {
        { MP_QSTR_window_length, MP_ARG_REQUIRED | MP_ARG_INT, { .u_int = 0 } },
        { MP_QSTR_n_axes, MP_ARG_REQUIRED | MP_ARG_INT, { .u_int = 0 } },
        { MP_QSTR_samplerate, MP_ARG_KW_ONLY | MP_ARG_OBJ, { .u_obj = MP_OBJ_NULL } },
        { MP_QSTR_spectral, MP_ARG_KW_ONLY | MP_ARG_BOOL, { .u_bool = true } },
        { MP_QSTR_magnitude, MP_ARG_KW_ONLY | MP_ARG_OBJ, { .u_obj = mp_const_none } },
    };
    mp_arg_val_t parsed[MP_ARRAY_SIZE(allowed_args)];
    mp_arg_parse_all_kw_array(n_args, n_kw, args, MP_ARRAY_SIZE(allowed_args), allowed_args, parsed);

    const mp_int_t window_length = parsed[ARG_window_length].u_int;
    const mp_int_t n_axes = parsed[ARG_n_axes].u_int;
    const float samplerate = parsed[ARG_samplerate].u_obj == MP_OBJ_NULL
        ? 100.0f : mp_obj_get_float_to_f(parsed[ARG_samplerate].u_obj);
    const bool spectral = parsed[ARG_spectral].u_bool;
    const mp_obj_t magnitude_in = parsed[ARG_magnitude].u_obj;
    const bool magnitude = magnitude_in == mp_const_none ? n_axes >= 2 : mp_obj_is_true(magnitude_in);

    if (window_length < FEAT_MIN_WINDOW || window_length > FEAT_MAX_WINDOW) {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("window_length must be %d..%d samples, got %d"),
            FEAT_MIN_WINDOW, FEAT_MAX_WINDOW, (int)window_length);
    }
    if (n_axes < 1 || n_axes > FEAT_MAX_AXES) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("n_axes must be 1, 2 or 3, got %d"), (int)n_axes);
    }
    if (feat_validate((uint32_t)window_length, (uint32_t)n_axes, samplerate) != FEAT_OK) {
        mp_raise_ValueError(MP_ERROR_TEXT("samplerate must be a finite number > 0"));
    }
    const size_t n_scratch = feat_scratch_floats((uint32_t)window_length, spectral);
    tinysense_features_obj_t *self = mp_obj_malloc_var(tinysense_features_obj_t, data, float, n_scratch, type);
    feat_init(&self->cfg, (uint32_t)window_length, (uint32_t)n_axes, samplerate, spectral, magnitude, self->data);
    return MP_OBJ_FROM_PTR(self);
}

// The buffer of `obj`, or TypeError naming the argument.
static void features_get_buffer(mp_obj_t obj, const char *name, mp_buffer_info_t *info, int flags) {
    if (!mp_get_buffer(obj, info, flags)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("%s must be a%s array, not %s"),
            name, (flags & MP_BUFFER_WRITE) ? " writable" : "n", mp_obj_get_type_str(obj));
    }
}

static mp_obj_t tinysense_features_compute(mp_obj_t self_in, mp_obj_t window_in, mp_obj_t out_in) {
    tinysense_features_obj_t *self = MP_OBJ_TO_PTR(self_in);
    const feat_config_t *cfg = &self->cfg;
    mp_buffer_info_t window;
    features_get_buffer(window_in, "window", &window, MP_BUFFER_READ);
    mp_buffer_info_t out;
    features_get_buffer(out_in, "out", &out, MP_BUFFER_WRITE);
    if (window.typecode != 'h' && window.typecode != 'f') {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("window must be array('h') or array('f'), got typecode '%c'"),
            window.typecode == BYTEARRAY_TYPECODE ? 'B' : (int)window.typecode);
    }
    const size_t expected = (size_t)cfg->window_length * cfg->n_axes;
    const size_t length = window.len / (window.typecode == 'f' ? sizeof(float) : sizeof(int16_t));
    if (length != expected) {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("window must hold window_length * n_axes = %u samples, got %u"),
            (unsigned)expected, (unsigned)length);
    }
    if (out.typecode != 'f') {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("out must be array('f'), got typecode '%c'"),
            out.typecode == BYTEARRAY_TYPECODE ? 'B' : (int)out.typecode);
    }
    const size_t n_features = feat_n_features(cfg);
    if (out.len / sizeof(float) != n_features) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("out must hold n_features() = %u values, got %u"),
            (unsigned)n_features, (unsigned)(out.len / sizeof(float)));
    }
    if (window.typecode == 'f') {
        const size_t bad = feat_first_nonfinite(window.buf, length);
        if (bad < length) {
            mp_raise_msg_varg(&mp_type_ValueError,
                MP_ERROR_TEXT("window holds a non-finite sample (NaN or inf) at index %u"), (unsigned)bad);
        }
        feat_compute_f32(cfg, window.buf, out.buf);
    } else {
        feat_compute_i16(cfg, window.buf, out.buf);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(tinysense_features_compute_obj, tinysense_features_compute);

static mp_obj_t tinysense_features_n_features(mp_obj_t self_in) {
    tinysense_features_obj_t *self = MP_OBJ_TO_PTR(self_in);
    return MP_OBJ_NEW_SMALL_INT(feat_n_features(&self->cfg));
}
static MP_DEFINE_CONST_FUN_OBJ_1(tinysense_features_n_features_obj, tinysense_features_n_features);

static mp_obj_t tinysense_features_fft_size(mp_obj_t self_in) {
    tinysense_features_obj_t *self = MP_OBJ_TO_PTR(self_in);
    return MP_OBJ_NEW_SMALL_INT(self->cfg.fft_size);
}
static MP_DEFINE_CONST_FUN_OBJ_1(tinysense_features_fft_size_obj, tinysense_features_fft_size);

static mp_obj_t tinysense_features_names(mp_obj_t self_in) {
    tinysense_features_obj_t *self = MP_OBJ_TO_PTR(self_in);
    const feat_config_t *cfg = &self->cfg;
    const size_t per_channel = feat_per_channel(cfg);
    mp_obj_t list = mp_obj_new_list(0, NULL);
    for (size_t c = 0; c < cfg->n_channels; c++) {
        const char *channel = feat_channel_name(cfg, c);
        for (size_t j = 0; j < per_channel; j++) {
            const char *feature = feat_feature_name(j);
            char name[FEAT_NAME_MAX];
            const size_t lc = strlen(channel), lf = strlen(feature);
            if (lc + 1 + lf > sizeof(name)) {
                mp_raise_ValueError(MP_ERROR_TEXT("feature name too long"));  // cannot happen: fixed names
            }
            memcpy(name, channel, lc);
            name[lc] = '_';
            memcpy(name + lc + 1, feature, lf);
            mp_obj_list_append(list, mp_obj_new_str(name, lc + 1 + lf));
        }
    }
    return list;
}
static MP_DEFINE_CONST_FUN_OBJ_1(tinysense_features_names_obj, tinysense_features_names);

static const mp_rom_map_elem_t tinysense_features_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_compute), MP_ROM_PTR(&tinysense_features_compute_obj) },
    { MP_ROM_QSTR(MP_QSTR_n_features), MP_ROM_PTR(&tinysense_features_n_features_obj) },
    { MP_ROM_QSTR(MP_QSTR_names), MP_ROM_PTR(&tinysense_features_names_obj) },
    { MP_ROM_QSTR(MP_QSTR_fft_size), MP_ROM_PTR(&tinysense_features_fft_size_obj) },
};
static MP_DEFINE_CONST_DICT(tinysense_features_locals_dict, tinysense_features_locals_dict_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    tinysense_features_type,
    MP_QSTR_Features,
    MP_TYPE_FLAG_NONE,
    make_new, tinysense_features_make_new,
    locals_dict, &tinysense_features_locals_dict
    );

static const mp_rom_map_elem_t tinysense_features_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_tinysense_features) },
    { MP_ROM_QSTR(MP_QSTR_Features), MP_ROM_PTR(&tinysense_features_type) },
};
static MP_DEFINE_CONST_DICT(tinysense_features_module_globals, tinysense_features_module_globals_table);

const mp_obj_module_t tinysense_features_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&tinysense_features_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_tinysense_features, tinysense_features_module);
