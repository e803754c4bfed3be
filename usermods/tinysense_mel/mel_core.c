// Mel spectrogram and MFCC core (see mel_core.h).
#include <math.h>

#include "mel_core.h"

#define PI_D (3.14159265358979323846)

// Slaney (Auditory Toolbox) scale, as librosa: 3 mels per 200 Hz below 1 kHz, then log steps of
// ln(6.4) / 27 per mel.
#define SLANEY_F_SP (200.0 / 3.0)
#define SLANEY_MIN_LOG_HZ (1000.0)
#define SLANEY_MIN_LOG_MEL (SLANEY_MIN_LOG_HZ / SLANEY_F_SP)

static double slaney_logstep(void) {
    return log(6.4) / 27.0;
}

double mel_hz_to_mel(double hz, mel_scale_t scale) {
    if (scale == MEL_SCALE_HTK) {
        return 2595.0 * log10(1.0 + hz / 700.0);
    }
    if (hz >= SLANEY_MIN_LOG_HZ) {
        return SLANEY_MIN_LOG_MEL + log(hz / SLANEY_MIN_LOG_HZ) / slaney_logstep();
    }
    return hz / SLANEY_F_SP;
}

double mel_mel_to_hz(double mel, mel_scale_t scale) {
    if (scale == MEL_SCALE_HTK) {
        return 700.0 * (pow(10.0, mel / 2595.0) - 1.0);
    }
    if (mel >= SLANEY_MIN_LOG_MEL) {
        return SLANEY_MIN_LOG_HZ * exp(slaney_logstep() * (mel - SLANEY_MIN_LOG_MEL));
    }
    return SLANEY_F_SP * mel;
}

// The corner frequencies (Hz) of band i: n_mels + 2 points evenly spaced in mel from fmin to fmax.
static double mel_point_hz(const mel_config_t *c, size_t i) {
    const double lo = mel_hz_to_mel(c->fmin, c->scale), hi = mel_hz_to_mel(c->fmax, c->scale);
    if (i == 0) {
        return c->fmin;
    }
    if (i == c->n_mels + 1) {
        return c->fmax;
    }
    return mel_mel_to_hz(lo + (hi - lo) * (double)i / (double)(c->n_mels + 1), c->scale);
}

// Triangle of band i at bin j (librosa.filters.mel): rises from f0 to 1 at f1, falls to 0 at f2.
static double band_weight(const mel_config_t *c, double f0, double f1, double f2, size_t j) {
    const double f = (double)j * c->samplerate / (double)c->n_fft;
    const double lower = (f - f0) / (f1 - f0), upper = (f2 - f) / (f2 - f1);
    double w = lower < upper ? lower : upper;
    if (!(w > 0.0)) {
        return 0.0;
    }
    if (c->norm == MEL_NORM_SLANEY) {
        w *= 2.0 / (f2 - f0);   // equal area per band
    }
    return w;
}

// Bins with a nonzero weight in band i: [*first, *first + *count). Only bins between f0 and f2 qualify.
static void band_range(const mel_config_t *c, size_t i, double *f, size_t *first, size_t *count) {
    f[0] = mel_point_hz(c, i);
    f[1] = mel_point_hz(c, i + 1);
    f[2] = mel_point_hz(c, i + 2);
    const size_t n_bins = c->n_fft / 2 + 1;
    const double bin_hz = c->samplerate / (double)c->n_fft;
    double lo = floor(f[0] / bin_hz), hi = ceil(f[2] / bin_hz);
    size_t j = lo > 0.0 ? (size_t)lo : 0;
    size_t end = hi < (double)(n_bins - 1) ? (size_t)hi : n_bins - 1;
    while (j <= end && band_weight(c, f[0], f[1], f[2], j) == 0.0) {
        j++;
    }
    while (end >= j && end > 0 && band_weight(c, f[0], f[1], f[2], end) == 0.0) {
        end--;
    }
    *first = j;
    *count = (j <= end && band_weight(c, f[0], f[1], f[2], j) > 0.0) ? end - j + 1 : 0;
}

size_t mel_weight_count(const mel_config_t *config) {
    size_t total = 0;
    for (size_t i = 0; i < config->n_mels; i++) {
        double f[3];
        size_t first, count;
        band_range(config, i, f, &first, &count);
        total += count;
    }
    return total;
}

size_t mel_layout_floats(const mel_config_t *c, size_t n_weights) {
    const size_t n = c->n_fft, n_bins = n / 2 + 1;
    return n_bins            // window
           + n               // cos_t, sin_t
           + n               // frame
           + 2 * n_bins      // re, im
           + c->n_mels       // bands: 2 uint16 per band
           + n_weights
           + c->n_mfcc * c->n_mels   // dct
           + (c->n_mfcc > 0 ? c->n_mels : 0);   // logmel
}

