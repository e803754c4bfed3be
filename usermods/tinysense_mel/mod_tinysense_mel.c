// tinysense_mel: mel spectrogram and MFCC of audio frames, filterbank precomputed once.
// Requires the emlearn_fft module: its pure C fft_core (compiled there, once for the image) computes the FFT, so
// the firmware carries one FFT implementation (one copy in flash, tested against numpy.fft in tests/test_fft.py).
//
//   tinysense_mel.Mel(n_fft, samplerate, n_mels, *, fmin=0, fmax=None, scale='htk', norm=None, power=2.0,
//                     log=None)
//       n_fft: frame length, a power of two in 4..65536. samplerate: Hz, finite and > 0. n_mels: 1..1024.
//       fmin, fmax: band edges in Hz, 0 <= fmin < fmax <= samplerate / 2 (fmax None: samplerate / 2).
//       scale: 'htk' (2595 log10(1 + f/700)) or 'slaney' (linear below 1 kHz, log above; librosa's default).
//       norm: None (peak 1 per triangle) or 'slaney' (equal area: 2 / band width in Hz; librosa's default).
//       power: 2.0 (power spectrum) or 1.0 (magnitude). log: None, 'db' (10 log10(max(E, 1e-10)) for
//       power 2, 20 log10(max(E, 1e-5)) for power 1: librosa power_to_db / amplitude_to_db with ref=1.0 and
//       top_db=None) or 'ln' (natural log of the same clipped E).
//       The periodic Hann window (scipy hann(n_fft, sym=False), as librosa.stft), the FFT tables and the
//       sparse triangular filterbank (as librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk, norm)) are
//       computed here, once.
//   Mel.run(frame, out)   frame: array('f') of n_fft samples, or array('h') of n_fft int16 samples read
//                         as x / 32768 (full scale 1.0); out: array('f') of n_mels, receives the (log) mel
//                         energies of the windowed frame (no centering or padding: one librosa STFT column
//                         of center=False). Allocates nothing.
//   Mel.filterbank(out)   writes the dense filterbank into out, an array('f') of n_mels * (n_fft // 2 + 1)
//                         weights, row-major (for inspection and tests; run() uses the sparse form).
//   tinysense_mel.MFCC(n_fft, samplerate, n_mels, n_mfcc=13, *, ...same keywords..., log='db')
//       log must be 'db' (librosa.feature.mfcc on power_to_db, top_db=None) or 'ln'. 1 <= n_mfcc <= n_mels.
//   MFCC.run(frame, out)  out: array('f') of n_mfcc, the DCT-II (orthonormal, as scipy.fft.dct(type=2,
//                         norm='ortho')) of the log mel energies. Allocates nothing.
//   MFCC.mel(frame, out)  out: array('f') of n_mels, the log mel energies (as Mel.run with the same settings).
//   MFCC.filterbank(out)  as Mel.filterbank(out).
// Errors: wrong typecodes and lengths raise ValueError naming them; non-arrays TypeError; NaN or inf
// samples ValueError naming the first bad index (checked before anything is computed). Finite float samples
// so large that the power spectrum overflows float32 (|x| > ~1e17) give inf or NaN outputs.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "py/binary.h"
#include "py/obj.h"
#include "py/runtime.h"

#include "mel_core.h"

typedef struct _mel_obj_t {
    mp_obj_base_t base;
    mel_t mel;
    float data[];
} mel_obj_t;

static const mp_obj_type_t mel_type;
static const mp_obj_type_t mfcc_type;

static size_t checked_int(mp_obj_t obj, const char *name, mp_int_t lo, mp_int_t hi) {
    const mp_int_t v = mp_obj_get_int(obj);
    if (v < lo || v > hi) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s must be in %d..%d, got %d"), name, (int)lo, (int)hi,
            (int)v);
    }
    return (size_t)v;
}

