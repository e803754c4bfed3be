// k-NN core: exact int16 distances, scikit-learn's neighbour selection, per-label votes, model files.
// See neighbors.h for the rules.
#include "neighbors.h"

#include "../tinysense_modelfile/modelfile.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define INDEX_MASK ((uint64_t)NEIGHBORS_MAX_ITEMS)
#define DIST(key) ((key) >> NEIGHBORS_INDEX_BITS)
// Larger than any real distance (< 2^44), as scikit-learn's heaps start filled with DBL_MAX.
#define EMPTY_KEY UINT64_MAX

#define fail(err, status, ...) MODELFILE_FAIL(err, status, __VA_ARGS__)

// On x87 (the -m32 host build) float expressions may be kept in extended precision: a store
// through volatile rounds to float32 as numpy and the ESP32-S3 do.
static inline float as_float32(float v) {
    #if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0
    volatile float stored = v;
    return stored;
    #else
    return v;
    #endif
}

void neighbors_reset(neighbors_model_t *m) {
    for (uint32_t f = 0; f < m->n_features; f++) {
        m->offset[f] = 0.0f;
        m->scale[f] = 1.0f;
    }
    m->n_items = 0;
    m->n_ranked = 0;
    m->n_sorted = 0;
}

void neighbors_add(neighbors_model_t *m, const int16_t *x, int16_t label) {
    memcpy(m->data + (size_t)m->n_items * m->n_features, x, m->n_features * sizeof(int16_t));
    m->labels[m->n_items] = label;
    m->n_items++;
    m->n_ranked = 0;
    m->n_sorted = 0;
}

void neighbors_quantize(const neighbors_model_t *m, const float *x, int16_t *q) {
    for (uint32_t f = 0; f < m->n_features; f++) {
        const float shifted = as_float32(x[f] - m->offset[f]);
        const float t = roundf(as_float32(shifted * m->scale[f]));
        if (t <= -32768.0f) {
            q[f] = INT16_MIN;
        } else if (t >= 32767.0f) {
            q[f] = INT16_MAX;
        } else {
            q[f] = (int16_t)t;
        }
    }
}

static uint64_t squared_distance(const int16_t *a, const int16_t *b, uint32_t n) {
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        const int32_t diff = (int32_t)a[i] - (int32_t)b[i];
        const uint32_t mag = (uint32_t)(diff < 0 ? -diff : diff);
        sum += (uint64_t)(mag * mag);   // <= 65535^2 < 2^32
    }
    return sum;
}

// scikit-learn's heap_push (sklearn/utils/_heap.pyx) on distances only, for a key whose distance
// the caller found smaller than the root's: same comparisons, so the same items survive ties.
static void heap_replace_root(uint64_t *heap, uint32_t size, uint64_t key) {
    const uint64_t d = DIST(key);
    uint32_t current = 0;
    for (;;) {
        const uint32_t left = 2 * current + 1;
        const uint32_t right = left + 1;
        uint32_t swap;
        if (left >= size) {
            break;
        } else if (right >= size) {
            if (DIST(heap[left]) > d) {
                swap = left;
            } else {
                break;
            }
        } else if (DIST(heap[left]) >= DIST(heap[right])) {
            if (d < DIST(heap[left])) {
                swap = left;
            } else {
                break;
            }
        } else {
            if (d < DIST(heap[right])) {
                swap = right;
            } else {
                break;
            }
        }
        heap[current] = heap[swap];
        current = swap;
    }
    heap[current] = key;
}

// In-place ascending heapsort (keys are unique: the index is part of the key).
static void sift_down_u64(uint64_t *a, uint32_t start, uint32_t n) {
    uint32_t root = start;
    for (;;) {
        uint32_t child = 2 * root + 1;
        if (child >= n) {
            return;
        }
        if (child + 1 < n && a[child + 1] > a[child]) {
            child++;
        }
        if (a[root] >= a[child]) {
            return;
        }
        const uint64_t tmp = a[root];
        a[root] = a[child];
        a[child] = tmp;
        root = child;
    }
}

static void sort_u64(uint64_t *a, uint32_t n) {
    for (uint32_t i = n / 2; i-- > 0;) {
        sift_down_u64(a, i, n);
    }
    for (uint32_t end = n; end-- > 1;) {
        const uint64_t tmp = a[0];
        a[0] = a[end];
        a[end] = tmp;
        sift_down_u64(a, 0, end);
    }
}

