// Camera frame preprocessing: the pure C core of the tinysense_image module.
// No MicroPython includes: callable from any C code, testable on its own (and compiled for Xtensa by the tests).
//
// Pixel formats (the values of micropython-camera-API's PixelFormat, i.e. esp32-camera's pixformat_t):
//   IMAGE_RGB565 (0): 2 bytes a pixel. esp32-camera delivers them big-endian, high byte first:
//                     byte 0 = R4 R3 R2 R1 R0 G5 G4 G3, byte 1 = G2 G1 G0 B4 B3 B2 B1 B0.
//                     `byteswap` = 1 reads little-endian pixels instead (low byte first, e.g. a framebuf.RGB565
//                     buffer on a little-endian CPU, or jpg2rgb565() output).
//   IMAGE_GRAY   (3): 1 byte a pixel (PixelFormat.GRAYSCALE), already luma.
//
// Luma of an RGB565 pixel (ITU-R BT.601 weights 0.299 / 0.587 / 0.114 in 8-bit fixed point):
//   r8 = (r5 << 3) | (r5 >> 2),  g8 = (g6 << 2) | (g6 >> 4),  b8 = (b5 << 3) | (b5 >> 2)   (bit replication: 0..255)
//   Y  = (77 * r8 + 150 * g8 + 29 * b8 + 128) >> 8
// 77 + 150 + 29 = 256, so white maps to 255 and black to 0; +128 rounds the /256 half up.
#ifndef TINYSENSE_IMAGE_H
#define TINYSENSE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define IMAGE_RGB565 (0)
#define IMAGE_GRAY (3)

// Width and height limits: each side 1..65535 and at most IMAGE_MAX_PIXELS pixels, so that every area sum
// (at most 255 * src_w * src_h) and every mean/variance sum fits the integer types used.
#define IMAGE_MAX_SIDE (65535u)
#define IMAGE_MAX_PIXELS (16777216u) // 2**24, e.g. 4096 x 4096

typedef enum {
    IMAGE_OK = 0,
    IMAGE_ERR_FORMAT,    // pixel format is neither IMAGE_RGB565 nor IMAGE_GRAY
    IMAGE_ERR_EMPTY,     // a width or height is 0
    IMAGE_ERR_TOO_LARGE, // a side above IMAGE_MAX_SIDE or more than IMAGE_MAX_PIXELS pixels
} image_status_t;

// Bytes a pixel of `format`, or 0 for an unknown format.
size_t image_bytes_per_pixel(int format);

// Luma (formula above) of one RGB565 pixel given as its 16-bit value.
static inline uint8_t image_rgb565_luma(uint32_t v) {
    const uint32_t r5 = (v >> 11) & 0x1Fu;
    const uint32_t g6 = (v >> 5) & 0x3Fu;
    const uint32_t b5 = v & 0x1Fu;
    const uint32_t r8 = (r5 << 3) | (r5 >> 2);
    const uint32_t g8 = (g6 << 2) | (g6 >> 4);
    const uint32_t b8 = (b5 << 3) | (b5 >> 2);
    return (uint8_t)((77u * r8 + 150u * g8 + 29u * b8 + 128u) >> 8);
}

// n_pixels RGB565 pixels (2 * n_pixels bytes) to n_pixels luma bytes. dst may equal src (in place); other
// overlaps are not allowed.
void image_rgb565_to_gray(const uint8_t *src, uint8_t *dst, size_t n_pixels, int byteswap);

// Area resampling (box filter with exact fractional pixel coverage) of a src_w x src_h image in `format` to a
// dst_w x dst_h gray image, row-major, for any ratio (down or up, integer or not). RGB565 pixels are converted
// to luma first (as image_rgb565_to_gray), so no full-size gray buffer is needed.
//
// Destination pixel (i, j) covers source x in [i * src_w / dst_w, (i + 1) * src_w / dst_w) and likewise y.
// Scaling x by dst_w (and y by dst_h) makes every boundary an integer: source column x gets the weight
//   wx(i, x) = max(0, min((x + 1) * dst_w, (i + 1) * src_w) - max(x * dst_w, i * src_w))
// (sum over x: src_w), wy(j, y) likewise (sum over y: src_h), and
//   dst[j][i] = floor((sum_y sum_x wy * wx * gray[y][x] + (src_w * src_h) / 2) / (src_w * src_h))
// i.e. the exact area-weighted mean rounded half up, in integer arithmetic (no float): equal sizes copy, an
// integer ratio k gives the rounded mean of each k x k block. src and dst must not overlap.
image_status_t image_resample_area(const uint8_t *src, int format, int byteswap, uint32_t src_w, uint32_t src_h,
    uint8_t *dst, uint32_t dst_w, uint32_t dst_h);

// Brightness normalisation of n uint8 pixels into uint8 (the input a uint8 CNN takes). dst may equal src (in
// place). Each builds a 256-entry lookup table from the image's statistics, then maps every pixel through it.
//
// min-max: stretch [lo, hi] (the image's smallest and largest values) to [0, 255]:
//   y = floor((510 * (x - lo) + (hi - lo)) / (2 * (hi - lo)))     (round half up); a constant image gives 0.
void image_normalize_minmax(const uint8_t *src, uint8_t *dst, size_t n);

// mean/std: shift and scale to mean `out_mean` and standard deviation `out_std` (in 0..255 units):
//   S = sum x, Q = sum x*x, s = isqrt(n * Q - S * S)   (integer square root, floor; s / n is the population std)
//   y = out_mean + floor((2 * out_std * (n * x - S) + s) / (2 * s))   (round half up), clamped to 0..255
// A constant image (s == 0) gives out_mean everywhere. n must be at most IMAGE_MAX_PIXELS.
void image_normalize_mean_std(const uint8_t *src, uint8_t *dst, size_t n, uint8_t out_mean, uint8_t out_std);

// Integer square root: the largest r with r * r <= v.
uint32_t image_isqrt64(uint64_t v);

#endif // TINYSENSE_IMAGE_H
