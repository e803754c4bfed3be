// emlearn_trees: random forest / extra trees / decision tree classifiers and regressors (call-compatible
// with emlearn-micropython's emlearn_trees, with scikit-learn parity through tools/tinysense/trees.py:
// exact for classes, within float32 rounding for regression values).
//
//   emlearn_trees.new(max_trees, max_nodes, max_leaves, *, max_features=128, max_classes=32,
//                     max_thresholds=max_nodes, leaf_bits=32) -> Trees
//       Allocates every buffer once. Loading a model that needs more raises ValueError naming the limit.
//       leaf_bits (8, 16 or 32) is the widest leaf value the model may hold: the leaf buffer is
//       max_leaves * leaf_bits / 8 bytes. 8 holds class leaves and 8-bit probability leaves (what
//       tinysense.trees.convert writes by default for soft voting), 32 (the default) every model.
//       max_thresholds bounds the float threshold table (models of float features; 0 is enough for
//       integer-feature models and saves 4 bytes per node).
//       max_leaves counts leaf values: one per leaf for class leaves, n_classes per leaf for
//       probability (soft-vote) leaves.
//   emlearn_trees.load_model(model, source)  /  Trees.load_model(source)
//       source: an open file (read whole) or bytes/str. Binary models (magic "TSTR", format version 2,
//       written by tinysense.trees.convert; version 1 files raise ValueError asking to re-convert) and emlearn CSV models (f, c, lb|lf, r, n, l records; plus q records,
//       the float threshold table) are both accepted. CSV soft vote is emlearn's: `lb,1..8` and one
//       `l,[p0 p1 ...]` row of class proportions (0..255, numpy's print; rows may wrap over lines) per leaf,
//       held as 8-bit leaves (max_leaves counts n_classes values per leaf). A regressor is model kind 2 in binary, and
//       `c,0` + `lf,32` + `l,<float>` leaf values in CSV (emlearn's convention). Everything is validated (counts, child links,
//       feature/leaf/class indices, checksum, CSV numbers with their line number): bad data raises
//       ValueError naming the problem and leaves the model unloaded. In CSV `n` records an integer
//       threshold is emlearn's `x < threshold`; a decimal one (e.g. 4.5, as scikit-learn writes it)
//       means scikit-learn's `x <= threshold`.
//   Trees.predict(x, out=None) -> class index
//       x: array('h') (int16 features as the model was trained on, or the output of quantize()) or
//       array('f') (float features, quantised in C with the model's table; NaN raises ValueError).
//       len(x) must equal the model's feature count. out: array('f') of outputs() values, filled
//       with vote fractions (class leaves) or mean leaf probabilities (soft-vote leaves; quantised
//       leaves: the exact integer sum / (255 or 65535 * trees)).
//       Returns argmax (lowest index on ties), i.e. scikit-learn's predict as an index into classes_.
//       Allocates nothing.
//       Regressor: the prediction is the mean over trees of the leaf values (scikit-learn's predict,
//       summed in float32). With out (array('f') of 1 value) it is written to out[0] and predict
//       returns None, allocating nothing; without out predict returns it as a float (one float object).
//   Trees.outputs() -> n_classes (1 for a regressor);  Trees.features() -> n_features
//   Trees.is_regressor() -> bool
//   Trees.quantize(x_f, out_h): the int16 features that predict(x_f) uses.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "py/obj.h"
#include "py/runtime.h"

#include "trees.h"
#include "../tinysense_modelfile/modelsource.h"

#define LIMIT_TREES 65535
#define LIMIT_NODES 65535
#define LIMIT_LEAVES (1 << 20)
#define LIMIT_FEATURES 4096
#define LIMIT_CLASSES 256

typedef struct _emlearn_trees_obj_t {
    mp_obj_base_t base;
    trees_model_t model;
    trees_vote_t *votes;   // max_classes: predict scratch
    int16_t *qbuf;    // max_features: quantised float input
} emlearn_trees_obj_t;

static const mp_obj_type_t emlearn_trees_type;

