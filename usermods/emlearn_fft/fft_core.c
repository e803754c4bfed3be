// Radix-2 FFT core (see fft_core.h).
#include <math.h>

#include "fft_core.h"

#define TWO_PI_F (6.28318530717958647692f)

void fft_fill_tables(float *cos_t, float *sin_t, size_t n) {
    // Evaluate sinf/cosf only on angles in [0, pi/4] and place the values by symmetry:
    // small arguments keep the float angle error small, and the table is exactly
    // symmetric (cos(pi/2) is exactly 0, for instance).
    const size_t quarter = n / 4, eighth = n / 8;
    const float step = TWO_PI_F / (float)n;
    for (size_t k = 0; k < n / 2; k++) {
        const int second_quadrant = k > quarter;
        const size_t j = second_quadrant ? k - quarter : k;   // angle = j*step (+ pi/2)
        float c, s;
        if (j <= eighth) {
            const float angle = (float)j * step;
            c = cosf(angle);
            s = sinf(angle);
        } else {   // pi/4 < angle <= pi/2: reflect about pi/4
            const float angle = (float)(quarter - j) * step;
            c = sinf(angle);
            s = cosf(angle);
        }
        if (second_quadrant) {   // cos(a + pi/2) = -sin(a), sin(a + pi/2) = cos(a)
            cos_t[k] = -s;
            sin_t[k] = c;
        } else {
            cos_t[k] = c;
            sin_t[k] = s;
        }
    }
}

void fft_complex(float *re, float *im, size_t n, const float *cos_t, const float *sin_t, size_t stride) {
    if (n < 2) {
        return;
    }
    // Bit-reversal permutation (incremental reversed counter j).
    for (size_t i = 0, j = 0; i < n; i++) {
        if (i < j) {
            float t = re[i];
            re[i] = re[j];
            re[j] = t;
            t = im[i];
            im[i] = im[j];
            im[j] = t;
        }
        size_t bit = n >> 1;
        while (bit != 0 && (j & bit) != 0) {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
    }
    // Iterative decimation-in-time butterflies; twiddle W^k = cos - i*sin.
    for (size_t size = 2; size <= n; size <<= 1) {
        const size_t half = size >> 1;
        const size_t table_step = (n / size) * stride;
        for (size_t start = 0; start < n; start += size) {
            size_t t = 0;
            for (size_t a = start; a < start + half; a++, t += table_step) {
                const size_t b = a + half;
                const float c = cos_t[t], s = sin_t[t];
                const float tre = re[b] * c + im[b] * s;
                const float tim = im[b] * c - re[b] * s;
                re[b] = re[a] - tre;
                im[b] = im[a] - tim;
                re[a] += tre;
                im[a] += tim;
            }
        }
    }
}

void fft_real(const float *x_f32, const int16_t *x_i16, float *out_re, float *out_im, size_t n,
    const float *cos_t, const float *sin_t) {
    const size_t m = n / 2;
    // Pack z[j] = x[2j] + i*x[2j+1] and transform it with an m-point complex FFT.
    for (size_t j = 0; j < m; j++) {
        if (x_f32 != NULL) {
            out_re[j] = x_f32[2 * j];
            out_im[j] = x_f32[2 * j + 1];
        } else {
            out_re[j] = (float)x_i16[2 * j];
            out_im[j] = (float)x_i16[2 * j + 1];
        }
    }
    fft_complex(out_re, out_im, m, cos_t, sin_t, 2);
    // Split Z into the spectra of the even (E) and odd (O) samples and combine:
    //   E[k] = (Z[k] + conj Z[m-k]) / 2,  O[k] = (Z[k] - conj Z[m-k]) / 2i,
    //   X[k] = E[k] + W^k O[k],  X[m-k] = conj(E[k] - W^k O[k]),  W = exp(-2*pi*i/n).
    const float z0_re = out_re[0], z0_im = out_im[0];
    out_re[0] = z0_re + z0_im;
    out_im[0] = 0.0f;
    out_re[m] = z0_re - z0_im;
    out_im[m] = 0.0f;
    for (size_t k = 1; k <= m / 2; k++) {
        const size_t l = m - k;
        const float a_re = out_re[k], a_im = out_im[k];
        const float b_re = out_re[l], b_im = out_im[l];
        const float e_re = 0.5f * (a_re + b_re), e_im = 0.5f * (a_im - b_im);
        const float o_re = 0.5f * (a_im + b_im), o_im = 0.5f * (b_re - a_re);
        const float c = cos_t[k], s = sin_t[k];
        const float t_re = c * o_re + s * o_im;
        const float t_im = c * o_im - s * o_re;
        out_re[k] = e_re + t_re;
        out_im[k] = e_im + t_im;
        if (l != k) {
            out_re[l] = e_re - t_re;
            out_im[l] = t_im - e_im;
        }
    }
}
