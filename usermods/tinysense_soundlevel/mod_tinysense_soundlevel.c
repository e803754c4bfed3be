// tinysense_soundlevel: a sound level meter for int16 microphone streams (IEC 61672-1 style).
// Requires the emlearn_iir module (its iir_core biquads run the weighting filters).
//
//   tinysense_soundlevel.SoundLevel(samplerate, weighting='A', mic_sensitivity_dbfs=-26.0, coeffs=None)
//       samplerate: Hz, finite and > 0. weighting: 'A', 'C' or 'Z' (no filter). The built-in A and C
//       designs (tools/tinysense/dsp.py, IEC 61672-1 Class 1 from 10 Hz to 0.45 fs) exist for 16000,
//       32000 and 48000 Hz; other rates raise ValueError naming them unless coeffs are given.
//       coeffs: array('f') of scipy sos rows (b0 b1 b2 a0 a1 a2 per section, 1..8 sections) replacing the
//       built-in filter (any weighting label); each section is checked (finite, a0 != 0, stable).
//       mic_sensitivity_dbfs: the microphone's output for a 94 dB SPL tone, in dBFS (AES17: a full-scale
//       sine is 0 dBFS), so  dB SPL = 94 + 20 log10(rms * sqrt(2) / 32768) - mic_sensitivity_dbfs.
//   SoundLevel.process(chunk)   chunk: array('h') of any length (int16 samples, full scale 32768);
//                               updates every level. Allocates nothing.
//   SoundLevel.fast(), .slow()  the current Fast (125 ms) / Slow (1 s) exponentially time-weighted level.
//   SoundLevel.leq()            the equivalent continuous level since the last reset_interval().
//   SoundLevel.lmax(tw='F'), .lmin(tw='F')  max / min of the Fast ('F') or Slow ('S') level since the
//                               last reset_interval(). Lmin skips the first 5 time constants after
//                               construction or reset(), while the level rises from silence.
//   SoundLevel.reset_interval() restart Leq/Lmax/Lmin;  SoundLevel.reset() also clears the filter and
//                               the time weightings (as after construction).
//   Levels are floats in dB SPL; None while there is nothing to report (no samples yet, an empty
//   interval, Lmin still settling); -inf for digital silence.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "py/binary.h"
#include "py/obj.h"
#include "py/runtime.h"

#include "../emlearn_iir/iir_core.h"
#include "soundlevel.h"
#include "weightings.h"

#define SOUNDLEVEL_MAX_SECTIONS (8)

typedef struct _soundlevel_obj_t {
    mp_obj_base_t base;
    soundlevel_t meter;
    char weighting;
    float data[];   // n_sections * (IIR_COEFFS + IIR_STATES)
} soundlevel_obj_t;

static const mp_obj_type_t soundlevel_type;

static void raise_section_error(iir_status_t status, size_t k) {
    switch (status) {
        case IIR_NOT_FINITE:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("coeffs section %u has a non-finite coefficient"),
                (unsigned)k);
        case IIR_A0_ZERO:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("coeffs section %u has a0 == 0"), (unsigned)k);
        default:
            mp_raise_msg_varg(&mp_type_ValueError,
                MP_ERROR_TEXT("coeffs section %u is unstable (pole on or outside the unit circle)"), (unsigned)k);
    }
}

