// emlearn_net: multi-layer perceptron inference in float32 for scikit-learn MLPClassifier /
// MLPRegressor models written by tools/tinysense/net.py (emlearn-micropython has no such module).
//
//   emlearn_net.new(source) -> Net
//       source: the model file's bytes, or an open file (opened 'rb', read whole). The whole file
//       is validated first (magic, version, layer sizes, activations, length, CRC32, finite
//       values): bad data raises ValueError naming the problem. Weights and two scratch buffers
//       of the widest layer are allocated here, once.
//   Net.predict(x, out=None) -> class index, or None for a regressor
//       x: array('f') of inputs() values (finite). out: array('f') of outputs() values, filled with
//       the class probabilities (scikit-learn's predict_proba) or the regression outputs; a
//       regressor needs it. A classifier returns scikit-learn's predict as an index into classes_
//       (argmax, lowest index on ties; p > 0.5 for a binary classifier). Allocates nothing.
//   Net.inputs(), Net.outputs() (n_classes, 2 for a binary classifier, or the regressor's outputs),
//   Net.is_classifier()
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "py/obj.h"
#include "py/runtime.h"

#include "net.h"

typedef struct _emlearn_net_obj_t {
    mp_obj_base_t base;
    net_model_t model;
} emlearn_net_obj_t;

static const mp_obj_type_t emlearn_net_type;

static mp_obj_t emlearn_net_new(mp_obj_t source) {
    mp_buffer_info_t bufinfo;
    if (!mp_get_buffer(source, &bufinfo, MP_BUFFER_READ)) {
        mp_obj_t dest[2];
        mp_load_method_maybe(source, MP_QSTR_read, dest);
        if (dest[0] == MP_OBJ_NULL) {
            mp_raise_TypeError(MP_ERROR_TEXT("a model source must be a file opened 'rb' or bytes"));
        }
        source = mp_call_method_n_kw(0, 0, dest);
        if (!mp_get_buffer(source, &bufinfo, MP_BUFFER_READ) || mp_obj_is_str(source)) {
            mp_raise_TypeError(MP_ERROR_TEXT("a model file must be opened in binary mode ('rb')"));
        }
    }
    net_info_t info;
    net_error_t err;
    if (net_check_file(bufinfo.buf, bufinfo.len, &info, &err) != NET_OK) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("bad net model: %s"), err.message);
    }
    emlearn_net_obj_t *self = mp_obj_malloc(emlearn_net_obj_t, &emlearn_net_type);
    memset(&self->model, 0, sizeof(self->model));
    float *params = m_new(float, info.n_params);
    float *act_a = m_new(float, info.max_width);
    float *act_b = m_new(float, info.max_width);
    net_setup(&self->model, &info, bufinfo.buf, params, act_a, act_b);
    return MP_OBJ_FROM_PTR(self);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_net_new_obj, emlearn_net_new);

static net_model_t *model_arg(mp_obj_t obj) {
    if (!mp_obj_is_type(obj, &emlearn_net_type)) {
        mp_raise_TypeError(MP_ERROR_TEXT("expected a model from emlearn_net.new()"));
    }
    return &((emlearn_net_obj_t *)MP_OBJ_TO_PTR(obj))->model;
}

static const float *float_array(mp_obj_t obj, const char *name, uint32_t count, int flags) {
    mp_buffer_info_t info;
    if (!mp_get_buffer(obj, &info, flags)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("%s must be a%s array('f'), not %s"), name,
            (flags & MP_BUFFER_WRITE) ? " writable" : "n", mp_obj_get_type_str(obj));
    }
    if (info.typecode != 'f') {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s must be array('f'), got typecode '%c'"), name,
            info.typecode == 1 ? 'B' : (int)info.typecode);
    }
    if (info.len != count * sizeof(float)) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s has %d values, the model has %d %s"), name,
            (int)(info.len / sizeof(float)), (int)count, (flags & MP_BUFFER_WRITE) ? "outputs" : "inputs");
    }
    return info.buf;
}

static mp_obj_t emlearn_net_predict(size_t n_args, const mp_obj_t *args) {
    const net_model_t *m = model_arg(args[0]);
    const uint32_t n_in = net_inputs(m), n_out = net_outputs(m);
    const float *x = float_array(args[1], "x", n_in, MP_BUFFER_READ);
    float *out = NULL;
    if (n_args > 2 && args[2] != mp_const_none) {
        out = (float *)float_array(args[2], "out", n_out, MP_BUFFER_WRITE);
    } else if (m->info.kind == NET_KIND_REGRESSOR) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("a regressor needs out=array('f') of %d values"),
            (int)n_out);
    }
    for (uint32_t i = 0; i < n_in; i++) {
        if (!isfinite(x[i])) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("x[%d] is not finite"), (int)i);
        }
    }
    const int32_t best = net_predict(m, x, out);
    if (m->info.kind == NET_KIND_REGRESSOR) {
        return mp_const_none;
    }
    return MP_OBJ_NEW_SMALL_INT(best);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(emlearn_net_predict_obj, 2, 3, emlearn_net_predict);

static mp_obj_t emlearn_net_inputs(mp_obj_t self_in) {
    return MP_OBJ_NEW_SMALL_INT(net_inputs(model_arg(self_in)));
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_net_inputs_obj, emlearn_net_inputs);

static mp_obj_t emlearn_net_outputs(mp_obj_t self_in) {
    return MP_OBJ_NEW_SMALL_INT(net_outputs(model_arg(self_in)));
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_net_outputs_obj, emlearn_net_outputs);

static mp_obj_t emlearn_net_is_classifier(mp_obj_t self_in) {
    return mp_obj_new_bool(model_arg(self_in)->info.kind == NET_KIND_CLASSIFIER);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_net_is_classifier_obj, emlearn_net_is_classifier);

static const mp_rom_map_elem_t emlearn_net_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR_predict), MP_ROM_PTR(&emlearn_net_predict_obj) },
    { MP_ROM_QSTR(MP_QSTR_inputs), MP_ROM_PTR(&emlearn_net_inputs_obj) },
    { MP_ROM_QSTR(MP_QSTR_outputs), MP_ROM_PTR(&emlearn_net_outputs_obj) },
    { MP_ROM_QSTR(MP_QSTR_is_classifier), MP_ROM_PTR(&emlearn_net_is_classifier_obj) },
};
static MP_DEFINE_CONST_DICT(emlearn_net_locals, emlearn_net_locals_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    emlearn_net_type,
    MP_QSTR_Net,
    MP_TYPE_FLAG_NONE,
    locals_dict, &emlearn_net_locals
    );

static const mp_rom_map_elem_t emlearn_net_module_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_emlearn_net) },
    { MP_ROM_QSTR(MP_QSTR_new), MP_ROM_PTR(&emlearn_net_new_obj) },
    { MP_ROM_QSTR(MP_QSTR_Net), MP_ROM_PTR(&emlearn_net_type) },
};
static MP_DEFINE_CONST_DICT(emlearn_net_module_globals, emlearn_net_module_table);

const mp_obj_module_t emlearn_net_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&emlearn_net_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_emlearn_net, emlearn_net_module);
