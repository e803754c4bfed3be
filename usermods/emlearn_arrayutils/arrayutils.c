// Typed array utilities: the pure C core of the emlearn_arrayutils module (see arrayutils.h).
#include "arrayutils.h"

#include <float.h>
#include <math.h>
#include <stdint.h>

// The ESP32-S3's FPU rounds every float operation to float32 (the 32-bit host build uses SSE for the
// same reason). The formula has no multiply-then-add, so fused multiply-add contraction cannot change it.

// Elements converted to float32 per block: bounds the stack use, keeps the inner loops free of type switches.
#define ARRAYUTILS_BLOCK (32)

size_t arrayutils_type_size(char typecode) {
    switch (typecode) {
        case 'b':
        case 'B':
            return 1;
        case 'h':
        case 'H':
            return 2;
        case 'i':
        case 'f':
            return 4;
        default:
            return 0;
    }
}

typedef struct {
    float in_min;
    float in_span;   // in_max - in_min, never 0
    float out_min;
    float out_span;  // out_max - out_min
    float lo;        // clamp range: the output range, for integer outputs within the type's range
    float hi;
} linear_map_t;

static inline float map_one(const linear_map_t *m, float x) {
    return ((x - m->in_min) * m->out_span) / m->in_span + m->out_min;
}

static inline float clamp_range(float v, float lo, float hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

static void read_block(const void *in, char type, size_t start, size_t n, float *dst) {
    size_t i;
    switch (type) {
        case 'b': {
            const int8_t *p = (const int8_t *)in + start;
            for (i = 0; i < n; i++) {
                dst[i] = (float)p[i];
            }
            break;
        }
        case 'B': {
            const uint8_t *p = (const uint8_t *)in + start;
            for (i = 0; i < n; i++) {
                dst[i] = (float)p[i];
            }
            break;
        }
        case 'h': {
            const int16_t *p = (const int16_t *)in + start;
            for (i = 0; i < n; i++) {
                dst[i] = (float)p[i];
            }
            break;
        }
        case 'H': {
            const uint16_t *p = (const uint16_t *)in + start;
            for (i = 0; i < n; i++) {
                dst[i] = (float)p[i];
            }
            break;
        }
        case 'i': {
            // Beyond 2**24 an int32 rounds to the nearest float32 (ties to even).
            const int32_t *p = (const int32_t *)in + start;
            for (i = 0; i < n; i++) {
                dst[i] = (float)p[i];
            }
            break;
        }
        default: { // 'f'
            const float *p = (const float *)in + start;
            for (i = 0; i < n; i++) {
                dst[i] = p[i];
            }
            break;
        }
    }
}

// Integer outputs: `!(y >= lo)` also sends nan to lo. After the clamp y lies within the type's range,
// so the conversion (truncation toward zero) is defined.
#define ARRAYUTILS_MAP_TO_INT(ctype) { \
        ctype *p = (ctype *)out + start; \
        for (i = 0; i < n; i++) { \
            float y = map_one(m, src[i]); \
            if (!(y >= m->lo)) { \
                y = m->lo; \
            } else if (y > m->hi) { \
                y = m->hi; \
            } \
            p[i] = (ctype)y; \
        } \
}

static void write_block(const linear_map_t *m, const float *src, char type, void *out, size_t start, size_t n) {
    size_t i;
    switch (type) {
        case 'b':
            ARRAYUTILS_MAP_TO_INT(int8_t);
            break;
        case 'B':
            ARRAYUTILS_MAP_TO_INT(uint8_t);
            break;
        case 'h':
            ARRAYUTILS_MAP_TO_INT(int16_t);
            break;
        case 'H':
            ARRAYUTILS_MAP_TO_INT(uint16_t);
            break;
        case 'i': {
            // INT32_MAX has no float32; hi may be 2**31, which becomes INT32_MAX.
            int32_t *p = (int32_t *)out + start;
            for (i = 0; i < n; i++) {
                float y = map_one(m, src[i]);
                if (!(y >= m->lo)) {
                    y = m->lo;
                } else if (y > m->hi) {
                    y = m->hi;
                }
                p[i] = y >= 2147483648.0f ? INT32_MAX : (int32_t)y;
            }
            break;
        }
        default: { // 'f': nan stays nan (both comparisons are false)
            float *p = (float *)out + start;
            for (i = 0; i < n; i++) {
                float y = map_one(m, src[i]);
                if (y < m->lo) {
                    y = m->lo;
                } else if (y > m->hi) {
                    y = m->hi;
                }
                p[i] = y;
            }
            break;
        }
    }
}

