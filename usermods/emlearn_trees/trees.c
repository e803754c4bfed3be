// Tree ensembles on int16 features: loaders (binary, CSV) with full validation, and prediction.
// See trees.h for the model layout and the feature modes.
#include "trees.h"

#include "../tinysense_modelfile/modelfile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THRESHOLDS_PER_FEATURE 32767

#define fail(err, status, ...) MODELFILE_FAIL(err, status, __VA_ARGS__)

// ---- validation shared by both loaders ----

static trees_status_t check_child(const trees_model_t *m, uint32_t node, int32_t child, trees_error_t *err) {
    if (child == 0) {
        return fail(err, TREES_ERR_FORMAT, "node %d links to itself", (int)node);
    }
    if (child > 0) {
        if ((uint32_t)child >= m->n_nodes - node) {
            return fail(err, TREES_ERR_FORMAT, "node %d links past the last node (%d nodes)",
                (int)node, (int)m->n_nodes);
        }
    } else if ((uint32_t)(-(child + 1)) >= m->n_leaves) {
        return fail(err, TREES_ERR_FORMAT, "node %d links to a missing leaf (%d leaves)", (int)node, (int)m->n_leaves);
    }
    return TREES_OK;
}

// q_sums_exact: quantised leaves must sum to exactly 255 / 65535 (our binary format, where the converter
// made them so); emlearn's CSV leaves are rounded per class and may sum to a little less or more.
static trees_status_t validate(trees_model_t *m, int q_sums_exact, trees_error_t *err) {
    if (m->n_features == 0) {
        return fail(err, TREES_ERR_FORMAT, "model has no feature count");
    }
    if (m->n_classes == 0) {
        return fail(err, TREES_ERR_FORMAT, "model has no class count");
    }
    if (m->kind == TREES_KIND_REGRESSOR) {
        if (m->n_classes != 1) {
            return fail(err, TREES_ERR_FORMAT, "regression model has %d outputs, only 1 is supported",
                m->n_classes);
        }
        if (m->leaf_bits != TREES_LEAF_PROBA) {
            return fail(err, TREES_ERR_FORMAT, "regression model needs float32 leaves (leaf_bits 32)");
        }
    }
    if (m->n_trees == 0) {
        return fail(err, TREES_ERR_FORMAT, "model has no trees");
    }
    if (m->n_leaves == 0) {
        return fail(err, TREES_ERR_FORMAT, "model has no leaves");
    }
    if (m->feature_mode == TREES_FEATURES_TABLE) {
        if (m->table_start[0] != 0 || m->table_start[m->n_features] != m->n_table) {
            return fail(err, TREES_ERR_FORMAT, "threshold table counts do not add up");
        }
        for (uint32_t f = 0; f < m->n_features; f++) {
            const uint32_t start = m->table_start[f], end = m->table_start[f + 1];
            if (end < start || end - start > MAX_THRESHOLDS_PER_FEATURE) {
                return fail(err, TREES_ERR_FORMAT, "threshold table of feature %d is malformed", (int)f);
            }
            for (uint32_t i = start; i < end; i++) {
                if (!isfinite(m->table[i]) || (i > start && !(m->table[i - 1] < m->table[i]))) {
                    return fail(err, TREES_ERR_FORMAT, "threshold table of feature %d is not finite and increasing",
                        (int)f);
                }
            }
        }
    }
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        const trees_node_t *node = &m->nodes[i];
        if (node->feature >= m->n_features) {
            return fail(err, TREES_ERR_FORMAT, "node %d uses feature %d, beyond the model's features",
                (int)i, node->feature);
        }
        if (m->feature_mode == TREES_FEATURES_TABLE) {
            const int32_t count = m->table_start[node->feature + 1] - m->table_start[node->feature];
            if (node->threshold < 1 || node->threshold > count) {
                return fail(err, TREES_ERR_FORMAT, "node %d has threshold %d outside its feature's table",
                    (int)i, node->threshold);
            }
        }
        trees_status_t status = check_child(m, i, node->left, err);
        if (status == TREES_OK) {
            status = check_child(m, i, node->right, err);
        }
        if (status != TREES_OK) {
            return status;
        }
    }
    for (uint32_t t = 0; t < m->n_trees; t++) {
        const int32_t root = m->roots[t];
        if (root >= 0 ? (uint32_t)root >= m->n_nodes : (uint32_t)(-(root + 1)) >= m->n_leaves) {
            return fail(err, TREES_ERR_FORMAT, "tree %d has a root (%d) outside the model", (int)t, (int)root);
        }
    }
    if (m->leaf_bits == TREES_LEAF_CLASS) {
        for (uint32_t l = 0; l < m->n_leaves; l++) {
            if (m->leaf_class[l] >= m->n_classes) {
                return fail(err, TREES_ERR_FORMAT, "leaf %d holds class %d, beyond the model's classes",
                    (int)l, m->leaf_class[l]);
            }
        }
    } else if (m->leaf_bits == TREES_LEAF_Q8 || m->leaf_bits == TREES_LEAF_Q16) {
        const uint32_t full = m->leaf_bits == TREES_LEAF_Q8 ? 255u : 65535u;
        for (uint32_t l = 0; q_sums_exact && l < m->n_leaves; l++) {
            uint32_t total = 0;
            for (uint32_t c = 0; c < m->n_classes; c++) {
                const uint32_t v = l * m->n_classes + c;
                total += m->leaf_bits == TREES_LEAF_Q8 ? m->leaf_class[v] : m->leaf_q16[v];
            }
            if (total != full) {
                return fail(err, TREES_ERR_FORMAT, "leaf %d's quantised probabilities sum to %d, not %d",
                    (int)l, (int)total, (int)full);
            }
        }
    } else if (m->kind == TREES_KIND_REGRESSOR) {
        for (uint32_t l = 0; l < m->n_leaves; l++) {
            if (!isfinite(m->leaf_proba[l])) {
                return fail(err, TREES_ERR_FORMAT, "leaf %d holds a value that is not finite", (int)l);
            }
        }
    } else {
        const uint32_t n_values = m->n_leaves * m->n_classes;
        for (uint32_t v = 0; v < n_values; v++) {
            const float p = m->leaf_proba[v];
            if (!isfinite(p) || p < 0.0f || p > 1.0f) {
                return fail(err, TREES_ERR_FORMAT, "leaf %d holds a probability outside [0, 1]",
                    (int)(v / m->n_classes));
            }
        }
    }
    return TREES_OK;
}

