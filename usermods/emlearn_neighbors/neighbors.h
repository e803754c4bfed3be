// k-nearest-neighbours classification on int16 features: pure C core (no MicroPython includes).
//
// The binding (mod_emlearn_neighbors.c) owns every buffer and hands the core fixed capacities;
// nothing here allocates, and there is no global state: two models never share anything.
//
// Distances are exact: squared Euclidean distances of int16 vectors summed in uint64 (one term is
// at most 65535^2 < 2^32; with at most NEIGHBORS_MAX_FEATURES terms the sum stays below 2^44), so
// no difference, however large, overflows. Each ranked item is one uint64 key:
// (squared distance << NEIGHBORS_INDEX_BITS) | item index.
//
// Which k items vote: the same as scikit-learn's brute-force search (ArgKmin), which pushes the
// items in index order into a size-k max-heap and rejects an item whose distance is >= the
// heap's largest. That rule decides which of several equally distant items at the k-th place
// vote; the core replays it exactly (see neighbors_predict). The votes are counted per label;
// a tie goes to the lowest label (numpy.argmax over scikit-learn's sorted classes_).
//
// Float input is quantised per feature with an affine map stored with the model:
//   q = clamp(round_half_away((x - offset) * scale), -32768, 32767)
// computed in float32 (each operation rounded to float32 also on x87), which
// tools/tinysense/neighbors.py reproduces bit for bit in numpy.
#ifndef NEIGHBORS_H
#define NEIGHBORS_H

#include <stddef.h>
#include <stdint.h>

#define NEIGHBORS_INDEX_BITS 20
#define NEIGHBORS_MAX_ITEMS ((1u << NEIGHBORS_INDEX_BITS) - 1u)   // 1048575
#define NEIGHBORS_MAX_FEATURES 4096u

// Binary model file (little-endian): 24-byte header, then
//   [float32 offset[n_features], float32 scale[n_features]]   when flags & NEIGHBORS_FLAG_QUANTIZER
//   int16 data[n_items][n_features]
//   int16 labels[n_items]
// Header: "TSKN", u8 version, u8 kind, u8 flags, u8 0, u16 n_features, u16 0, u32 k, u32 n_items,
// u32 CRC32 (of the 20 header bytes before it, then of everything after it).
#define NEIGHBORS_MAGIC "TSKN"
#define NEIGHBORS_FORMAT_VERSION 1
#define NEIGHBORS_KIND_CLASSIFIER 1
#define NEIGHBORS_FLAG_QUANTIZER 1
#define NEIGHBORS_HEADER_SIZE 24

typedef struct {
    // Capacities and buffers (set by the owner).
    uint32_t max_items;
    uint16_t n_features;
    int16_t *data;          // max_items * n_features
    int16_t *labels;        // max_items
    uint64_t *ranked;       // max_items: keys of the last prediction (scratch)
    int16_t *vote_labels;   // max_items: scratch for counting votes
    float *offset;          // n_features
    float *scale;           // n_features
    // State.
    uint32_t n_items;
    uint32_t k;
    uint32_t n_ranked;      // items ranked by the last predict (0: no valid result)
    uint32_t n_sorted;      // ranked[0..n_sorted) is in final order
} neighbors_model_t;

typedef struct {
    char message[112];
} neighbors_error_t;

typedef enum {
    NEIGHBORS_OK = 0,
    NEIGHBORS_ERR_FORMAT,     // malformed model data
    NEIGHBORS_ERR_CAPACITY,   // the file does not fit this model
} neighbors_status_t;

typedef struct {
    uint8_t flags;
    uint16_t n_features;
    uint32_t k;
    uint32_t n_items;
} neighbors_file_info_t;

// Set the identity quantiser and empty the model (buffers must be set).
void neighbors_reset(neighbors_model_t *m);

// Append an item (caller checked capacity). Invalidates the last prediction's results.
void neighbors_add(neighbors_model_t *m, const int16_t *x, int16_t label);

// Quantise n_features float values (none NaN) with the model's map.
void neighbors_quantize(const neighbors_model_t *m, const float *x, int16_t *q);

// Rank every item by distance to x and return the majority label of the k nearest.
// Preconditions (checked by the caller): 1 <= k <= n_items.
int16_t neighbors_predict(neighbors_model_t *m, const int16_t *x);

// The i-th ranked item of the last prediction (i < n_ranked): the k voters first, nearest first,
// then the other items, nearest first; equal distances in index order within each group.
// Returns the key: distance2 = key >> NEIGHBORS_INDEX_BITS, index = key & NEIGHBORS_MAX_ITEMS.
uint64_t neighbors_result(neighbors_model_t *m, uint32_t i);

// floor(sqrt(v)).
uint32_t neighbors_isqrt(uint64_t v);

// Validate a whole model file (header, sizes, length, CRC, quantiser values).
neighbors_status_t neighbors_check_file(const uint8_t *data, size_t len, neighbors_file_info_t *info,
    neighbors_error_t *err);

// Load a model file into m: n_features must equal the model's, n_items and k must fit max_items.
// On any error m is left unchanged.
neighbors_status_t neighbors_load(neighbors_model_t *m, const uint8_t *data, size_t len, neighbors_error_t *err);

// Size of the file neighbors_save writes, and write it (out has that many bytes).
size_t neighbors_saved_size(const neighbors_model_t *m);
void neighbors_save(const neighbors_model_t *m, uint8_t *out);

#endif
