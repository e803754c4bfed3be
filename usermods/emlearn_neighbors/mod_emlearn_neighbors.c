// emlearn_neighbors: k-nearest-neighbours classifier with on-device learning (call-compatible with
// emlearn-micropython's emlearn_neighbors; exact scikit-learn parity through tools/tinysense/neighbors.py).
//
//   emlearn_neighbors.new(max_items, n_features, k) -> Model
//       Allocates every buffer once (max_items 1..1048575, n_features 1..4096, k 1..max_items).
//   emlearn_neighbors.load(source, max_items=0) -> Model
//       A model from a file written by tinysense.neighbors.convert or Model.save(): n_features, k,
//       the items and the float quantiser come from the file; room for max(max_items, items) items.
//   emlearn_neighbors.load_model(model, source) / Model.load_model(source)
//       Replace the model's items, k and quantiser with the file's (same n_features, fits max_items).
//       source: an open file (read whole) or bytes. Every field, the length and the CRC32 are
//       checked first: bad data raises ValueError naming the problem and leaves the model unchanged.
//   Model.additem(x, label) -> index of the new item
//       x: array('h') of n_features, or array('f') (quantised with the model's map); label: any int16.
//   Model.getitem(i, out): the features of item i into out: array('h') (as stored) or array('f')
//       (mapped back to float).
//   Model.predict(x) -> label
//       x: array('h') or array('f') of n_features. The label most frequent among the k nearest items
//       (lowest label on a tie), the k chosen as scikit-learn's brute-force search chooses them among
//       equally distant items. Distances are exact (no overflow). Needs at least k items.
//       Allocates nothing.
//   Model.getresult(i) -> (index, distance, label)
//       The i-th nearest item of the last predict (0 <= i < items): the k voters come first, nearest
//       first, then the others; distance is floor(Euclidean distance) in int16 units, as in
//       emlearn-micropython. additem/load_model invalidate the results.
//   Model.quantize(x_f, out_h): the int16 features predict(x_f) uses.
//   Model.save() -> bytes: the model file (items, k, quantiser) for load()/load_model().
//   Model.items(), Model.features(), Model.k()
//   Model.__del__(): frees the buffers now (emlearn-micropython API); the model is unusable after.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "py/obj.h"
#include "py/objstr.h"
#include "py/runtime.h"

#include "neighbors.h"
#include "../tinysense_modelfile/modelsource.h"

typedef struct _emlearn_neighbors_obj_t {
    mp_obj_base_t base;
    neighbors_model_t model;
    int16_t *qbuf;       // n_features: quantised float input
} emlearn_neighbors_obj_t;

static const mp_obj_type_t emlearn_neighbors_type;

static mp_int_t checked_range(mp_obj_t value_in, const char *name, mp_int_t low, mp_int_t high) {
    const mp_int_t value = mp_obj_get_int(value_in);
    if (value < low || value > high) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s must be %d..%d, got %d"), name, (int)low, (int)high,
            (int)value);
    }
    return value;
}

static emlearn_neighbors_obj_t *make_model(mp_int_t max_items, mp_int_t n_features, mp_int_t k) {
    // Item data plus per-item scratch (label, ranked key, vote label): refuse sizes size_t cannot hold.
    const uint64_t bytes = (uint64_t)max_items * ((uint64_t)n_features * sizeof(int16_t) + 12u);
    if (bytes > (uint64_t)(SIZE_MAX / 2)) {
        mp_raise_msg_varg(&mp_type_MemoryError, MP_ERROR_TEXT("%d items of %d features do not fit in memory"),
            (int)max_items, (int)n_features);
    }
    emlearn_neighbors_obj_t *self = mp_obj_malloc(emlearn_neighbors_obj_t, &emlearn_neighbors_type);
    neighbors_model_t *m = &self->model;
    memset(m, 0, sizeof(*m));
    self->qbuf = NULL;
    m->data = m_new(int16_t, (size_t)max_items * (size_t)n_features);
    m->labels = m_new(int16_t, max_items);
    m->ranked = m_new(uint64_t, max_items);
    m->vote_labels = m_new(int16_t, max_items);
    m->offset = m_new(float, n_features);
    m->scale = m_new(float, n_features);
    self->qbuf = m_new(int16_t, n_features);
    m->max_items = (uint32_t)max_items;
    m->n_features = (uint16_t)n_features;
    m->k = (uint32_t)k;
    neighbors_reset(m);
    return self;
}

