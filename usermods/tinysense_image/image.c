// Camera frame preprocessing: the pure C core of the tinysense_image module (see image.h for every formula).
// Integer arithmetic only: the results are exact and the same on every CPU.
#include "image.h"

size_t image_bytes_per_pixel(int format) {
    switch (format) {
        case IMAGE_RGB565:
            return 2;
        case IMAGE_GRAY:
            return 1;
        default:
            return 0;
    }
}

void image_rgb565_to_gray(const uint8_t *src, uint8_t *dst, size_t n_pixels, int byteswap) {
    // In place works forward: dst[i] overwrites src byte i, which belongs to pixel i / 2 <= i, already read.
    const unsigned hi = byteswap ? 1u : 0u;
    const unsigned lo = 1u - hi;
    for (size_t i = 0; i < n_pixels; i++) {
        const uint8_t *p = src + 2 * i;
        dst[i] = image_rgb565_luma(((uint32_t)p[hi] << 8) | p[lo]);
    }
}

// The source columns [x0, x1) that destination index i covers (in one dimension, src / dst pixels), with the
// weights of the first and last (in units of 1/dst of a source pixel; the columns between weigh dst each).
typedef struct {
    uint32_t x0;
    uint32_t x1;
    uint32_t w_first; // the whole span (src) when x1 - x0 == 1
    uint32_t w_last;
} span_t;

static inline span_t span_of(uint32_t i, uint32_t src, uint32_t dst) {
    // src * dst <= 65535 * 65535 and (b + dst - 1) stay below 2**32.
    const uint32_t a = i * src;
    const uint32_t b = a + src;
    span_t s;
    s.x0 = a / dst;
    s.x1 = (b + dst - 1) / dst;
    if (s.x1 - s.x0 == 1) {
        s.w_first = src;
        s.w_last = 0;
    } else {
        s.w_first = (s.x0 + 1) * dst - a;
        s.w_last = b - (s.x1 - 1) * dst;
    }
    return s;
}

// sum over the span's columns of wx * gray: at most 255 * src_w.
static inline uint32_t row_sum_gray(const uint8_t *row, const span_t *s, uint32_t w_mid) {
    if (s->x1 - s->x0 == 1) {
        return s->w_first * row[s->x0];
    }
    uint32_t mid = 0;
    for (uint32_t x = s->x0 + 1; x + 1 < s->x1; x++) {
        mid += row[x];
    }
    return s->w_first * row[s->x0] + w_mid * mid + s->w_last * row[s->x1 - 1];
}

static inline uint32_t luma_at(const uint8_t *row, uint32_t x, unsigned hi, unsigned lo) {
    const uint8_t *p = row + 2 * x;
    return image_rgb565_luma(((uint32_t)p[hi] << 8) | p[lo]);
}

static inline uint32_t row_sum_rgb565(const uint8_t *row, const span_t *s, uint32_t w_mid, unsigned hi) {
    const unsigned lo = 1u - hi;
    if (s->x1 - s->x0 == 1) {
        return s->w_first * luma_at(row, s->x0, hi, lo);
    }
    uint32_t mid = 0;
    for (uint32_t x = s->x0 + 1; x + 1 < s->x1; x++) {
        mid += luma_at(row, x, hi, lo);
    }
    return s->w_first * luma_at(row, s->x0, hi, lo) + w_mid * mid + s->w_last * luma_at(row, s->x1 - 1, hi, lo);
}

static image_status_t check_size(uint32_t w, uint32_t h) {
    if (w == 0 || h == 0) {
        return IMAGE_ERR_EMPTY;
    }
    if (w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || (uint64_t)w * h > IMAGE_MAX_PIXELS) {
        return IMAGE_ERR_TOO_LARGE;
    }
    return IMAGE_OK;
}

