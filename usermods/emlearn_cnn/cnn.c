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
    "?", "conv2d", "depthwise", "maxpool", "avgpool", "global_avgpool", "dense", "flatten", "softmax", "add"
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
    return (info->n_slots ? info->n_slots : 2u) * biggest;
}

// The shape and int8 zero point of tensor t (0: the input image, j + 1: layer j's output; t <= the layers seen).
static const cnn_layer_t *producer(const cnn_info_t *info, int t) {
    return t > 0 ? &info->layers[t - 1] : NULL;
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
        case CNN_LAYER_ADD:
            *n_ch = info->dtype == CNN_DTYPE_INT8 ? 3u : 0u;   // (M, s) of input 1, input 2, output
            return 8u * *n_ch;
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
    if (l->type == 0 || l->type >= CNN_N_LAYER_TYPES || (info->version == 1 && l->type == CNN_LAYER_ADD)) {
        return fail(err, CNN_ERR_FORMAT, "layer %d: unknown type %d", i, l->type);
    }
    const char *name = layer_names[l->type];
    if (rd_u16(p + 14) != 0 || p[31] != 0 || (info->version == 1 && rd_u32(p + 28) != 0)) {
        return fail(err, CNN_ERR_FORMAT, "layer %d (%s): reserved fields are not zero", i, name);
    }
    // version 1: a chain; the slots alternate (flatten/softmax stay in place), see check_slots
    l->src = info->version == 1 ? (uint8_t)i : p[28];
    l->src2 = info->version == 1 ? 0 : p[29];
    l->out_slot = p[30];
    if (info->version == 1) {
        const uint8_t in_slot = i > 0 ? info->layers[i - 1].out_slot : 0;
        l->out_slot = (l->type == CNN_LAYER_FLATTEN || l->type == CNN_LAYER_SOFTMAX) ? in_slot : in_slot ^ 1u;
    }
    if (l->src > i || l->src2 > i || (l->type != CNN_LAYER_ADD && l->src2 != 0)) {
        return fail(err, CNN_ERR_FORMAT, "layer %d (%s): input tensors %d, %d are not earlier tensors", i, name,
            l->src, l->src2);
    }
    const cnn_layer_t *prev = producer(info, l->src);
    l->in_h = prev ? prev->out_h : info->in_h;
    l->in_w = prev ? prev->out_w : info->in_w;
    l->in_c = prev ? prev->out_c : info->in_c;
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
            break;
        case CNN_LAYER_ADD: {
            const cnn_layer_t *other = producer(info, l->src2);
            const uint16_t h2 = other ? other->out_h : info->in_h, w2 = other ? other->out_w : info->in_w,
                           c2 = other ? other->out_c : info->in_c;
            if (h2 != l->in_h || w2 != l->in_w || c2 != l->in_c || l->out_h != l->in_h || l->out_w != l->in_w ||
                l->out_c != l->in_c) {
                return fail(err, CNN_ERR_FORMAT, "layer %d (add): shapes %dx%dx%d + %dx%dx%d -> %dx%dx%d differ", i,
                    l->in_h, l->in_w, l->in_c, h2, w2, c2, l->out_h, l->out_w, l->out_c);
            }
            break;
        }
        default:
            break;
    }
    if (info->dtype == CNN_DTYPE_INT8) {
        if (l->act_min > l->act_max) {
            return fail(err, CNN_ERR_FORMAT, "layer %d (%s): activation range %d..%d is empty", i, name, l->act_min,
                l->act_max);
        }
        const int keeps_quant = !(l->type == CNN_LAYER_CONV2D || l->type == CNN_LAYER_DEPTHWISE ||
                                  l->type == CNN_LAYER_DENSE || l->type == CNN_LAYER_ADD);
        if (keeps_quant && l->in_zp != l->out_zp) {
            return fail(err, CNN_ERR_FORMAT, "layer %d (%s): zero point changes (%d -> %d)", i, name, l->in_zp,
                l->out_zp);
        }
        // tensor 0's zero point is layer 0's in_zp (layer 0 always reads the input)
        const int8_t src_zp = prev ? prev->out_zp : (i > 0 ? info->layers[0].in_zp : l->in_zp);
        if (l->in_zp != src_zp) {
            return fail(err, CNN_ERR_FORMAT, "layer %d (%s): input zero point %d, its input tensor's %d", i, name,
                l->in_zp, src_zp);
        }
        if (l->type == CNN_LAYER_ADD) {
            const cnn_layer_t *other = producer(info, l->src2);
            l->in2_zp = other ? other->out_zp : (i > 0 ? info->layers[0].in_zp : l->in_zp);
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
        // add: (M, s) pairs only; weighted layers: weights, biases, then M and s per channel
        const uint8_t *mult = params + (l->type == CNN_LAYER_ADD ? 0u : align4(n_weights) + 4u * n_ch);
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

// The arena plan: every slot index is in range, flatten/softmax stay in their input's slot, add writes a free slot
// or one of its inputs' (elementwise, so in place is safe), and no other layer writes a slot that holds a tensor
// read by it or by a later layer (aliases made by flatten share their slot and are checked alike).
static cnn_status_t check_slots(cnn_info_t *info, cnn_error_t *err) {
    uint8_t slot_of[CNN_MAX_LAYERS + 1];
    int last_use[CNN_MAX_LAYERS + 1];
    const int n = info->n_layers;
    for (int t = 0; t <= n; t++) {
        last_use[t] = -1;
    }
    for (int i = 0; i < n; i++) {
        const cnn_layer_t *l = &info->layers[i];
        last_use[l->src] = i;
        if (l->type == CNN_LAYER_ADD) {
            last_use[l->src2] = i;
        }
    }
    last_use[n] = n;   // the output is read after the last layer
    slot_of[0] = 0;
    for (int i = 0; i < n; i++) {
        cnn_layer_t *l = &info->layers[i];
        const char *name = layer_names[l->type];
        l->in_slot = slot_of[l->src];
        l->in2_slot = slot_of[l->src2];
        if (l->out_slot >= info->n_slots) {
            return fail(err, CNN_ERR_FORMAT, "layer %d (%s): arena slot %d, the model plans %d", i, name, l->out_slot,
                info->n_slots);
        }
        if (l->type == CNN_LAYER_FLATTEN || l->type == CNN_LAYER_SOFTMAX) {
            if (l->out_slot != l->in_slot) {
                return fail(err, CNN_ERR_FORMAT, "layer %d (%s): must stay in its input's slot %d", i, name,
                    l->in_slot);
            }
        } else {
            for (int t = 0; t <= i; t++) {
                if (slot_of[t] == l->out_slot &&
                    (last_use[t] > i || (last_use[t] == i && l->type != CNN_LAYER_ADD))) {
                    return fail(err, CNN_ERR_FORMAT, "layer %d (%s): writes slot %d over tensor %d, still needed", i,
                        name, l->out_slot, t);
                }
            }
        }
        slot_of[i + 1] = l->out_slot;
    }
    return CNN_OK;
}

uint8_t cnn_layer_count(const uint8_t *data, size_t len) {
    return (len > 6 && data[6] >= 1 && data[6] <= CNN_MAX_LAYERS) ? data[6] : 1u;
}

cnn_status_t cnn_check_file(const uint8_t *data, size_t len, cnn_info_t *info, cnn_error_t *err) {
    cnn_layer_t *const layers = info->layers;
    const uint8_t capacity = info->layers_capacity;
    memset(info, 0, sizeof(*info));
    info->layers = layers;
    info->layers_capacity = capacity;
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
    if (data[4] != 1 && data[4] != CNN_FORMAT_VERSION) {
        return fail(err, CNN_ERR_FORMAT, "format version %d is not supported (expected 1 or %d)", data[4],
            CNN_FORMAT_VERSION);
    }
    info->version = data[4];
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
    if (data[7] != 0 || (info->version == 1 && rd_u16(data + 26) != 0) || rd_u32(data + 44) != 0) {
        return fail(err, CNN_ERR_FORMAT, "flags/reserved header fields are not zero");
    }
    info->n_slots = info->version == 1 ? 2u : rd_u16(data + 26);
    if (info->n_slots < 1 || info->n_slots > CNN_MAX_SLOTS) {
        return fail(err, CNN_ERR_FORMAT, "%d arena slots (1 to %d supported)", info->n_slots, CNN_MAX_SLOTS);
    }
    if (info->n_layers < 1 || info->n_layers > CNN_MAX_LAYERS) {
        return fail(err, CNN_ERR_FORMAT, "%d layers (1 to %d supported)", info->n_layers, CNN_MAX_LAYERS);
    }
    if (layers == NULL || info->n_layers > capacity) {   // a caller error (see cnn_layer_count), not the file's
        return fail(err, CNN_ERR_FORMAT, "%d layers, the layer table holds %d", info->n_layers, capacity);
    }
    memset(layers, 0, (size_t)info->n_layers * sizeof(cnn_layer_t));
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
    if (check_slots(info, err) != CNN_OK) {
        return CNN_ERR_FORMAT;
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
        return fail(err, CNN_ERR_FORMAT, "arena of %u bytes planned, the layers need %u (%d slots)",
            (unsigned)info->arena_size, (unsigned)required, info->n_slots);
    }
    info->slot_size = required / info->n_slots;
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

// The int8 hot loops are written so that a compiler can vectorise them: run-time-length loops over contiguous
// int8 data whose products fit in int16 (|w| <= 128, |x - zp| <= 255: |w * (x - zp)| <= 32640), summed in
// int32 (x86 SSE2: pmaddwd). gcc's -O2 uses the "very cheap" vectoriser cost model, which refuses loops of
// unknown length; these functions ask for the dynamic model (what -O3 uses). Other compilers: plain C.
#if defined(__GNUC__) && !defined(__clang__)
#define CNN_VECTORIZE __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#else
#define CNN_VECTORIZE
#endif

// The sums over i < n of w0[i] * (x[i] - zp) and w1[i] * (x[i] - zp), added to *acc0 and *acc1: two weight
// rows share each input load and its zero-point subtraction.
static CNN_VECTORIZE void dot2_q(const int8_t *w0, const int8_t *w1, const int8_t *x, size_t n, int16_t zp,
    int32_t *acc0, int32_t *acc1) {
    int32_t s0 = 0, s1 = 0;
    for (size_t i = 0; i < n; i++) {
        const int16_t v = (int16_t)(x[i] - zp);
        s0 += (int16_t)w0[i] * v;
        s1 += (int16_t)w1[i] * v;
    }
    *acc0 += s0;
    *acc1 += s1;
}

static CNN_VECTORIZE int32_t dot_q(const int8_t *w, const int8_t *x, size_t n, int16_t zp) {
    int32_t s = 0;
    for (size_t i = 0; i < n; i++) {
        s += (int16_t)w[i] * (int16_t)(x[i] - zp);
    }
    return s;
}

// The part of a window [start, start + k) inside [0, size): [*lo, *hi) relative to start (padding is skipped:
// in TFLite's scheme a padded input equals the zero point, so it adds w * 0).
static void window_span(int start, int k, int size, int *lo, int *hi) {
    *lo = start < 0 ? -start : 0;
    *hi = start + k > size ? size - start : k;
}

static CNN_VECTORIZE int32_t dot_window_q(const int8_t *w, const int16_t *v, size_t n) {
    int32_t s = 0;
    for (size_t i = 0; i < n; i++) {
        s += (int16_t)w[i] * v[i];
    }
    return s;
}

// Two weight rows against the same window: the window's loads and the loop are shared.
static CNN_VECTORIZE void dot2_window_q(const int8_t *w0, const int8_t *w1, const int16_t *v, size_t n,
    int32_t *acc0, int32_t *acc1) {
    int32_t s0 = 0, s1 = 0;
    for (size_t i = 0; i < n; i++) {
        s0 += (int16_t)w0[i] * v[i];
        s1 += (int16_t)w1[i] * v[i];
    }
    *acc0 = s0;
    *acc1 = s1;
}

#ifndef CNN_WINDOW_MAX   // (a build may set it, e.g. to 1 to exercise the row path in tests)
#define CNN_WINDOW_MAX 1024   // conv2d windows of up to kh * kw * in_c = 1024 values are gathered (2 KB of stack)
#endif

// Per output pixel: the window (kh x kw x in_c, the layout of one output channel's weights) is gathered once
// into an int16 buffer as x - zp, with 0 where it hangs over the input (a padded input equals the zero point,
// so it adds w * 0: the same sum as skipping it); then every output channel is ONE contiguous dot product of
// that buffer with its weight row (x86 SSE2: pmaddwd). Larger windows: per row, the valid columns times the
// input channels are one contiguous run in both the H x W x C input and the weights, two output channels
// sharing the input loads.
static CNN_VECTORIZE void conv_q(const uint8_t *data, const cnn_layer_t *l, const int8_t *x, int8_t *y) {
    const size_t ic = l->in_c, oc = l->out_c, row = (size_t)l->kw * ic, wsize = (size_t)l->kh * row;
    const q_params_t q = q_params(data, l, (uint32_t)(oc * wsize));
    const int16_t zp = l->in_zp;
    int16_t window[CNN_WINDOW_MAX];
    for (int oy = 0; oy < l->out_h; oy++) {
        const int y0 = oy * l->sh - l->pad_t;
        int ky0, ky1;
        window_span(y0, l->kh, l->in_h, &ky0, &ky1);
        for (int ox = 0; ox < l->out_w; ox++) {
            const int x0 = ox * l->sw - l->pad_l;
            int kx0, kx1;
            window_span(x0, l->kw, l->in_w, &kx0, &kx1);
            const size_t n = (size_t)(kx1 - kx0) * ic, xstride = (size_t)l->in_w * ic;
            // the first valid input of the first valid row
            const int8_t *xs = x + ((size_t)(y0 + ky0) * l->in_w + (size_t)(x0 + kx0)) * ic;
            int8_t *yp = y + ((size_t)oy * l->out_w + (size_t)ox) * oc;
            if (wsize <= CNN_WINDOW_MAX) {
                if (ky1 - ky0 < l->kh || kx1 - kx0 < l->kw) {
                    memset(window, 0, wsize * sizeof(window[0]));
                }
                for (int ky = ky0; ky < ky1; ky++) {
                    const int8_t *src = xs + (size_t)(ky - ky0) * xstride;
                    int16_t *dst = window + (size_t)ky * row + (size_t)kx0 * ic;
                    for (size_t i = 0; i < n; i++) {
                        dst[i] = (int16_t)(src[i] - zp);
                    }
                }
                size_t o = 0;
                for (; o + 2 <= oc; o += 2) {
                    int32_t acc0, acc1;
                    dot2_window_q(q.w + o * wsize, q.w + (o + 1) * wsize, window, wsize, &acc0, &acc1);
                    yp[o] = requantize((int64_t)acc0 + q.bias[o], q.mult[o], q.shift[o], l);
                    yp[o + 1] = requantize((int64_t)acc1 + q.bias[o + 1], q.mult[o + 1], q.shift[o + 1], l);
                }
                if (o < oc) {
                    const int32_t acc = dot_window_q(q.w + o * wsize, window, wsize);
                    yp[o] = requantize((int64_t)acc + q.bias[o], q.mult[o], q.shift[o], l);
                }
                continue;
            }
            const size_t ws = (size_t)ky0 * row + (size_t)kx0 * ic;
            size_t o = 0;
            for (; o + 2 <= oc; o += 2) {
                const int8_t *w0 = q.w + o * wsize + ws, *w1 = w0 + wsize;
                int32_t acc0 = 0, acc1 = 0;
                for (int ky = ky0; ky < ky1; ky++) {
                    const size_t d = (size_t)(ky - ky0);
                    dot2_q(w0 + d * row, w1 + d * row, xs + d * xstride, n, zp, &acc0, &acc1);
                }
                yp[o] = requantize((int64_t)acc0 + q.bias[o], q.mult[o], q.shift[o], l);
                yp[o + 1] = requantize((int64_t)acc1 + q.bias[o + 1], q.mult[o + 1], q.shift[o + 1], l);
            }
            if (o < oc) {
                const int8_t *w0 = q.w + o * wsize + ws;
                int32_t acc = 0;
                for (int ky = ky0; ky < ky1; ky++) {
                    const size_t d = (size_t)(ky - ky0);
                    acc += dot_q(w0 + d * row, xs + d * xstride, n, zp);
                }
                yp[o] = requantize((int64_t)acc + q.bias[o], q.mult[o], q.shift[o], l);
            }
        }
    }
}

#define CNN_DW_BLOCK 32   // depthwise: channels accumulated at once (int32 on the stack)

// acc[c] += w[c] * (x[c] - zp) over n contiguous channels (one kernel tap of a depthwise filter).
static CNN_VECTORIZE void mac_channels_q(int32_t *acc, const int8_t *w, const int8_t *x, size_t n, int16_t zp) {
    for (size_t c = 0; c < n; c++) {
        acc[c] += (int16_t)w[c] * (int16_t)(x[c] - zp);
    }
}

// Per output pixel, blocks of CNN_DW_BLOCK channels: each valid kernel tap adds a contiguous run of channels
// (weights KH x KW x C, inputs H x W x C), the window clipped to the input outside the channel loop.
static CNN_VECTORIZE void depthwise_q(const uint8_t *data, const cnn_layer_t *l, const int8_t *x, int8_t *y) {
    const size_t ch = l->out_c;
    const q_params_t q = q_params(data, l, (uint32_t)((size_t)l->kh * l->kw * ch));
    const int16_t zp = l->in_zp;
    int32_t acc[CNN_DW_BLOCK];
    for (int oy = 0; oy < l->out_h; oy++) {
        const int y0 = oy * l->sh - l->pad_t;
        int ky0, ky1;
        window_span(y0, l->kh, l->in_h, &ky0, &ky1);
        for (int ox = 0; ox < l->out_w; ox++) {
            const int x0 = ox * l->sw - l->pad_l;
            int kx0, kx1;
            window_span(x0, l->kw, l->in_w, &kx0, &kx1);
            int8_t *yp = y + ((size_t)oy * l->out_w + (size_t)ox) * ch;
            for (size_t c0 = 0; c0 < ch; c0 += CNN_DW_BLOCK) {
                const size_t n = ch - c0 < CNN_DW_BLOCK ? ch - c0 : CNN_DW_BLOCK;
                memset(acc, 0, sizeof(acc));
                for (int ky = ky0; ky < ky1; ky++) {
                    const int8_t *xrow = x + ((size_t)(y0 + ky) * l->in_w + (size_t)(x0 + kx0)) * ch + c0;
                    const int8_t *wrow = q.w + ((size_t)ky * l->kw + (size_t)kx0) * ch + c0;
                    for (int kx = kx0; kx < kx1; kx++) {
                        const size_t d = (size_t)(kx - kx0) * ch;
                        mac_channels_q(acc, wrow + d, xrow + d, n, zp);
                    }
                }
                for (size_t c = 0; c < n; c++) {
                    yp[c0 + c] = requantize((int64_t)acc[c] + q.bias[c0 + c], q.mult[c0 + c], q.shift[c0 + c], l);
                }
            }
        }
    }
}

// Two output rows at a time against the same (flattened) input.
static CNN_VECTORIZE void dense_q(const uint8_t *data, const cnn_layer_t *l, const int8_t *x, int8_t *y) {
    const size_t n = (size_t)l->in_h * l->in_w * l->in_c, oc = l->out_c;
    const q_params_t q = q_params(data, l, (uint32_t)(n * oc));
    const int16_t zp = l->in_zp;
    size_t o = 0;
    for (; o + 2 <= oc; o += 2) {
        int32_t acc0 = 0, acc1 = 0;
        dot2_q(q.w + o * n, q.w + (o + 1) * n, x, n, zp, &acc0, &acc1);
        y[o] = requantize((int64_t)acc0 + q.bias[o], q.mult[o], q.shift[o], l);
        y[o + 1] = requantize((int64_t)acc1 + q.bias[o + 1], q.mult[o + 1], q.shift[o + 1], l);
    }
    if (o < oc) {
        y[o] = requantize((int64_t)dot_q(q.w + o * n, x, n, zp) + q.bias[o], q.mult[o], q.shift[o], l);
    }
}

#define CNN_POOL_BLOCK 64   // pools: channels reduced at once (accumulators on the stack)

// The geometry of a pooling layer, read once (global average pooling: one window, the whole input).
typedef struct {
    int kh, kw, sh, sw, pad_t, pad_l, in_h, in_w, out_h, out_w;
    size_t ch;
} pool_geom_t;

static pool_geom_t pool_geom(const cnn_layer_t *l) {
    const int global = l->type == CNN_LAYER_GLOBAL_AVGPOOL;
    pool_geom_t g;
    g.kh = global ? l->in_h : l->kh;
    g.kw = global ? l->in_w : l->kw;
    g.sh = global ? 1 : l->sh;
    g.sw = global ? 1 : l->sw;
    g.pad_t = global ? 0 : l->pad_t;
    g.pad_l = global ? 0 : l->pad_l;
    g.in_h = l->in_h;
    g.in_w = l->in_w;
    g.out_h = l->out_h;
    g.out_w = l->out_w;
    g.ch = l->in_c;
    return g;
}

#define CNN_POOL_ROW 512   // pools, row path: input columns x channels reduced at once (2 x 1 KB of int16 stack)

// The int8 row path (windows of at most CNN_POOL_ROW columns x channels and 256 elements, so that a window's sum
// fits in int16): max and sum are separable, so per output row the valid window rows are first reduced
// elementwise over long contiguous runs of input columns x channels, then each output pixel reduces its
// columns of that row, channels innermost. int16 lanes: twice as many per vector as int32 (SSE2 has pmaxsw and
// paddw). Average: round half away from zero, |sum| + count / 2 shifted when the count is a power of two
// (interior windows of 2x2, 4x4), else divided.
static CNN_VECTORIZE void pool_rows_q(const pool_geom_t *g, int maxpool, int32_t lo, int32_t hi, const int8_t *x,
    int8_t *y) {
    const size_t ch = g->ch, xstride = (size_t)g->in_w * ch;
    const int kw = g->kw, sw = g->sw, pad_l = g->pad_l, in_w = g->in_w, out_w = g->out_w;
    const int16_t lo16 = (int16_t)lo, hi16 = (int16_t)hi;
    int16_t col[CNN_POOL_ROW];   // the window rows reduced, per input column and channel
    int16_t acc[CNN_POOL_ROW];   // one output pixel's reduction per channel (ch <= CNN_POOL_ROW / kw)
    const int per_chunk = ((int)(CNN_POOL_ROW / ch) - kw) / sw + 1;   // output columns whose inputs fit in col
    for (int oy = 0; oy < g->out_h; oy++) {
        const int y0 = oy * g->sh - g->pad_t;
        int ky0, ky1;
        window_span(y0, g->kh, g->in_h, &ky0, &ky1);
        const int8_t *xrow = x + (size_t)(y0 + ky0) * xstride;
        for (int oa = 0; oa < out_w; oa += per_chunk) {
            const int ob = oa + per_chunk < out_w ? oa + per_chunk : out_w;
            const int ia = oa * sw - pad_l > 0 ? oa * sw - pad_l : 0;
            const int ib = (ob - 1) * sw - pad_l + kw < in_w ? (ob - 1) * sw - pad_l + kw : in_w;
            const size_t span = (size_t)(ib - ia) * ch;
            const int8_t *xs = xrow + (size_t)ia * ch;
            for (size_t i = 0; i < span; i++) {
                col[i] = xs[i];
            }
            for (int ky = ky0 + 1; ky < ky1; ky++) {
                const int8_t *xr = xs + (size_t)(ky - ky0) * xstride;
                if (maxpool) {
                    for (size_t i = 0; i < span; i++) {
                        col[i] = xr[i] > col[i] ? xr[i] : col[i];
                    }
                } else {
                    for (size_t i = 0; i < span; i++) {
                        col[i] = (int16_t)(col[i] + xr[i]);
                    }
                }
            }
            for (int ox = oa; ox < ob; ox++) {
                const int x0 = ox * sw - pad_l;
                int kx0, kx1;
                window_span(x0, kw, in_w, &kx0, &kx1);
                const int16_t *cs = col + (size_t)(x0 + kx0 - ia) * ch;
                const size_t n = (size_t)(kx1 - kx0) * ch;
                int8_t *yp = y + ((size_t)oy * out_w + (size_t)ox) * ch;
                for (size_t c = 0; c < ch; c++) {
                    acc[c] = cs[c];
                }
                for (size_t d = ch; d < n; d += ch) {
                    if (maxpool) {
                        for (size_t c = 0; c < ch; c++) {
                            acc[c] = cs[d + c] > acc[c] ? cs[d + c] : acc[c];
                        }
                    } else {
                        for (size_t c = 0; c < ch; c++) {
                            acc[c] = (int16_t)(acc[c] + cs[d + c]);
                        }
                    }
                }
                if (maxpool) {   // clamped in int16: a vectorisable narrowing
                    for (size_t c = 0; c < ch; c++) {
                        const int16_t v = acc[c] < lo16 ? lo16 : acc[c];
                        yp[c] = (int8_t)(v > hi16 ? hi16 : v);
                    }
                    continue;
                }
                const int32_t count = (ky1 - ky0) * (kx1 - kx0), half = count / 2;
                if (count >= 2 && count <= 128) {
                    // |sum| + half = n < 2^15, so n / count == (n * m) >> (15 + l) exactly for l = ceil(log2 count)
                    // and m = ceil(2^(15 + l) / count) < 2^16 (the error m * count - 2^(15 + l) < count <= 2^l
                    // times n stays below 2^(15 + l)): a 16 x 16-bit high multiply, no division.
                    int l = 0;
                    while ((1 << l) < count) {
                        l++;
                    }
                    const uint16_t m = (uint16_t)(((1u << (15 + l)) + (uint32_t)count - 1u) / (uint32_t)count);
                    const int rest = l - 1;   // (n * m) >> 16, then >> (l - 1)
                    const uint16_t h = (uint16_t)half;
                    if (count == 1 << l) {   // interior windows of 2x2, 4x4 pools: a shift (m = 2^15)
                        for (size_t c = 0; c < ch; c++) {
                            const int16_t s = acc[c];
                            const int16_t q = (int16_t)((uint16_t)((uint16_t)(s < 0 ? -s : s) + h) >> l);
                            const int16_t v = s < 0 ? (int16_t)-q : q, w = v < lo16 ? lo16 : v;
                            yp[c] = (int8_t)(w > hi16 ? hi16 : w);
                        }
                        continue;
                    }
                    for (size_t c = 0; c < ch; c++) {
                        const int16_t s = acc[c];
                        const uint16_t n = (uint16_t)((uint16_t)(s < 0 ? -s : s) + h);
                        const int16_t q = (int16_t)((uint16_t)(((uint32_t)n * m) >> 16) >> rest);
                        const int16_t v = s < 0 ? (int16_t)-q : q, w = v < lo16 ? lo16 : v;
                        yp[c] = (int8_t)(w > hi16 ? hi16 : w);
                    }
                } else {
                    for (size_t c = 0; c < ch; c++) {   // C division truncates: half away from zero
                        const int32_t s = acc[c], v = (s >= 0 ? s + half : s - half) / count;
                        yp[c] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
                    }
                }
            }
        }
    }
}

// Max / average pooling, padding skipped (windows too large for pool_rows_q). Per output pixel the window is clipped to the input once (border
// windows are simply shorter), then every valid input pixel's channels, a contiguous run, update one accumulator
// per channel: the inner loops are branch-free runs over contiguous int8 that a compiler can vectorise. The
// window is never empty (cnn_check_file: pad < k), so the running max may start at -128.
static CNN_VECTORIZE void pool_q(const cnn_layer_t *l, const int8_t *x, int8_t *y) {
    const pool_geom_t g = pool_geom(l);
    const int maxpool = l->type == CNN_LAYER_MAXPOOL;
    const int32_t lo = l->act_min, hi = l->act_max;
    if ((size_t)g.kw * g.ch <= CNN_POOL_ROW && g.kh * g.kw <= 256) {
        pool_rows_q(&g, maxpool, lo, hi, x, y);
        return;
    }
    const size_t xstride = (size_t)g.in_w * g.ch;
    int32_t acc[CNN_POOL_BLOCK];
    int8_t top[CNN_POOL_BLOCK];
    for (int oy = 0; oy < g.out_h; oy++) {
        const int y0 = oy * g.sh - g.pad_t;
        int ky0, ky1;
        window_span(y0, g.kh, g.in_h, &ky0, &ky1);
        for (int ox = 0; ox < g.out_w; ox++) {
            const int x0 = ox * g.sw - g.pad_l;
            int kx0, kx1;
            window_span(x0, g.kw, g.in_w, &kx0, &kx1);
            const int32_t count = (ky1 - ky0) * (kx1 - kx0), half = count / 2;
            const size_t run = (size_t)(kx1 - kx0) * g.ch;   // one window row: kx1 - kx0 pixels of ch channels
            const int8_t *xs = x + (size_t)(y0 + ky0) * xstride + (size_t)(x0 + kx0) * g.ch;
            int8_t *yp = y + ((size_t)oy * g.out_w + (size_t)ox) * g.ch;
            for (size_t c0 = 0; c0 < g.ch; c0 += CNN_POOL_BLOCK) {
                const size_t n = g.ch - c0 < CNN_POOL_BLOCK ? g.ch - c0 : CNN_POOL_BLOCK;
                if (maxpool) {
                    memset(top, -128, n);
                    for (int ky = ky0; ky < ky1; ky++) {
                        const int8_t *xr = xs + (size_t)(ky - ky0) * xstride + c0;
                        for (size_t d = 0; d < run; d += g.ch) {
                            for (size_t c = 0; c < n; c++) {
                                top[c] = xr[d + c] > top[c] ? xr[d + c] : top[c];
                            }
                        }
                    }
                    for (size_t c = 0; c < n; c++) {
                        const int32_t v = top[c];
                        yp[c0 + c] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
                    }
                    continue;
                }
                memset(acc, 0, n * sizeof(acc[0]));
                for (int ky = ky0; ky < ky1; ky++) {
                    const int8_t *xr = xs + (size_t)(ky - ky0) * xstride + c0;
                    for (size_t d = 0; d < run; d += g.ch) {
                        for (size_t c = 0; c < n; c++) {
                            acc[c] += xr[d + c];
                        }
                    }
                }
                for (size_t c = 0; c < n; c++) {   // round half away from zero (C division truncates)
                    const int32_t s = acc[c], v = (s >= 0 ? s + half : s - half) / count;
                    yp[c0 + c] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
                }
            }
        }
    }
}

// TFLite's ADD: both inputs rescaled to a common scale (after a 20-bit left shift, for precision), summed,
// requantised to the output. Elementwise, so y may be x1 or x2 (the planner writes in place when it can).
static int32_t rescale_q(int32_t v, int32_t mult, int32_t shift) {
    if (shift < 1 || shift > 62 || mult < 0) {   // only if the buffer was modified after cnn_check_file
        return 0;
    }
    return (int32_t)(((int64_t)v * mult + ((int64_t)1 << (shift - 1))) >> shift);
}

static void add_q(const uint8_t *data, const cnn_layer_t *l, const int8_t *x1, const int8_t *x2, int8_t *y) {
    const int32_t *p = (const int32_t *)(const void *)(data + l->params_offset);   // M1, M2, M, s1, s2, s
    const uint32_t n = (uint32_t)l->out_h * l->out_w * l->out_c;
    for (uint32_t k = 0; k < n; k++) {
        const int32_t a = rescale_q(((int32_t)x1[k] - l->in_zp) * (1 << CNN_ADD_LEFT_SHIFT), p[0], p[3]);
        const int32_t b = rescale_q(((int32_t)x2[k] - l->in2_zp) * (1 << CNN_ADD_LEFT_SHIFT), p[1], p[4]);
        y[k] = requantize((int64_t)a + b, p[2], p[5], l);
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

// The window clipped to the input per output pixel, as conv_q; each output sums bias, then rows top to bottom,
// each row's kw * in_c contiguous products in order: the same float32 additions, in the same order, as a plain
// loop over ky, kx, c (results do not depend on this layout).
static void conv_f(const uint8_t *data, const cnn_layer_t *l, const float *x, float *y) {
    const size_t ic = l->in_c, oc = l->out_c, row = (size_t)l->kw * ic, wsize = (size_t)l->kh * row;
    const float *w = (const float *)(const void *)(data + l->params_offset);
    const float *bias = w + oc * wsize;
    for (int oy = 0; oy < l->out_h; oy++) {
        const int y0 = oy * l->sh - l->pad_t;
        int ky0, ky1;
        window_span(y0, l->kh, l->in_h, &ky0, &ky1);
        for (int ox = 0; ox < l->out_w; ox++) {
            const int x0 = ox * l->sw - l->pad_l;
            int kx0, kx1;
            window_span(x0, l->kw, l->in_w, &kx0, &kx1);
            const size_t n = (size_t)(kx1 - kx0) * ic, xstride = (size_t)l->in_w * ic;
            const float *xs = x + ((size_t)(y0 + ky0) * l->in_w + (size_t)(x0 + kx0)) * ic;
            const float *ws = w + (size_t)ky0 * row + (size_t)kx0 * ic;
            float *yp = y + ((size_t)oy * l->out_w + (size_t)ox) * oc;
            for (size_t o = 0; o < oc; o++) {
                const float *wo = ws + o * wsize;
                float acc = bias[o];
                for (int ky = ky0; ky < ky1; ky++) {
                    const float *wp = wo + (size_t)(ky - ky0) * row, *xp = xs + (size_t)(ky - ky0) * xstride;
                    for (size_t i = 0; i < n; i++) {
                        acc += wp[i] * xp[i];
                    }
                }
                yp[o] = act_f(acc, l->act);
            }
        }
    }
}

// Blocks of CNN_DW_BLOCK channels, one accumulator each (bias, then the valid taps in ky, kx order: the same
// sums as one channel at a time, and independent lanes a compiler may vectorise without reordering them).
static CNN_VECTORIZE void depthwise_f(const uint8_t *data, const cnn_layer_t *l, const float *x, float *y) {
    const size_t ch = l->out_c;
    const float *w = (const float *)(const void *)(data + l->params_offset);
    const float *bias = w + (size_t)l->kh * l->kw * ch;
    float acc[CNN_DW_BLOCK];
    for (int oy = 0; oy < l->out_h; oy++) {
        const int y0 = oy * l->sh - l->pad_t;
        int ky0, ky1;
        window_span(y0, l->kh, l->in_h, &ky0, &ky1);
        for (int ox = 0; ox < l->out_w; ox++) {
            const int x0 = ox * l->sw - l->pad_l;
            int kx0, kx1;
            window_span(x0, l->kw, l->in_w, &kx0, &kx1);
            float *yp = y + ((size_t)oy * l->out_w + (size_t)ox) * ch;
            for (size_t c0 = 0; c0 < ch; c0 += CNN_DW_BLOCK) {
                const size_t n = ch - c0 < CNN_DW_BLOCK ? ch - c0 : CNN_DW_BLOCK;
                for (size_t c = 0; c < n; c++) {
                    acc[c] = bias[c0 + c];
                }
                for (int ky = ky0; ky < ky1; ky++) {
                    const float *xrow = x + ((size_t)(y0 + ky) * l->in_w + (size_t)(x0 + kx0)) * ch + c0;
                    const float *wrow = w + ((size_t)ky * l->kw + (size_t)kx0) * ch + c0;
                    for (int kx = kx0; kx < kx1; kx++) {
                        const size_t d = (size_t)(kx - kx0) * ch;
                        for (size_t c = 0; c < n; c++) {
                            acc[c] += wrow[d + c] * xrow[d + c];
                        }
                    }
                }
                for (size_t c = 0; c < n; c++) {
                    yp[c0 + c] = act_f(acc[c], l->act);
                }
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

// As pool_q: per channel the same float32 operations in the same order (window rows top to bottom, columns left
// to right) as one channel at a time, in independent lanes.
static CNN_VECTORIZE void pool_f(const cnn_layer_t *l, const float *x, float *y) {
    const pool_geom_t g = pool_geom(l);
    const int maxpool = l->type == CNN_LAYER_MAXPOOL;
    // act_f as clamps: -inf / +inf bounds change no value (nor the sign of a zero, nor a NaN)
    const float lo = l->act != CNN_ACT_NONE ? 0.0f : -INFINITY, hi = l->act == CNN_ACT_RELU6 ? 6.0f : INFINITY;
    const size_t xstride = (size_t)g.in_w * g.ch;
    float acc[CNN_POOL_BLOCK];
    for (int oy = 0; oy < g.out_h; oy++) {
        const int y0 = oy * g.sh - g.pad_t;
        int ky0, ky1;
        window_span(y0, g.kh, g.in_h, &ky0, &ky1);
        for (int ox = 0; ox < g.out_w; ox++) {
            const int x0 = ox * g.sw - g.pad_l;
            int kx0, kx1;
            window_span(x0, g.kw, g.in_w, &kx0, &kx1);
            const float count = (float)((ky1 - ky0) * (kx1 - kx0));
            const size_t run = (size_t)(kx1 - kx0) * g.ch;
            const float *xs = x + (size_t)(y0 + ky0) * xstride + (size_t)(x0 + kx0) * g.ch;
            float *yp = y + ((size_t)oy * g.out_w + (size_t)ox) * g.ch;
            for (size_t c0 = 0; c0 < g.ch; c0 += CNN_POOL_BLOCK) {
                const size_t n = g.ch - c0 < CNN_POOL_BLOCK ? g.ch - c0 : CNN_POOL_BLOCK;
                for (size_t c = 0; c < n; c++) {
                    acc[c] = maxpool ? -INFINITY : 0.0f;
                }
                for (int ky = ky0; ky < ky1; ky++) {   // two loop nests: -O2 does not unswitch the test
                    const float *xr = xs + (size_t)(ky - ky0) * xstride + c0;
                    if (maxpool) {
                        for (size_t d = 0; d < run; d += g.ch) {
                            for (size_t c = 0; c < n; c++) {
                                acc[c] = xr[d + c] > acc[c] ? xr[d + c] : acc[c];
                            }
                        }
                    } else {
                        for (size_t d = 0; d < run; d += g.ch) {
                            for (size_t c = 0; c < n; c++) {
                                acc[c] += xr[d + c];
                            }
                        }
                    }
                }
                if (!maxpool) {
                    for (size_t c = 0; c < n; c++) {
                        acc[c] /= count;
                    }
                }
                for (size_t c = 0; c < n; c++) {   // act_f with loop-invariant bounds: vectorisable
                    const float v = acc[c] < lo ? lo : acc[c];
                    yp[c0 + c] = v > hi ? hi : v;
                }
            }
        }
    }
}

static void add_f(const cnn_layer_t *l, const float *x1, const float *x2, float *y) {
    const uint32_t n = (uint32_t)l->out_h * l->out_w * l->out_c;
    for (uint32_t k = 0; k < n; k++) {
        y[k] = act_f(x1[k] + x2[k], l->act);
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

// The input image and the int8 output: plain elementwise loops over locals (not info-> fields, which the compiler
// must reload after every store through an aliasing pointer), vectorised.
static CNN_VECTORIZE void input_q(const uint8_t *image, int8_t *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        x[i] = (int8_t)((int32_t)image[i] - 128);
    }
}

static CNN_VECTORIZE void input_f(const uint8_t *image, float *x, size_t n, float scale, float offset) {
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)image[i] * scale + offset;
    }
}

static CNN_VECTORIZE void output_q(const int8_t *q, float *out, size_t n, int32_t zp, float scale) {
    for (size_t i = 0; i < n; i++) {
        out[i] = (float)((int32_t)q[i] - zp) * scale;
    }
}

void cnn_run(const cnn_model_t *m, const uint8_t *image, float *out) {
    const cnn_info_t *info = m->info;
    uint8_t *const arena = m->arena;
    const uint32_t slot = info->slot_size;
    const int quant = info->dtype == CNN_DTYPE_INT8;
    if (quant) {   // the input is in slot 0
        input_q(image, (int8_t *)arena, info->n_inputs);
    } else {
        input_f(image, (float *)(void *)arena, info->n_inputs, info->in_scale, info->in_offset);
    }
    int softmax = 0;
    for (int i = 0; i < info->n_layers; i++) {
        const cnn_layer_t *l = &info->layers[i];
        void *x = arena + l->in_slot * slot, *y = arena + l->out_slot * slot;
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
            case CNN_LAYER_ADD: {
                void *x2 = arena + l->in2_slot * slot;
                quant ? add_q(m->data, l, x, x2, y) : add_f(l, x, x2, y);
                break;
            }
            case CNN_LAYER_SOFTMAX:
                softmax = 1;
                break;
            default:   // flatten: the same bytes, a new shape
                break;
        }
    }
    const uint8_t *result = arena + info->layers[info->n_layers - 1].out_slot * slot;
    if (quant) {
        output_q((const int8_t *)result, out, info->n_outputs, info->out_zp, info->out_scale);
    } else {
        memcpy(out, result, info->n_outputs * sizeof(float));
    }
    if (softmax) {
        softmax_f(out, info->n_outputs);
    }
}
