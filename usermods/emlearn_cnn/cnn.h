// Convolutional neural network inference, int8 and float32: pure C99 core, no MicroPython includes,
// no global state, no allocation. Models are written by tools/tinysense/cnn (PyTorch, torch.fx, ONNX); the
// NumPy integer reference there (tinysense.cnn.reference) computes the same arithmetic bit for bit.
//
// Tensors are H x W x C (channels innermost). Tensor 0 is the input image, tensor i + 1 the output of
// layer i. Layers run in file order (a topological order of the graph); each reads one earlier tensor
// (src; add also src2) and writes one of n_slots equal slots of one arena (each slot holds the largest
// tensor). The converter plans the slots by liveness and stores them in the file: a sequential model
// ping-pongs between two slots, a residual block keeps its shortcut in a third; cnn_check_file proves
// that no layer overwrites a tensor a later layer still reads. Flatten is free (same bytes, new shape). Every inner loop runs over contiguous channels (conv: input channels against an
// O x KH x KW x I weight row; depthwise: channels against KH x KW x C weights; dense: a weight row), so a
// SIMD kernel (ESP32-S3 PIE) can replace it later without changing the file format.
//
// int8 (TFLite's scheme): per-channel symmetric int8 weights, asymmetric int8 activations
// (real = scale * (q - zero_point)), int32 biases at input_scale * weight_scale[c], and per-channel
// requantisation by an int32 multiplier M (0 <= M < 2^31) and a right shift s (1..62):
//     q_out = clamp(((acc * M + 2^(s-1)) >> s) + out_zp, act_min, act_max)
// computed in int64 with an arithmetic right shift: ONE rounding, half-way cases rounded towards
// +infinity (TFLite's "single rounding" variant, not gemmlowp's double rounding). ReLU / ReLU6 are the
// clamp bounds. Pooling keeps the input's scale and zero point; average pooling divides the int32 sum by
// the count rounding half away from zero. The input image's uint8 pixel p becomes q = p - 128.
// add (TFLite's ADD): both inputs are shifted left by 20 bits and rescaled to a common scale with their
// own (M, s) (one rounding each, as above), summed in int32 and requantised with the output's (M, s):
//     a = ((q1 - zp1) << 20) rescaled by (M1, s1); b likewise; q_out = clamp(requant(a + b, M, s) + out_zp)
// The output is dequantised as (float)(q - out_zp) * out_scale (one float32 multiplication); a final
// softmax runs in float32 on those values.
//
// Model file (little-endian; every offset from the start of the file):
//   header (48 bytes): "TSCN", u8 version (2; version 1 is still read), u8 dtype (1 float32, 2 int8),
//     u8 n_layers, u8 flags (0), u32 CRC32 (of the 8 bytes before it, then of everything after it),
//     u32 file length, u32 arena bytes (n_slots x the largest tensor's bytes rounded up to 16),
//     u16 in_h, in_w, in_c, u16 n_slots (version 1: 0, meaning 2), f32 in_scale, f32 in_offset (float32 models: the
//     network's input is p * in_scale + in_offset), f32 out_scale, i32 out_zp (int8), u32 0
//   n_layers records of 32 bytes: u8 type, u8 act, u8 kh, u8 kw, u8 stride_h, u8 stride_w, u8 pad_top,
//     u8 pad_left, u16 out_h, out_w, out_c, u16 0, u32 params offset, u32 params bytes,
//     i8 in_zp, i8 out_zp, i8 act_min, i8 act_max (int8 models; 0 in float32 ones),
//     u8 src, u8 src2 (tensor indices, src <= layer index; src2 for add only, else 0), u8 out_slot, u8 0
//     (version 1: all four 0, meaning src = the previous layer, slots alternating 0, 1, 0, ...; the input in 0)
//   The input image is in slot 0. flatten/softmax must write their input's slot; add may write one of its
//   inputs' slots when that input is not read later; every other layer writes a slot holding no live tensor.
//   parameters, each block 16-byte aligned:
//     conv2d     float: w[out_c][kh][kw][in_c], b[out_c]
//                int8:  w int8[out_c][kh][kw][in_c] (padded to 4 bytes), i32 bias[out_c], i32 M[out_c], i32 s[out_c]
//     depthwise  the same with w[kh][kw][c] (one filter per channel, out_c == in_c)
//     dense      the same with w[out][in] (in = in_h * in_w * in_c, flattened H x W x C)
//     add        float: none; int8: i32 M[3], i32 s[3] (input 1, input 2, output)
//     pools, global average pool, flatten, softmax: none
#ifndef CNN_H
#define CNN_H