static void reset(trees_model_t *m) {
    m->loaded = 0;
    m->kind = TREES_KIND_CLASSIFIER;
    m->leaf_bits = TREES_LEAF_CLASS;
    m->feature_mode = TREES_FEATURES_INT;
    m->n_features = 0;
    m->n_classes = 0;
    m->n_trees = 0;
    m->n_nodes = 0;
    m->n_leaves = 0;
    m->n_table = 0;
}

static trees_status_t check_counts(const trees_model_t *m, uint32_t leaf_values, trees_error_t *err) {
    if (m->n_features > m->max_features) {
        return fail(err, TREES_ERR_CAPACITY, "model has %d features, new() allows max_features=%d",
            m->n_features, m->max_features);
    }
    if (m->n_classes > m->max_classes) {
        return fail(err, TREES_ERR_CAPACITY, "model has %d classes, new() allows max_classes=%d",
            m->n_classes, m->max_classes);
    }
    if (m->n_trees > m->max_trees) {
        return fail(err, TREES_ERR_CAPACITY, "model has %d trees, new() allows max_trees=%d",
            (int)m->n_trees, (int)m->max_trees);
    }
    if (m->n_nodes > m->max_nodes) {
        return fail(err, TREES_ERR_CAPACITY, "model has %d nodes, new() allows max_nodes=%d",
            (int)m->n_nodes, (int)m->max_nodes);
    }
    if (leaf_values > m->max_leaf_values) {
        return fail(err, TREES_ERR_CAPACITY, "model has %d leaf values, new() allows max_leaves=%d",
            (int)leaf_values, (int)m->max_leaf_values);
    }
    if (m->n_table > m->max_thresholds) {
        return fail(err, TREES_ERR_CAPACITY, "model has %d thresholds, new() allows max_thresholds=%d",
            (int)m->n_table, (int)m->max_thresholds);
    }
    return TREES_OK;
}

// ---- binary format ----

int trees_is_binary(const uint8_t *data, size_t len) {
    return len >= 2 && data[0] == 'T' && data[1] == 'S';
}

// LSB-first bit reader over the node stream (its length is checked before any read).
typedef struct {
    const uint8_t *data;
    uint32_t pos;   // in bits
} bit_reader_t;

static uint32_t read_bits(bit_reader_t *r, uint32_t n) {
    uint32_t value = 0;
    for (uint32_t i = 0; i < n; i++, r->pos++) {
        value |= (uint32_t)((r->data[r->pos >> 3] >> (r->pos & 7u)) & 1u) << i;
    }
    return value;
}

// A stored child or root (value + n_leaves) back to its signed value, which must fit `limit`.
static int decode_link(uint32_t stored, uint32_t n_leaves, int32_t limit, int32_t *out) {
    const int64_t value = (int64_t)stored - (int64_t)n_leaves;
    if (value > limit) {
        return 0;
    }
    *out = (int32_t)value;
    return 1;
}