// The index of `obj` in `choices` (n entries): a str equal to a non-NULL entry, or None when none_ok
// (index 0, whose entry is NULL). ValueError naming the argument and what it allows otherwise.
static int checked_choice(mp_obj_t obj, const char *name, const char *const *choices, int n, bool none_ok,
    const char *allowed) {
    if (obj == mp_const_none && none_ok) {
        return 0;
    }
    if (mp_obj_is_str(obj)) {
        const char *s = mp_obj_str_get_str(obj);
        for (int i = 0; i < n; i++) {
            if (choices[i] != NULL && strcmp(choices[i], s) == 0) {
                return i;
            }
        }
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s must be %s, got '%s'"), name, allowed, s);
    }
    mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s must be %s, not %s"), name, allowed,
        mp_obj_get_type_str(obj));
}

static mp_obj_t mel_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *all_args) {
    const bool is_mfcc = type == &mfcc_type;
    enum { ARG_n_fft, ARG_samplerate, ARG_n_mels, ARG_n_mfcc, ARG_fmin, ARG_fmax, ARG_scale, ARG_norm, ARG_power,
           ARG_log };
    static const mp_arg_t allowed_args[] = {
        { MP_QSTR_n_fft, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_samplerate, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_n_mels, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_n_mfcc, MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_fmin, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_fmax, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = mp_const_none} },
        { MP_QSTR_scale, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = MP_OBJ_NEW_QSTR(MP_QSTR_htk)} },
        { MP_QSTR_norm, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = mp_const_none} },
        { MP_QSTR_power, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_log, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
    };
    // Mel takes no n_mfcc: parse its arguments with that entry left out.
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed_args)];
    mp_map_t kw_args;
    mp_map_init_fixed_table(&kw_args, n_kw, all_args + n_args);
    if (is_mfcc) {
        mp_arg_parse_all(n_args, all_args, &kw_args, MP_ARRAY_SIZE(allowed_args), allowed_args, args);
    } else {
        mp_arg_t mel_args[MP_ARRAY_SIZE(allowed_args) - 1];
        mp_arg_val_t parsed[MP_ARRAY_SIZE(allowed_args) - 1];
        for (size_t i = 0, j = 0; i < MP_ARRAY_SIZE(allowed_args); i++) {
            if (i != ARG_n_mfcc) {
                mel_args[j++] = allowed_args[i];
            }
        }
        mp_arg_parse_all(n_args, all_args, &kw_args, MP_ARRAY_SIZE(mel_args), mel_args, parsed);
        for (size_t i = 0, j = 0; i < MP_ARRAY_SIZE(allowed_args); i++) {
            args[i] = i == ARG_n_mfcc ? (mp_arg_val_t) {.u_obj = MP_OBJ_NULL} : parsed[j++];
        }
    }

    mel_config_t c;
    c.n_fft = checked_int(args[ARG_n_fft].u_obj, "n_fft", MEL_MIN_NFFT, MEL_MAX_NFFT);
    if ((c.n_fft & (c.n_fft - 1)) != 0) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("n_fft must be a power of two, got %d"), (int)c.n_fft);
    }
    const mp_float_t samplerate = mp_obj_get_float(args[ARG_samplerate].u_obj);
    if (!(isfinite(samplerate) && samplerate > 0)) {
        mp_raise_msg(&mp_type_ValueError, MP_ERROR_TEXT("samplerate must be a finite number of Hz > 0"));
    }
    c.samplerate = (double)samplerate;
    c.n_mels = checked_int(args[ARG_n_mels].u_obj, "n_mels", 1, MEL_MAX_BANDS);
    c.n_mfcc = 0;
    if (is_mfcc) {
        c.n_mfcc = args[ARG_n_mfcc].u_obj == MP_OBJ_NULL ? 13
            : checked_int(args[ARG_n_mfcc].u_obj, "n_mfcc", 1, MEL_MAX_BANDS);
        if (c.n_mfcc > c.n_mels) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("n_mfcc (%d) must not exceed n_mels (%d)"),
                (int)c.n_mfcc, (int)c.n_mels);
        }
    }
    const mp_float_t nyquist = samplerate / 2;
    const mp_float_t fmin = args[ARG_fmin].u_obj == MP_OBJ_NULL ? 0 : mp_obj_get_float(args[ARG_fmin].u_obj);
    const mp_float_t fmax = args[ARG_fmax].u_obj == mp_const_none ? nyquist : mp_obj_get_float(args[ARG_fmax].u_obj);
    if (!(isfinite(fmin) && isfinite(fmax) && fmin >= 0 && fmin < fmax && fmax <= nyquist)) {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("need 0 <= fmin < fmax <= samplerate/2 (%g Hz), got fmin=%g fmax=%g"),
            (double)nyquist, (double)fmin, (double)fmax);
    }
    c.fmin = (double)fmin;
    c.fmax = (double)fmax;

    static const char *const scales[] = { "htk", "slaney" };
    c.scale = (mel_scale_t)checked_choice(args[ARG_scale].u_obj, "scale", scales, 2, false, "'htk' or 'slaney'");
    static const char *const norms[] = { NULL, "slaney" };
    c.norm = (mel_norm_t)checked_choice(args[ARG_norm].u_obj, "norm", norms, 2, true, "None or 'slaney'");

    const mp_float_t power = args[ARG_power].u_obj == MP_OBJ_NULL ? 2 : mp_obj_get_float(args[ARG_power].u_obj);
    if (power != 1 && power != 2) {
        mp_raise_msg(&mp_type_ValueError, MP_ERROR_TEXT("power must be 1.0 (magnitude) or 2.0 (power)"));
    }
    c.power = power == 1 ? 1 : 2;

    static const char *const logs[] = { NULL, "db", "ln" };
    if (is_mfcc) {
        mp_obj_t log_obj = args[ARG_log].u_obj == MP_OBJ_NULL ? MP_OBJ_NEW_QSTR(MP_QSTR_db) : args[ARG_log].u_obj;
        c.log = (mel_log_t)checked_choice(log_obj, "log", logs, 3, false, "'db' or 'ln' for MFCC");
    } else {
        mp_obj_t log_obj = args[ARG_log].u_obj == MP_OBJ_NULL ? mp_const_none : args[ARG_log].u_obj;
        c.log = (mel_log_t)checked_choice(log_obj, "log", logs, 3, true, "None, 'db' or 'ln'");
    }

    const size_t n_weights = mel_weight_count(&c);
    mel_obj_t *self = mp_obj_malloc_var(mel_obj_t, data, float, mel_layout_floats(&c, n_weights), type);
    mel_init(&self->mel, &c, self->data, n_weights);
    return MP_OBJ_FROM_PTR(self);
}

