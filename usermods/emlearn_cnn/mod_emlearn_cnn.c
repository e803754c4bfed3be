// emlearn_cnn: convolutional neural networks in int8 or float32 for models written by tools/tinysense/cnn
// (PyTorch nn.Sequential / torch.fx and ONNX converters): chains, or graphs with residual adds. Call-compatible with emlearn-micropython's emlearn_cnn (new / run /
// output_dimensions), with our own engine and file format (see cnn.h).
//
//   emlearn_cnn.new(model) -> Model
//       model: the model file as bytes, bytearray or memoryview (e.g. of a frozen or file-backed buffer),
//       or an open file (opened 'rb', read whole). The whole file is validated first (magic, version,
//       CRC32, layer shapes, parameter blocks, the arena slot plan and size): bad data raises ValueError naming the
//       problem. The weights are NOT copied: the model keeps a reference to the buffer object (so the GC
//       keeps it alive) and reads them in place; the buffer must stay unchanged (a resized bytearray is
//       detected by run()). The activation arena (arena_size() bytes, 16-byte aligned) is allocated here, once,
//       besides the model object, which holds the file's own layers (40 bytes each; no fixed 64-layer table).
//   Model.run(img, out) -> None
//       img: uint8 H x W x C pixels (bytes, bytearray or array('B')), exactly input_shape() values.
//       out: array('f') of exactly the model's outputs (the product of output_dimensions()): class
//       probabilities after a softmax layer, otherwise the last layer's values (int8: dequantised).
//       Allocates nothing.
//   Model.output_dimensions() -> (n,) for a 1x1xC output, otherwise (h, w, c)
//   Model.input_shape() -> (h, w, c); Model.arena_size() -> bytes; Model.is_int8() -> bool
#include <stdint.h>
#include <string.h>

#include "py/obj.h"
#include "py/binary.h"
#include "py/runtime.h"

#include "cnn.h"

typedef struct _emlearn_cnn_obj_t {
    mp_obj_base_t base;
    mp_obj_t source;        // the buffer object holding the model file (kept alive, read in place)
    const uint8_t *data;    // its buffer as seen by new()
    size_t len;
    uint8_t *arena_block;   // m_new'd, arena_size + CNN_ALIGN bytes
    cnn_info_t info;
    cnn_model_t model;
    cnn_layer_t layers[];   // info.layers: the model's own layer count, allocated with the object
} emlearn_cnn_obj_t;

static const mp_obj_type_t emlearn_cnn_type;

static mp_obj_t emlearn_cnn_new(mp_obj_t source) {
    mp_buffer_info_t bufinfo;
    if (!mp_get_buffer(source, &bufinfo, MP_BUFFER_READ)) {
        mp_obj_t dest[2];
        mp_load_method_maybe(source, MP_QSTR_read, dest);
        if (dest[0] == MP_OBJ_NULL) {
            mp_raise_TypeError(MP_ERROR_TEXT("a model must be bytes, bytearray, memoryview or a file opened 'rb'"));
        }
        source = mp_call_method_n_kw(0, 0, dest);
        if (!mp_get_buffer(source, &bufinfo, MP_BUFFER_READ) || mp_obj_is_str(source)) {
            mp_raise_TypeError(MP_ERROR_TEXT("a model file must be opened in binary mode ('rb')"));
        }
    }
    if (mp_obj_is_str(source)) {
        mp_raise_TypeError(MP_ERROR_TEXT("a model must be bytes, not str"));
    }
    if (((uintptr_t)bufinfo.buf & 3u) != 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("bad cnn model: the buffer must be 4-byte aligned (copy it with bytes())"));
    }
    const uint8_t n_layers = cnn_layer_count(bufinfo.buf, bufinfo.len);
    emlearn_cnn_obj_t *self = mp_obj_malloc_var(emlearn_cnn_obj_t, layers, cnn_layer_t, n_layers, &emlearn_cnn_type);
    self->info.layers = self->layers;
    self->info.layers_capacity = n_layers;
    cnn_error_t err;
    if (cnn_check_file(bufinfo.buf, bufinfo.len, &self->info, &err) != CNN_OK) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("bad cnn model: %s"), err.message);
    }
    self->source = source;
    self->data = bufinfo.buf;
    self->len = bufinfo.len;
    self->arena_block = m_new(uint8_t, self->info.arena_size + CNN_ALIGN);
    const uintptr_t aligned = ((uintptr_t)self->arena_block + CNN_ALIGN - 1u) & ~(uintptr_t)(CNN_ALIGN - 1u);
    self->model.info = &self->info;
    self->model.data = self->data;
    self->model.arena = (uint8_t *)aligned;
    return MP_OBJ_FROM_PTR(self);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_cnn_new_obj, emlearn_cnn_new);

static emlearn_cnn_obj_t *model_arg(mp_obj_t obj) {
    if (!mp_obj_is_type(obj, &emlearn_cnn_type)) {
        mp_raise_TypeError(MP_ERROR_TEXT("expected a model from emlearn_cnn.new()"));
    }
    return MP_OBJ_TO_PTR(obj);
}

