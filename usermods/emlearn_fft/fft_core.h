// Radix-2 FFT in float32, no MicroPython dependency.
//
// Tables: for a transform size n (a power of two), cos_t[k] = cos(2*pi*k/n) and
// sin_t[k] = sin(2*pi*k/n) for k < n/2. The same tables serve the n-point complex FFT
// and the n-point real FFT (which runs an n/2-point complex FFT on every other entry).
// Forward transform, no scaling: X[k] = sum_m x[m] exp(-2*pi*i*k*m/n), as numpy.fft.fft.
// No allocation: the caller owns tables and buffers.
#ifndef TINYSENSE_FFT_CORE_H
#define TINYSENSE_FFT_CORE_H

#include <stddef.h>
#include <stdint.h>

// Fill n/2 entries of each table.
void fft_fill_tables(float *cos_t, float *sin_t, size_t n);

// In-place complex FFT of size n (power of two, >= 1) on re[], im[].
// The tables are those of a transform of size n * stride (stride a power of two).
void fft_complex(float *re, float *im, size_t n, const float *cos_t, const float *sin_t, size_t stride);

// Real FFT of size n (power of two, >= 2): bins 0..n/2 into out_re[], out_im[] (n/2 + 1 each).
// x_f32 or x_i16 (exactly one non-NULL) holds the n input samples; it must not overlap the outputs.
void fft_real(const float *x_f32, const int16_t *x_i16, float *out_re, float *out_im, size_t n,
    const float *cos_t, const float *sin_t);

#endif