static mp_int_t checked_limit(mp_int_t value, const char *name, mp_int_t limit) {
    if (value < 1 || value > limit) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s must be 1..%d, got %d"), name, (int)limit,
            (int)value);
    }
    return value;
}

static mp_obj_t emlearn_trees_new(size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    enum { ARG_max_trees, ARG_max_nodes, ARG_max_leaves, ARG_max_features, ARG_max_classes, ARG_max_thresholds,
        ARG_leaf_bits };
    static const mp_arg_t allowed_args[] = {
        { MP_QSTR_max_trees, MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = 0} },
        { MP_QSTR_max_nodes, MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = 0} },
        { MP_QSTR_max_leaves, MP_ARG_REQUIRED | MP_ARG_INT, {.u_int = 0} },
        { MP_QSTR_max_features, MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = 128} },
        { MP_QSTR_max_classes, MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = 32} },
        { MP_QSTR_max_thresholds, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = mp_const_none} },
        { MP_QSTR_leaf_bits, MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = 32} },
    };
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed_args)];
    mp_arg_parse_all(n_args, pos_args, kw_args, MP_ARRAY_SIZE(allowed_args), allowed_args, args);
    const mp_int_t max_trees = checked_limit(args[ARG_max_trees].u_int, "max_trees", LIMIT_TREES);
    const mp_int_t max_nodes = checked_limit(args[ARG_max_nodes].u_int, "max_nodes", LIMIT_NODES);
    const mp_int_t max_leaves = checked_limit(args[ARG_max_leaves].u_int, "max_leaves", LIMIT_LEAVES);
    const mp_int_t max_features = checked_limit(args[ARG_max_features].u_int, "max_features", LIMIT_FEATURES);
    const mp_int_t max_classes = checked_limit(args[ARG_max_classes].u_int, "max_classes", LIMIT_CLASSES);
    mp_int_t max_thresholds = max_nodes;
    if (args[ARG_max_thresholds].u_obj != mp_const_none) {
        max_thresholds = mp_obj_get_int(args[ARG_max_thresholds].u_obj);
        if (max_thresholds < 0 || max_thresholds > LIMIT_NODES) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("max_thresholds must be 0..%d, got %d"),
                (int)LIMIT_NODES, (int)max_thresholds);
        }
    }
    const mp_int_t leaf_bits = args[ARG_leaf_bits].u_int;
    if (leaf_bits != 8 && leaf_bits != 16 && leaf_bits != 32) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("leaf_bits must be 8, 16 or 32, got %d"), (int)leaf_bits);
    }

    emlearn_trees_obj_t *self = mp_obj_malloc(emlearn_trees_obj_t, &emlearn_trees_type);
    trees_model_t *m = &self->model;
    memset(m, 0, sizeof(*m));
    m->max_trees = (uint32_t)max_trees;
    m->max_nodes = (uint32_t)max_nodes;
    m->max_leaf_values = (uint32_t)max_leaves;
    m->max_features = (uint16_t)max_features;
    m->max_classes = (uint16_t)max_classes;
    m->max_thresholds = (uint32_t)max_thresholds;
    m->max_leaf_bits = (uint8_t)leaf_bits;
    m->roots = m_new(int32_t, max_trees);
    m->nodes = m_new(trees_node_t, max_nodes);
    // Class leaves and 8-bit, 16-bit and float32 leaves share one buffer: a model uses one kind.
    uint8_t *leaves = m_new(uint8_t, (size_t)max_leaves * (size_t)(leaf_bits / 8));
    m->leaf_class = leaves;
    m->leaf_q16 = (uint16_t *)(void *)leaves;
    m->leaf_proba = (float *)(void *)leaves;
    m->table = m_new(float, max_thresholds > 0 ? max_thresholds : 1);
    m->table_start = m_new(uint16_t, max_features + 1);
    self->votes = m_new(trees_vote_t, max_classes);
    self->qbuf = m_new(int16_t, max_features);
    return MP_OBJ_FROM_PTR(self);
}
static MP_DEFINE_CONST_FUN_OBJ_KW(emlearn_trees_new_obj, 3, emlearn_trees_new);

