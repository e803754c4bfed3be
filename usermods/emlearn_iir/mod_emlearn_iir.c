// emlearn_iir: cascaded biquad IIR filters in float32 (call-compatible with emlearn-micropython).
//
//   emlearn_iir.new(coeffs) -> IIR
//       coeffs: array('f') of 6 * k values (k >= 1 sections), scipy.signal `sos` rows flattened:
//       b0 b1 b2 a0 a1 a2 per section, e.g. array('f', sos.astype('float32').ravel()).
//       Each section is divided by its a0. Raises ValueError (naming the typecode, the count or
//       the section index) if coeffs is not array('f'), the count is not a positive multiple
//       of 6, a0 == 0, a coefficient is NaN/inf, or a section has a pole on or outside the unit
//       circle (|a2| >= 1 or |a1| >= 1 + a2). A non-array argument raises TypeError.
//   IIR.run(x)       filter x in place; x is array('f'), or array('h') (int16 samples filtered in
//                    float in their integer units, output rounded and saturated to int16).
//   IIR.run(x, out)  filter x (array('f') or array('h'), left unchanged) into out (array('f'),
//                    same length); int16 input is not rescaled (full scale is 32768). This reads
//                    microphone int16 buffers directly, with no separate conversion pass.
//   IIR.reset()      clear the filter state (as after new()).
//   run() raises ValueError naming a wrong typecode or the two lengths, TypeError for non-arrays
//   (and for a read-only x in place).
//   Sections run as trapezoidal state-variable filters with the sos rows' transfer functions:
//   as accurate as scipy.signal.sosfilt to ~1e-6 of full scale in float32, also for low
//   cut-offs at high sample rates where direct-form biquads lose precision (see iir_core.h).
//   The state carries across run() calls, so filtering a signal in chunks gives the same output
//   as one call over the whole signal. run() allocates nothing. NaN/inf samples do not crash:
//   they propagate into the output and the state until reset(); int16 output maps NaN to 0.
#include <stdint.h>

#include "py/binary.h"
#include "py/obj.h"
#include "py/runtime.h"

#include "iir_core.h"

// The buffer of `obj`, or TypeError naming the argument; bytearray reports typecode 'B'.
static void iir_get_buffer(mp_obj_t obj, const char *name, mp_buffer_info_t *info, int flags) {
    if (!mp_get_buffer(obj, info, flags)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("%s must be a%s array, not %s"),
            name, (flags & MP_BUFFER_WRITE) ? " writable" : "n", mp_obj_get_type_str(obj));
    }
    if (info->typecode == BYTEARRAY_TYPECODE) {
        info->typecode = 'B';
    }
}

typedef struct _emlearn_iir_obj_t {
    mp_obj_base_t base;
    iir_filter_t filter;
    float data[];   // n_sections * (IIR_COEFFS + IIR_STATES)
} emlearn_iir_obj_t;

static const mp_obj_type_t emlearn_iir_type;

static mp_obj_t emlearn_iir_new(mp_obj_t coeffs_in) {
    mp_buffer_info_t bufinfo;
    iir_get_buffer(coeffs_in, "coeffs", &bufinfo, MP_BUFFER_READ);
    if (bufinfo.typecode != 'f') {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("coeffs must be array('f'), got typecode '%c'"),
            (int)bufinfo.typecode);
    }
    const size_t n_values = bufinfo.len / sizeof(float);
    if (n_values == 0 || n_values % IIR_SOS_VALUES != 0) {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("coeffs must hold a positive multiple of 6 values (b0 b1 b2 a0 a1 a2 per section), got %u"),
            (unsigned)n_values);
    }
    const size_t n_sections = n_values / IIR_SOS_VALUES;
    // Validate into a stack buffer per section first, so a bad filter allocates nothing.
    const float *sos = bufinfo.buf;
    for (size_t k = 0; k < n_sections; k++) {
        float normalised[IIR_COEFFS];
        switch (iir_section_init(sos + k * IIR_SOS_VALUES, normalised)) {
            case IIR_OK:
                break;
            case IIR_NOT_FINITE:
                mp_raise_msg_varg(&mp_type_ValueError,
                    MP_ERROR_TEXT("section %u has a non-finite coefficient"), (unsigned)k);
            case IIR_A0_ZERO:
                mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("section %u has a0 == 0"), (unsigned)k);
            case IIR_UNSTABLE:
            default:
                mp_raise_msg_varg(&mp_type_ValueError,
                    MP_ERROR_TEXT("section %u is unstable (pole on or outside the unit circle)"), (unsigned)k);
        }
    }
    emlearn_iir_obj_t *self = mp_obj_malloc_var(emlearn_iir_obj_t, data, float,
        n_sections * (IIR_COEFFS + IIR_STATES), &emlearn_iir_type);
    self->filter.n_sections = n_sections;
    self->filter.coeffs = self->data;
    self->filter.state = self->data + n_sections * IIR_COEFFS;
    for (size_t k = 0; k < n_sections; k++) {
        iir_section_init(sos + k * IIR_SOS_VALUES, self->filter.coeffs + k * IIR_COEFFS);
    }
    iir_reset(&self->filter);
    return MP_OBJ_FROM_PTR(self);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_iir_new_obj, emlearn_iir_new);

