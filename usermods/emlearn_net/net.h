// Multi-layer perceptron inference in float32 (scikit-learn MLPClassifier / MLPRegressor):
// pure C core, no MicroPython includes, no global state, no allocation.
//
// Layer l maps sizes[l] inputs to sizes[l + 1] outputs: out = act(W x + b), W stored row by row
// (one row of sizes[l] weights per output). Hidden layers use identity, relu, logistic or tanh;
// the output layer is softmax (multi-class classifier), logistic with one output (binary
// classifier: probabilities [1 - p, p]) or identity (regressor). An optional input transform
// x' = (x - offset) * scale per input carries a scikit-learn scaler (StandardScaler & co).
//
// Binary model file (little-endian):
//   header (12 bytes): "TSNN", u8 version, u8 kind, u8 n_layers, u8 flags,
//                      u32 CRC32 (of the 8 header bytes before it, then of everything after it)
//   u16 sizes[n_layers + 1], u8 activation[n_layers], zero padding to a multiple of 4 bytes
//   float32 offset[sizes[0]], float32 scale[sizes[0]]            when flags & NET_FLAG_INPUT_TRANSFORM
//   per layer: float32 weights[sizes[l + 1]][sizes[l]], float32 biases[sizes[l + 1]]
#ifndef NET_H
#define NET_H

#include <stddef.h>
#include <stdint.h>

#define NET_MAGIC "TSNN"
#define NET_FORMAT_VERSION 1
#define NET_HEADER_SIZE 12
#define NET_MAX_LAYERS 32
#define NET_MAX_WIDTH 4096

#define NET_KIND_CLASSIFIER 1
#define NET_KIND_REGRESSOR 2

#define NET_FLAG_INPUT_TRANSFORM 1

#define NET_ACT_IDENTITY 0
#define NET_ACT_RELU 1
#define NET_ACT_LOGISTIC 2
#define NET_ACT_TANH 3
#define NET_ACT_SOFTMAX 4
#define NET_N_ACTIVATIONS 5

typedef struct {
    uint8_t kind;
    uint8_t n_layers;
    uint8_t flags;
    uint16_t sizes[NET_MAX_LAYERS + 1];
    uint8_t activations[NET_MAX_LAYERS];
    size_t n_params;        // float32 values after the layer table (input transform + weights + biases)
    size_t params_offset;   // where they start in the file
    uint32_t max_width;     // the widest layer
} net_info_t;

typedef struct {
    net_info_t info;
    const float *input_offset;   // sizes[0] (NULL without input transform)
    const float *input_scale;
    const float *params;         // the first layer's weights; layers follow one another
    float *act_a;                // max_width scratch
    float *act_b;                // max_width scratch
} net_model_t;

typedef struct {
    char message[112];
} net_error_t;

typedef enum {
    NET_OK = 0,
    NET_ERR_FORMAT,
} net_status_t;

// Validate a whole model file (header, sizes, activations, length, CRC, finite values) and
// describe it. Nothing is kept from `data`.
net_status_t net_check_file(const uint8_t *data, size_t len, net_info_t *info, net_error_t *err);

// Copy the file's parameters into params (info->n_params floats, from a checked file) and set m up
// with two max_width scratch buffers.
void net_setup(net_model_t *m, const net_info_t *info, const uint8_t *data, float *params, float *act_a,
    float *act_b);

// Inputs and outputs as the caller sees them: sizes[0], and n_classes (2 for a binary classifier)
// or the regressor's outputs.
uint32_t net_inputs(const net_model_t *m);
uint32_t net_outputs(const net_model_t *m);

// Run the network on x (net_inputs values, finite) and write net_outputs values to out (unless
// NULL): class probabilities or regression outputs. Returns the predicted class (scikit-learn's predict:
// argmax with the lowest index on ties, p > 0.5 for a binary classifier), or 0 for a regressor.
int32_t net_predict(const net_model_t *m, const float *x, float *out);

#endif