image_status_t image_resample_area(const uint8_t *src, int format, int byteswap, uint32_t src_w, uint32_t src_h,
    uint8_t *dst, uint32_t dst_w, uint32_t dst_h) {
    const size_t bpp = image_bytes_per_pixel(format);
    if (bpp == 0) {
        return IMAGE_ERR_FORMAT;
    }
    image_status_t status = check_size(src_w, src_h);
    if (status == IMAGE_OK) {
        status = check_size(dst_w, dst_h);
    }
    if (status != IMAGE_OK) {
        return status;
    }
    const uint32_t total = src_w * src_h; // <= 2**24: 255 * total + total / 2 < 2**32
    const uint32_t half = total / 2;
    const unsigned hi = byteswap ? 1u : 0u;
    const size_t stride = (size_t)src_w * bpp;
    for (uint32_t j = 0; j < dst_h; j++) {
        const span_t ys = span_of(j, src_h, dst_h);
        uint8_t *out = dst + (size_t)j * dst_w;
        for (uint32_t i = 0; i < dst_w; i++) {
            const span_t xs = span_of(i, src_w, dst_w);
            uint32_t sum = 0;
            for (uint32_t y = ys.x0; y < ys.x1; y++) {
                uint32_t wy;
                if (ys.x1 - ys.x0 == 1) {
                    wy = ys.w_first;
                } else if (y == ys.x0) {
                    wy = ys.w_first;
                } else if (y + 1 == ys.x1) {
                    wy = ys.w_last;
                } else {
                    wy = dst_h;
                }
                const uint8_t *row = src + (size_t)y * stride;
                const uint32_t rs = format == IMAGE_GRAY ? row_sum_gray(row, &xs, dst_w)
                    : row_sum_rgb565(row, &xs, dst_w, hi);
                sum += wy * rs;
            }
            out[i] = (uint8_t)((sum + half) / total);
        }
    }
    return IMAGE_OK;
}

void image_normalize_minmax(const uint8_t *src, uint8_t *dst, size_t n) {
    if (n == 0) {
        return;
    }
    uint8_t lo = 255;
    uint8_t hi = 0;
    for (size_t k = 0; k < n; k++) {
        const uint8_t v = src[k];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    uint8_t lut[256];
    const uint32_t range = (uint32_t)hi - lo;
    for (uint32_t v = lo; v <= hi; v++) {
        lut[v] = range == 0 ? 0 : (uint8_t)((510u * (v - lo) + range) / (2u * range));
    }
    for (size_t k = 0; k < n; k++) {
        dst[k] = lut[src[k]];
    }
}

uint32_t image_isqrt64(uint64_t v) {
    uint64_t rem = v;
    uint64_t root = 0;
    uint64_t bit = (uint64_t)1 << 62;
    while (bit > v) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (rem >= root + bit) {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)root;
}

// floor(a / b) for b > 0 (C division truncates toward zero).
static inline int64_t floor_div(int64_t a, int64_t b) {
    const int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

void image_normalize_mean_std(const uint8_t *src, uint8_t *dst, size_t n, uint8_t out_mean, uint8_t out_std) {
    if (n == 0) {
        return;
    }
    uint32_t sum = 0;  // <= 255 * 2**24
    uint64_t sum2 = 0; // <= 65025 * 2**24
    uint8_t lo = 255;
    uint8_t hi = 0;
    for (size_t k = 0; k < n; k++) {
        const uint8_t v = src[k];
        sum += v;
        sum2 += (uint32_t)v * v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    // n * sum2 - sum**2 = n**2 * variance >= 0, below 2**64 for n <= 2**24.
    const uint64_t d = (uint64_t)n * sum2 - (uint64_t)sum * sum;
    const int64_t s = (int64_t)image_isqrt64(d);
    uint8_t lut[256];
    for (uint32_t v = lo; v <= hi; v++) {
        int64_t y = out_mean;
        if (s != 0) {
            const int64_t centred = (int64_t)n * v - (int64_t)sum;
            y += floor_div(2 * (int64_t)out_std * centred + s, 2 * s);
        }
        lut[v] = (uint8_t)(y < 0 ? 0 : (y > 255 ? 255 : y));
    }
    for (size_t k = 0; k < n; k++) {
        dst[k] = lut[src[k]];
    }
}
