// emlearn_arrayutils: MicroPython binding of arrayutils.c, call-compatible with emlearn-micropython's module.
//
//   linear_map(inp, out, in_min, in_max, out_min, out_max)
//
// inp, out: arrays with typecode 'b', 'B', 'h', 'H', 'i' or 'f' (any of the 36 pairs), of the same length;
// bytes and bytearray count as 'B'; out must be writable; inp may be out (in place). Each element is mapped
// from [in_min, in_max] to [out_min, out_max] in float32 and clamped to the output range and type; integer
// outputs truncate toward zero (the exact rule is in arrayutils.h). Returns None; allocates nothing.
#include "py/binary.h"
#include "py/obj.h"
#include "py/runtime.h"

#include "arrayutils.h"

#define SUPPORTED_TYPECODES "'b', 'B', 'h', 'H', 'i' or 'f'"

// The element typecode of a buffer and its element count; raises ValueError naming `what` if unsupported.
static size_t array_length(const char *what, mp_buffer_info_t *info) {
    if (info->typecode == BYTEARRAY_TYPECODE) {
        info->typecode = 'B';
    }
    const size_t size = arrayutils_type_size((char)info->typecode);
    if (size == 0) {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("%s: unsupported array typecode '%c', use " SUPPORTED_TYPECODES), what, info->typecode);
    }
    return info->len / size;
}

static mp_obj_t emlearn_arrayutils_linear_map(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    mp_buffer_info_t in_info;
    mp_buffer_info_t out_info;
    if (!mp_get_buffer(args[0], &in_info, MP_BUFFER_READ)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("inp must be an array, not %s"),
            mp_obj_get_type_str(args[0]));
    }
    if (!mp_get_buffer(args[1], &out_info, MP_BUFFER_WRITE)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("out must be a writable array, not %s"),
            mp_obj_get_type_str(args[1]));
    }
    const size_t in_length = array_length("inp", &in_info);
    const size_t out_length = array_length("out", &out_info);
    if (in_length != out_length) {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("inp and out must have the same length, got %u and %u"),
            (unsigned int)in_length, (unsigned int)out_length);
    }
    const float in_min = mp_obj_get_float_to_f(args[2]);
    const float in_max = mp_obj_get_float_to_f(args[3]);
    const float out_min = mp_obj_get_float_to_f(args[4]);
    const float out_max = mp_obj_get_float_to_f(args[5]);

    const arrayutils_status_t status = arrayutils_linear_map(in_info.buf, (char)in_info.typecode,
        out_info.buf, (char)out_info.typecode, in_length, in_min, in_max, out_min, out_max);
    switch (status) {
        case ARRAYUTILS_OK:
            break;
        case ARRAYUTILS_ERR_NOT_FINITE:
            mp_raise_ValueError(MP_ERROR_TEXT("in_min, in_max, out_min and out_max must be finite"));
        case ARRAYUTILS_ERR_EMPTY_RANGE:
            mp_raise_ValueError(MP_ERROR_TEXT("in_min and in_max must differ"));
        case ARRAYUTILS_ERR_RANGE_TOO_WIDE:
            mp_raise_ValueError(MP_ERROR_TEXT("range too wide for float32"));
        case ARRAYUTILS_ERR_OVERLAP:
            mp_raise_ValueError(MP_ERROR_TEXT("inp and out overlap with different element sizes"));
        default: // ARRAYUTILS_ERR_IN_TYPE / _OUT_TYPE: array_length already refused those
            mp_raise_ValueError(MP_ERROR_TEXT("unsupported array typecode"));
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(emlearn_arrayutils_linear_map_obj, 6, 6, emlearn_arrayutils_linear_map);

static const mp_rom_map_elem_t emlearn_arrayutils_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_emlearn_arrayutils) },
    { MP_ROM_QSTR(MP_QSTR_linear_map), MP_ROM_PTR(&emlearn_arrayutils_linear_map_obj) },
};
static MP_DEFINE_CONST_DICT(emlearn_arrayutils_globals, emlearn_arrayutils_globals_table);

const mp_obj_module_t emlearn_arrayutils_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&emlearn_arrayutils_globals,
};

MP_REGISTER_MODULE(MP_QSTR_emlearn_arrayutils, emlearn_arrayutils_module);
