// MLP core: model file validation and float32 inference. See net.h for the format.
#include "net.h"

#include "../tinysense_modelfile/modelfile.h"

#include <math.h>
#include <string.h>

#define fail(err, status, ...) MODELFILE_FAIL(err, status, __VA_ARGS__)

static char printable(uint8_t c) {
    return (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
}

static const char *const activation_names[NET_N_ACTIVATIONS] = { "identity", "relu", "logistic", "tanh", "softmax" };

net_status_t net_check_file(const uint8_t *data, size_t len, net_info_t *info, net_error_t *err) {
    memset(info, 0, sizeof(*info));
    if (len < 4) {
        return fail(err, NET_ERR_FORMAT, "not a net model (truncated magic: %d bytes)", (int)len);
    }
    if (memcmp(data, NET_MAGIC, 4) != 0) {
        const char *other = NULL;
        if (memcmp(data, "TSTR", 4) == 0) {
            other = "an emlearn_trees model";
        } else if (memcmp(data, "TSKN", 4) == 0) {
            other = "an emlearn_neighbors model";
        }
        if (other != NULL) {
            return fail(err, NET_ERR_FORMAT, "this is %s (magic '%.4s'), not a net model ('TSNN')", other,
                (const char *)data);
        }
        return fail(err, NET_ERR_FORMAT, "not a net model (magic '%c%c%c%c', expected 'TSNN')",
            printable(data[0]), printable(data[1]), printable(data[2]), printable(data[3]));
    }
    if (len < NET_HEADER_SIZE) {
        return fail(err, NET_ERR_FORMAT, "truncated header: %d of %d bytes", (int)len, NET_HEADER_SIZE);
    }
    if (data[4] != NET_FORMAT_VERSION) {
        return fail(err, NET_ERR_FORMAT, "format version %d is not supported (expected %d)", data[4],
            NET_FORMAT_VERSION);
    }
    info->kind = data[5];
    info->n_layers = data[6];
    info->flags = data[7];
    if (info->kind != NET_KIND_CLASSIFIER && info->kind != NET_KIND_REGRESSOR) {
        return fail(err, NET_ERR_FORMAT, "model kind %d is unknown (1 classifier, 2 regressor)", info->kind);
    }
    if (info->n_layers < 1 || info->n_layers > NET_MAX_LAYERS) {
        return fail(err, NET_ERR_FORMAT, "%d layers: must be 1..%d", info->n_layers, NET_MAX_LAYERS);
    }
    if ((info->flags & ~NET_FLAG_INPUT_TRANSFORM) != 0) {
        return fail(err, NET_ERR_FORMAT, "unknown flags 0x%02x", info->flags);
    }
    const size_t table = NET_HEADER_SIZE + 2u * (info->n_layers + 1u) + info->n_layers;
    const size_t table_padded = (table + 3u) & ~(size_t)3u;
    if (len < table_padded) {
        return fail(err, NET_ERR_FORMAT, "truncated layer table: %d of %d bytes", (int)len, (int)table_padded);
    }
    for (uint32_t l = 0; l <= info->n_layers; l++) {
        info->sizes[l] = modelfile_rd_u16(data + NET_HEADER_SIZE + 2 * l);
        if (info->sizes[l] < 1 || info->sizes[l] > NET_MAX_WIDTH) {
            return fail(err, NET_ERR_FORMAT, "layer size %d (sizes[%d]) is outside 1..%d", info->sizes[l], (int)l,
                NET_MAX_WIDTH);
        }
        if (info->sizes[l] > info->max_width) {
            info->max_width = info->sizes[l];
        }
    }
    const uint8_t *acts = data + NET_HEADER_SIZE + 2 * (info->n_layers + 1);
    for (uint32_t l = 0; l < info->n_layers; l++) {
        const uint8_t a = acts[l];
        info->activations[l] = a;
        if (a >= NET_N_ACTIVATIONS) {
            return fail(err, NET_ERR_FORMAT, "layer %d has unknown activation %d", (int)l, a);
        }
        if (l + 1 < info->n_layers && a == NET_ACT_SOFTMAX) {
            return fail(err, NET_ERR_FORMAT, "hidden layer %d uses softmax (only the output layer may)", (int)l);
        }
    }
    for (size_t i = table; i < table_padded; i++) {
        if (data[i] != 0) {
            return fail(err, NET_ERR_FORMAT, "non-zero padding after the layer table");
        }
    }
    const uint8_t out_act = info->activations[info->n_layers - 1];
    const uint32_t n_out = info->sizes[info->n_layers];
    if (info->kind == NET_KIND_CLASSIFIER) {
        if (!((out_act == NET_ACT_SOFTMAX && n_out >= 2) || (out_act == NET_ACT_LOGISTIC && n_out == 1))) {
            return fail(err, NET_ERR_FORMAT,
                "a classifier needs softmax over >= 2 outputs or logistic over 1, not %s over %d",
                activation_names[out_act], (int)n_out);
        }
    } else if (out_act != NET_ACT_IDENTITY) {
        return fail(err, NET_ERR_FORMAT, "a regressor needs an identity output layer, not %s",
            activation_names[out_act]);
    }
    // Counts: at most 32 * 4096 * 4097 + 2 * 4096 values, well within 32 bits.
    uint32_t n_params = 0;
    if (info->flags & NET_FLAG_INPUT_TRANSFORM) {
        n_params += 2u * info->sizes[0];
    }
    for (uint32_t l = 0; l < info->n_layers; l++) {
        n_params += (uint32_t)info->sizes[l + 1] * ((uint32_t)info->sizes[l] + 1u);
    }
    info->n_params = n_params;
    info->params_offset = table_padded;
    const uint64_t expected = (uint64_t)table_padded + 4u * (uint64_t)n_params;
    if ((uint64_t)len < expected) {
        return fail(err, NET_ERR_FORMAT, "truncated model: %lu of %lu bytes", (unsigned long)len,
            (unsigned long)expected);
    }
    if ((uint64_t)len > expected) {
        return fail(err, NET_ERR_FORMAT, "%lu trailing bytes after the model", (unsigned long)(len - expected));
    }
    uint32_t crc = modelfile_crc32(0, data, 8);
    crc = modelfile_crc32(crc, data + NET_HEADER_SIZE, len - NET_HEADER_SIZE);
    if (crc != modelfile_rd_u32(data + 8)) {
        return fail(err, NET_ERR_FORMAT, "checksum mismatch (corrupted file)");
    }
    const uint8_t *p = data + table_padded;
    uint32_t start = 0;
    if (info->flags & NET_FLAG_INPUT_TRANSFORM) {
        for (uint32_t i = 0; i < info->sizes[0]; i++) {
            const float offset = modelfile_rd_f32(p + 4 * i);
            const float scale = modelfile_rd_f32(p + 4 * (info->sizes[0] + i));
            if (!isfinite(offset) || !isfinite(scale)) {
                return fail(err, NET_ERR_FORMAT, "input transform of input %d is not finite", (int)i);
            }
        }
        start = 2u * info->sizes[0];
    }
    uint32_t layer = 0, layer_end = start + (uint32_t)info->sizes[1] * ((uint32_t)info->sizes[0] + 1u);
    for (uint32_t i = start; i < n_params; i++) {
        while (i >= layer_end) {
            layer++;
            layer_end += (uint32_t)info->sizes[layer + 1] * ((uint32_t)info->sizes[layer] + 1u);
        }
        if (!isfinite(modelfile_rd_f32(p + 4 * (size_t)i))) {
            return fail(err, NET_ERR_FORMAT, "layer %d has a weight or bias that is not finite", (int)layer);
        }
    }
    return NET_OK;
}

void net_setup(net_model_t *m, const net_info_t *info, const uint8_t *data, float *params, float *act_a,
    float *act_b) {
    m->info = *info;
    const uint8_t *p = data + info->params_offset;
    for (size_t i = 0; i < info->n_params; i++) {
        params[i] = modelfile_rd_f32(p + 4 * i);
    }
    if (info->flags & NET_FLAG_INPUT_TRANSFORM) {
        m->input_offset = params;
        m->input_scale = params + info->sizes[0];
        m->params = params + 2u * info->sizes[0];
    } else {
        m->input_offset = NULL;
        m->input_scale = NULL;
        m->params = params;
    }
    m->act_a = act_a;
    m->act_b = act_b;
}

uint32_t net_inputs(const net_model_t *m) {
    return m->info.sizes[0];
}

uint32_t net_outputs(const net_model_t *m) {
    const uint32_t n_out = m->info.sizes[m->info.n_layers];
    return (m->info.kind == NET_KIND_CLASSIFIER && n_out == 1) ? 2u : n_out;
}

static float logistic(float v) {
    return 1.0f / (1.0f + expf(-v));
}

static void activate(uint8_t activation, float *v, uint32_t n) {
    switch (activation) {
        case NET_ACT_RELU:
            for (uint32_t i = 0; i < n; i++) {
                v[i] = v[i] > 0.0f ? v[i] : 0.0f;
            }
            break;
        case NET_ACT_LOGISTIC:
            for (uint32_t i = 0; i < n; i++) {
                v[i] = logistic(v[i]);
            }
            break;
        case NET_ACT_TANH:
            for (uint32_t i = 0; i < n; i++) {
                v[i] = tanhf(v[i]);
            }
            break;
        case NET_ACT_SOFTMAX: {
            float largest = v[0];
            for (uint32_t i = 1; i < n; i++) {
                if (v[i] > largest) {
                    largest = v[i];
                }
            }
            float sum = 0.0f;
            for (uint32_t i = 0; i < n; i++) {
                v[i] = expf(v[i] - largest);
                sum += v[i];
            }
            for (uint32_t i = 0; i < n; i++) {
                v[i] /= sum;
            }
            break;
        }
        default:   // identity
            break;
    }
}

int32_t net_predict(const net_model_t *m, const float *x, float *out) {
    const net_info_t *info = &m->info;
    const uint32_t n_in = info->sizes[0];
    float *in = m->act_a, *next = m->act_b;
    if (m->input_offset != NULL) {
        for (uint32_t i = 0; i < n_in; i++) {
            in[i] = (x[i] - m->input_offset[i]) * m->input_scale[i];
        }
    } else {
        memcpy(in, x, n_in * sizeof(float));
    }
    const float *w = m->params;
    for (uint32_t l = 0; l < info->n_layers; l++) {
        const uint32_t n_inputs = info->sizes[l], n_outputs = info->sizes[l + 1];
        const float *b = w + (size_t)n_outputs * n_inputs;
        for (uint32_t o = 0; o < n_outputs; o++) {
            const float *row = w + (size_t)o * n_inputs;
            float sum = 0.0f;
            for (uint32_t i = 0; i < n_inputs; i++) {
                sum += row[i] * in[i];
            }
            next[o] = sum + b[o];
        }
        activate(info->activations[l], next, n_outputs);
        w = b + n_outputs;
        float *tmp = in;
        in = next;
        next = tmp;
    }
    // `in` holds the output layer.
    const uint32_t n_out = info->sizes[info->n_layers];
    if (info->kind == NET_KIND_REGRESSOR) {
        if (out != NULL) {
            memcpy(out, in, n_out * sizeof(float));
        }
        return 0;
    }
    if (n_out == 1) {
        const float p = in[0];
        if (out != NULL) {
            out[0] = 1.0f - p;
            out[1] = p;
        }
        return p > 0.5f ? 1 : 0;
    }
    int32_t best = 0;
    for (uint32_t i = 1; i < n_out; i++) {
        if (in[i] > in[best]) {
            best = (int32_t)i;
        }
    }
    if (out != NULL) {
        memcpy(out, in, n_out * sizeof(float));
    }
    return best;
}