static const char *typecode_str(char typecode, char *buf) {
    buf[0] = typecode == BYTEARRAY_TYPECODE ? 'B' : typecode;
    buf[1] = '\0';
    return buf;
}

// The frame: exactly one of *x_f32 / *x_i16 set; NaN/inf raise.
static void get_frame(const mel_t *m, mp_obj_t obj, const float **x_f32, const int16_t **x_i16) {
    mp_buffer_info_t x;
    if (!mp_get_buffer(obj, &x, MP_BUFFER_READ)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("frame must be array('f') or array('h'), not %s"),
            mp_obj_get_type_str(obj));
    }
    char tc[2];
    size_t length;
    if (x.typecode == 'f') {
        length = x.len / sizeof(float);
    } else if (x.typecode == 'h') {
        length = x.len / sizeof(int16_t);
    } else {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("frame must be array('f') or array('h'), got typecode '%s'"),
            typecode_str((char)x.typecode, tc));
    }
    if (length != m->n_fft) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("frame has length %u, expected n_fft = %u"),
            (unsigned)length, (unsigned)m->n_fft);
    }
    *x_f32 = NULL;
    *x_i16 = NULL;
    if (x.typecode == 'f') {
        const size_t bad = mel_first_non_finite(x.buf, length);
        if (bad < length) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("frame holds a non-finite sample (NaN or inf) at index %u"),
                (unsigned)bad);
        }
        *x_f32 = x.buf;
    } else {
        *x_i16 = x.buf;
    }
}

