// Time-series features of 1-3 axis windows (accelerometer, gyro) in float32: the pure C core of
// tinysense_features (no MicroPython includes). Training on the PC runs this same code in the host
// firmware, so the device and the training pipeline compute identical features.
//
// Channels: the n_axes axes (x, y, z) of an interleaved window, then optionally the magnitude
// sqrt(x^2 + y^2 + z^2) sample by sample ("mag"). For every channel, in this order:
//
//   mean      arithmetic mean
//   std       population standard deviation (ddof = 0)
//   min, max
//   median    = the 0.5 quantile below
//   q25, q75  quantiles with linear interpolation between order statistics (numpy's default
//             'linear' method): position p * (n - 1) in the sorted window
//   iqr       q75 - q25
//   rms       sqrt(mean of squares)
//   energy    mean of squares (rms^2, not the sum)
//   zcross    zero crossings of the mean-removed signal d[i] = x[i] - mean: the number of times the
//             sign of d changes between consecutive samples; samples with d == 0 exactly have no
//             sign and are skipped (+, 0, - counts one crossing; +, 0, + none)
// and with spectral features, from the power spectrum P[k] = |X[k]|^2 of the real FFT of the
// mean-removed window zero-padded to fft_size (the next power of two >= window_length; no taper),
// bins k = 1 .. fft_size/2 at frequency f[k] = k * samplerate / fft_size (DC is left out):
//   domfreq   f[k] of the largest P[k] (the lowest such k on a tie), in Hz
//   centroid  sum f[k] P[k] / sum P[k], in Hz
//   pow_0_1hz, pow_1_3hz, pow_3_8hz, pow_8hz_up
//             the fraction of sum P[k] in the bins with f[k] in [0, 1), [1, 3), [3, 8), [8, inf) Hz
//             (band b starts at bin ceil(edge_b * fft_size / samplerate), at least 1)
// A channel without spectral power (a constant signal) gives 0 for all six.
//
// Accuracy: int16 windows accumulate in exact integer arithmetic (sums, sums of squares, mean-removed
// samples); float windows use compensated (Kahan/Neumaier) float32 sums and a two-float mean, so
// signals with a large offset and a small variance keep their precision. Do not build this file with
// -ffast-math (it would undo the compensation). Float samples must be finite (the binding rejects
// NaN/inf); magnitudes beyond about 1e18 overflow float32 in the squared features (inf/NaN results).
#ifndef TINYSENSE_FEATURES_CORE_H
#define TINYSENSE_FEATURES_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FEAT_MIN_WINDOW 4
#define FEAT_MAX_WINDOW 4096
#define FEAT_MAX_AXES 3
#define FEAT_N_TIME 11
#define FEAT_N_SPECTRAL 6
#define FEAT_N_BANDS 4

typedef enum {
    FEAT_OK = 0,
    FEAT_BAD_WINDOW_LENGTH,
    FEAT_BAD_AXES,
    FEAT_BAD_SAMPLERATE,
} feat_status_t;

typedef struct {
    uint32_t window_length;
    uint32_t n_axes;
    uint32_t n_channels;     // n_axes (+ 1 with the magnitude)
    uint32_t fft_size;       // power of two >= window_length (spectral), else 0
    bool spectral;
    bool magnitude;
    float samplerate;
    uint32_t band_start[FEAT_N_BANDS + 1];  // first bin of each band; the last entry is fft_size/2 + 1
    float *values;           // window_length: one channel's samples, sorted in place
    float *work;             // fft_size (spectral) or window_length: the mean-removed channel
    float *twiddle;          // fft_size (spectral): cos(2 pi k / fft_size) for k < fft_size/2, then sin
} feat_config_t;

// FEAT_OK or what is wrong with the parameters.
feat_status_t feat_validate(uint32_t window_length, uint32_t n_axes, float samplerate);

// Floats of scratch memory the configuration needs (pass that many to feat_init).
size_t feat_scratch_floats(uint32_t window_length, bool spectral);

// Set up cfg (parameters must pass feat_validate) with `scratch` of feat_scratch_floats() floats.
void feat_init(feat_config_t *cfg, uint32_t window_length, uint32_t n_axes, float samplerate, bool spectral,
    bool magnitude, float *scratch);

size_t feat_n_features(const feat_config_t *cfg);
size_t feat_per_channel(const feat_config_t *cfg);

// Names: feature j of channel c is feat_channel_name(cfg, c) + "_" + feat_feature_name(j).
const char *feat_channel_name(const feat_config_t *cfg, size_t channel);
const char *feat_feature_name(size_t j);

// Index of the first NaN/inf in x[0..n), or n if all are finite.
size_t feat_first_nonfinite(const float *x, size_t n);

// Features of one interleaved window (window_length * n_axes samples) into out (feat_n_features).
// Float windows must be finite (check with feat_first_nonfinite). Nothing is allocated.
void feat_compute_i16(const feat_config_t *cfg, const int16_t *window, float *out);
void feat_compute_f32(const feat_config_t *cfg, const float *window, float *out);

#endif // TINYSENSE_FEATURES_CORE_H
