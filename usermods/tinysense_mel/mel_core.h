// Mel spectrogram and MFCC of single frames: pure C, no MicroPython dependency, no allocation (the caller
// owns every buffer; mel_layout() says how many floats to give).
//
// Per frame (n_fft samples, float or int16):
//   x[k] * w[k]   periodic Hann window w[k] = 0.5 - 0.5 cos(2 pi k / n_fft), k = 0..n_fft-1 (scipy
//                 hann(n_fft, sym=False), librosa's STFT window); int16 samples count as x / 32768
//   X = rfft      emlearn_fft's fft_core (bins 0..n_fft/2, no scaling, as numpy.fft.rfft)
//   S = |X|^power power 2 (power spectrum, librosa's default) or 1 (magnitude)
//   M = F S       triangular mel filterbank F (n_mels x (n_fft/2 + 1)), librosa.filters.mel-compatible,
//                 stored sparsely: per band its first bin, its bin count and the nonzero weights
//   log (opt.)    'db': (20 / power) log10(max(M, amin)), amin = 1e-5^power (librosa power_to_db /
//                 amplitude_to_db with ref=1, top_db=None); 'ln': ln(max(M, amin))
//   MFCC          C = D log(M): DCT-II with orthonormal scaling (scipy.fft.dct(type=2, norm='ortho')),
//                 the first n_mfcc rows of the matrix D precomputed
// Construction (mel_init) computes the window, FFT tables, filterbank and DCT in double once; run-time
// code is float-only.
#ifndef TINYSENSE_MEL_CORE_H
#define TINYSENSE_MEL_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "../emlearn_fft/fft_core.h"   // requires the emlearn_fft module (compiles fft_core.c)

#define MEL_MIN_NFFT (4)
#define MEL_MAX_NFFT (65536)
#define MEL_MAX_BANDS (1024)

typedef enum { MEL_SCALE_HTK = 0, MEL_SCALE_SLANEY = 1 } mel_scale_t;
typedef enum { MEL_NORM_NONE = 0, MEL_NORM_SLANEY = 1 } mel_norm_t;
typedef enum { MEL_LOG_NONE = 0, MEL_LOG_DB = 1, MEL_LOG_LN = 2 } mel_log_t;

typedef struct {
    size_t n_fft;           // power of two in MEL_MIN_NFFT..MEL_MAX_NFFT
    double samplerate;      // Hz, > 0
    size_t n_mels;          // 1..MEL_MAX_BANDS
    double fmin, fmax;      // 0 <= fmin < fmax <= samplerate / 2
    mel_scale_t scale;
    mel_norm_t norm;
    int power;              // 1 or 2
    mel_log_t log;
    size_t n_mfcc;          // 0 (no MFCC) or 1..n_mels (then log must not be MEL_LOG_NONE)
} mel_config_t;

typedef struct {
    size_t n_fft, n_bins, n_mels, n_mfcc;
    int power;
    mel_log_t log;
    float window_i16_scale; // energy scale for int16 input: 32768^-power (exact, a power of two)
    float *window;          // n_fft/2 + 1 (w[n_fft - k] = w[k])
    float *cos_t, *sin_t;   // n_fft/2 each: fft_core tables
    float *frame;           // n_fft: the windowed frame
    float *re, *im;         // n_bins each: the spectrum, then S in re
    uint16_t *bands;        // 2 n_mels: first bin, bin count
    float *weights;         // the nonzero weights, band after band
    float *dct;             // n_mfcc x n_mels, row-major
    float *logmel;          // n_mels (MFCC only)
} mel_t;

// Mel scale conversions (HTK: 2595 log10(1 + f/700); Slaney: linear 3 f / 200 below 1 kHz, logarithmic
// above, as librosa.hz_to_mel / mel_to_hz).
double mel_hz_to_mel(double hz, mel_scale_t scale);
double mel_mel_to_hz(double mel, mel_scale_t scale);

// The number of nonzero filterbank weights of a valid config.
size_t mel_weight_count(const mel_config_t *config);

// The floats of memory mel_init needs for a valid config (n_weights from mel_weight_count).
size_t mel_layout_floats(const mel_config_t *config, size_t n_weights);

// Lay the buffers out in `memory` (mel_layout_floats floats, float-aligned) and compute the constants.
void mel_init(mel_t *m, const mel_config_t *config, float *memory, size_t n_weights);

// The index of the first non-finite sample of x[0..n), or n if all are finite.
size_t mel_first_non_finite(const float *x, size_t n);

// Mel energies (log-scaled if configured) of one frame: exactly one of x_f32 / x_i16 (n_fft samples) is
// non-NULL; out has n_mels floats. out may share memory with the frame (it is written last).
void mel_run(mel_t *m, const float *x_f32, const int16_t *x_i16, float *out);

// n_mfcc MFCCs of one frame (n_mfcc > 0 and log set at init).
void mel_mfcc(mel_t *m, const float *x_f32, const int16_t *x_i16, float *out);

// Weight of band `band` at FFT bin `bin` (0 outside the band), from the stored filterbank.
float mel_weight(const mel_t *m, size_t band, size_t bin);

#endif
