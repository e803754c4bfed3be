// Model sources for the bindings: see modelsource.h.
#include "modelsource.h"

#include "py/runtime.h"

void modelfile_source_buffer(mp_obj_t *source, mp_buffer_info_t *bufinfo, bool text) {
    if (mp_get_buffer(*source, bufinfo, MP_BUFFER_READ)) {
        return;
    }
    mp_obj_t dest[2];
    mp_load_method_maybe(*source, MP_QSTR_read, dest);
    if (dest[0] == MP_OBJ_NULL) {
        if (text) {
            mp_raise_TypeError(MP_ERROR_TEXT("a model source must be a file, bytes or str"));
        }
        mp_raise_TypeError(MP_ERROR_TEXT("a model source must be a file opened 'rb' or bytes"));
    }
    *source = mp_call_method_n_kw(0, 0, dest);
    if (!mp_get_buffer(*source, bufinfo, MP_BUFFER_READ) || (!text && mp_obj_is_str(*source))) {
        if (text) {
            mp_raise_TypeError(MP_ERROR_TEXT("the model file's read() returned neither bytes nor str"));
        }
        mp_raise_TypeError(MP_ERROR_TEXT("a model file must be opened in binary mode ('rb')"));
    }
}
