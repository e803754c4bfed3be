// Tree ensembles (random forest, extra trees, decision tree) on int16 features: pure C core.
//
// No MicroPython includes: the binding (mod_emlearn_trees.c) owns all memory and hands the
// core fixed-capacity buffers; the loaders fill them after full validation and never write
// past a capacity. Prediction walks each tree with `x[feature] < threshold` (the emlearn rule)
// and allocates nothing.
//
// Node children are relative forward offsets (child >= 1: node index + child) or leaves
// (child < 0: leaf -child-1), as in emlearn's eml_trees.h. Forward-only links make every walk
// terminate after at most n_nodes steps, whatever a model file holds.
//
// Feature modes:
//   TREES_FEATURES_INT   int16 features used as they are (integer features, e.g. pixel counts).
//                        float input is rounded to the nearest integer and saturated.
//   TREES_FEATURES_TABLE float features quantised per feature to their rank among the model's
//                        own split thresholds (float32, sorted): q = #{t in table[f] : t < x}.
//                        A node with table index k has threshold k + 1, so `q < k + 1` is exactly
//                        `x <= t_k`: scikit-learn's test on every float32 input, not just on data.
#ifndef TREES_H
#define TREES_H

#include <stddef.h>
#include <stdint.h>

#define TREES_FEATURES_INT 0
#define TREES_FEATURES_TABLE 1

#define TREES_LEAF_CLASS 0     // one class index (uint8) per leaf: hard (majority) voting
#define TREES_LEAF_Q8 8        // n_classes uint8 per leaf summing to 255: soft voting, quantised probabilities
#define TREES_LEAF_Q16 16      // n_classes uint16 per leaf summing to 65535: soft voting, quantised probabilities
#define TREES_LEAF_PROBA 32    // n_classes float32 per leaf: soft voting (classifier), or one float32
                               // value per leaf (regressor: the prediction is the mean over trees)

// Binary format version 2 (little-endian; version 1 files are rejected with a message asking to re-convert):
//   0  "TSTR"  4 u8 version (2)  5 u8 kind  6 u8 leaf_bits (0, 8, 16, 32)  7 u8 feature mode
//   8  u16 n_features  10 u16 n_classes  12 u16 n_trees  14 i16 threshold_base
//   16 u32 n_nodes  20 u32 n_leaves  24 u32 n_table  28 u32 CRC-32 of bytes 0..27 and 32..end
//   32 u8 feature_bits  33 u8 threshold_bits  34 u8 child_bits  35 u8 root_bits
//   36 bit stream (LSB first, zero-padded to a byte): n_trees roots (root_bits: root + n_leaves), then per
//      node feature (feature_bits), threshold - threshold_base (threshold_bits), left and right
//      (child_bits each: child + n_leaves)
//   then leaves: uint8 class | n_classes uint8 | n_classes uint16 | n_classes float32 (one float32 for a
//   regressor); then, for float features, n_features uint16 table counts and the float32 table.
#define TREES_MAGIC "TSTR"
#define TREES_FORMAT_VERSION 2
#define TREES_KIND_CLASSIFIER 1
#define TREES_KIND_REGRESSOR 2   // one output (n_classes = 1), float32 leaf values (leaf_bits 32)
#define TREES_HEADER_SIZE 36
#define TREES_MAX_FIELD_BITS 24

typedef struct {
    uint16_t feature;
    int16_t threshold;   // go left when x[feature] < threshold
    int16_t left;
    int16_t right;
} trees_node_t;

typedef struct {
    // Capacities (fixed at construction, buffers owned by the caller).
    uint32_t max_trees;
    uint32_t max_nodes;
    uint32_t max_leaf_values;   // leaves * (1 for class leaves, n_classes for probability leaves)
    uint8_t max_leaf_bits;      // widest leaf value the leaf buffer holds: 8, 16 or 32
    uint32_t max_thresholds;    // float threshold table entries (0 for integer-feature models)
    uint16_t max_features;
    uint16_t max_classes;
    int32_t *roots;             // max_trees
    trees_node_t *nodes;        // max_nodes
    uint8_t *leaf_class;        // max_leaf_values: class leaves, or 8-bit probabilities (leaf_bits 8)
    uint16_t *leaf_q16;         // max_leaf_values if max_leaf_bits >= 16: 16-bit probabilities
    float *leaf_proba;          // max_leaf_values if max_leaf_bits == 32: probabilities, or regression values
    float *table;               // max_thresholds
    uint16_t *table_start;      // max_features + 1
    // The loaded model (valid when loaded != 0).
    uint8_t loaded;
    uint8_t kind;               // TREES_KIND_CLASSIFIER or TREES_KIND_REGRESSOR
    uint8_t leaf_bits;
    uint8_t feature_mode;
    uint16_t n_features;
    uint16_t n_classes;
    uint32_t n_trees;
    uint32_t n_nodes;
    uint32_t n_leaves;
    uint32_t n_table;
} trees_model_t;

typedef struct {
    char message[96];      // names the problem (and the CSV line number)
} trees_error_t;

typedef enum {
    TREES_OK = 0,
    TREES_ERR_FORMAT,      // malformed or inconsistent model data
    TREES_ERR_CAPACITY,    // the model needs more than new() allowed
} trees_status_t;

// Is `data` a binary trees model (by magic)? Another tinysense model type gives TREES_ERR_FORMAT
// with a message naming it; text is left to trees_load_csv.
int trees_is_binary(const uint8_t *data, size_t len);

trees_status_t trees_load_binary(trees_model_t *m, const uint8_t *data, size_t len, trees_error_t *err);
trees_status_t trees_load_csv(trees_model_t *m, const char *text, size_t len, trees_error_t *err);

// Quantise float features (n_features values, none NaN) into int16 as the model expects.
void trees_quantize(const trees_model_t *m, const float *x, int16_t *q);

// Prediction scratch: integer vote sums (class and quantised leaves) or float sums (float32 leaves).
typedef union {
    uint32_t count;
    float sum;
} trees_vote_t;

// Predict: fills proba (n_classes) with vote fractions or mean leaf probabilities and returns
// the class index (argmax, lowest index on ties; on the exact integer sums for class and quantised
// leaves). votes is caller scratch of n_classes; proba may be NULL (not written).
int32_t trees_predict(const trees_model_t *m, const int16_t *x, trees_vote_t *votes, float *proba);

// Regression: the mean over trees of the leaf values (as scikit-learn's forests and trees), summed
// in float32 with Kahan compensation so that the error stays within a few float32 ulps of the sum
// whatever the number of trees.
float trees_regress(const trees_model_t *m, const int16_t *x);

#endif