static mp_obj_t emlearn_cnn_run(mp_obj_t self_in, mp_obj_t img_in, mp_obj_t out_in) {
    emlearn_cnn_obj_t *self = model_arg(self_in);
    const cnn_info_t *info = &self->info;
    mp_buffer_info_t src;
    if (!mp_get_buffer(self->source, &src, MP_BUFFER_READ) || src.buf != self->data || src.len != self->len) {
        mp_raise_ValueError(MP_ERROR_TEXT("the model's buffer was resized or released since new()"));
    }
    mp_buffer_info_t img;
    if (!mp_get_buffer(img_in, &img, MP_BUFFER_READ)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("img must be uint8 bytes/bytearray/array('B'), not %s"),
            mp_obj_get_type_str(img_in));
    }
    if (img.typecode != 'B' && img.typecode != BYTEARRAY_TYPECODE) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("img must be uint8 (array('B')), got typecode '%c'"),
            (int)img.typecode);
    }
    if (img.len != info->n_inputs) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("img has %d values, the model takes %dx%dx%d = %d"),
            (int)img.len, info->in_h, info->in_w, info->in_c, (int)info->n_inputs);
    }
    mp_buffer_info_t out;
    if (!mp_get_buffer(out_in, &out, MP_BUFFER_WRITE)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("out must be a writable array('f'), not %s"),
            mp_obj_get_type_str(out_in));
    }
    if (out.typecode != 'f') {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("out must be array('f'), got typecode '%c'"),
            out.typecode == BYTEARRAY_TYPECODE ? 'B' : (int)out.typecode);
    }
    if (out.len != info->n_outputs * sizeof(float)) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("out has %d values, the model has %d outputs"),
            (int)(out.len / sizeof(float)), (int)info->n_outputs);
    }
    cnn_run(&self->model, img.buf, out.buf);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(emlearn_cnn_run_obj, emlearn_cnn_run);

static mp_obj_t emlearn_cnn_output_dimensions(mp_obj_t self_in) {
    const cnn_info_t *info = &model_arg(self_in)->info;
    if (info->out_h == 1 && info->out_w == 1) {
        mp_obj_t dims[1] = { MP_OBJ_NEW_SMALL_INT(info->out_c) };
        return mp_obj_new_tuple(1, dims);
    }
    mp_obj_t dims[3] = { MP_OBJ_NEW_SMALL_INT(info->out_h), MP_OBJ_NEW_SMALL_INT(info->out_w),
                         MP_OBJ_NEW_SMALL_INT(info->out_c) };
    return mp_obj_new_tuple(3, dims);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_cnn_output_dimensions_obj, emlearn_cnn_output_dimensions);

static mp_obj_t emlearn_cnn_input_shape(mp_obj_t self_in) {
    const cnn_info_t *info = &model_arg(self_in)->info;
    mp_obj_t dims[3] = { MP_OBJ_NEW_SMALL_INT(info->in_h), MP_OBJ_NEW_SMALL_INT(info->in_w),
                         MP_OBJ_NEW_SMALL_INT(info->in_c) };
    return mp_obj_new_tuple(3, dims);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_cnn_input_shape_obj, emlearn_cnn_input_shape);

static mp_obj_t emlearn_cnn_arena_size(mp_obj_t self_in) {
    return mp_obj_new_int_from_uint(model_arg(self_in)->info.arena_size);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_cnn_arena_size_obj, emlearn_cnn_arena_size);

static mp_obj_t emlearn_cnn_is_int8(mp_obj_t self_in) {
    return mp_obj_new_bool(model_arg(self_in)->info.dtype == CNN_DTYPE_INT8);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_cnn_is_int8_obj, emlearn_cnn_is_int8);

static const mp_rom_map_elem_t emlearn_cnn_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR_run), MP_ROM_PTR(&emlearn_cnn_run_obj) },
    { MP_ROM_QSTR(MP_QSTR_output_dimensions), MP_ROM_PTR(&emlearn_cnn_output_dimensions_obj) },
    { MP_ROM_QSTR(MP_QSTR_input_shape), MP_ROM_PTR(&emlearn_cnn_input_shape_obj) },
    { MP_ROM_QSTR(MP_QSTR_arena_size), MP_ROM_PTR(&emlearn_cnn_arena_size_obj) },
    { MP_ROM_QSTR(MP_QSTR_is_int8), MP_ROM_PTR(&emlearn_cnn_is_int8_obj) },
};
static MP_DEFINE_CONST_DICT(emlearn_cnn_locals, emlearn_cnn_locals_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    emlearn_cnn_type,
    MP_QSTR_Model,
    MP_TYPE_FLAG_NONE,
    locals_dict, &emlearn_cnn_locals
    );

static const mp_rom_map_elem_t emlearn_cnn_module_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_emlearn_cnn) },
    { MP_ROM_QSTR(MP_QSTR_new), MP_ROM_PTR(&emlearn_cnn_new_obj) },
    { MP_ROM_QSTR(MP_QSTR_Model), MP_ROM_PTR(&emlearn_cnn_type) },
};
static MP_DEFINE_CONST_DICT(emlearn_cnn_module_globals, emlearn_cnn_module_table);

const mp_obj_module_t emlearn_cnn_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&emlearn_cnn_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_emlearn_cnn, emlearn_cnn_module);
