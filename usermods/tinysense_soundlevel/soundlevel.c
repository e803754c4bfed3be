// Sound level meter core (see soundlevel.h).
#include <math.h>
#include <string.h>

#include "soundlevel.h"

float soundlevel_offset_db(float sensitivity_dbfs) {
    // 10 log10(ms) + 10 log10(2) - 20 log10(32768) is dBFS (AES17); 94 dB SPL reads sensitivity_dbfs.
    return 94.0f - sensitivity_dbfs + 10.0f * log10f(2.0f) - 20.0f * log10f(32768.0f);
}

float soundlevel_db(const soundlevel_t *m, float mean_square) {
    if (!(mean_square > 0.0f)) {
        return -INFINITY;
    }
    return 10.0f * log10f(mean_square) + m->offset_db;
}

void soundlevel_reset_interval(soundlevel_t *m) {
    m->max_fast = -1.0f;
    m->max_slow = -1.0f;
    m->min_fast = INFINITY;
    m->min_slow = INFINITY;
    m->sum = 0.0f;
    m->sum_comp = 0.0f;
    m->interval_n = 0;
}

void soundlevel_reset(soundlevel_t *m) {
    if (m->filter.n_sections > 0) {
        iir_reset(&m->filter);
    }
    m->ms_fast = 0.0f;
    m->ms_slow = 0.0f;
    m->total_n = 0;
    soundlevel_reset_interval(m);
}

void soundlevel_init(soundlevel_t *m, float samplerate, float offset_db) {
    // alpha = 1 - exp(-1 / (tau fs)), through expm1f for precision when tau fs is large.
    m->alpha_fast = -expm1f(-1.0f / (SOUNDLEVEL_TAU_FAST * samplerate));
    m->alpha_slow = -expm1f(-1.0f / (SOUNDLEVEL_TAU_SLOW * samplerate));
    const float settle_fast = ceilf(SOUNDLEVEL_SETTLE_TAUS * SOUNDLEVEL_TAU_FAST * samplerate);
    const float settle_slow = ceilf(SOUNDLEVEL_SETTLE_TAUS * SOUNDLEVEL_TAU_SLOW * samplerate);
    // Sample rates are bounded by the caller; clamp anyway so the conversion is defined.
    m->settle_fast = settle_fast < 1e15f ? (uint64_t)settle_fast : (uint64_t)1e15f;
    m->settle_slow = settle_slow < 1e15f ? (uint64_t)settle_slow : (uint64_t)1e15f;
    m->offset_db = offset_db;
    soundlevel_reset(m);
}

// The time weighting, Lmax/Lmin and the interval sum over n filtered samples.
static void accumulate(soundlevel_t *m, const float *y, size_t n) {
    const float af = m->alpha_fast, as = m->alpha_slow;
    float f = m->ms_fast, s = m->ms_slow;
    float max_f = m->max_fast, min_f = m->min_fast, max_s = m->max_slow, min_s = m->min_slow;
    float block = 0.0f;
    const int min_f_on = m->total_n + n > m->settle_fast;
    const int min_s_on = m->total_n + n > m->settle_slow;
    for (size_t i = 0; i < n; i++) {
        const float e = y[i] * y[i];
        block += e;
        f += af * (e - f);
        s += as * (e - s);
        max_f = f > max_f ? f : max_f;
        max_s = s > max_s ? s : max_s;
        if (min_f_on && m->total_n + i >= m->settle_fast) {
            min_f = f < min_f ? f : min_f;
        }
        if (min_s_on && m->total_n + i >= m->settle_slow) {
            min_s = s < min_s ? s : min_s;
        }
    }
    // Once per block: flush vanishing energies to zero, so long digital silence never runs on subnormals.
    m->ms_fast = f < 1e-30f ? 0.0f : f;
    m->ms_slow = s < 1e-30f ? 0.0f : s;
    m->max_fast = max_f;
    m->max_slow = max_s;
    m->min_fast = min_f;
    m->min_slow = min_s;
    // Kahan summation: the interval sum keeps float precision over hours of samples.
    const float addend = block - m->sum_comp;
    const float total = m->sum + addend;
    m->sum_comp = (total - m->sum) - addend;
    m->sum = total;
    m->interval_n += n;
    if (m->total_n < m->settle_slow) {
        m->total_n += n;
    }
}

void soundlevel_process_i16(soundlevel_t *m, const int16_t *x, size_t n) {
    float buf[SOUNDLEVEL_BLOCK];
    while (n > 0) {
        const size_t k = n < SOUNDLEVEL_BLOCK ? n : SOUNDLEVEL_BLOCK;
        if (m->filter.n_sections > 0) {
            iir_run_i16_f32(&m->filter, x, buf, k);
        } else {
            for (size_t i = 0; i < k; i++) {
                buf[i] = (float)x[i];
            }
        }
        accumulate(m, buf, k);
        x += k;
        n -= k;
    }
}

float soundlevel_leq_ms(const soundlevel_t *m, int *ok) {
    if (m->interval_n == 0) {
        *ok = 0;
        return 0.0f;
    }
    *ok = 1;
    return m->sum / (float)m->interval_n;
}