static mp_obj_t soundlevel_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *all_args) {
    enum { ARG_samplerate, ARG_weighting, ARG_mic_sensitivity_dbfs, ARG_coeffs };
    static const mp_arg_t allowed_args[] = {
        { MP_QSTR_samplerate, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_weighting, MP_ARG_OBJ, {.u_obj = MP_OBJ_NEW_QSTR(MP_QSTR_A)} },
        { MP_QSTR_mic_sensitivity_dbfs, MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_coeffs, MP_ARG_OBJ, {.u_obj = mp_const_none} },
    };
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed_args)];
    mp_map_t kw_args;
    mp_map_init_fixed_table(&kw_args, n_kw, all_args + n_args);
    mp_arg_parse_all(n_args, all_args, &kw_args, MP_ARRAY_SIZE(allowed_args), allowed_args, args);

    const mp_float_t samplerate = mp_obj_get_float(args[ARG_samplerate].u_obj);
    if (!(isfinite(samplerate) && samplerate > 0 && samplerate <= (mp_float_t)1e7)) {
        mp_raise_msg(&mp_type_ValueError, MP_ERROR_TEXT("samplerate must be a finite number of Hz > 0 (at most 1e7)"));
    }
    mp_float_t sensitivity = (mp_float_t)-26.0;
    if (args[ARG_mic_sensitivity_dbfs].u_obj != MP_OBJ_NULL) {
        sensitivity = mp_obj_get_float(args[ARG_mic_sensitivity_dbfs].u_obj);
        if (!isfinite(sensitivity)) {
            mp_raise_msg(&mp_type_ValueError, MP_ERROR_TEXT("mic_sensitivity_dbfs must be finite"));
        }
    }
    if (!mp_obj_is_str(args[ARG_weighting].u_obj)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("weighting must be 'A', 'C' or 'Z', not %s"),
            mp_obj_get_type_str(args[ARG_weighting].u_obj));
    }
    size_t wlen;
    const char *wstr = mp_obj_str_get_data(args[ARG_weighting].u_obj, &wlen);
    if (wlen != 1 || (wstr[0] != 'A' && wstr[0] != 'C' && wstr[0] != 'Z')) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("weighting must be 'A', 'C' or 'Z', got '%s'"), wstr);
    }
    const char weighting = wstr[0];

    // The filter: caller's coeffs, a built-in design, or none (Z).
    const float *sos = NULL;
    size_t n_sections = 0;
    mp_obj_t coeffs = args[ARG_coeffs].u_obj;
    if (coeffs != mp_const_none) {
        mp_buffer_info_t bufinfo;
        if (!mp_get_buffer(coeffs, &bufinfo, MP_BUFFER_READ)) {
            mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("coeffs must be array('f'), not %s"),
                mp_obj_get_type_str(coeffs));
        }
        if (bufinfo.typecode != 'f') {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("coeffs must be array('f'), got typecode '%c'"),
                bufinfo.typecode == BYTEARRAY_TYPECODE ? 'B' : (int)bufinfo.typecode);
        }
        const size_t n_values = bufinfo.len / sizeof(float);
        if (n_values == 0 || n_values % IIR_SOS_VALUES != 0 || n_values > SOUNDLEVEL_MAX_SECTIONS * IIR_SOS_VALUES) {
            mp_raise_msg_varg(&mp_type_ValueError,
                MP_ERROR_TEXT("coeffs must hold 6 values (b0 b1 b2 a0 a1 a2) per section, 1..%d sections, got %u values"),
                SOUNDLEVEL_MAX_SECTIONS, (unsigned)n_values);
        }
        sos = bufinfo.buf;
        n_sections = n_values / IIR_SOS_VALUES;
    } else if (weighting != 'Z') {
        for (size_t i = 0; i < MP_ARRAY_SIZE(soundlevel_builtins); i++) {
            const soundlevel_builtin_t *b = &soundlevel_builtins[i];
            if (b->weighting == weighting && (mp_float_t)b->samplerate == samplerate) {
                sos = b->sos;
                n_sections = (size_t)b->n_sections;
            }
        }
        if (sos == NULL) {
            mp_raise_msg_varg(&mp_type_ValueError,
                MP_ERROR_TEXT("no built-in %c weighting for samplerate %d Hz: supported rates are %s (or pass coeffs)"),
                weighting, (int)samplerate, SOUNDLEVEL_BUILTIN_RATES);
        }
    }
    // Validate every section before allocating anything.
    for (size_t k = 0; k < n_sections; k++) {
        float normalised[IIR_COEFFS];
        iir_status_t status = iir_section_init(sos + k * IIR_SOS_VALUES, normalised);
        if (status != IIR_OK) {
            raise_section_error(status, k);
        }
    }

    soundlevel_obj_t *self = mp_obj_malloc_var(soundlevel_obj_t, data, float,
        n_sections * (IIR_COEFFS + IIR_STATES), type);
    self->weighting = weighting;
    self->meter.filter.n_sections = n_sections;
    self->meter.filter.coeffs = self->data;
    self->meter.filter.state = self->data + n_sections * IIR_COEFFS;
    for (size_t k = 0; k < n_sections; k++) {
        iir_section_init(sos + k * IIR_SOS_VALUES, self->meter.filter.coeffs + k * IIR_COEFFS);
    }
    soundlevel_init(&self->meter, (float)samplerate, soundlevel_offset_db((float)sensitivity));
    return MP_OBJ_FROM_PTR(self);
}

static mp_obj_t soundlevel_process(mp_obj_t self_in, mp_obj_t chunk) {
    soundlevel_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_buffer_info_t x;
    if (!mp_get_buffer(chunk, &x, MP_BUFFER_READ)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("chunk must be array('h'), not %s"),
            mp_obj_get_type_str(chunk));
    }
    if (x.typecode != 'h') {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("chunk must be array('h') (int16 samples), got typecode '%c'"),
            x.typecode == BYTEARRAY_TYPECODE ? 'B' : (int)x.typecode);
    }
    soundlevel_process_i16(&self->meter, x.buf, x.len / sizeof(int16_t));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(soundlevel_process_obj, soundlevel_process);

static mp_obj_t level_or_none(const soundlevel_obj_t *self, int ok, float mean_square) {
    if (!ok) {
        return mp_const_none;
    }
    return mp_obj_new_float((mp_float_t)soundlevel_db(&self->meter, mean_square));
}