static mp_obj_t emlearn_iir_run(size_t n_args, const mp_obj_t *args) {
    emlearn_iir_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    mp_buffer_info_t x;
    if (n_args == 2) {
        iir_get_buffer(args[1], "x", &x, MP_BUFFER_RW);
        if (x.typecode == 'f') {
            iir_run_f32(&self->filter, x.buf, x.buf, x.len / sizeof(float));
        } else if (x.typecode == 'h') {
            iir_run_i16_inplace(&self->filter, x.buf, x.len / sizeof(int16_t));
        } else {
            mp_raise_msg_varg(&mp_type_ValueError,
                MP_ERROR_TEXT("x must be array('f') or array('h'), got typecode '%c'"), (int)x.typecode);
        }
        return mp_const_none;
    }
    iir_get_buffer(args[1], "x", &x, MP_BUFFER_READ);
    mp_buffer_info_t out;
    iir_get_buffer(args[2], "out", &out, MP_BUFFER_WRITE);
    if (x.typecode != 'f' && x.typecode != 'h') {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("x must be array('f') or array('h'), got typecode '%c'"), (int)x.typecode);
    }
    if (out.typecode != 'f') {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("out must be array('f'), got typecode '%c'"),
            (int)out.typecode);
    }
    const size_t n = x.len / (x.typecode == 'f' ? sizeof(float) : sizeof(int16_t));
    const size_t n_out = out.len / sizeof(float);
    if (n != n_out) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("x has length %u but out has length %u"),
            (unsigned)n, (unsigned)n_out);
    }
    if (x.typecode == 'f') {
        iir_run_f32(&self->filter, x.buf, out.buf, n);
    } else {
        iir_run_i16_f32(&self->filter, x.buf, out.buf, n);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(emlearn_iir_run_obj, 2, 3, emlearn_iir_run);

static mp_obj_t emlearn_iir_reset(mp_obj_t self_in) {
    emlearn_iir_obj_t *self = MP_OBJ_TO_PTR(self_in);
    iir_reset(&self->filter);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_iir_reset_obj, emlearn_iir_reset);

static const mp_rom_map_elem_t emlearn_iir_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_run), MP_ROM_PTR(&emlearn_iir_run_obj) },
    { MP_ROM_QSTR(MP_QSTR_reset), MP_ROM_PTR(&emlearn_iir_reset_obj) },
};
static MP_DEFINE_CONST_DICT(emlearn_iir_locals_dict, emlearn_iir_locals_dict_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    emlearn_iir_type,
    MP_QSTR_IIR,
    MP_TYPE_FLAG_NONE,
    locals_dict, &emlearn_iir_locals_dict
    );

static const mp_rom_map_elem_t emlearn_iir_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_emlearn_iir) },
    { MP_ROM_QSTR(MP_QSTR_new), MP_ROM_PTR(&emlearn_iir_new_obj) },
    { MP_ROM_QSTR(MP_QSTR_IIR), MP_ROM_PTR(&emlearn_iir_type) },
};
static MP_DEFINE_CONST_DICT(emlearn_iir_module_globals, emlearn_iir_module_globals_table);

const mp_obj_module_t emlearn_iir_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&emlearn_iir_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_emlearn_iir, emlearn_iir_module);
