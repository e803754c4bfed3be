// Time-series features: see features_core.h for the definitions.
#include <math.h>

#include "features_core.h"

#define FEAT_TWO_PI 6.28318530717958647692f

static const char *const time_names[FEAT_N_TIME] = {
    "mean", "std", "min", "max", "median", "q25", "q75", "iqr", "rms", "energy", "zcross",
};
static const char *const spectral_names[FEAT_N_SPECTRAL] = {
    "domfreq", "centroid", "pow_0_1hz", "pow_1_3hz", "pow_3_8hz", "pow_8hz_up",
};
static const float band_edges_hz[FEAT_N_BANDS] = { 0.0f, 1.0f, 3.0f, 8.0f };
static const char *const channel_names[FEAT_MAX_AXES + 1] = { "x", "y", "z", "mag" };

// Neumaier's compensated sum: hi + lo carries about twice float32's precision.
typedef struct {
    float hi;
    float lo;
} feat_sum_t;

static inline void sum_add(feat_sum_t *s, float v) {
    const float t = s->hi + v;
    if (fabsf(s->hi) >= fabsf(v)) {
        s->lo += (s->hi - t) + v;
    } else {
        s->lo += (v - t) + s->hi;
    }
    s->hi = t;
}

static inline float sum_value(const feat_sum_t *s) {
    return s->hi + s->lo;
}

static uint32_t next_pow2(uint32_t n) {
    uint32_t m = 1;
    while (m < n) {
        m <<= 1;
    }
    return m;
}

feat_status_t feat_validate(uint32_t window_length, uint32_t n_axes, float samplerate) {
    if (window_length < FEAT_MIN_WINDOW || window_length > FEAT_MAX_WINDOW) {
        return FEAT_BAD_WINDOW_LENGTH;
    }
    if (n_axes < 1 || n_axes > FEAT_MAX_AXES) {
        return FEAT_BAD_AXES;
    }
    if (!isfinite(samplerate) || !(samplerate > 0.0f)) {
        return FEAT_BAD_SAMPLERATE;
    }
    return FEAT_OK;
}

size_t feat_scratch_floats(uint32_t window_length, bool spectral) {
    if (spectral) {
        return window_length + 2 * (size_t)next_pow2(window_length);
    }
    return 2 * (size_t)window_length;
}

void feat_init(feat_config_t *cfg, uint32_t window_length, uint32_t n_axes, float samplerate, bool spectral,
    bool magnitude, float *scratch) {
    cfg->window_length = window_length;
    cfg->n_axes = n_axes;
    cfg->n_channels = n_axes + (magnitude ? 1 : 0);
    cfg->spectral = spectral;
    cfg->magnitude = magnitude;
    cfg->samplerate = samplerate;
    cfg->values = scratch;
    cfg->work = scratch + window_length;
    cfg->fft_size = 0;
    cfg->twiddle = NULL;
    for (size_t b = 0; b <= FEAT_N_BANDS; b++) {
        cfg->band_start[b] = 0;
    }
    if (!spectral) {
        return;
    }
    const uint32_t m = next_pow2(window_length);
    const uint32_t half = m / 2;
    cfg->fft_size = m;
    cfg->twiddle = cfg->work + m;
    for (uint32_t k = 0; k < half; k++) {
        // The angle is below pi: float32 sinf/cosf are accurate to about one ulp here.
        const float angle = FEAT_TWO_PI * (float)k / (float)m;
        cfg->twiddle[k] = cosf(angle);
        cfg->twiddle[half + k] = sinf(angle);
    }
    for (size_t b = 0; b < FEAT_N_BANDS; b++) {
        float first = ceilf(band_edges_hz[b] * (float)m / samplerate);
        uint32_t k = first < 1.0f ? 1u : (first > (float)(half + 1) ? half + 1 : (uint32_t)first);
        if (b > 0 && k < cfg->band_start[b - 1]) {
            k = cfg->band_start[b - 1];
        }
        cfg->band_start[b] = k;
    }
    cfg->band_start[FEAT_N_BANDS] = half + 1;
}