static float *get_out(mp_obj_t obj, size_t expected, const char *what) {
    mp_buffer_info_t out;
    if (!mp_get_buffer(obj, &out, MP_BUFFER_WRITE)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("out must be a writable array('f'), not %s"),
            mp_obj_get_type_str(obj));
    }
    char tc[2];
    if (out.typecode != 'f') {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("out must be array('f'), got typecode '%s'"),
            typecode_str((char)out.typecode, tc));
    }
    if (out.len / sizeof(float) != expected) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("out has length %u, expected %s = %u"),
            (unsigned)(out.len / sizeof(float)), what, (unsigned)expected);
    }
    return out.buf;
}

static mp_obj_t mel_run_fn(mp_obj_t self_in, mp_obj_t frame_in, mp_obj_t out_in) {
    mel_obj_t *self = MP_OBJ_TO_PTR(self_in);
    const float *x_f32;
    const int16_t *x_i16;
    get_frame(&self->mel, frame_in, &x_f32, &x_i16);
    float *out = get_out(out_in, self->mel.n_mels, "n_mels");
    mel_run(&self->mel, x_f32, x_i16, out);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(mel_run_obj, mel_run_fn);

static mp_obj_t mfcc_run_fn(mp_obj_t self_in, mp_obj_t frame_in, mp_obj_t out_in) {
    mel_obj_t *self = MP_OBJ_TO_PTR(self_in);
    const float *x_f32;
    const int16_t *x_i16;
    get_frame(&self->mel, frame_in, &x_f32, &x_i16);
    float *out = get_out(out_in, self->mel.n_mfcc, "n_mfcc");
    mel_mfcc(&self->mel, x_f32, x_i16, out);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(mfcc_run_obj, mfcc_run_fn);

static mp_obj_t mel_filterbank_fn(mp_obj_t self_in, mp_obj_t out_in) {
    mel_obj_t *self = MP_OBJ_TO_PTR(self_in);
    const mel_t *m = &self->mel;
    float *dense = get_out(out_in, m->n_mels * m->n_bins, "n_mels * (n_fft // 2 + 1)");
    for (size_t i = 0; i < m->n_mels; i++) {
        for (size_t j = 0; j < m->n_bins; j++) {
            dense[i * m->n_bins + j] = mel_weight(m, i, j);
        }
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(mel_filterbank_obj, mel_filterbank_fn);

static const mp_rom_map_elem_t mel_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_run), MP_ROM_PTR(&mel_run_obj) },
    { MP_ROM_QSTR(MP_QSTR_filterbank), MP_ROM_PTR(&mel_filterbank_obj) },
};
static MP_DEFINE_CONST_DICT(mel_locals_dict, mel_locals_dict_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    mel_type,
    MP_QSTR_Mel,
    MP_TYPE_FLAG_NONE,
    make_new, mel_make_new,
    locals_dict, &mel_locals_dict
    );

static const mp_rom_map_elem_t mfcc_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_run), MP_ROM_PTR(&mfcc_run_obj) },
    { MP_ROM_QSTR(MP_QSTR_mel), MP_ROM_PTR(&mel_run_obj) },
    { MP_ROM_QSTR(MP_QSTR_filterbank), MP_ROM_PTR(&mel_filterbank_obj) },
};
static MP_DEFINE_CONST_DICT(mfcc_locals_dict, mfcc_locals_dict_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    mfcc_type,
    MP_QSTR_MFCC,
    MP_TYPE_FLAG_NONE,
    make_new, mel_make_new,
    locals_dict, &mfcc_locals_dict
    );

static const mp_rom_map_elem_t tinysense_mel_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_tinysense_mel) },
    { MP_ROM_QSTR(MP_QSTR_Mel), MP_ROM_PTR(&mel_type) },
    { MP_ROM_QSTR(MP_QSTR_MFCC), MP_ROM_PTR(&mfcc_type) },
};
static MP_DEFINE_CONST_DICT(tinysense_mel_module_globals, tinysense_mel_module_globals_table);

const mp_obj_module_t tinysense_mel_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&tinysense_mel_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_tinysense_mel, tinysense_mel_module);