arrayutils_status_t arrayutils_linear_map(const void *in, char in_type, void *out, char out_type, size_t length,
    float in_min, float in_max, float out_min, float out_max) {
    const size_t in_size = arrayutils_type_size(in_type);
    const size_t out_size = arrayutils_type_size(out_type);
    if (in_size == 0) {
        return ARRAYUTILS_ERR_IN_TYPE;
    }
    if (out_size == 0) {
        return ARRAYUTILS_ERR_OUT_TYPE;
    }
    if (!isfinite(in_min) || !isfinite(in_max) || !isfinite(out_min) || !isfinite(out_max)) {
        return ARRAYUTILS_ERR_NOT_FINITE;
    }
    if (in_min == in_max) {
        return ARRAYUTILS_ERR_EMPTY_RANGE;
    }

    linear_map_t m;
    m.in_min = in_min;
    m.in_span = in_max - in_min;
    m.out_min = out_min;
    m.out_span = out_max - out_min;
    if (!isfinite(m.in_span) || !isfinite(m.out_span)) {
        return ARRAYUTILS_ERR_RANGE_TOO_WIDE;
    }
    m.lo = out_min < out_max ? out_min : out_max;
    m.hi = out_min < out_max ? out_max : out_min;
    float type_min = -FLT_MAX;
    float type_max = FLT_MAX;
    switch (out_type) {
        case 'b':
            type_min = -128.0f;
            type_max = 127.0f;
            break;
        case 'B':
            type_min = 0.0f;
            type_max = 255.0f;
            break;
        case 'h':
            type_min = -32768.0f;
            type_max = 32767.0f;
            break;
        case 'H':
            type_min = 0.0f;
            type_max = 65535.0f;
            break;
        case 'i':
            type_min = -2147483648.0f;
            type_max = 2147483648.0f; // the float32 nearest INT32_MAX; write_block saturates it
            break;
        default:
            break;
    }
    m.lo = clamp_range(m.lo, type_min, type_max);
    m.hi = clamp_range(m.hi, type_min, type_max);

    if (length == 0) {
        return ARRAYUTILS_OK;
    }

    // Blocks are read whole before they are written. Overlapping arrays of one element size are then safe
    // when processed toward the side where out lies behind in; other overlaps would clobber unread input.
    const uintptr_t in_start = (uintptr_t)in;
    const uintptr_t out_start = (uintptr_t)out;
    const int overlap = in_start < out_start + length * out_size && out_start < in_start + length * in_size;
    if (overlap && in_size != out_size) {
        return ARRAYUTILS_ERR_OVERLAP;
    }
    const int backward = overlap && out_start > in_start;

    float block[ARRAYUTILS_BLOCK];
    if (backward) {
        size_t end = length;
        while (end > 0) {
            const size_t n = end < ARRAYUTILS_BLOCK ? end : ARRAYUTILS_BLOCK;
            const size_t start = end - n;
            read_block(in, in_type, start, n, block);
            write_block(&m, block, out_type, out, start, n);
            end = start;
        }
    } else {
        for (size_t start = 0; start < length; start += ARRAYUTILS_BLOCK) {
            const size_t rest = length - start;
            const size_t n = rest < ARRAYUTILS_BLOCK ? rest : ARRAYUTILS_BLOCK;
            read_block(in, in_type, start, n, block);
            write_block(&m, block, out_type, out, start, n);
        }
    }
    return ARRAYUTILS_OK;
}