#include <stddef.h>
#include <stdint.h>

#define CNN_MAGIC "TSCN"
#define CNN_FORMAT_VERSION 2
#define CNN_MAX_SLOTS 16
#define CNN_ADD_LEFT_SHIFT 20
#define CNN_HEADER_SIZE 48
#define CNN_LAYER_SIZE 32
#define CNN_MAX_LAYERS 64
#define CNN_MAX_DIM 2048           // height, width, channels
#define CNN_MAX_TENSOR (1u << 22)  // values in one tensor
#define CNN_MAX_DENSE_IN 60000u    // keeps an int8 dot product within int32
#define CNN_MAX_KERNEL 5           // conv2d and depthwise
#define CNN_ALIGN 16

#define CNN_DTYPE_FLOAT32 1
#define CNN_DTYPE_INT8 2

#define CNN_LAYER_CONV2D 1
#define CNN_LAYER_DEPTHWISE 2
#define CNN_LAYER_MAXPOOL 3
#define CNN_LAYER_AVGPOOL 4
#define CNN_LAYER_GLOBAL_AVGPOOL 5
#define CNN_LAYER_DENSE 6
#define CNN_LAYER_FLATTEN 7
#define CNN_LAYER_SOFTMAX 8
#define CNN_LAYER_ADD 9
#define CNN_N_LAYER_TYPES 10

#define CNN_ACT_NONE 0
#define CNN_ACT_RELU 1
#define CNN_ACT_RELU6 2

typedef struct {
    uint8_t type, act, kh, kw, sh, sw, pad_t, pad_l;
    uint16_t in_h, in_w, in_c, out_h, out_w, out_c;
    int8_t in_zp, out_zp, act_min, act_max;
    uint32_t params_offset, params_size;
    uint8_t src, src2;              // tensor indices (0 the input, j + 1 layer j's output); src2: add only
    uint8_t in_slot, in2_slot, out_slot;
    int8_t in2_zp;                  // add, int8: the second input's zero point
} cnn_layer_t;

typedef struct {
    uint8_t dtype;
    uint8_t n_layers;
    uint16_t in_h, in_w, in_c;
    uint32_t n_inputs, n_outputs;
    uint16_t out_h, out_w, out_c;
    uint32_t arena_size;           // bytes, n_slots slots of slot_size
    uint32_t slot_size;
    uint16_t n_slots;
    uint8_t version;
    uint32_t file_size;
    float in_scale, in_offset, out_scale;
    int32_t out_zp;
    // The caller's layer table, sized by cnn_layer_count() (set both before cnn_check_file, which keeps them):
    // a model holds only its own layers, not CNN_MAX_LAYERS slots (40 bytes each).
    cnn_layer_t *layers;
    uint8_t layers_capacity;
} cnn_info_t;

typedef struct {
    const cnn_info_t *info;
    const uint8_t *data;           // the model file (params are read from it in place, 4-byte aligned)
    uint8_t *arena;                // info->arena_size bytes, CNN_ALIGN-aligned
} cnn_model_t;

typedef struct {
    char message[112];
} cnn_error_t;

typedef enum {
    CNN_OK = 0,
    CNN_ERR_FORMAT,
} cnn_status_t;

// The number of entries info->layers needs for this file: the header's layer count when it is in range, else 1
// (cnn_check_file then rejects the file). Reads one header byte, checks nothing else.
uint8_t cnn_layer_count(const uint8_t *data, size_t len);

// Validate a whole model file (header, CRC32, layer chain and shapes, parameter blocks, finite float
// parameters, requantisation ranges, the planned arena size) and describe it in info (into info->layers, which
// must hold info->layers_capacity >= cnn_layer_count(data, len) entries). Nothing is kept from data. Parameters must be 4-byte aligned in memory (the caller checks data's address).
cnn_status_t cnn_check_file(const uint8_t *data, size_t len, cnn_info_t *info, cnn_error_t *err);

// Run a checked model on a uint8 H x W x C image (info->n_inputs bytes) and write info->n_outputs
// floats to out. Allocates nothing; the arena is the only memory written besides out.
void cnn_run(const cnn_model_t *m, const uint8_t *image, float *out);

uint32_t cnn_arena_required(const cnn_info_t *info);

#endif