trees_status_t trees_load_binary(trees_model_t *m, const uint8_t *data, size_t len, trees_error_t *err) {
    reset(m);
    if (len < 4 || memcmp(data, TREES_MAGIC, 4) != 0) {
        if (len >= 4) {
            return fail(err, TREES_ERR_FORMAT, "not a trees model (magic '%c%c%c%c', expected 'TSTR')",
                data[0], data[1], data[2], data[3]);
        }
        return fail(err, TREES_ERR_FORMAT, "not a trees model (truncated magic)");
    }
    if (len >= 5 && data[4] == 1) {
        return fail(err, TREES_ERR_FORMAT,
            "format version 1 is no longer supported (expected %d): re-convert with tinysense.trees.convert",
            TREES_FORMAT_VERSION);
    }
    if (len < TREES_HEADER_SIZE) {
        return fail(err, TREES_ERR_FORMAT, "truncated header: %d of %d bytes", (int)len, TREES_HEADER_SIZE);
    }
    if (data[4] != TREES_FORMAT_VERSION) {
        return fail(err, TREES_ERR_FORMAT, "format version %d is not supported (expected %d)",
            data[4], TREES_FORMAT_VERSION);
    }
    if (data[5] != TREES_KIND_CLASSIFIER && data[5] != TREES_KIND_REGRESSOR) {
        return fail(err, TREES_ERR_FORMAT, "model kind %d is not supported (classifier 1, regressor 2)", data[5]);
    }
    const uint8_t leaf_bits = data[6], feature_mode = data[7];
    if (leaf_bits != TREES_LEAF_CLASS && leaf_bits != TREES_LEAF_Q8 && leaf_bits != TREES_LEAF_Q16 &&
        leaf_bits != TREES_LEAF_PROBA) {
        return fail(err, TREES_ERR_FORMAT, "leaf_bits %d is not supported (0, 8, 16 or 32)", leaf_bits);
    }
    if (feature_mode != TREES_FEATURES_INT && feature_mode != TREES_FEATURES_TABLE) {
        return fail(err, TREES_ERR_FORMAT, "feature mode %d is not supported (0 or 1)", feature_mode);
    }
    const uint32_t feature_bits = data[32], threshold_bits = data[33], child_bits = data[34], root_bits = data[35];
    if (feature_bits > 16 || threshold_bits > 16 || child_bits == 0 || child_bits > TREES_MAX_FIELD_BITS ||
        root_bits == 0 || root_bits > TREES_MAX_FIELD_BITS) {
        return fail(err, TREES_ERR_FORMAT, "node field widths %d/%d/%d/%d bits are not supported",
            (int)feature_bits, (int)threshold_bits, (int)child_bits, (int)root_bits);
    }
    const int32_t threshold_base = (int16_t)modelfile_rd_u16(data + 14);
    m->n_features = modelfile_rd_u16(data + 8);
    m->n_classes = modelfile_rd_u16(data + 10);
    m->n_trees = modelfile_rd_u16(data + 12);
    m->n_nodes = modelfile_rd_u32(data + 16);
    m->n_leaves = modelfile_rd_u32(data + 20);
    m->n_table = modelfile_rd_u32(data + 24);
    if (feature_mode == TREES_FEATURES_INT && m->n_table != 0) {
        return fail(err, TREES_ERR_FORMAT, "integer-feature model has a threshold table");
    }
    // Capacities bound every count, so the sizes below cannot overflow 32 bits.
    if (m->n_leaves > m->max_leaf_values) {
        return fail(err, TREES_ERR_CAPACITY, "model has %d leaves, new() allows max_leaves=%d",
            (int)m->n_leaves, (int)m->max_leaf_values);
    }
    const uint32_t leaf_values = leaf_bits == TREES_LEAF_CLASS ? m->n_leaves : m->n_leaves * m->n_classes;
    trees_status_t status = check_counts(m, leaf_values, err);
    if (status == TREES_OK && leaf_bits > m->max_leaf_bits) {
        status = fail(err, TREES_ERR_CAPACITY, "model has %d-bit leaves, new() allows leaf_bits=%d",
            leaf_bits, m->max_leaf_bits);
    }
    if (status != TREES_OK) {
        reset(m);
        return status;
    }
    const uint32_t leaf_size = leaf_bits == TREES_LEAF_CLASS ? 1 : leaf_bits / 8u;
    const uint32_t table_size = feature_mode == TREES_FEATURES_TABLE ? 2u * m->n_features + 4u * m->n_table : 0;
    const uint32_t node_bits = feature_bits + threshold_bits + 2u * child_bits;
    const uint32_t stream_bytes = (m->n_trees * root_bits + m->n_nodes * node_bits + 7u) / 8u;
    const uint32_t expected = TREES_HEADER_SIZE + stream_bytes + leaf_size * leaf_values + table_size;
    if (len != expected) {
        reset(m);
        if (len < expected) {
            return fail(err, TREES_ERR_FORMAT, "truncated model: %d of %d bytes", (int)len, (int)expected);
        }
        return fail(err, TREES_ERR_FORMAT, "model has trailing bytes: %d bytes, expected %d", (int)len, (int)expected);
    }
    uint32_t crc = modelfile_crc32(0, data, 28);
    crc = modelfile_crc32(crc, data + 32, len - 32);
    if (crc != modelfile_rd_u32(data + 28)) {
        reset(m);
        return fail(err, TREES_ERR_FORMAT, "checksum mismatch (corrupted model)");
    }
    m->kind = data[5];
    m->leaf_bits = leaf_bits;
    m->feature_mode = feature_mode;
    bit_reader_t bits = { data + TREES_HEADER_SIZE, 0 };
    for (uint32_t t = 0; t < m->n_trees; t++) {
        if (!decode_link(read_bits(&bits, root_bits), m->n_leaves, INT32_MAX, &m->roots[t])) {
            reset(m);
            return fail(err, TREES_ERR_FORMAT, "tree %d has a root outside the model", (int)t);
        }
    }
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        trees_node_t *node = &m->nodes[i];
        node->feature = (uint16_t)read_bits(&bits, feature_bits);
        const int32_t threshold = threshold_base + (int32_t)read_bits(&bits, threshold_bits);
        int32_t left = 0, right = 0;
        const int ok_left = decode_link(read_bits(&bits, child_bits), m->n_leaves, INT16_MAX, &left);
        const int ok_right = decode_link(read_bits(&bits, child_bits), m->n_leaves, INT16_MAX, &right);
        if (threshold > INT16_MAX || !ok_left || !ok_right || left < INT16_MIN || right < INT16_MIN) {
            reset(m);
            return fail(err, TREES_ERR_FORMAT, "node %d has a threshold or child outside int16", (int)i);
        }
        node->threshold = (int16_t)threshold;
        node->left = (int16_t)left;
        node->right = (int16_t)right;
    }
    const uint8_t *p = data + TREES_HEADER_SIZE + stream_bytes;
    for (uint32_t v = 0; v < leaf_values; v++, p += leaf_size) {
        if (leaf_size == 1) {
            m->leaf_class[v] = *p;
        } else if (leaf_size == 2) {
            m->leaf_q16[v] = modelfile_rd_u16(p);
        } else {
            m->leaf_proba[v] = modelfile_rd_f32(p);
        }
    }
    if (feature_mode == TREES_FEATURES_TABLE) {
        uint32_t total = 0;
        m->table_start[0] = 0;
        for (uint32_t f = 0; f < m->n_features; f++, p += 2) {
            total += modelfile_rd_u16(p);
            if (total > m->n_table) {
                reset(m);
                return fail(err, TREES_ERR_FORMAT, "threshold table counts exceed the table size");
            }
            m->table_start[f + 1] = (uint16_t)total;
        }
        for (uint32_t i = 0; i < m->n_table; i++, p += 4) {
            m->table[i] = modelfile_rd_f32(p);
        }
    }
    status = validate(m, 1, err);
    if (status != TREES_OK) {
        reset(m);
        return status;
    }
    m->loaded = 1;
    return TREES_OK;
}

