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

#define TREES_LEAF_CLASS 0     // one class index per leaf: hard (majority) voting
#define TREES_LEAF_PROBA 32    // n_classes float32 per leaf: soft voting (classifier), or one float32
                               // value per leaf (regressor: the prediction is the mean over trees)

// Binary format: header (little-endian), then roots, nodes, leaves, table.
#define TREES_MAGIC "TSTR"
#define TREES_FORMAT_VERSION 1
#define TREES_KIND_CLASSIFIER 1
#define TREES_KIND_REGRESSOR 2   // one output (n_classes = 1), float32 leaf values (leaf_bits 32)
#define TREES_HEADER_SIZE 32
#define TREES_NODE_SIZE 8

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
    uint32_t max_leaf_values;   // leaves * (1 for class leaves, n_classes for proba leaves)
    uint32_t max_thresholds;    // float threshold table entries (0 for integer-feature models)
    uint16_t max_features;
    uint16_t max_classes;
    int32_t *roots;             // max_trees
    trees_node_t *nodes;        // max_nodes
    uint8_t *leaf_class;        // max_leaf_values
    float *leaf_proba;          // max_leaf_values: probabilities, or regression leaf values
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

uint32_t trees_crc32(uint32_t crc, const uint8_t *data, size_t len);

// Quantise float features (n_features values, none NaN) into int16 as the model expects.
void trees_quantize(const trees_model_t *m, const float *x, int16_t *q);

// Predict: fills proba (n_classes) with vote fractions or mean leaf probabilities and returns
// the class index (argmax, lowest index on ties). votes is caller scratch of n_classes floats.
int32_t trees_predict(const trees_model_t *m, const int16_t *x, float *votes);

// Regression: the mean over trees of the leaf values (as scikit-learn's forests and trees), summed
// in float32 with Kahan compensation so that the error stays within a few float32 ulps of the sum
// whatever the number of trees.
float trees_regress(const trees_model_t *m, const int16_t *x);

#endif