static mp_obj_t emlearn_neighbors_new(mp_obj_t max_items_in, mp_obj_t n_features_in, mp_obj_t k_in) {
    const mp_int_t max_items = checked_range(max_items_in, "max_items", 1, NEIGHBORS_MAX_ITEMS);
    const mp_int_t n_features = checked_range(n_features_in, "n_features", 1, NEIGHBORS_MAX_FEATURES);
    const mp_int_t k = checked_range(k_in, "k", 1, max_items);
    return MP_OBJ_FROM_PTR(make_model(max_items, n_features, k));
}
static MP_DEFINE_CONST_FUN_OBJ_3(emlearn_neighbors_new_obj, emlearn_neighbors_new);

static emlearn_neighbors_obj_t *model_arg(mp_obj_t obj) {
    if (!mp_obj_is_type(obj, &emlearn_neighbors_type)) {
        mp_raise_TypeError(MP_ERROR_TEXT("expected a model from emlearn_neighbors.new()"));
    }
    emlearn_neighbors_obj_t *self = MP_OBJ_TO_PTR(obj);
    if (self->model.data == NULL) {
        mp_raise_ValueError(MP_ERROR_TEXT("the model was freed by __del__()"));
    }
    return self;
}

static void raise_bad_model(const neighbors_error_t *err) {
    mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("bad k-NN model: %s"), err->message);
}

static mp_obj_t emlearn_neighbors_load_model(mp_obj_t self_in, mp_obj_t source) {
    emlearn_neighbors_obj_t *self = model_arg(self_in);
    mp_buffer_info_t bufinfo;
    modelfile_source_buffer(&source, &bufinfo, false);   // binary models only
    neighbors_error_t err;
    if (neighbors_load(&self->model, bufinfo.buf, bufinfo.len, &err) != NEIGHBORS_OK) {
        raise_bad_model(&err);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(emlearn_neighbors_load_model_obj, emlearn_neighbors_load_model);

static mp_obj_t emlearn_neighbors_load(size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    enum { ARG_source, ARG_max_items };
    static const mp_arg_t allowed_args[] = {
        { MP_QSTR_source, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_max_items, MP_ARG_INT, {.u_int = 0} },
    };
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed_args)];
    mp_arg_parse_all(n_args, pos_args, kw_args, MP_ARRAY_SIZE(allowed_args), allowed_args, args);
    mp_int_t max_items = args[ARG_max_items].u_int;
    if (max_items < 0 || max_items > (mp_int_t)NEIGHBORS_MAX_ITEMS) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("max_items must be 0..%d, got %d"),
            (int)NEIGHBORS_MAX_ITEMS, (int)max_items);
    }
    mp_obj_t source = args[ARG_source].u_obj;
    mp_buffer_info_t bufinfo;
    modelfile_source_buffer(&source, &bufinfo, false);   // binary models only
    neighbors_file_info_t info;
    neighbors_error_t err;
    if (neighbors_check_file(bufinfo.buf, bufinfo.len, &info, &err) != NEIGHBORS_OK) {
        raise_bad_model(&err);
    }
    mp_int_t capacity = max_items;
    if ((mp_int_t)info.n_items > capacity) {
        capacity = info.n_items;
    }
    if ((mp_int_t)info.k > capacity) {
        capacity = info.k;
    }
    emlearn_neighbors_obj_t *self = make_model(capacity, info.n_features, info.k);
    if (neighbors_load(&self->model, bufinfo.buf, bufinfo.len, &err) != NEIGHBORS_OK) {
        raise_bad_model(&err);
    }
    return MP_OBJ_FROM_PTR(self);
}
static MP_DEFINE_CONST_FUN_OBJ_KW(emlearn_neighbors_load_obj, 1, emlearn_neighbors_load);

// The int16 features of x: x itself (array('h')) or x quantised into self->qbuf (array('f')).
static const int16_t *features_of(emlearn_neighbors_obj_t *self, mp_obj_t x_in) {
    const neighbors_model_t *m = &self->model;
    mp_buffer_info_t bufinfo;
    if (!mp_get_buffer(x_in, &bufinfo, MP_BUFFER_READ)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("x must be array('h') or array('f'), not %s"),
            mp_obj_get_type_str(x_in));
    }
    size_t item_size;
    if (bufinfo.typecode == 'h') {
        item_size = sizeof(int16_t);
    } else if (bufinfo.typecode == 'f') {
        item_size = sizeof(float);
    } else {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("x must be array('h') or array('f'), got typecode '%c'"),
            bufinfo.typecode == 1 ? 'B' : (int)bufinfo.typecode);
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
    neighbors_quantize(m, x, self->qbuf);
    return self->qbuf;
}