size_t feat_per_channel(const feat_config_t *cfg) {
    return FEAT_N_TIME + (cfg->spectral ? FEAT_N_SPECTRAL : 0);
}

size_t feat_n_features(const feat_config_t *cfg) {
    return cfg->n_channels * feat_per_channel(cfg);
}

const char *feat_channel_name(const feat_config_t *cfg, size_t channel) {
    if (channel < cfg->n_axes) {
        return channel_names[channel];
    }
    return channel_names[FEAT_MAX_AXES];
}

const char *feat_feature_name(size_t j) {
    if (j < FEAT_N_TIME) {
        return time_names[j];
    }
    if (j < FEAT_N_TIME + FEAT_N_SPECTRAL) {
        return spectral_names[j - FEAT_N_TIME];
    }
    return "";
}

size_t feat_first_nonfinite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            return i;
        }
    }
    return n;
}

// In-place ascending heapsort: O(n log n) in every case, no recursion, no extra memory.
static void sift_down(float *v, size_t root, size_t n) {
    const float x = v[root];
    size_t i = root;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) {
            break;
        }
        if (child + 1 < n && v[child + 1] > v[child]) {
            child++;
        }
        if (!(v[child] > x)) {
            break;
        }
        v[i] = v[child];
        i = child;
    }
    v[i] = x;
}

static void sort_floats(float *v, size_t n) {
    for (size_t i = n / 2; i-- > 0;) {
        sift_down(v, i, n);
    }
    for (size_t end = n - 1; end > 0; end--) {
        const float t = v[0];
        v[0] = v[end];
        v[end] = t;
        sift_down(v, 0, end);
    }
}

// numpy's 'linear' quantile at p = quarter / 4 of the sorted v[0..n).
static float quartile(const float *v, size_t n, size_t quarter) {
    const size_t position = (n - 1) * quarter;
    const size_t lo = position / 4;
    const size_t rem = position % 4;
    if (rem == 0) {
        return v[lo];
    }
    const float t = 0.25f * (float)rem;
    const float a = v[lo];
    const float b = v[lo + 1];
    // numpy's lerp: the same value in exact arithmetic, rounded like numpy's.
    return t < 0.5f ? a + (b - a) * t : b - (b - a) * (1.0f - t);
}

// Radix-2 complex FFT (forward, e^{-i...}) of `half` interleaved (re, im) pairs in place, with
// twiddles from the fft_size = 2 * half table (stride 2 gives the half-size roots).
static void feat_fft_complex(float *z, uint32_t half, const float *twiddle) {
    const float *cos_t = twiddle;
    const float *sin_t = twiddle + half;
    for (uint32_t i = 1, j = 0; i < half; i++) {
        uint32_t bit = half >> 1;
        for (; j & bit; bit >>= 1) {
            j ^= bit;
        }
        j |= bit;
        if (i < j) {
            float t = z[2 * i];
            z[2 * i] = z[2 * j];
            z[2 * j] = t;
            t = z[2 * i + 1];
            z[2 * i + 1] = z[2 * j + 1];
            z[2 * j + 1] = t;
        }
    }
    for (uint32_t len = 2; len <= half; len <<= 1) {
        const uint32_t span = len / 2;
        const uint32_t stride = 2 * half / len;  // W_len^j = W_fft_size^(j * stride)
        for (uint32_t start = 0; start < half; start += len) {
            for (uint32_t j = 0; j < span; j++) {
                const float wr = cos_t[j * stride];
                const float wi = -sin_t[j * stride];
                float *a = z + 2 * (start + j);
                float *b = z + 2 * (start + j + span);
                const float tr = b[0] * wr - b[1] * wi;
                const float ti = b[0] * wi + b[1] * wr;
                b[0] = a[0] - tr;
                b[1] = a[1] - ti;
                a[0] += tr;
                a[1] += ti;
            }
        }
    }
}