static emlearn_trees_obj_t *trees_arg(mp_obj_t obj) {
    if (!mp_obj_is_type(obj, &emlearn_trees_type)) {
        mp_raise_TypeError(MP_ERROR_TEXT("expected a model from emlearn_trees.new()"));
    }
    return MP_OBJ_TO_PTR(obj);
}

static const trees_model_t *loaded_model(mp_obj_t self_in) {
    const trees_model_t *m = &trees_arg(self_in)->model;
    if (!m->loaded) {
        mp_raise_ValueError(MP_ERROR_TEXT("no model loaded: call load_model() first"));
    }
    return m;
}

static mp_obj_t emlearn_trees_load_model(mp_obj_t self_in, mp_obj_t source) {
    emlearn_trees_obj_t *self = trees_arg(self_in);
    mp_buffer_info_t bufinfo;
    modelfile_source_buffer(&source, &bufinfo, true);   // binary, or CSV text (str or a text-mode file)
    trees_error_t err;
    trees_status_t status;
    if (trees_is_binary(bufinfo.buf, bufinfo.len)) {
        status = trees_load_binary(&self->model, bufinfo.buf, bufinfo.len, &err);
    } else {
        status = trees_load_csv(&self->model, bufinfo.buf, bufinfo.len, &err);
    }
    if (status != TREES_OK) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("bad trees model: %s"), err.message);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(emlearn_trees_load_model_obj, emlearn_trees_load_model);

// The int16 features of x: x itself (array('h')) or x quantised into self->qbuf (array('f')).
static const int16_t *features_of(emlearn_trees_obj_t *self, mp_obj_t x_in) {
    const trees_model_t *m = &self->model;
    mp_buffer_info_t bufinfo;
    mp_get_buffer_raise(x_in, &bufinfo, MP_BUFFER_READ);
    size_t item_size;
    if (bufinfo.typecode == 'h') {
        item_size = sizeof(int16_t);
    } else if (bufinfo.typecode == 'f') {
        item_size = sizeof(float);
    } else {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("x must be array('h') or array('f'), got typecode '%c'"),
            (int)bufinfo.typecode);
    }
    const size_t n = bufinfo.len / item_size;
    if (n != m->n_features) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("x has %d features, the model expects %d"), (int)n,
            (int)m->n_features);
    }
    if (item_size == sizeof(int16_t)) {
        return bufinfo.buf;
    }
    const float *x = bufinfo.buf;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i])) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("x[%d] is NaN"), (int)i);
        }
    }
    trees_quantize(m, x, self->qbuf);
    return self->qbuf;
}

static mp_obj_t emlearn_trees_predict(size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    mp_obj_t x_in, out_in = mp_const_none;
    if (kw_args->used == 0 && n_args >= 2 && n_args <= 3) {
        // predict(x) / predict(x, out): the per-sample call takes its arguments as they are, without
        // walking an argument table.
        x_in = pos_args[1];
        if (n_args == 3) {
            out_in = pos_args[2];
        }
    } else {
        enum { ARG_x, ARG_out };
        static const mp_arg_t allowed_args[] = {
            { MP_QSTR_x, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
            { MP_QSTR_out, MP_ARG_OBJ, {.u_obj = mp_const_none} },
        };
        mp_arg_val_t args[MP_ARRAY_SIZE(allowed_args)];
        mp_arg_parse_all(n_args - 1, pos_args + 1, kw_args, MP_ARRAY_SIZE(allowed_args), allowed_args, args);
        x_in = args[ARG_x].u_obj;
        out_in = args[ARG_out].u_obj;
    }
    const trees_model_t *m = loaded_model(pos_args[0]);
    emlearn_trees_obj_t *self = MP_OBJ_TO_PTR(pos_args[0]);
    float *out = NULL;
    if (out_in != mp_const_none) {
        mp_buffer_info_t outinfo;
        mp_get_buffer_raise(out_in, &outinfo, MP_BUFFER_WRITE);
        if (outinfo.typecode != 'f') {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("out must be array('f'), got typecode '%c'"),
                (int)outinfo.typecode);
        }
        if (outinfo.len != m->n_classes * sizeof(float)) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("out has %d values, the model has %d outputs"),
                (int)(outinfo.len / sizeof(float)), (int)m->n_classes);
        }
        out = outinfo.buf;
    }
    const int16_t *x = features_of(self, x_in);
    if (m->kind == TREES_KIND_REGRESSOR) {
        const float value = trees_regress(m, x);
        if (out == NULL) {
            return mp_obj_new_float(value);
        }
        out[0] = value;
        return mp_const_none;
    }
    return MP_OBJ_NEW_SMALL_INT(trees_predict(m, x, self->votes, out));
}
static MP_DEFINE_CONST_FUN_OBJ_KW(emlearn_trees_predict_obj, 1, emlearn_trees_predict);