// ---- CSV format (emlearn's f, c, lb/lf, r, n, l records; plus q for float threshold tables) ----

typedef struct {
    const char *s;
    size_t len;
} token_t;

static int parse_int(token_t tok, int64_t *out) {
    size_t i = 0;
    int negative = 0;
    if (i < tok.len && (tok.s[i] == '-' || tok.s[i] == '+')) {
        negative = tok.s[i] == '-';
        i++;
    }
    if (i == tok.len || tok.len - i > 12) {
        return 0;
    }
    int64_t value = 0;
    for (; i < tok.len; i++) {
        if (tok.s[i] < '0' || tok.s[i] > '9') {
            return 0;
        }
        value = value * 10 + (tok.s[i] - '0');
    }
    *out = negative ? -value : value;
    return 1;
}

static int parse_hex32(token_t tok, uint32_t *out) {
    if (tok.len < 3 || tok.len > 10 || tok.s[0] != '0' || (tok.s[1] != 'x' && tok.s[1] != 'X')) {
        return 0;
    }
    uint32_t value = 0;
    for (size_t i = 2; i < tok.len; i++) {
        const char c = tok.s[i];
        uint32_t digit;
        if (c >= '0' && c <= '9') {
            digit = (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            digit = (uint32_t)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            digit = (uint32_t)(c - 'A' + 10);
        } else {
            return 0;
        }
        value = (value << 4) | digit;
    }
    *out = value;
    return 1;
}

static int is_decimal_float(token_t tok) {
    for (size_t i = 0; i < tok.len; i++) {
        if (tok.s[i] == '.' || tok.s[i] == 'e' || tok.s[i] == 'E') {
            return 1;
        }
    }
    return 0;
}

// floor() of a decimal number such as "4.5", "-0.25" or "1e-05", computed exactly on its digits.
// Magnitudes are saturated at 1e9 (far outside int16).
static int parse_decimal_floor(token_t tok, int64_t *out) {
    const int64_t cap = 1000000000;
    size_t i = 0;
    int negative = 0;
    if (i < tok.len && (tok.s[i] == '-' || tok.s[i] == '+')) {
        negative = tok.s[i] == '-';
        i++;
    }
    const size_t digits_begin = i;
    char digits[64];
    size_t n_digits = 0;
    int32_t point = -1;   // digits before the decimal point
    for (; i < tok.len && tok.s[i] != 'e' && tok.s[i] != 'E'; i++) {
        const char c = tok.s[i];
        if (c == '.') {
            if (point >= 0) {
                return 0;
            }
            point = (int32_t)n_digits;
        } else if (c >= '0' && c <= '9') {
            if (n_digits == sizeof(digits)) {
                return 0;
            }
            digits[n_digits++] = c;
        } else {
            return 0;
        }
    }
    if (n_digits == 0 || i - digits_begin == 0) {
        return 0;
    }
    if (point < 0) {
        point = (int32_t)n_digits;
    }
    if (i < tok.len) {   // exponent
        token_t exp_tok = { tok.s + i + 1, tok.len - i - 1 };
        int64_t exponent;
        if (!parse_int(exp_tok, &exponent) || exponent > 999 || exponent < -999) {
            return 0;
        }
        point += (int32_t)exponent;
    }
    int64_t integer = 0;
    int fraction = 0;
    for (int32_t k = 0; k < (int32_t)n_digits; k++) {
        const int d = digits[k] - '0';
        if (k < point) {
            integer = integer * 10 + d;
            if (integer > cap) {
                integer = cap;
            }
        } else if (d != 0) {
            fraction = 1;
        }
    }
    for (int32_t k = (int32_t)n_digits; k < point && integer < cap; k++) {
        integer = integer * 10;
    }
    if (integer > cap) {
        integer = cap;
    }
    *out = negative ? -(integer + fraction) : integer;
    return 1;
}

// A finite decimal float ("151.66667", "-2.5e-03"), rounded to float32. Only digits, sign, point and
// exponent are accepted (no "nan", "inf" or hex floats).
static int parse_float32(token_t tok, float *out) {
    char buf[48];
    if (tok.len == 0 || tok.len >= sizeof(buf)) {
        return 0;
    }
    for (size_t i = 0; i < tok.len; i++) {
        const char c = tok.s[i];
        if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E')) {
            return 0;
        }
        buf[i] = c;
    }
    buf[tok.len] = '\0';
    char *end;
    const float value = strtof(buf, &end);
    if (end != buf + tok.len || !isfinite(value)) {
        return 0;
    }
    *out = value;
    return 1;
}

static token_t trim(const char *s, size_t len) {
    while (len > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r')) {
        len--;
    }
    token_t tok = { s, len };
    return tok;
}

static int token_is(token_t tok, const char *word) {
    const size_t n = strlen(word);
    return tok.len == n && memcmp(tok.s, word, n) == 0;
}

#define CSV_MAX_FIELDS 6

