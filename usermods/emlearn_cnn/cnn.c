// CNN core: model file validation and int8 / float32 inference. See cnn.h for the format and arithmetic.
//
// Uses tinysense_modelfile (CRC-32, little-endian readers, error messages; its modelfile.c is compiled there,
// once for the whole image).
#include "cnn.h"

#include "../tinysense_modelfile/modelfile.h"

#include <math.h>
#include <string.h>

#define fail MODELFILE_FAIL
#define rd_u16 modelfile_rd_u16
#define rd_u32 modelfile_rd_u32
#define rd_f32 modelfile_rd_f32

static char printable(uint8_t c) {
    return (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
}

static const char *const layer_names[CNN_N_LAYER_TYPES] = {
    "?", "conv2d", "depthwise", "maxpool", "avgpool", "global_avgpool", "dense", "flatten", "softmax"
};

static uint32_t align4(uint32_t n) {
    return (n + 3u) & ~3u;
}

static uint32_t tensor_bytes(const cnn_info_t *info, uint32_t values) {
    const uint32_t size = values * (info->dtype == CNN_DTYPE_INT8 ? 1u : 4u);
    return (size + CNN_ALIGN - 1u) & ~(uint32_t)(CNN_ALIGN - 1u);
}

uint32_t cnn_arena_required(const cnn_info_t *info) {
    uint32_t biggest = tensor_bytes(info, info->n_inputs);
    for (int i = 0; i < info->n_layers; i++) {
        const cnn_layer_t *l = &info->layers[i];
        const uint32_t size = tensor_bytes(info, (uint32_t)l->out_h * l->out_w * l->out_c);
        biggest = size > biggest ? size : biggest;
    }
    return 2u * biggest;
}

// The parameter bytes a layer needs, and how many weights/channels (for the checks after).
static uint32_t params_needed(const cnn_info_t *info, const cnn_layer_t *l, uint32_t *n_weights, uint32_t *n_ch) {
    *n_weights = 0;
    *n_ch = 0;
    switch (l->type) {
        case CNN_LAYER_CONV2D:
            *n_weights = (uint32_t)l->out_c * l->kh * l->kw * l->in_c;
            *n_ch = l->out_c;
            break;
        case CNN_LAYER_DEPTHWISE:
            *n_weights = (uint32_t)l->kh * l->kw * l->out_c;
            *n_ch = l->out_c;
            break;
        case CNN_LAYER_DENSE:
            *n_weights = (uint32_t)l->out_c * l->in_h * l->in_w * l->in_c;
            *n_ch = l->out_c;
            break;
        default:
            return 0;
    }
    if (info->dtype == CNN_DTYPE_FLOAT32) {
        return 4u * (*n_weights + *n_ch);
    }
    return align4(*n_weights) + 12u * *n_ch;
}

// Window geometry shared by convolutions and pools: out == (in + pad + pad_end - k) / stride + 1 for some end
// padding 0 <= pad_end < k, with pad < k: every window overlaps the input and no input row/column is left after
// the last window that one more stride would have reached.
static int window_ok(uint32_t in, uint32_t out, uint32_t k, uint32_t stride, uint32_t pad) {
    if (k < 1 || stride < 1 || out < 1 || pad >= k) {
        return 0;
    }
    const uint32_t last = (out - 1u) * stride;   // the last window starts at last - pad
    return last <= in - 1u + pad && in + pad < last + stride + k;
}

static cnn_status_t check_layer(const uint8_t *data, size_t len, cnn_info_t *info, int i, cnn_error_t *err) {
    cnn_layer_t *l = &info->layers[i];
    const uint8_t *p = data + CNN_HEADER_SIZE + (size_t)i * CNN_LAYER_SIZE;
    const cnn_layer_t *prev = i > 0 ? &info->layers[i - 1] : NULL;
    l->type = p[0];
    l->act = p[1];
    l->kh = p[2];
    l->kw = p[3];
    l->sh = p[4];
    l->sw = p[5];
    l->pad_t = p[6];
    l->pad_l = p[7];
    l->out_h = rd_u16(p + 8);
    l->out_w = rd_u16(p + 10);
    l->out_c = rd_u16(p + 12);
    l->params_offset = rd_u32(p + 16);
    l->params_size = rd_u32(p + 20);
    l->in_zp = (int8_t)p[24];
    l->out_zp = (int8_t)p[25];
    l->act_min = (int8_t)p[26];
    l->act_max = (int8_t)p[27];
    l->in_h = prev ? prev->out_h : info->in_h;
    l->in_w = prev ? prev->out_w : info->in_w;
    l->in_c = prev ? prev->out_c : info->in_c;
    l->swap = 1;
    if (l->type == 0 || l->type >= CNN_N_LAYER_TYPES) {
        return fail(err, CNN_ERR_FORMAT, "layer %d: unknown type %d", i, l->type);
    }
    const char *name = layer_names[l->type];
    if (rd_u16(p + 14) != 0 || rd_u32(p + 28) != 0) {
        return fail(err, CNN_ERR_FORMAT, "layer %d (%s): reserved fields are not zero", i, name);
    }
    if (l->act > CNN_ACT_RELU6) {
        return fail(err, CNN_ERR_FORMAT, "layer %d (%s): unknown activation %d", i, name, l->act);
    }
    if (l->out_h == 0 || l->out_w == 0 || l->out_c == 0 || l->out_h > CNN_MAX_DIM || l->out_w > CNN_MAX_DIM ||
        l->out_c > CNN_MAX_DIM || (uint32_t)l->out_h * l->out_w * l->out_c > CNN_MAX_TENSOR) {
        return fail(err, CNN_ERR_FORMAT, "layer %d (%s): output %dx%dx%d out of range", i, name, l->out_h, l->out_w,
            l->out_c);
    }
    const uint32_t n_in = (uint32_t)l->in_h * l->in_w * l->in_c;
    const uint32_t n_out = (uint32_t)l->out_h * l->out_w * l->out_c;
    const int windowed = l->type == CNN_LAYER_CONV2D || l->type == CNN_LAYER_DEPTHWISE ||
                         l->type == CNN_LAYER_MAXPOOL || l->type == CNN_LAYER_AVGPOOL;
    if (windowed) {
        if ((l->type == CNN_LAYER_CONV2D || l->type == CNN_LAYER_DEPTHWISE) &&
            (l->kh > CNN_MAX_KERNEL || l->kw > CNN_MAX_KERNEL)) {
            return fail(err, CNN_ERR_FORMAT, "layer %d (%s): kernel %dx%d is larger than %dx%d", i, name, l->kh,
                l->kw, CNN_MAX_KERNEL, CNN_MAX_KERNEL);
        }
        if (!window_ok(l->in_h, l->out_h, l->kh, l->sh, l->pad_t) ||
            !window_ok(l->in_w, l->out_w, l->kw, l->sw, l->pad_l)) {
            return fail(err, CNN_ERR_FORMAT,
                "layer %d (%s): kernel %dx%d stride %dx%d padding %d,%d cannot map %dx%d to %dx%d", i, name, l->kh,
                l->kw, l->sh, l->sw, l->pad_t, l->pad_l, l->in_h, l->in_w, l->out_h, l->out_w);
        }
        if (l->type != CNN_LAYER_CONV2D && l->out_c != l->in_c) {
            return fail(err, CNN_ERR_FORMAT, "layer %d (%s): %d output channels for %d input channels", i, name,
                l->out_c, l->in_c);
        }
    } else if (l->kh || l->kw || l->sh || l->sw || l->pad_t || l->pad_l) {
        return fail(err, CNN_ERR_FORMAT, "layer %d (%s): kernel/stride/padding fields must be 0", i, name);
    }
    switch (l->type) {
        case CNN_LAYER_GLOBAL_AVGPOOL:
            if (l->out_h != 1 || l->out_w != 1 || l->out_c != l->in_c) {
                return fail(err, CNN_ERR_FORMAT, "layer %d (%s): output must be 1x1x%d", i, name, l->in_c);
            }
            break;
        case CNN_LAYER_DENSE:
            if (l->out_h != 1 || l->out_w != 1 || n_in > CNN_MAX_DENSE_IN) {
                return fail(err, CNN_ERR_FORMAT, "layer %d (%s): %d inputs to 1x1x%d outputs out of range", i, name,
                    (int)n_in, l->out_c);
            }
            break;
        case CNN_LAYER_FLATTEN:
        case CNN_LAYER_SOFTMAX:
            if ((l->type == CNN_LAYER_FLATTEN && (l->out_h != 1 || l->out_w != 1)) || n_out != n_in ||
                l->act != CNN_ACT_NONE) {
                return fail(err, CNN_ERR_FORMAT, "layer %d (%s): output must be 1x1x%d, no activation", i, name,
                    (int)n_in);
            }
            if (l->type == CNN_LAYER_SOFTMAX && i != info->n_layers - 1) {
                return fail(err, CNN_ERR_FORMAT, "layer %d: softmax must be the last layer", i);
            }
            l->swap = 0;
            break;
        default:
            break;
    }
    if (info->dtype == CNN_DTYPE_INT8) {
        if (l->act_min > l->act_max) {
            return fail(err, CNN_ERR_FORMAT, "layer %d (%s): activation range %d..%d is empty", i, name, l->act_min,
                l->act_max);
        }
        const int keeps_quant = !(l->type == CNN_LAYER_CONV2D || l->type == CNN_LAYER_DEPTHWISE ||
                                  l->type == CNN_LAYER_DENSE);
        if (keeps_quant && l->in_zp != l->out_zp) {
            return fail(err, CNN_ERR_FORMAT, "layer %d (%s): zero point changes (%d -> %d)", i, name, l->in_zp,
                l->out_zp);
        }
        if (prev && l->in_zp != prev->out_zp) {
            return fail(err, CNN_ERR_FORMAT, "layer %d (%s): input zero point %d, previous output's %d", i, name,
                l->in_zp, prev->out_zp);
        }
    } else if (p[24] || p[25] || p[26] || p[27]) {
        return fail(err, CNN_ERR_FORMAT, "layer %d (%s): quantisation fields in a float32 model", i, name);
    }
    uint32_t n_weights, n_ch;
    const uint32_t needed = params_needed(info, l, &n_weights, &n_ch);
    if (l->params_size != needed) {
        return fail(err, CNN_ERR_FORMAT, "layer %d (%s): %u parameter bytes, expected %u", i, name,
            (unsigned)l->params_size, (unsigned)needed);
    }
    if (needed == 0) {
        if (l->params_offset != 0) {
            return fail(err, CNN_ERR_FORMAT, "layer %d (%s): has no parameters but an offset", i, name);
        }
        return CNN_OK;
    }
    const size_t first = CNN_HEADER_SIZE + (size_t)info->n_layers * CNN_LAYER_SIZE;
    if (l->params_offset % CNN_ALIGN != 0 || l->params_offset < first || l->params_offset > len ||
        needed > len - l->params_offset) {
        return fail(err, CNN_ERR_FORMAT, "layer %d (%s): parameters at %u (+%u) outside the file (%u bytes)", i,
            name, (unsigned)l->params_offset, (unsigned)needed, (unsigned)len);
    }
    const uint8_t *params = data + l->params_offset;
    if (info->dtype == CNN_DTYPE_FLOAT32) {
        for (uint32_t k = 0; k < n_weights + n_ch; k++) {
            if (!isfinite(rd_f32(params + 4u * k))) {
                return fail(err, CNN_ERR_FORMAT, "layer %d (%s): parameter %u is not finite", i, name, (unsigned)k);
            }
        }
    } else {
        const uint8_t *mult = params + align4(n_weights) + 4u * n_ch;
        for (uint32_t c = 0; c < n_ch; c++) {
            const int32_t m = (int32_t)rd_u32(mult + 4u * c), s = (int32_t)rd_u32(mult + 4u * (n_ch + c));
            if (m < 0 || s < 1 || s > 62) {
                return fail(err, CNN_ERR_FORMAT, "layer %d (%s): channel %u requantisation M=%ld s=%ld out of range", i,
                    name, (unsigned)c, (long)m, (long)s);
            }
        }
    }
    return CNN_OK;
}

cnn_status_t cnn_check_file(const uint8_t *data, size_t len, cnn_info_t *info, cnn_error_t *err) {
    memset(info, 0, sizeof(*info));
    if (len < 4) {
        return fail(err, CNN_ERR_FORMAT, "not a cnn model (truncated magic: %d bytes)", (int)len);
    }
    if (memcmp(data, CNN_MAGIC, 4) != 0) {
        return fail(err, CNN_ERR_FORMAT, "not a cnn model (magic '%c%c%c%c', expected 'TSCN')", printable(data[0]),
            printable(data[1]), printable(data[2]), printable(data[3]));
    }
    if (len < CNN_HEADER_SIZE) {
        return fail(err, CNN_ERR_FORMAT, "truncated header: %d of %d bytes", (int)len, CNN_HEADER_SIZE);
    }
    if (data[4] != CNN_FORMAT_VERSION) {
        return fail(err, CNN_ERR_FORMAT, "format version %d is not supported (expected %d)", data[4],
            CNN_FORMAT_VERSION);
    }
    info->file_size = rd_u32(data + 12);
    if (info->file_size != len) {
        return fail(err, CNN_ERR_FORMAT, "file is %u bytes, the header says %u (truncated or padded?)", (unsigned)len,
            (unsigned)info->file_size);
    }
    const uint32_t crc = modelfile_crc32(modelfile_crc32(0, data, 8), data + 12, len - 12);
    if (crc != rd_u32(data + 8)) {
        return fail(err, CNN_ERR_FORMAT, "CRC32 mismatch (file corrupted): 0x%08lx, header says 0x%08lx",
            (unsigned long)crc, (unsigned long)rd_u32(data + 8));
    }
    info->dtype = data[5];
    info->n_layers = data[6];
    if (info->dtype != CNN_DTYPE_FLOAT32 && info->dtype != CNN_DTYPE_INT8) {
        return fail(err, CNN_ERR_FORMAT, "dtype %d is unknown (1 float32, 2 int8)", info->dtype);
    }
    if (data[7] != 0 || rd_u16(data + 26) != 0 || rd_u32(data + 44) != 0) {
        return fail(err, CNN_ERR_FORMAT, "flags/reserved header fields are not zero");
    }
    if (info->n_layers < 1 || info->n_layers > CNN_MAX_LAYERS) {
        return fail(err, CNN_ERR_FORMAT, "%d layers (1 to %d supported)", info->n_layers, CNN_MAX_LAYERS);
    }
    if ((size_t)CNN_HEADER_SIZE + (size_t)info->n_layers * CNN_LAYER_SIZE > len) {
        return fail(err, CNN_ERR_FORMAT, "truncated layer table: %d layers need %d bytes, file has %d",
            info->n_layers, CNN_HEADER_SIZE + info->n_layers * CNN_LAYER_SIZE, (int)len);
    }
    info->arena_size = rd_u32(data + 16);
    info->in_h = rd_u16(data + 20);
    info->in_w = rd_u16(data + 22);
    info->in_c = rd_u16(data + 24);
    info->in_scale = rd_f32(data + 28);
    info->in_offset = rd_f32(data + 32);
    info->out_scale = rd_f32(data + 36);
    info->out_zp = (int32_t)rd_u32(data + 40);
    if (info->in_h == 0 || info->in_w == 0 || info->in_c == 0 || info->in_h > CNN_MAX_DIM ||
        info->in_w > CNN_MAX_DIM || info->in_c > CNN_MAX_DIM ||
        (uint32_t)info->in_h * info->in_w * info->in_c > CNN_MAX_TENSOR) {
        return fail(err, CNN_ERR_FORMAT, "input %dx%dx%d out of range", info->in_h, info->in_w, info->in_c);
    }
    if (!isfinite(info->in_scale) || !isfinite(info->in_offset) || !isfinite(info->out_scale) ||
        !(info->out_scale > 0.0f) || info->out_zp < -128 || info->out_zp > 127) {
        return fail(err, CNN_ERR_FORMAT, "input/output scale or zero point out of range");
    }
    info->n_inputs = (uint32_t)info->in_h * info->in_w * info->in_c;
    for (int i = 0; i < info->n_layers; i++) {
        if (check_layer(data, len, info, i, err) != CNN_OK) {
            return CNN_ERR_FORMAT;
        }
    }
    const cnn_layer_t *last = &info->layers[info->n_layers - 1];
    info->out_h = last->out_h;
    info->out_w = last->out_w;
    info->out_c = last->out_c;
    info->n_outputs = (uint32_t)last->out_h * last->out_w * last->out_c;
    if (info->dtype == CNN_DTYPE_INT8 && last->out_zp != info->out_zp) {
        return fail(err, CNN_ERR_FORMAT, "output zero point %d, the last layer's is %d", (int)info->out_zp,
            last->out_zp);
    }
    const uint32_t required = cnn_arena_required(info);
    if (info->arena_size != required) {
        return fail(err, CNN_ERR_FORMAT, "arena of %u bytes planned, the layers need %u", (unsigned)info->arena_size,
            (unsigned)required);
    }
    return CNN_OK;
}

// ---- int8 kernels ----

// acc: the int32 dot product plus the int32 bias, saturated to int32 so acc * M + 2^(s-1) fits in int64.
static int8_t requantize(int64_t acc, int32_t mult, int32_t shift, const cnn_layer_t *l) {
    if (shift < 1 || shift > 62 || mult < 0) {   // only if the buffer was modified after cnn_check_file
        return l->act_min;
    }
    acc = acc < INT32_MIN ? INT32_MIN : (acc > INT32_MAX ? INT32_MAX : acc);
    // Arithmetic shift of a signed int64 (floor division by 2^s): what gcc does on every target we build for.
    int64_t v = (((int64_t)acc * mult + ((int64_t)1 << (shift - 1))) >> shift) + l->out_zp;
    v = v < l->act_min ? l->act_min : v;
    v = v > l->act_max ? l->act_max : v;
    return (int8_t)v;
}

typedef struct {
    const int8_t *w;
    const int32_t *bias, *mult, *shift;
} q_params_t;

static q_params_t q_params(const uint8_t *data, const cnn_layer_t *l, uint32_t n_weights) {
    const uint8_t *p = data + l->params_offset;
    q_params_t q;
    q.w = (const int8_t *)p;
    q.bias = (const int32_t *)(const void *)(p + align4(n_weights));
    q.mult = q.bias + l->out_c;
    q.shift = q.mult + l->out_c;
    return q;
}

static void conv_q(const uint8_t *data, const cnn_layer_t *l, const int8_t *x, int8_t *y) {
    const uint32_t ic = l->in_c, oc = l->out_c;
    const q_params_t q = q_params(data, l, oc * l->kh * l->kw * ic);
    const int32_t zp = l->in_zp;
    for (int oy = 0; oy < l->out_h; oy++) {
        for (int ox = 0; ox < l->out_w; ox++) {
            const int y0 = oy * l->sh - l->pad_t, x0 = ox * l->sw - l->pad_l;
            for (uint32_t o = 0; o < oc; o++) {
                const int8_t *wo = q.w + o * l->kh * l->kw * ic;
                int32_t acc = 0;
                for (int ky = 0; ky < l->kh; ky++) {
                    const int iy = y0 + ky;
                    if (iy < 0 || iy >= l->in_h) {
                        continue;
                    }
                    for (int kx = 0; kx < l->kw; kx++) {
                        const int ix = x0 + kx;
                        if (ix < 0 || ix >= l->in_w) {
                            continue;
                        }
                        const int8_t *xp = x + ((uint32_t)iy * l->in_w + (uint32_t)ix) * ic;
                        const int8_t *wp = wo + ((uint32_t)ky * l->kw + (uint32_t)kx) * ic;
                        for (uint32_t c = 0; c < ic; c++) {   // the SIMD-replaceable inner loop
                            acc += (int32_t)wp[c] * ((int32_t)xp[c] - zp);
                        }
                    }
                }
                y[((uint32_t)oy * l->out_w + (uint32_t)ox) * oc + o] =
                    requantize((int64_t)acc + q.bias[o], q.mult[o], q.shift[o], l);
            }
        }
    }
}

static void depthwise_q(const uint8_t *data, const cnn_layer_t *l, const int8_t *x, int8_t *y) {
    const uint32_t ch = l->out_c;
    const q_params_t q = q_params(data, l, (uint32_t)l->kh * l->kw * ch);
    const int32_t zp = l->in_zp;
    for (int oy = 0; oy < l->out_h; oy++) {
        for (int ox = 0; ox < l->out_w; ox++) {
            const int y0 = oy * l->sh - l->pad_t, x0 = ox * l->sw - l->pad_l;
            int8_t *yp = y + ((uint32_t)oy * l->out_w + (uint32_t)ox) * ch;
            for (uint32_t c = 0; c < ch; c++) {
                int32_t acc = 0;
                for (int ky = 0; ky < l->kh; ky++) {
                    const int iy = y0 + ky;
                    if (iy < 0 || iy >= l->in_h) {
                        continue;
                    }
                    for (int kx = 0; kx < l->kw; kx++) {
                        const int ix = x0 + kx;
                        if (ix >= 0 && ix < l->in_w) {
                            acc += (int32_t)q.w[((uint32_t)ky * l->kw + (uint32_t)kx) * ch + c] *
                                   ((int32_t)x[((uint32_t)iy * l->in_w + (uint32_t)ix) * ch + c] - zp);
                        }
                    }
                }
                yp[c] = requantize((int64_t)acc + q.bias[c], q.mult[c], q.shift[c], l);
            }
        }
    }
}

static void dense_q(const uint8_t *data, const cnn_layer_t *l, const int8_t *x, int8_t *y) {
    const uint32_t n = (uint32_t)l->in_h * l->in_w * l->in_c;
    const q_params_t q = q_params(data, l, n * l->out_c);
    const int32_t zp = l->in_zp;
    for (uint32_t o = 0; o < l->out_c; o++) {
        const int8_t *w = q.w + o * n;
        int32_t acc = 0;
        for (uint32_t k = 0; k < n; k++) {
            acc += (int32_t)w[k] * ((int32_t)x[k] - zp);
        }
        y[o] = requantize((int64_t)acc + q.bias[o], q.mult[o], q.shift[o], l);
    }
}

static int8_t clamp_q(int32_t v, const cnn_layer_t *l) {
    v = v < l->act_min ? l->act_min : v;
    v = v > l->act_max ? l->act_max : v;
    return (int8_t)v;
}

// Max / average pooling over a window (global average pooling: the whole input), padding skipped.
static void pool_q(const cnn_layer_t *l, const int8_t *x, int8_t *y) {
    const uint32_t ch = l->in_c;
    const int global = l->type == CNN_LAYER_GLOBAL_AVGPOOL;
    const int kh = global ? l->in_h : l->kh, kw = global ? l->in_w : l->kw;
    for (int oy = 0; oy < l->out_h; oy++) {
        for (int ox = 0; ox < l->out_w; ox++) {
            const int y0 = oy * l->sh - l->pad_t, x0 = ox * l->sw - l->pad_l;
            int8_t *yp = y + ((uint32_t)oy * l->out_w + (uint32_t)ox) * ch;
            for (uint32_t c = 0; c < ch; c++) {
                int32_t acc = l->type == CNN_LAYER_MAXPOOL ? -128 : 0, count = 0;
                for (int ky = 0; ky < kh; ky++) {
                    const int iy = y0 + ky;
                    for (int kx = 0; kx < kw && iy >= 0 && iy < l->in_h; kx++) {
                        const int ix = x0 + kx;
                        if (ix >= 0 && ix < l->in_w) {
                            const int32_t v = x[((uint32_t)iy * l->in_w + (uint32_t)ix) * ch + c];
                            acc = l->type == CNN_LAYER_MAXPOOL ? (v > acc ? v : acc) : acc + v;
                            count++;
                        }
                    }
                }
                if (l->type != CNN_LAYER_MAXPOOL) {   // round half away from zero (C division truncates)
                    acc = acc >= 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                }
                yp[c] = clamp_q(acc, l);
            }
        }
    }
}

// ---- float32 kernels ----

static float act_f(float v, uint8_t act) {
    if (act != CNN_ACT_NONE && v < 0.0f) {
        v = 0.0f;
    }
    if (act == CNN_ACT_RELU6 && v > 6.0f) {
        v = 6.0f;
    }
    return v;
}

static void conv_f(const uint8_t *data, const cnn_layer_t *l, const float *x, float *y) {
    const uint32_t ic = l->in_c, oc = l->out_c;
    const float *w = (const float *)(const void *)(data + l->params_offset);
    const float *bias = w + oc * l->kh * l->kw * ic;
    for (int oy = 0; oy < l->out_h; oy++) {
        for (int ox = 0; ox < l->out_w; ox++) {
            const int y0 = oy * l->sh - l->pad_t, x0 = ox * l->sw - l->pad_l;
            for (uint32_t o = 0; o < oc; o++) {
                const float *wo = w + o * l->kh * l->kw * ic;
                float acc = bias[o];
                for (int ky = 0; ky < l->kh; ky++) {
                    const int iy = y0 + ky;
                    if (iy < 0 || iy >= l->in_h) {
                        continue;
                    }
                    for (int kx = 0; kx < l->kw; kx++) {
                        const int ix = x0 + kx;
                        if (ix < 0 || ix >= l->in_w) {
                            continue;
                        }
                        const float *xp = x + ((uint32_t)iy * l->in_w + (uint32_t)ix) * ic;
                        const float *wp = wo + ((uint32_t)ky * l->kw + (uint32_t)kx) * ic;
                        for (uint32_t c = 0; c < ic; c++) {
                            acc += wp[c] * xp[c];
                        }
                    }
                }
                y[((uint32_t)oy * l->out_w + (uint32_t)ox) * oc + o] = act_f(acc, l->act);
            }
        }
    }
}

static void depthwise_f(const uint8_t *data, const cnn_layer_t *l, const float *x, float *y) {
    const uint32_t ch = l->out_c;
    const float *w = (const float *)(const void *)(data + l->params_offset);
    const float *bias = w + (uint32_t)l->kh * l->kw * ch;
    for (int oy = 0; oy < l->out_h; oy++) {
        for (int ox = 0; ox < l->out_w; ox++) {
            const int y0 = oy * l->sh - l->pad_t, x0 = ox * l->sw - l->pad_l;
            float *yp = y + ((uint32_t)oy * l->out_w + (uint32_t)ox) * ch;
            for (uint32_t c = 0; c < ch; c++) {
                float acc = bias[c];
                for (int ky = 0; ky < l->kh; ky++) {
                    const int iy = y0 + ky;
                    if (iy < 0 || iy >= l->in_h) {
                        continue;
                    }
                    for (int kx = 0; kx < l->kw; kx++) {
                        const int ix = x0 + kx;
                        if (ix >= 0 && ix < l->in_w) {
                            acc += w[((uint32_t)ky * l->kw + (uint32_t)kx) * ch + c] *
                                   x[((uint32_t)iy * l->in_w + (uint32_t)ix) * ch + c];
                        }
                    }
                }
                yp[c] = act_f(acc, l->act);
            }
        }
    }
}

static void dense_f(const uint8_t *data, const cnn_layer_t *l, const float *x, float *y) {
    const uint32_t n = (uint32_t)l->in_h * l->in_w * l->in_c;
    const float *w = (const float *)(const void *)(data + l->params_offset);
    const float *bias = w + n * l->out_c;
    for (uint32_t o = 0; o < l->out_c; o++) {
        const float *wo = w + o * n;
        float acc = bias[o];
        for (uint32_t k = 0; k < n; k++) {
            acc += wo[k] * x[k];
        }
        y[o] = act_f(acc, l->act);
    }
}

static void pool_f(const cnn_layer_t *l, const float *x, float *y) {
    const uint32_t ch = l->in_c;
    const int global = l->type == CNN_LAYER_GLOBAL_AVGPOOL;
    const int kh = global ? l->in_h : l->kh, kw = global ? l->in_w : l->kw;
    for (int oy = 0; oy < l->out_h; oy++) {
        for (int ox = 0; ox < l->out_w; ox++) {
            const int y0 = oy * l->sh - l->pad_t, x0 = ox * l->sw - l->pad_l;
            float *yp = y + ((uint32_t)oy * l->out_w + (uint32_t)ox) * ch;
            for (uint32_t c = 0; c < ch; c++) {
                float acc = l->type == CNN_LAYER_MAXPOOL ? -INFINITY : 0.0f;
                int count = 0;
                for (int ky = 0; ky < kh; ky++) {
                    const int iy = y0 + ky;
                    for (int kx = 0; kx < kw && iy >= 0 && iy < l->in_h; kx++) {
                        const int ix = x0 + kx;
                        if (ix >= 0 && ix < l->in_w) {
                            const float v = x[((uint32_t)iy * l->in_w + (uint32_t)ix) * ch + c];
                            acc = l->type == CNN_LAYER_MAXPOOL ? (v > acc ? v : acc) : acc + v;
                            count++;
                        }
                    }
                }
                yp[c] = act_f(l->type == CNN_LAYER_MAXPOOL ? acc : acc / (float)count, l->act);
            }
        }
    }
}

static void softmax_f(float *v, uint32_t n) {
    float top = v[0];
    for (uint32_t i = 1; i < n; i++) {
        top = v[i] > top ? v[i] : top;
    }
    float sum = 0.0f;
    for (uint32_t i = 0; i < n; i++) {
        v[i] = expf(v[i] - top);
        sum += v[i];
    }
    for (uint32_t i = 0; i < n; i++) {
        v[i] /= sum;
    }
}

void cnn_run(const cnn_model_t *m, const uint8_t *image, float *out) {
    const cnn_info_t *info = m->info;
    uint8_t *half[2] = { m->arena, m->arena + info->arena_size / 2u };
    int cur = 0;
    const int quant = info->dtype == CNN_DTYPE_INT8;
    if (quant) {
        int8_t *x = (int8_t *)half[0];
        for (uint32_t i = 0; i < info->n_inputs; i++) {
            x[i] = (int8_t)((int32_t)image[i] - 128);
        }
    } else {
        float *x = (float *)(void *)half[0];
        for (uint32_t i = 0; i < info->n_inputs; i++) {
            x[i] = (float)image[i] * info->in_scale + info->in_offset;
        }
    }
    int softmax = 0;
    for (int i = 0; i < info->n_layers; i++) {
        const cnn_layer_t *l = &info->layers[i];
        void *x = half[cur], *y = half[cur ^ l->swap];
        switch (l->type) {
            case CNN_LAYER_CONV2D:
                quant ? conv_q(m->data, l, x, y) : conv_f(m->data, l, x, y);
                break;
            case CNN_LAYER_DEPTHWISE:
                quant ? depthwise_q(m->data, l, x, y) : depthwise_f(m->data, l, x, y);
                break;
            case CNN_LAYER_DENSE:
                quant ? dense_q(m->data, l, x, y) : dense_f(m->data, l, x, y);
                break;
            case CNN_LAYER_MAXPOOL:
            case CNN_LAYER_AVGPOOL:
            case CNN_LAYER_GLOBAL_AVGPOOL:
                quant ? pool_q(l, x, y) : pool_f(l, x, y);
                break;
            case CNN_LAYER_SOFTMAX:
                softmax = 1;
                break;
            default:   // flatten: the same bytes, a new shape
                break;
        }
        cur ^= l->swap;
    }
    if (quant) {
        const int8_t *q = (const int8_t *)half[cur];
        for (uint32_t i = 0; i < info->n_outputs; i++) {
            out[i] = (float)((int32_t)q[i] - info->out_zp) * info->out_scale;
        }
    } else {
        memcpy(out, half[cur], info->n_outputs * sizeof(float));
    }
    if (softmax) {
        softmax_f(out, info->n_outputs);
    }
}