static void sift_down_i16(int16_t *a, uint32_t start, uint32_t n) {
    uint32_t root = start;
    for (;;) {
        uint32_t child = 2 * root + 1;
        if (child >= n) {
            return;
        }
        if (child + 1 < n && a[child + 1] > a[child]) {
            child++;
        }
        if (a[root] >= a[child]) {
            return;
        }
        const int16_t tmp = a[root];
        a[root] = a[child];
        a[child] = tmp;
        root = child;
    }
}

static void sort_i16(int16_t *a, uint32_t n) {
    for (uint32_t i = n / 2; i-- > 0;) {
        sift_down_i16(a, i, n);
    }
    for (uint32_t end = n; end-- > 1;) {
        const int16_t tmp = a[0];
        a[0] = a[end];
        a[end] = tmp;
        sift_down_i16(a, 0, end);
    }
}

int16_t neighbors_predict(neighbors_model_t *m, const int16_t *x) {
    const uint32_t n = m->n_items, k = m->k, nf = m->n_features;
    uint64_t *heap = m->ranked;         // ranked[0..k): the voters, a max-heap on distance
    uint32_t rest = k;                  // ranked[k..rest): items that lost their place
    for (uint32_t i = 0; i < k; i++) {
        heap[i] = EMPTY_KEY;
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint64_t key = (squared_distance(x, m->data + (size_t)i * nf, nf) << NEIGHBORS_INDEX_BITS) | i;
        if (DIST(key) >= DIST(heap[0])) {
            m->ranked[rest++] = key;
            continue;
        }
        const uint64_t evicted = heap[0];
        heap_replace_root(heap, k, key);
        if (evicted != EMPTY_KEY) {
            m->ranked[rest++] = evicted;
        }
    }
    // n >= k, so the heap holds k real items and rest == n.
    sort_u64(heap, k);
    m->n_ranked = n;
    m->n_sorted = k;

    int16_t *labels = m->vote_labels;
    for (uint32_t i = 0; i < k; i++) {
        labels[i] = m->labels[heap[i] & INDEX_MASK];
    }
    sort_i16(labels, k);
    int16_t best = labels[0];
    uint32_t best_votes = 0;
    for (uint32_t i = 0; i < k;) {
        uint32_t j = i + 1;
        while (j < k && labels[j] == labels[i]) {
            j++;
        }
        if (j - i > best_votes) {   // strictly more: the lowest label wins a tie
            best_votes = j - i;
            best = labels[i];
        }
        i = j;
    }
    return best;
}

uint64_t neighbors_result(neighbors_model_t *m, uint32_t i) {
    if (i >= m->n_sorted) {
        sort_u64(m->ranked + m->n_sorted, m->n_ranked - m->n_sorted);
        m->n_sorted = m->n_ranked;
    }
    return m->ranked[i];
}

uint32_t neighbors_isqrt(uint64_t v) {
    uint64_t result = 0;
    uint64_t bit = (uint64_t)1 << 62;
    while (bit > v) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (v >= result + bit) {
            v -= result + bit;
            result = (result >> 1) + bit;
        } else {
            result >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)result;
}

// ---- model files ----