// The six spectral features of work[0..window_length) (mean-removed) into out.
static void spectral_features(const feat_config_t *cfg, float *out) {
    float *z = cfg->work;
    const uint32_t m = cfg->fft_size;
    const uint32_t half = m / 2;
    for (uint32_t i = cfg->window_length; i < m; i++) {
        z[i] = 0.0f;
    }
    // A real FFT of size m as a complex FFT of size m/2 over (even, odd) sample pairs.
    feat_fft_complex(z, half, cfg->twiddle);
    const float *cos_t = cfg->twiddle;
    const float *sin_t = cfg->twiddle + half;
    feat_sum_t total = { 0.0f, 0.0f };
    feat_sum_t weighted = { 0.0f, 0.0f };
    feat_sum_t bands[FEAT_N_BANDS];
    for (size_t b = 0; b < FEAT_N_BANDS; b++) {
        bands[b].hi = bands[b].lo = 0.0f;
    }
    float peak = -1.0f;
    uint32_t peak_bin = 0;
    size_t band = 0;
    for (uint32_t k = 1; k <= half; k++) {
        float power;
        if (k == half) {
            const float x = z[0] - z[1];
            power = x * x;
        } else {
            const float ar = z[2 * k], ai = z[2 * k + 1];
            const float br = z[2 * (half - k)], bi = -z[2 * (half - k) + 1];  // conj(Z[half - k])
            const float er = 0.5f * (ar + br), ei = 0.5f * (ai + bi);        // even samples' spectrum
            const float orr = 0.5f * (ai - bi), oi = -0.5f * (ar - br);      // odd samples' spectrum
            const float wr = cos_t[k], wi = -sin_t[k];
            const float xr = er + orr * wr - oi * wi;
            const float xi = ei + orr * wi + oi * wr;
            power = xr * xr + xi * xi;
        }
        if (power > peak) {
            peak = power;
            peak_bin = k;
        }
        sum_add(&total, power);
        sum_add(&weighted, (float)k * power);
        while (k >= cfg->band_start[band + 1]) {
            band++;
        }
        if (k >= cfg->band_start[band]) {
            sum_add(&bands[band], power);
        }
    }
    const float total_power = sum_value(&total);
    if (!(total_power > 0.0f)) {
        for (size_t j = 0; j < FEAT_N_SPECTRAL; j++) {
            out[j] = 0.0f;
        }
        return;
    }
    const float bin_hz = cfg->samplerate / (float)m;
    out[0] = (float)peak_bin * bin_hz;
    out[1] = sum_value(&weighted) / total_power * bin_hz;
    for (size_t b = 0; b < FEAT_N_BANDS; b++) {
        out[2 + b] = sum_value(&bands[b]) / total_power;
    }
}

// Everything after the channel's statistics: cfg->values holds the samples, cfg->work the
// mean-removed samples; mean, variance and mean of squares come from the caller.
static void finish_channel(const feat_config_t *cfg, float mean, float variance, float mean_square, float *out) {
    const size_t n = cfg->window_length;
    const float *d = cfg->work;
    uint32_t crossings = 0;
    int last_sign = 0;
    for (size_t i = 0; i < n; i++) {
        const int sign = (d[i] > 0.0f) - (d[i] < 0.0f);
        if (sign != 0) {
            if (last_sign != 0 && sign != last_sign) {
                crossings++;
            }
            last_sign = sign;
        }
    }
    float *v = cfg->values;
    sort_floats(v, n);
    const float q25 = quartile(v, n, 1);
    const float q75 = quartile(v, n, 3);
    out[0] = mean;
    out[1] = sqrtf(variance < 0.0f ? 0.0f : variance);  // NaN (overflow) stays NaN
    out[2] = v[0];
    out[3] = v[n - 1];
    out[4] = quartile(v, n, 2);
    out[5] = q25;
    out[6] = q75;
    out[7] = q75 - q25;
    out[8] = sqrtf(mean_square);
    out[9] = mean_square;
    out[10] = (float)crossings;
    if (cfg->spectral) {
        spectral_features(cfg, out + FEAT_N_TIME);
    }
}