void mel_init(mel_t *m, const mel_config_t *c, float *memory, size_t n_weights) {
    const size_t n = c->n_fft, n_bins = n / 2 + 1;
    m->n_fft = n;
    m->n_bins = n_bins;
    m->n_mels = c->n_mels;
    m->n_mfcc = c->n_mfcc;
    m->power = c->power;
    m->log = c->log;
    m->window_i16_scale = c->power == 1 ? 1.0f / 32768.0f : 1.0f / (32768.0f * 32768.0f);
    float *p = memory;
    m->window = p;
    p += n_bins;
    m->cos_t = p;
    p += n / 2;
    m->sin_t = p;
    p += n / 2;
    m->frame = p;
    p += n;
    m->re = p;
    p += n_bins;
    m->im = p;
    p += n_bins;
    m->bands = (uint16_t *)p;
    p += c->n_mels;
    m->weights = p;
    p += n_weights;
    m->dct = p;
    p += c->n_mfcc * c->n_mels;
    m->logmel = c->n_mfcc > 0 ? p : NULL;

    // Periodic Hann window (scipy.signal.get_window('hann', n), fftbins=True), half of it.
    for (size_t k = 0; k < n_bins; k++) {
        m->window[k] = (float)(0.5 - 0.5 * cos(2.0 * PI_D * (double)k / (double)n));
    }
    fft_fill_tables(m->cos_t, m->sin_t, n);

    // Sparse filterbank.
    float *w = m->weights;
    for (size_t i = 0; i < c->n_mels; i++) {
        double f[3];
        size_t first, count;
        band_range(c, i, f, &first, &count);
        m->bands[2 * i] = (uint16_t)first;
        m->bands[2 * i + 1] = (uint16_t)count;
        for (size_t j = 0; j < count; j++) {
            *w++ = (float)band_weight(c, f[0], f[1], f[2], first + j);
        }
    }

    // DCT-II, orthonormal: D[k][i] = sqrt((k == 0 ? 1 : 2) / N) cos(pi k (2i + 1) / (2N)).
    const double nm = (double)c->n_mels;
    for (size_t k = 0; k < c->n_mfcc; k++) {
        const double scale = sqrt((k == 0 ? 1.0 : 2.0) / nm);
        for (size_t i = 0; i < c->n_mels; i++) {
            m->dct[k * c->n_mels + i] = (float)(scale * cos(PI_D * (double)k * (2.0 * (double)i + 1.0) / (2.0 * nm)));
        }
    }
}

size_t mel_first_non_finite(const float *x, size_t n) {
    for (size_t k = 0; k < n; k++) {
        if (!isfinite(x[k])) {
            return k;
        }
    }
    return n;
}

float mel_weight(const mel_t *m, size_t band, size_t bin) {
    const float *w = m->weights;
    for (size_t i = 0; i < band; i++) {
        w += m->bands[2 * i + 1];
    }
    const size_t first = m->bands[2 * band], count = m->bands[2 * band + 1];
    return (bin >= first && bin < first + count) ? w[bin - first] : 0.0f;
}

// Window, FFT and |X|^power into m->re[0..n_bins).
static void mel_spectrum(mel_t *m, const float *x_f32, const int16_t *x_i16) {
    const size_t n = m->n_fft, half = n / 2;
    const float *w = m->window;
    float *frame = m->frame;
    if (x_f32 != NULL) {
        for (size_t k = 0; k <= half; k++) {
            frame[k] = x_f32[k] * w[k];
        }
        for (size_t k = half + 1; k < n; k++) {
            frame[k] = x_f32[k] * w[n - k];
        }
    } else {
        for (size_t k = 0; k <= half; k++) {
            frame[k] = (float)x_i16[k] * w[k];
        }
        for (size_t k = half + 1; k < n; k++) {
            frame[k] = (float)x_i16[k] * w[n - k];
        }
    }
    fft_real(frame, NULL, m->re, m->im, n, m->cos_t, m->sin_t);
    float *re = m->re;
    const float *im = m->im;
    if (m->power == 2) {
        for (size_t j = 0; j < m->n_bins; j++) {
            re[j] = re[j] * re[j] + im[j] * im[j];
        }
    } else {
        for (size_t j = 0; j < m->n_bins; j++) {
            re[j] = sqrtf(re[j] * re[j] + im[j] * im[j]);
        }
    }
}

void mel_run(mel_t *m, const float *x_f32, const int16_t *x_i16, float *out) {
    mel_spectrum(m, x_f32, x_i16);
    const float *s = m->re;
    const float *w = m->weights;
    const float scale = x_i16 != NULL ? m->window_i16_scale : 1.0f;
    const float amin = m->power == 1 ? 1e-5f : 1e-10f;
    const float db_factor = m->power == 1 ? 20.0f : 10.0f;
    for (size_t i = 0; i < m->n_mels; i++) {
        const size_t first = m->bands[2 * i], count = m->bands[2 * i + 1];
        float acc = 0.0f;
        for (size_t j = 0; j < count; j++) {
            acc += w[j] * s[first + j];
        }
        w += count;
        acc *= scale;
        if (m->log != MEL_LOG_NONE) {
            const float clipped = acc > amin ? acc : amin;
            if (isnan(acc)) {
                acc = NAN;
            } else if (m->log == MEL_LOG_DB) {
                acc = db_factor * log10f(clipped);
            } else {
                acc = logf(clipped);
            }
        }
        out[i] = acc;
    }
}

void mel_mfcc(mel_t *m, const float *x_f32, const int16_t *x_i16, float *out) {
    mel_run(m, x_f32, x_i16, m->logmel);
    const size_t nm = m->n_mels;
    for (size_t k = 0; k < m->n_mfcc; k++) {
        const float *d = m->dct + k * nm;
        float acc = 0.0f;
        for (size_t i = 0; i < nm; i++) {
            acc += d[i] * m->logmel[i];
        }
        out[k] = acc;
    }
}