// One soft-vote leaf as emlearn 0.23 writes it: `l,[255   0   0]`, the class proportions scaled to 0..255
// (numpy's print of the uint8 row: values between brackets, separated by spaces; long rows wrap onto
// the next lines). Commas between the values are accepted too. `row` is the trimmed text from '['.
static trees_status_t csv_leaf_row(trees_model_t *m, token_t row, uint32_t line_no, trees_error_t *err) {
    const uint32_t n_classes = m->n_classes;
    if ((m->n_leaves + 1u) * n_classes > m->max_leaf_values) {
        return fail(err, TREES_ERR_CAPACITY,
            "line %d: more leaf values than new() allows (max_leaves=%d; a soft-vote leaf holds %d values)",
            (int)line_no, (int)m->max_leaf_values, (int)n_classes);
    }
    if (row.len < 2 || row.s[row.len - 1] != ']') {
        return fail(err, TREES_ERR_FORMAT, "line %d: leaf row has no closing ']'", (int)line_no);
    }
    uint8_t *out = &m->leaf_class[m->n_leaves * n_classes];
    uint32_t n = 0;
    size_t i = 1;
    const size_t stop = row.len - 1;
    for (;;) {
        while (i < stop && (row.s[i] == ' ' || row.s[i] == '\t' || row.s[i] == '\r' || row.s[i] == '\n' ||
            row.s[i] == ',')) {
            i++;
        }
        if (i == stop) {
            break;
        }
        const size_t begin = i;
        while (i < stop && row.s[i] >= '0' && row.s[i] <= '9') {
            i++;
        }
        int64_t value;
        const token_t tok = { row.s + begin, i - begin };
        if (i == begin || !parse_int(tok, &value) || value > 255) {
            return fail(err, TREES_ERR_FORMAT, "line %d: leaf value %d is not an integer 0..255", (int)line_no,
                (int)n + 1);
        }
        if (n == n_classes) {
            return fail(err, TREES_ERR_FORMAT, "line %d: leaf has more values than the model's %d classes",
                (int)line_no, (int)n_classes);
        }
        out[n++] = (uint8_t)value;
    }
    if (n != n_classes) {
        return fail(err, TREES_ERR_FORMAT, "line %d: leaf has %d values, the model has %d classes", (int)line_no,
            (int)n, (int)n_classes);
    }
    m->n_leaves++;
    return TREES_OK;
}