static mp_obj_t soundlevel_fast(mp_obj_t self_in) {
    soundlevel_obj_t *self = MP_OBJ_TO_PTR(self_in);
    return level_or_none(self, self->meter.total_n > 0, self->meter.ms_fast);
}
static MP_DEFINE_CONST_FUN_OBJ_1(soundlevel_fast_obj, soundlevel_fast);

static mp_obj_t soundlevel_slow(mp_obj_t self_in) {
    soundlevel_obj_t *self = MP_OBJ_TO_PTR(self_in);
    return level_or_none(self, self->meter.total_n > 0, self->meter.ms_slow);
}
static MP_DEFINE_CONST_FUN_OBJ_1(soundlevel_slow_obj, soundlevel_slow);

static mp_obj_t soundlevel_leq(mp_obj_t self_in) {
    soundlevel_obj_t *self = MP_OBJ_TO_PTR(self_in);
    int ok;
    float ms = soundlevel_leq_ms(&self->meter, &ok);
    return level_or_none(self, ok, ms);
}
static MP_DEFINE_CONST_FUN_OBJ_1(soundlevel_leq_obj, soundlevel_leq);

// 1 for Slow, 0 for Fast (the default), ValueError otherwise.
static int time_weighting_arg(size_t n_args, const mp_obj_t *args) {
    if (n_args < 2) {
        return 0;
    }
    if (mp_obj_is_str(args[1])) {
        size_t len;
        const char *s = mp_obj_str_get_data(args[1], &len);
        if (len == 1 && (s[0] == 'F' || s[0] == 'S')) {
            return s[0] == 'S';
        }
    }
    mp_raise_msg(&mp_type_ValueError, MP_ERROR_TEXT("time weighting must be 'F' (Fast) or 'S' (Slow)"));
}

static mp_obj_t soundlevel_lmax(size_t n_args, const mp_obj_t *args) {
    soundlevel_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    const int slow = time_weighting_arg(n_args, args);
    return level_or_none(self, self->meter.interval_n > 0, slow ? self->meter.max_slow : self->meter.max_fast);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(soundlevel_lmax_obj, 1, 2, soundlevel_lmax);

static mp_obj_t soundlevel_lmin(size_t n_args, const mp_obj_t *args) {
    soundlevel_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    const int slow = time_weighting_arg(n_args, args);
    const float ms = slow ? self->meter.min_slow : self->meter.min_fast;
    return level_or_none(self, !isinf(ms), ms);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(soundlevel_lmin_obj, 1, 2, soundlevel_lmin);

static mp_obj_t soundlevel_reset_interval_fn(mp_obj_t self_in) {
    soundlevel_obj_t *self = MP_OBJ_TO_PTR(self_in);
    soundlevel_reset_interval(&self->meter);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(soundlevel_reset_interval_obj, soundlevel_reset_interval_fn);

static mp_obj_t soundlevel_reset_fn(mp_obj_t self_in) {
    soundlevel_obj_t *self = MP_OBJ_TO_PTR(self_in);
    soundlevel_reset(&self->meter);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(soundlevel_reset_obj, soundlevel_reset_fn);

static const mp_rom_map_elem_t soundlevel_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_process), MP_ROM_PTR(&soundlevel_process_obj) },
    { MP_ROM_QSTR(MP_QSTR_fast), MP_ROM_PTR(&soundlevel_fast_obj) },
    { MP_ROM_QSTR(MP_QSTR_slow), MP_ROM_PTR(&soundlevel_slow_obj) },
    { MP_ROM_QSTR(MP_QSTR_leq), MP_ROM_PTR(&soundlevel_leq_obj) },
    { MP_ROM_QSTR(MP_QSTR_lmax), MP_ROM_PTR(&soundlevel_lmax_obj) },
    { MP_ROM_QSTR(MP_QSTR_lmin), MP_ROM_PTR(&soundlevel_lmin_obj) },
    { MP_ROM_QSTR(MP_QSTR_reset_interval), MP_ROM_PTR(&soundlevel_reset_interval_obj) },
    { MP_ROM_QSTR(MP_QSTR_reset), MP_ROM_PTR(&soundlevel_reset_obj) },
};
static MP_DEFINE_CONST_DICT(soundlevel_locals_dict, soundlevel_locals_dict_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    soundlevel_type,
    MP_QSTR_SoundLevel,
    MP_TYPE_FLAG_NONE,
    make_new, soundlevel_make_new,
    locals_dict, &soundlevel_locals_dict
    );

static const mp_rom_map_elem_t tinysense_soundlevel_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_tinysense_soundlevel) },
    { MP_ROM_QSTR(MP_QSTR_SoundLevel), MP_ROM_PTR(&soundlevel_type) },
};
static MP_DEFINE_CONST_DICT(tinysense_soundlevel_module_globals, tinysense_soundlevel_module_globals_table);

const mp_obj_module_t tinysense_soundlevel_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&tinysense_soundlevel_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_tinysense_soundlevel, tinysense_soundlevel_module);