static mp_obj_t emlearn_neighbors_additem(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t label_in) {
    emlearn_neighbors_obj_t *self = model_arg(self_in);
    neighbors_model_t *m = &self->model;
    const mp_int_t label = mp_obj_get_int(label_in);
    if (label < INT16_MIN || label > INT16_MAX) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("label %d is outside int16"), (int)label);
    }
    const int16_t *x = features_of(self, x_in);
    if (m->n_items >= m->max_items) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("the model is full: max_items=%d"), (int)m->max_items);
    }
    const uint32_t index = m->n_items;
    neighbors_add(m, x, (int16_t)label);
    return MP_OBJ_NEW_SMALL_INT(index);
}
static MP_DEFINE_CONST_FUN_OBJ_3(emlearn_neighbors_additem_obj, emlearn_neighbors_additem);

static mp_obj_t emlearn_neighbors_getitem(mp_obj_t self_in, mp_obj_t index_in, mp_obj_t out_in) {
    emlearn_neighbors_obj_t *self = model_arg(self_in);
    const neighbors_model_t *m = &self->model;
    const mp_int_t index = mp_obj_get_int(index_in);
    if (index < 0 || index >= (mp_int_t)m->n_items) {
        mp_raise_msg_varg(&mp_type_IndexError, MP_ERROR_TEXT("item %d is out of range (%d items)"), (int)index,
            (int)m->n_items);
    }
    mp_buffer_info_t outinfo;
    mp_get_buffer_raise(out_in, &outinfo, MP_BUFFER_WRITE);
    const int16_t *item = m->data + (size_t)index * m->n_features;
    if (outinfo.typecode == 'h' && outinfo.len == m->n_features * sizeof(int16_t)) {
        memcpy(outinfo.buf, item, m->n_features * sizeof(int16_t));
    } else if (outinfo.typecode == 'f' && outinfo.len == m->n_features * sizeof(float)) {
        float *out = outinfo.buf;
        for (uint32_t f = 0; f < m->n_features; f++) {
            out[f] = (float)item[f] / m->scale[f] + m->offset[f];
        }
    } else {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("out must be array('h') or array('f') of %d values"),
            (int)m->n_features);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(emlearn_neighbors_getitem_obj, emlearn_neighbors_getitem);

static mp_obj_t emlearn_neighbors_predict(mp_obj_t self_in, mp_obj_t x_in) {
    emlearn_neighbors_obj_t *self = model_arg(self_in);
    neighbors_model_t *m = &self->model;
    const int16_t *x = features_of(self, x_in);
    if (m->n_items < m->k) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("the model has %d items, k=%d needs at least %d"),
            (int)m->n_items, (int)m->k, (int)m->k);
    }
    return MP_OBJ_NEW_SMALL_INT(neighbors_predict(m, x));
}
static MP_DEFINE_CONST_FUN_OBJ_2(emlearn_neighbors_predict_obj, emlearn_neighbors_predict);

static mp_obj_t emlearn_neighbors_getresult(mp_obj_t self_in, mp_obj_t index_in) {
    emlearn_neighbors_obj_t *self = model_arg(self_in);
    neighbors_model_t *m = &self->model;
    const mp_int_t i = mp_obj_get_int(index_in);
    if (m->n_ranked == 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("no results: call predict() first (additem/load_model clear them)"));
    }
    if (i < 0 || i >= (mp_int_t)m->n_ranked) {
        mp_raise_msg_varg(&mp_type_IndexError, MP_ERROR_TEXT("result %d is out of range (%d items ranked)"), (int)i,
            (int)m->n_ranked);
    }
    const uint64_t key = neighbors_result(m, (uint32_t)i);
    const uint32_t index = (uint32_t)(key & NEIGHBORS_MAX_ITEMS);
    mp_obj_t items[3] = {
        MP_OBJ_NEW_SMALL_INT(index),
        mp_obj_new_int_from_uint(neighbors_isqrt(key >> NEIGHBORS_INDEX_BITS)),
        MP_OBJ_NEW_SMALL_INT(m->labels[index]),
    };
    return mp_obj_new_tuple(3, items);
}
static MP_DEFINE_CONST_FUN_OBJ_2(emlearn_neighbors_getresult_obj, emlearn_neighbors_getresult);