trees_status_t trees_load_csv(trees_model_t *m, const char *text, size_t len, trees_error_t *err) {
    reset(m);
    uint32_t line_no = 0;
    uint32_t last_q_feature = 0;
    uint32_t leaf_bits = 0;
    int have_f = 0, have_c = 0, have_leaves = 0;
    size_t pos = 0;
    trees_status_t status = TREES_OK;
    m->table_start[0] = 0;
    while (pos < len && status == TREES_OK) {
        line_no++;
        size_t end = pos;
        // A line break inside [...] continues the record (numpy wraps long leaf rows).
        int in_brackets = 0;
        uint32_t continued = 0;
        while (end < len && (text[end] != '\n' || in_brackets)) {
            const unsigned char c = (unsigned char)text[end];
            if (c == '\n') {
                continued++;
            } else if ((c < 0x20 && c != '\t' && c != '\r') || c > 0x7e) {
                status = fail(err, TREES_ERR_FORMAT,
                    "line %d: byte 0x%02x is not CSV text (and no binary magic 'TSTR')", (int)(line_no + continued),
                    c);
                break;
            } else if (c == '[') {
                in_brackets = 1;
            } else if (c == ']') {
                in_brackets = 0;
            }
            end++;
        }
        if (status != TREES_OK) {
            break;
        }
        token_t line = trim(text + pos, end - pos);
        pos = end + 1;
        const uint32_t first_line = line_no;
        line_no += continued;
        if (line.len == 0) {
            continue;
        }
        if (line.len > 2 && line.s[0] == 'l' && line.s[1] == ',') {
            const token_t row = trim(line.s + 2, line.len - 2);
            if (row.len > 0 && row.s[0] == '[') {
                if (!(have_f && have_c)) {
                    return fail(err, TREES_ERR_FORMAT, "line %d: f and c records must come before the model data",
                        (int)first_line);
                }
                if (m->kind != TREES_KIND_CLASSIFIER || leaf_bits != TREES_LEAF_Q8) {
                    return fail(err, TREES_ERR_FORMAT,
                        "line %d: a leaf of class proportions needs a classifier with lb,1..8 before it",
                        (int)first_line);
                }
                status = csv_leaf_row(m, row, first_line, err);
                if (status != TREES_OK) {
                    return status;
                }
                have_leaves = 1;
                continue;
            }
        }
        token_t fields[CSV_MAX_FIELDS];
        size_t n_fields = 0;
        size_t start = 0;
        for (size_t i = 0; i <= line.len; i++) {
            if (i == line.len || line.s[i] == ',') {
                if (n_fields == CSV_MAX_FIELDS) {
                    return fail(err, TREES_ERR_FORMAT, "line %d: too many fields", (int)line_no);
                }
                fields[n_fields++] = trim(line.s + start, i - start);
                start = i + 1;
            }
        }
        const token_t kind = fields[0];
        int64_t v[CSV_MAX_FIELDS] = { 0 };
        float leaf_value = 0.0f;
        size_t expect = 0;
        if (token_is(kind, "f") || token_is(kind, "c") || token_is(kind, "lb") || token_is(kind, "lf") ||
            token_is(kind, "r") || token_is(kind, "l")) {
            expect = 2;
        } else if (token_is(kind, "q")) {
            expect = 3;
        } else if (token_is(kind, "n")) {
            expect = 5;
        } else {
            return fail(err, TREES_ERR_FORMAT, "line %d: unknown record type", (int)line_no);
        }
        if (n_fields != expect) {
            return fail(err, TREES_ERR_FORMAT, "line %d: expected %d fields", (int)line_no, (int)expect);
        }
        for (size_t k = 1; k < n_fields; k++) {
            const int is_threshold = token_is(kind, "n") && k == 2;
            const int is_bits = token_is(kind, "q") && k == 2;
            const int is_value = token_is(kind, "l") && m->kind == TREES_KIND_REGRESSOR;
            if (is_value) {
                if (!parse_float32(fields[k], &leaf_value)) {
                    return fail(err, TREES_ERR_FORMAT, "line %d: field %d is not a finite number",
                        (int)line_no, (int)k + 1);
                }
            } else if (is_bits) {
                uint32_t bits;
                if (!parse_hex32(fields[k], &bits)) {
                    return fail(err, TREES_ERR_FORMAT, "line %d: field %d is not a 0x float32 bit pattern",
                        (int)line_no, (int)k + 1);
                }
                v[k] = bits;
            } else if (is_threshold && is_decimal_float(fields[k])) {
                // A scikit-learn style threshold (go left when x <= t): for int16 x that is x < floor(t) + 1.
                if (!parse_decimal_floor(fields[k], &v[k])) {
                    return fail(err, TREES_ERR_FORMAT, "line %d: field %d is not a number", (int)line_no, (int)k + 1);
                }
                v[k] += 1;
            } else if (!parse_int(fields[k], &v[k])) {
                return fail(err, TREES_ERR_FORMAT, "line %d: field %d is not an integer", (int)line_no, (int)k + 1);
            }
        }
        const int is_meta = token_is(kind, "f") || token_is(kind, "c") || token_is(kind, "lb") ||
            token_is(kind, "lf");
        if (!is_meta && !(have_f && have_c)) {
            return fail(err, TREES_ERR_FORMAT, "line %d: f and c records must come before the model data",
                (int)line_no);
        }
        if (token_is(kind, "f")) {
            if (have_f || v[1] < 1 || v[1] > 65535) {
                return fail(err, TREES_ERR_FORMAT, "line %d: bad or repeated feature count", (int)line_no);
            }
            if (v[1] > m->max_features) {
                return fail(err, TREES_ERR_CAPACITY, "line %d: model has %d features, new() allows max_features=%d",
                    (int)line_no, (int)v[1], m->max_features);
            }
            m->n_features = (uint16_t)v[1];
            have_f = 1;
        } else if (token_is(kind, "c")) {
            // c,0 is emlearn's regressor (no classes): one output, float leaf values (lf,32).
            if (have_c || v[1] < 0 || v[1] > 256) {
                return fail(err, TREES_ERR_FORMAT, "line %d: bad or repeated class count (0..256)", (int)line_no);
            }
            if (v[1] > m->max_classes) {
                return fail(err, TREES_ERR_CAPACITY, "line %d: model has %d classes, new() allows max_classes=%d",
                    (int)line_no, (int)v[1], m->max_classes);
            }
            if (v[1] == 0) {
                m->kind = TREES_KIND_REGRESSOR;
            }
            m->n_classes = v[1] == 0 ? 1 : (uint16_t)v[1];
            have_c = 1;
        } else if (token_is(kind, "lb") || token_is(kind, "lf")) {
            // emlearn: 0 = class leaves (hard vote), 1..8 = class proportions quantised to that many bits and
            // stored as bytes 0..255 (soft vote), 32 = float regression values.
            const int soft = v[1] >= 1 && v[1] <= 8;
            if ((v[1] != 0 && v[1] != 32 && !soft) || (v[1] == 32 && have_c && m->kind == TREES_KIND_CLASSIFIER) ||
                (soft && have_c && m->kind == TREES_KIND_REGRESSOR)) {
                return fail(err, TREES_ERR_FORMAT,
                    "line %d: leaf_bits %d is not supported in CSV (0: class leaves, 1..8: class proportions, "
                    "32: regression values)", (int)line_no, (int)v[1]);
            }
            if (have_leaves) {
                return fail(err, TREES_ERR_FORMAT, "line %d: the lb record must come before the leaves",
                    (int)line_no);
            }
            leaf_bits = soft ? TREES_LEAF_Q8 : (uint32_t)v[1];
        } else if (token_is(kind, "r")) {
            if (m->n_trees >= m->max_trees) {
                return fail(err, TREES_ERR_CAPACITY, "line %d: more trees than new() allows (max_trees=%d)",
                    (int)line_no, (int)m->max_trees);
            }
            if (v[1] < -2147483647 || v[1] > 2147483647) {
                return fail(err, TREES_ERR_FORMAT, "line %d: root out of range", (int)line_no);
            }
            m->roots[m->n_trees++] = (int32_t)v[1];
        } else if (token_is(kind, "n")) {
            if (m->n_nodes >= m->max_nodes) {
                return fail(err, TREES_ERR_CAPACITY, "line %d: more nodes than new() allows (max_nodes=%d)",
                    (int)line_no, (int)m->max_nodes);
            }
            if (v[1] < 0 || v[1] >= m->n_features) {
                return fail(err, TREES_ERR_FORMAT, "line %d: feature %d out of range", (int)line_no, (int)v[1]);
            }
            for (int k = 2; k <= 4; k++) {
                if (v[k] < -32768 || v[k] > 32767) {
                    return fail(err, TREES_ERR_FORMAT, "line %d: field %d out of int16 range", (int)line_no, k + 1);
                }
            }
            trees_node_t *node = &m->nodes[m->n_nodes++];
            node->feature = (uint16_t)v[1];
            node->threshold = (int16_t)v[2];
            node->left = (int16_t)v[3];
            node->right = (int16_t)v[4];
        } else if (token_is(kind, "l")) {
            if (m->n_leaves >= m->max_leaf_values) {
                return fail(err, TREES_ERR_CAPACITY, "line %d: more leaves than new() allows (max_leaves=%d)",
                    (int)line_no, (int)m->max_leaf_values);
            }
            if (m->kind == TREES_KIND_REGRESSOR) {
                if (leaf_bits != TREES_LEAF_PROBA) {
                    return fail(err, TREES_ERR_FORMAT, "line %d: regression leaves need lf,32 before them",
                        (int)line_no);
                }
                if (m->max_leaf_bits < TREES_LEAF_PROBA) {
                    return fail(err, TREES_ERR_CAPACITY, "line %d: float32 leaves, new() allows leaf_bits=%d",
                        (int)line_no, m->max_leaf_bits);
                }
                m->leaf_proba[m->n_leaves++] = leaf_value;
            } else {
                if (leaf_bits == TREES_LEAF_Q8) {
                    return fail(err, TREES_ERR_FORMAT,
                        "line %d: with lb,1..8 a leaf is a row of class proportions, e.g. l,[0 255 0]", (int)line_no);
                }
                if (v[1] < 0 || v[1] >= m->n_classes) {
                    return fail(err, TREES_ERR_FORMAT, "line %d: leaf class %d out of range", (int)line_no,
                        (int)v[1]);
                }
                m->leaf_class[m->n_leaves++] = (uint8_t)v[1];
            }
            have_leaves = 1;
        } else {   // q
            if (v[1] < 0 || v[1] >= m->n_features || (uint32_t)v[1] < last_q_feature) {
                return fail(err, TREES_ERR_FORMAT, "line %d: q records must be in feature order, within features",
                    (int)line_no);
            }
            if (m->n_table >= m->max_thresholds) {
                return fail(err, TREES_ERR_CAPACITY,
                    "line %d: more thresholds than new() allows (max_thresholds=%d)", (int)line_no,
                    (int)m->max_thresholds);
            }
            for (uint32_t f = last_q_feature + 1; f <= (uint32_t)v[1]; f++) {
                m->table_start[f] = (uint16_t)m->n_table;
            }
            last_q_feature = (uint32_t)v[1];
            const uint32_t bits = (uint32_t)v[2];
            memcpy(&m->table[m->n_table++], &bits, sizeof(float));
            m->feature_mode = TREES_FEATURES_TABLE;
        }
    }
    if (status != TREES_OK) {
        reset(m);
        return status;
    }
    if (leaf_bits == TREES_LEAF_PROBA && m->kind == TREES_KIND_CLASSIFIER) {
        reset(m);
        return fail(err, TREES_ERR_FORMAT, "leaf_bits 32 is not supported in CSV for classifiers (0: class leaves)");
    }
    if (leaf_bits == TREES_LEAF_Q8 && m->kind == TREES_KIND_REGRESSOR) {
        reset(m);
        return fail(err, TREES_ERR_FORMAT, "a regressor (c,0) needs lf,32 and float leaf values");
    }
    m->leaf_bits = (uint8_t)leaf_bits;
    if (m->feature_mode == TREES_FEATURES_TABLE) {
        if (m->n_table > 65535) {
            reset(m);
            return fail(err, TREES_ERR_FORMAT, "too many thresholds");
        }
        for (uint32_t f = last_q_feature + 1; f <= m->n_features; f++) {
            m->table_start[f] = (uint16_t)m->n_table;
        }
    }
    status = validate(m, 0, err);
    if (status != TREES_OK) {
        reset(m);
        return status;
    }
    m->loaded = 1;
    return TREES_OK;
}