static mp_obj_t emlearn_trees_quantize(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    const trees_model_t *m = loaded_model(self_in);
    emlearn_trees_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_buffer_info_t xinfo, outinfo;
    mp_get_buffer_raise(x_in, &xinfo, MP_BUFFER_READ);
    if (xinfo.typecode != 'f') {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("x must be array('f'), got typecode '%c'"),
            (int)xinfo.typecode);
    }
    mp_get_buffer_raise(out_in, &outinfo, MP_BUFFER_WRITE);
    if (outinfo.typecode != 'h' || outinfo.len != m->n_features * sizeof(int16_t)) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("out must be array('h') of %d values"),
            (int)m->n_features);
    }
    const int16_t *q = features_of(self, x_in);
    memcpy(outinfo.buf, q, m->n_features * sizeof(int16_t));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(emlearn_trees_quantize_obj, emlearn_trees_quantize);

static mp_obj_t emlearn_trees_outputs(mp_obj_t self_in) {
    return MP_OBJ_NEW_SMALL_INT(loaded_model(self_in)->n_classes);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_trees_outputs_obj, emlearn_trees_outputs);

static mp_obj_t emlearn_trees_features(mp_obj_t self_in) {
    return MP_OBJ_NEW_SMALL_INT(loaded_model(self_in)->n_features);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_trees_features_obj, emlearn_trees_features);

static mp_obj_t emlearn_trees_is_regressor(mp_obj_t self_in) {
    return mp_obj_new_bool(loaded_model(self_in)->kind == TREES_KIND_REGRESSOR);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_trees_is_regressor_obj, emlearn_trees_is_regressor);

static const mp_rom_map_elem_t emlearn_trees_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR_predict), MP_ROM_PTR(&emlearn_trees_predict_obj) },
    { MP_ROM_QSTR(MP_QSTR_outputs), MP_ROM_PTR(&emlearn_trees_outputs_obj) },
    { MP_ROM_QSTR(MP_QSTR_features), MP_ROM_PTR(&emlearn_trees_features_obj) },
    { MP_ROM_QSTR(MP_QSTR_is_regressor), MP_ROM_PTR(&emlearn_trees_is_regressor_obj) },
    { MP_ROM_QSTR(MP_QSTR_quantize), MP_ROM_PTR(&emlearn_trees_quantize_obj) },
    { MP_ROM_QSTR(MP_QSTR_load_model), MP_ROM_PTR(&emlearn_trees_load_model_obj) },
};
static MP_DEFINE_CONST_DICT(emlearn_trees_locals, emlearn_trees_locals_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    emlearn_trees_type,
    MP_QSTR_Trees,
    MP_TYPE_FLAG_NONE,
    locals_dict, &emlearn_trees_locals
    );

static const mp_rom_map_elem_t emlearn_trees_module_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_emlearn_trees) },
    { MP_ROM_QSTR(MP_QSTR_new), MP_ROM_PTR(&emlearn_trees_new_obj) },
    { MP_ROM_QSTR(MP_QSTR_load_model), MP_ROM_PTR(&emlearn_trees_load_model_obj) },
    { MP_ROM_QSTR(MP_QSTR_Trees), MP_ROM_PTR(&emlearn_trees_type) },
};
static MP_DEFINE_CONST_DICT(emlearn_trees_module_globals, emlearn_trees_module_table);

const mp_obj_module_t emlearn_trees_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&emlearn_trees_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_emlearn_trees, emlearn_trees_module);