static mp_obj_t emlearn_neighbors_quantize(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    emlearn_neighbors_obj_t *self = model_arg(self_in);
    const neighbors_model_t *m = &self->model;
    mp_buffer_info_t xinfo, outinfo;
    mp_get_buffer_raise(x_in, &xinfo, MP_BUFFER_READ);
    if (xinfo.typecode != 'f') {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("x must be array('f'), got typecode '%c'"),
            xinfo.typecode == 1 ? 'B' : (int)xinfo.typecode);
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
static MP_DEFINE_CONST_FUN_OBJ_3(emlearn_neighbors_quantize_obj, emlearn_neighbors_quantize);

static mp_obj_t emlearn_neighbors_save(mp_obj_t self_in) {
    const neighbors_model_t *m = &model_arg(self_in)->model;
    const size_t len = neighbors_saved_size(m);
    vstr_t vstr;
    vstr_init_len(&vstr, len);
    neighbors_save(m, (uint8_t *)vstr.buf);
    return mp_obj_new_bytes_from_vstr(&vstr);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_neighbors_save_obj, emlearn_neighbors_save);

static mp_obj_t emlearn_neighbors_items(mp_obj_t self_in) {
    return MP_OBJ_NEW_SMALL_INT(model_arg(self_in)->model.n_items);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_neighbors_items_obj, emlearn_neighbors_items);

static mp_obj_t emlearn_neighbors_features(mp_obj_t self_in) {
    return MP_OBJ_NEW_SMALL_INT(model_arg(self_in)->model.n_features);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_neighbors_features_obj, emlearn_neighbors_features);

static mp_obj_t emlearn_neighbors_k(mp_obj_t self_in) {
    return MP_OBJ_NEW_SMALL_INT(model_arg(self_in)->model.k);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_neighbors_k_obj, emlearn_neighbors_k);

static mp_obj_t emlearn_neighbors_del(mp_obj_t self_in) {
    if (!mp_obj_is_type(self_in, &emlearn_neighbors_type)) {
        mp_raise_TypeError(MP_ERROR_TEXT("expected a model from emlearn_neighbors.new()"));
    }
    emlearn_neighbors_obj_t *self = MP_OBJ_TO_PTR(self_in);
    neighbors_model_t *m = &self->model;
    if (m->data != NULL) {
        m_del(int16_t, m->data, (size_t)m->max_items * m->n_features);
        m_del(int16_t, m->labels, m->max_items);
        m_del(uint64_t, m->ranked, m->max_items);
        m_del(int16_t, m->vote_labels, m->max_items);
        m_del(float, m->offset, m->n_features);
        m_del(float, m->scale, m->n_features);
        m_del(int16_t, self->qbuf, m->n_features);
        memset(m, 0, sizeof(*m));
        self->qbuf = NULL;
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlearn_neighbors_del_obj, emlearn_neighbors_del);

static const mp_rom_map_elem_t emlearn_neighbors_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR_predict), MP_ROM_PTR(&emlearn_neighbors_predict_obj) },
    { MP_ROM_QSTR(MP_QSTR_additem), MP_ROM_PTR(&emlearn_neighbors_additem_obj) },
    { MP_ROM_QSTR(MP_QSTR_getitem), MP_ROM_PTR(&emlearn_neighbors_getitem_obj) },
    { MP_ROM_QSTR(MP_QSTR_getresult), MP_ROM_PTR(&emlearn_neighbors_getresult_obj) },
    { MP_ROM_QSTR(MP_QSTR_quantize), MP_ROM_PTR(&emlearn_neighbors_quantize_obj) },
    { MP_ROM_QSTR(MP_QSTR_load_model), MP_ROM_PTR(&emlearn_neighbors_load_model_obj) },
    { MP_ROM_QSTR(MP_QSTR_save), MP_ROM_PTR(&emlearn_neighbors_save_obj) },
    { MP_ROM_QSTR(MP_QSTR_items), MP_ROM_PTR(&emlearn_neighbors_items_obj) },
    { MP_ROM_QSTR(MP_QSTR_features), MP_ROM_PTR(&emlearn_neighbors_features_obj) },
    { MP_ROM_QSTR(MP_QSTR_k), MP_ROM_PTR(&emlearn_neighbors_k_obj) },
    { MP_ROM_QSTR(MP_QSTR___del__), MP_ROM_PTR(&emlearn_neighbors_del_obj) },
};
static MP_DEFINE_CONST_DICT(emlearn_neighbors_locals, emlearn_neighbors_locals_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    emlearn_neighbors_type,
    MP_QSTR_Model,
    MP_TYPE_FLAG_NONE,
    locals_dict, &emlearn_neighbors_locals
    );

static const mp_rom_map_elem_t emlearn_neighbors_module_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_emlearn_neighbors) },
    { MP_ROM_QSTR(MP_QSTR_new), MP_ROM_PTR(&emlearn_neighbors_new_obj) },
    { MP_ROM_QSTR(MP_QSTR_load), MP_ROM_PTR(&emlearn_neighbors_load_obj) },
    { MP_ROM_QSTR(MP_QSTR_load_model), MP_ROM_PTR(&emlearn_neighbors_load_model_obj) },
    { MP_ROM_QSTR(MP_QSTR_Model), MP_ROM_PTR(&emlearn_neighbors_type) },
};
static MP_DEFINE_CONST_DICT(emlearn_neighbors_module_globals, emlearn_neighbors_module_table);

const mp_obj_module_t emlearn_neighbors_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&emlearn_neighbors_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_emlearn_neighbors, emlearn_neighbors_module);