// ---- prediction ----

void trees_quantize(const trees_model_t *m, const float *x, int16_t *q) {
    for (uint32_t f = 0; f < m->n_features; f++) {
        const float value = x[f];
        if (m->feature_mode == TREES_FEATURES_TABLE) {
            uint32_t lo = m->table_start[f], hi = m->table_start[f + 1];
            const uint32_t start = lo;
            while (lo < hi) {
                const uint32_t mid = lo + (hi - lo) / 2;
                if (m->table[mid] < value) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            q[f] = (int16_t)(lo - start);
        } else if (value >= 32767.0f) {
            q[f] = 32767;
        } else if (value <= -32768.0f) {
            q[f] = -32768;
        } else {
            q[f] = (int16_t)roundf(value);
        }
    }
}

// The leaf a tree's walk ends in. Children are forward offsets (> 0) or ~leaf (< 0), so the loop
// ends after at most n_nodes steps whatever the model holds (validate() checked every link).
static inline uint32_t walk(const trees_node_t *nodes, int32_t root, const int16_t *x) {
    if (root < 0) {
        return (uint32_t)~root;   // a tree that is a single leaf
    }
    const trees_node_t *node = &nodes[root];
    for (;;) {
        const int32_t child = x[node->feature] < node->threshold ? node->left : node->right;
        if (child < 0) {
            return (uint32_t)~child;
        }
        node += child;
    }
}

// Trees walked per block before their leaves are summed (a stack array of this many offsets).
#define TREES_BLOCK 64

// Soft vote with 8-bit leaves (the default for converted forests): sums of n_classes bytes per tree.
// The trees of a block are walked first; then each group of 4 classes is summed over the block with
// 32-bit words holding two 16-bit lanes (classes 4k, 4k+2 and 4k+1, 4k+3), which adds 4 classes with
// 2 additions on both the host and the ESP32-S3. A lane holds at most 255 * n_trees, so this path is
// taken for n_trees <= 257 (65535 / 255); the scalar loop handles larger forests. During the sums
// votes[2k] and votes[2k + 1] hold group k's lanes, votes[c] for c >= 4 * groups the other classes.
static int q8_lanes_fit(uint32_t n_trees) {
    return n_trees <= 65535u / 255u;
}

static void q8_sum_lanes(const trees_model_t *m, const int16_t *x, trees_vote_t *votes) {
    const uint32_t n_classes = m->n_classes, n_trees = m->n_trees, groups = n_classes / 4;
    const uint8_t *leaves = m->leaf_class;
    uint32_t offset[TREES_BLOCK];
    for (uint32_t c = 0; c < n_classes; c++) {
        votes[c].count = 0;
    }
    for (uint32_t first = 0; first < n_trees; first += TREES_BLOCK) {
        const uint32_t n = n_trees - first < TREES_BLOCK ? n_trees - first : TREES_BLOCK;
        for (uint32_t t = 0; t < n; t++) {
            offset[t] = walk(m->nodes, m->roots[first + t], x) * n_classes;
        }
        for (uint32_t k = 0; k < groups; k++) {
            uint32_t even = 0, odd = 0;
            for (uint32_t t = 0; t < n; t++) {
                const uint8_t *p = &leaves[offset[t] + 4 * k];
                #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                // One 32-bit load (memcpy: any alignment) holds bytes 0..3 from the low end (x86, the S3).
                uint32_t word;
                memcpy(&word, p, sizeof(word));
                even += word & 0x00ff00ffu;
                odd += (word >> 8) & 0x00ff00ffu;
                #else
                even += (uint32_t)p[0] | ((uint32_t)p[2] << 16);
                odd += (uint32_t)p[1] | ((uint32_t)p[3] << 16);
                #endif
            }
            votes[2 * k].count += even;
            votes[2 * k + 1].count += odd;
        }
        for (uint32_t c = 4 * groups; c < n_classes; c++) {
            uint32_t sum = 0;
            for (uint32_t t = 0; t < n; t++) {
                sum += leaves[offset[t] + c];
            }
            votes[c].count += sum;
        }
    }
    // Spread the lanes to one count per class. Group k's lanes move to votes[4k..4k+3], which are group
    // 2k's and 2k+1's lane slots: going down from the last group, those are already spread.
    for (uint32_t k = groups; k-- > 0;) {
        const uint32_t even = votes[2 * k].count, odd = votes[2 * k + 1].count;
        votes[4 * k].count = even & 0xffffu;
        votes[4 * k + 1].count = odd & 0xffffu;
        votes[4 * k + 2].count = even >> 16;
        votes[4 * k + 3].count = odd >> 16;
    }
}

int32_t trees_predict(const trees_model_t *m, const int16_t *x, trees_vote_t *votes, float *proba) {
    const uint32_t n_classes = m->n_classes, n_trees = m->n_trees;
    const trees_node_t *nodes = m->nodes;
    const int32_t *roots = m->roots;
    int32_t best = 0;
    float scale;
    if (m->leaf_bits == TREES_LEAF_PROBA) {
        for (uint32_t c = 0; c < n_classes; c++) {
            votes[c].sum = 0.0f;
        }
        for (uint32_t t = 0; t < n_trees; t++) {
            const float *leaf = &m->leaf_proba[walk(nodes, roots[t], x) * n_classes];
            for (uint32_t c = 0; c < n_classes; c++) {
                votes[c].sum += leaf[c];
            }
        }
        for (uint32_t c = 1; c < n_classes; c++) {
            if (votes[c].sum > votes[best].sum) {
                best = (int32_t)c;
            }
        }
        for (uint32_t c = 0; proba != NULL && c < n_classes; c++) {
            proba[c] = votes[c].sum / (float)n_trees;
        }
        return best;
    }
    if (m->leaf_bits == TREES_LEAF_Q8 && q8_lanes_fit(n_trees)) {
        q8_sum_lanes(m, x, votes);
        scale = 255.0f * (float)n_trees;
    } else {
        for (uint32_t c = 0; c < n_classes; c++) {
            votes[c].count = 0;
        }
        if (m->leaf_bits == TREES_LEAF_CLASS) {
            const uint8_t *leaf_class = m->leaf_class;
            for (uint32_t t = 0; t < n_trees; t++) {
                votes[leaf_class[walk(nodes, roots[t], x)]].count++;
            }
            scale = (float)n_trees;
        } else if (m->leaf_bits == TREES_LEAF_Q8) {
            for (uint32_t t = 0; t < n_trees; t++) {
                const uint8_t *leaf = &m->leaf_class[walk(nodes, roots[t], x) * n_classes];
                for (uint32_t c = 0; c < n_classes; c++) {
                    votes[c].count += leaf[c];
                }
            }
            scale = 255.0f * (float)n_trees;
        } else {
            for (uint32_t t = 0; t < n_trees; t++) {
                const uint16_t *leaf = &m->leaf_q16[walk(nodes, roots[t], x) * n_classes];
                for (uint32_t c = 0; c < n_classes; c++) {
                    votes[c].count += leaf[c];
                }
            }
            scale = 65535.0f * (float)n_trees;
        }
    }
    uint32_t top = votes[0].count;
    for (uint32_t c = 1; c < n_classes; c++) {
        if (votes[c].count > top) {
            top = votes[c].count;
            best = (int32_t)c;
        }
    }
    for (uint32_t c = 0; proba != NULL && c < n_classes; c++) {
        proba[c] = (float)votes[c].count / scale;
    }
    return best;
}

float trees_regress(const trees_model_t *m, const int16_t *x) {
    float sum = 0.0f, compensation = 0.0f;
    for (uint32_t t = 0; t < m->n_trees; t++) {
        const float value = m->leaf_proba[walk(m->nodes, m->roots[t], x)] - compensation;
        const float next = sum + value;
        compensation = (next - sum) - value;
        sum = next;
    }
    return sum / (float)m->n_trees;
}
