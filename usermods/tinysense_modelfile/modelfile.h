// Shared helpers for tinysense model files (emlearn_trees, emlearn_neighbors, emlearn_net): CRC-32,
// little-endian readers/writers and the printf-style error message helper. Pure C, no MicroPython.
//
// modelfile.c is compiled once for the whole image (by this folder's micropython.mk / micropython.cmake);
// the modules include "../tinysense_modelfile/modelfile.h" and add this folder to their include dirs.
#ifndef TINYSENSE_MODELFILE_H
#define TINYSENSE_MODELFILE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

// CRC-32 (IEEE 802.3, zlib.crc32): continue from `crc` (0 to start) over data[0..len).
uint32_t modelfile_crc32(uint32_t crc, const uint8_t *data, size_t len);

// Format an error message into message[size] (always NUL-terminated, truncated to fit).
__attribute__((format(printf, 3, 4)))
void modelfile_message(char *message, size_t size, const char *format, ...);

// Write the message into err->message and evaluate to status: `return MODELFILE_FAIL(err, ERR_X, "...", ...);`
// (err is any struct with a char array `message`).
#define MODELFILE_FAIL(err, status, ...) \
    (modelfile_message((err)->message, sizeof((err)->message), __VA_ARGS__), (status))

static inline uint16_t modelfile_rd_u16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t modelfile_rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline float modelfile_rd_f32(const uint8_t *p) {
    const uint32_t bits = modelfile_rd_u32(p);
    float value;
    memcpy(&value, &bits, sizeof(value));
    return value;
}

static inline void modelfile_wr_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void modelfile_wr_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

#endif