// Statistics of cfg->values in float32 (float input, or the magnitude channel).
static void float_channel(const feat_config_t *cfg, float *out) {
    const size_t n = cfg->window_length;
    const float *x = cfg->values;
    const float fn = (float)n;
    feat_sum_t s = { 0.0f, 0.0f };
    for (size_t i = 0; i < n; i++) {
        sum_add(&s, x[i]);
    }
    // The mean as hi + lo: the residual of the division is exact with a fused multiply-add.
    const float mean_hi = sum_value(&s) / fn;
    const float mean_lo = (fmaf(-mean_hi, fn, s.hi) + s.lo) / fn;
    feat_sum_t sq = { 0.0f, 0.0f };
    float *d = cfg->work;
    for (size_t i = 0; i < n; i++) {
        const float di = (x[i] - mean_hi) - mean_lo;
        d[i] = di;
        sum_add(&sq, di * di);
    }
    const float variance = sum_value(&sq) / fn;
    finish_channel(cfg, mean_hi, variance, variance + mean_hi * mean_hi, out);
}

// Statistics of one int16 axis in exact integer arithmetic.
static void int16_axis(const feat_config_t *cfg, const int16_t *window, size_t axis, float *out) {
    const size_t n = cfg->window_length;
    const size_t stride = cfg->n_axes;
    float *v = cfg->values;
    int64_t s1 = 0;
    int64_t s2 = 0;
    for (size_t i = 0; i < n; i++) {
        const int32_t x = window[i * stride + axis];
        v[i] = (float)x;
        s1 += x;
        s2 += x * x;
    }
    const int64_t ni = (int64_t)n;
    const float fn = (float)n;
    float *d = cfg->work;
    for (size_t i = 0; i < n; i++) {
        d[i] = (float)(ni * window[i * stride + axis] - s1) / fn;
    }
    // n^2 * variance = n * s2 - s1^2, exact in int64 for n <= FEAT_MAX_WINDOW.
    const float variance = (float)(ni * s2 - s1 * s1) / fn / fn;
    finish_channel(cfg, (float)s1 / fn, variance, (float)s2 / fn, out);
}

void feat_compute_i16(const feat_config_t *cfg, const int16_t *window, float *out) {
    const size_t per_channel = feat_per_channel(cfg);
    for (size_t a = 0; a < cfg->n_axes; a++) {
        int16_axis(cfg, window, a, out + a * per_channel);
    }
    if (cfg->magnitude) {
        const size_t n = cfg->window_length;
        const size_t stride = cfg->n_axes;
        for (size_t i = 0; i < n; i++) {
            uint32_t sq = 0;
            for (size_t a = 0; a < stride; a++) {
                const int32_t x = window[i * stride + a];
                sq += (uint32_t)(x * x);
            }
            cfg->values[i] = sqrtf((float)sq);
        }
        float_channel(cfg, out + cfg->n_axes * per_channel);
    }
}

void feat_compute_f32(const feat_config_t *cfg, const float *window, float *out) {
    const size_t n = cfg->window_length;
    const size_t stride = cfg->n_axes;
    const size_t per_channel = feat_per_channel(cfg);
    for (size_t a = 0; a < stride; a++) {
        for (size_t i = 0; i < n; i++) {
            cfg->values[i] = window[i * stride + a];
        }
        float_channel(cfg, out + a * per_channel);
    }
    if (cfg->magnitude) {
        for (size_t i = 0; i < n; i++) {
            float sq = 0.0f;
            for (size_t a = 0; a < stride; a++) {
                const float x = window[i * stride + a];
                sq += x * x;
            }
            cfg->values[i] = sqrtf(sq);
        }
        float_channel(cfg, out + stride * per_channel);
    }
}