static char printable(uint8_t c) {
    return (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
}

static uint64_t file_size(const neighbors_file_info_t *info) {
    uint64_t size = NEIGHBORS_HEADER_SIZE;
    if (info->flags & NEIGHBORS_FLAG_QUANTIZER) {
        size += 8u * info->n_features;
    }
    size += 2u * (uint64_t)info->n_items * info->n_features + 2u * (uint64_t)info->n_items;
    return size;
}

neighbors_status_t neighbors_check_file(const uint8_t *data, size_t len, neighbors_file_info_t *info,
    neighbors_error_t *err) {
    if (len < 4) {
        return fail(err, NEIGHBORS_ERR_FORMAT, "not a k-NN model (truncated magic: %d bytes)", (int)len);
    }
    if (memcmp(data, NEIGHBORS_MAGIC, 4) != 0) {
        const char *other = NULL;
        if (memcmp(data, "TSTR", 4) == 0) {
            other = "an emlearn_trees model";
        } else if (memcmp(data, "TSNN", 4) == 0) {
            other = "an emlearn_net model";
        }
        if (other != NULL) {
            return fail(err, NEIGHBORS_ERR_FORMAT, "this is %s (magic '%.4s'), not a k-NN model ('TSKN')", other,
                (const char *)data);
        }
        return fail(err, NEIGHBORS_ERR_FORMAT, "not a k-NN model (magic '%c%c%c%c', expected 'TSKN')",
            printable(data[0]), printable(data[1]), printable(data[2]), printable(data[3]));
    }
    if (len < NEIGHBORS_HEADER_SIZE) {
        return fail(err, NEIGHBORS_ERR_FORMAT, "truncated header: %d of %d bytes", (int)len, NEIGHBORS_HEADER_SIZE);
    }
    if (data[4] != NEIGHBORS_FORMAT_VERSION) {
        return fail(err, NEIGHBORS_ERR_FORMAT, "format version %d is not supported (expected %d)", data[4],
            NEIGHBORS_FORMAT_VERSION);
    }
    if (data[5] != NEIGHBORS_KIND_CLASSIFIER) {
        return fail(err, NEIGHBORS_ERR_FORMAT, "model kind %d is not supported (expected %d, classifier)", data[5],
            NEIGHBORS_KIND_CLASSIFIER);
    }
    if ((data[6] & ~NEIGHBORS_FLAG_QUANTIZER) != 0 || data[7] != 0 || modelfile_rd_u16(data + 10) != 0) {
        return fail(err, NEIGHBORS_ERR_FORMAT, "unknown flags or non-zero reserved header bytes");
    }
    info->flags = data[6];
    info->n_features = modelfile_rd_u16(data + 8);
    info->k = modelfile_rd_u32(data + 12);
    info->n_items = modelfile_rd_u32(data + 16);
    if (info->n_features < 1 || info->n_features > NEIGHBORS_MAX_FEATURES) {
        return fail(err, NEIGHBORS_ERR_FORMAT, "n_features %d is outside 1..%d", (int)info->n_features,
            (int)NEIGHBORS_MAX_FEATURES);
    }
    if (info->n_items > NEIGHBORS_MAX_ITEMS) {
        return fail(err, NEIGHBORS_ERR_FORMAT, "n_items %lu is more than %lu", (unsigned long)info->n_items,
            (unsigned long)NEIGHBORS_MAX_ITEMS);
    }
    if (info->k < 1 || info->k > NEIGHBORS_MAX_ITEMS) {
        return fail(err, NEIGHBORS_ERR_FORMAT, "k %lu is outside 1..%lu", (unsigned long)info->k,
            (unsigned long)NEIGHBORS_MAX_ITEMS);
    }
    const uint64_t expected = file_size(info);
    if ((uint64_t)len < expected) {
        return fail(err, NEIGHBORS_ERR_FORMAT, "truncated model: %lu of %lu bytes", (unsigned long)len,
            (unsigned long)expected);
    }
    if ((uint64_t)len > expected) {
        return fail(err, NEIGHBORS_ERR_FORMAT, "%lu trailing bytes after the model", (unsigned long)(len - expected));
    }
    uint32_t crc = modelfile_crc32(0, data, 20);
    crc = modelfile_crc32(crc, data + NEIGHBORS_HEADER_SIZE, len - NEIGHBORS_HEADER_SIZE);
    if (crc != modelfile_rd_u32(data + 20)) {
        return fail(err, NEIGHBORS_ERR_FORMAT, "checksum mismatch (corrupted file)");
    }
    if (info->flags & NEIGHBORS_FLAG_QUANTIZER) {
        const uint8_t *p = data + NEIGHBORS_HEADER_SIZE;
        for (uint32_t f = 0; f < info->n_features; f++) {
            const float offset = modelfile_rd_f32(p + 4 * f);
            const float scale = modelfile_rd_f32(p + 4 * (info->n_features + f));
            if (!isfinite(offset)) {
                return fail(err, NEIGHBORS_ERR_FORMAT, "quantiser offset of feature %d is not finite", (int)f);
            }
            if (!isfinite(scale) || !(scale > 0.0f)) {
                return fail(err, NEIGHBORS_ERR_FORMAT, "quantiser scale of feature %d is not finite and positive",
                    (int)f);
            }
        }
    }
    return NEIGHBORS_OK;
}

neighbors_status_t neighbors_load(neighbors_model_t *m, const uint8_t *data, size_t len, neighbors_error_t *err) {
    neighbors_file_info_t info;
    neighbors_status_t status = neighbors_check_file(data, len, &info, err);
    if (status != NEIGHBORS_OK) {
        return status;
    }
    if (info.n_features != m->n_features) {
        return fail(err, NEIGHBORS_ERR_CAPACITY, "the file has %d features, this model has %d", (int)info.n_features,
            (int)m->n_features);
    }
    if (info.n_items > m->max_items) {
        return fail(err, NEIGHBORS_ERR_CAPACITY, "the file has %lu items, new() allows max_items=%lu",
            (unsigned long)info.n_items, (unsigned long)m->max_items);
    }
    if (info.k > m->max_items) {
        return fail(err, NEIGHBORS_ERR_CAPACITY, "the file has k=%lu, more than max_items=%lu",
            (unsigned long)info.k, (unsigned long)m->max_items);
    }
    neighbors_reset(m);
    const uint8_t *p = data + NEIGHBORS_HEADER_SIZE;
    if (info.flags & NEIGHBORS_FLAG_QUANTIZER) {
        for (uint32_t f = 0; f < info.n_features; f++) {
            m->offset[f] = modelfile_rd_f32(p + 4 * f);
            m->scale[f] = modelfile_rd_f32(p + 4 * (info.n_features + f));
        }
        p += 8u * info.n_features;
    }
    const size_t n_values = (size_t)info.n_items * info.n_features;
    for (size_t i = 0; i < n_values; i++) {
        m->data[i] = (int16_t)modelfile_rd_u16(p + 2 * i);
    }
    p += 2 * n_values;
    for (uint32_t i = 0; i < info.n_items; i++) {
        m->labels[i] = (int16_t)modelfile_rd_u16(p + 2 * i);
    }
    m->n_items = info.n_items;
    m->k = info.k;
    return NEIGHBORS_OK;
}

size_t neighbors_saved_size(const neighbors_model_t *m) {
    const neighbors_file_info_t info = { NEIGHBORS_FLAG_QUANTIZER, m->n_features, m->k, m->n_items };
    return (size_t)file_size(&info);
}

void neighbors_save(const neighbors_model_t *m, uint8_t *out) {
    memset(out, 0, NEIGHBORS_HEADER_SIZE);
    memcpy(out, NEIGHBORS_MAGIC, 4);
    out[4] = NEIGHBORS_FORMAT_VERSION;
    out[5] = NEIGHBORS_KIND_CLASSIFIER;
    out[6] = NEIGHBORS_FLAG_QUANTIZER;
    modelfile_wr_u16(out + 8, m->n_features);
    modelfile_wr_u32(out + 12, m->k);
    modelfile_wr_u32(out + 16, m->n_items);
    uint8_t *p = out + NEIGHBORS_HEADER_SIZE;
    for (uint32_t f = 0; f < m->n_features; f++) {
        uint32_t bits;
        memcpy(&bits, &m->offset[f], 4);
        modelfile_wr_u32(p + 4 * f, bits);
        memcpy(&bits, &m->scale[f], 4);
        modelfile_wr_u32(p + 4 * (m->n_features + f), bits);
    }
    p += 8u * m->n_features;
    const size_t n_values = (size_t)m->n_items * m->n_features;
    for (size_t i = 0; i < n_values; i++) {
        modelfile_wr_u16(p + 2 * i, (uint16_t)m->data[i]);
    }
    p += 2 * n_values;
    for (uint32_t i = 0; i < m->n_items; i++) {
        modelfile_wr_u16(p + 2 * i, (uint16_t)m->labels[i]);
    }
    const size_t len = neighbors_saved_size(m);
    uint32_t crc = modelfile_crc32(0, out, 20);
    crc = modelfile_crc32(crc, out + NEIGHBORS_HEADER_SIZE, len - NEIGHBORS_HEADER_SIZE);
    modelfile_wr_u32(out + 20, crc);
}
