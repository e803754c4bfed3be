// Cascaded biquad IIR filter core (see iir_core.h for the realisation).
#include <math.h>
#include <string.h>

#include "iir_core.h"

iir_status_t iir_section_init(const float sos[IIR_SOS_VALUES], float out[IIR_COEFFS]) {
    for (int i = 0; i < IIR_SOS_VALUES; i++) {
        if (!isfinite(sos[i])) {
            return IIR_NOT_FINITE;
        }
    }
    const float a0 = sos[3];
    if (a0 == 0.0f) {
        return IIR_A0_ZERO;
    }
    const float b0 = sos[0] / a0, b1 = sos[1] / a0, b2 = sos[2] / a0;
    const float a1 = sos[4] / a0, a2 = sos[5] / a0;
    if (!(isfinite(b0) && isfinite(b1) && isfinite(b2) && isfinite(a1) && isfinite(a2))) {
        return IIR_NOT_FINITE;   // a tiny a0 overflowed the division
    }
    // Both roots of z^2 + a1 z + a2 lie strictly inside the unit circle iff |a2| < 1,
    // A(1) = 1 + a1 + a2 > 0 and A(-1) = 1 - a1 + a2 > 0 (the stability triangle).
    // Summed in this order, A(1) is exact when poles are near z = 1 (Sterbenz).
    const float a_pos = (1.0f + a1) + a2;
    const float a_neg = (1.0f - a1) + a2;
    if (!(fabsf(a2) < 1.0f && a_pos > 0.0f && a_neg > 0.0f)) {
        return IIR_UNSTABLE;
    }
    const float g = sqrtf(a_pos / a_neg);
    const float m0 = ((b0 - b1) + b2) / a_neg;
    const float m1 = 2.0f * ((b0 - b2) - (1.0f - a2) * m0) / (a_neg * g);
    const float m2 = ((b0 + b1) + b2) / a_pos - m0;
    out[0] = 0.25f * a_neg;
    out[1] = g * out[0];
    out[2] = g * out[1];
    out[3] = m0;
    out[4] = m1;
    out[5] = m2;
    for (int i = 0; i < IIR_COEFFS; i++) {
        if (!isfinite(out[i])) {
            return IIR_UNSTABLE;   // a pole so close to z = 1 that g underflows
        }
    }
    return IIR_OK;
}

void iir_reset(iir_filter_t *f) {
    memset(f->state, 0, f->n_sections * IIR_STATES * sizeof(float));
}

// One sample through one section; s[0], s[1] are the two integrator states.
static inline float section_step(const float *c, float *s1, float *s2, float x) {
    const float v3 = x - *s2;
    const float v1 = c[0] * *s1 + c[1] * v3;
    const float v2 = *s2 + c[1] * *s1 + c[2] * v3;
    *s1 = 2.0f * v1 - *s1;
    *s2 = 2.0f * v2 - *s2;
    return c[3] * x + c[4] * v1 + c[5] * v2;
}

// One section over a whole buffer (state kept in registers). y may equal x.
static void section_f32(const float *c, float *s, const float *x, float *y, size_t n) {
    float s1 = s[0], s2 = s[1];
    for (size_t i = 0; i < n; i++) {
        y[i] = section_step(c, &s1, &s2, x[i]);
    }
    s[0] = s1;
    s[1] = s2;
}

static void section_i16_f32(const float *c, float *s, const int16_t *x, float *y, size_t n) {
    float s1 = s[0], s2 = s[1];
    for (size_t i = 0; i < n; i++) {
        y[i] = section_step(c, &s1, &s2, (float)x[i]);
    }
    s[0] = s1;
    s[1] = s2;
}

void iir_run_f32(iir_filter_t *f, const float *x, float *y, size_t n) {
    if (f->n_sections == 0 || n == 0) {
        return;
    }
    section_f32(f->coeffs, f->state, x, y, n);
    for (size_t k = 1; k < f->n_sections; k++) {
        section_f32(f->coeffs + k * IIR_COEFFS, f->state + k * IIR_STATES, y, y, n);
    }
}

void iir_run_i16_f32(iir_filter_t *f, const int16_t *x, float *y, size_t n) {
    if (f->n_sections == 0 || n == 0) {
        return;
    }
    section_i16_f32(f->coeffs, f->state, x, y, n);
    for (size_t k = 1; k < f->n_sections; k++) {
        section_f32(f->coeffs + k * IIR_COEFFS, f->state + k * IIR_STATES, y, y, n);
    }
}

static int16_t saturate_i16(float v) {
    if (isnan(v)) {
        return 0;
    }
    if (v >= 32767.0f) {
        return 32767;
    }
    if (v <= -32768.0f) {
        return -32768;
    }
    return (int16_t)(v >= 0.0f ? v + 0.5f : v - 0.5f);
}

void iir_run_i16_inplace(iir_filter_t *f, int16_t *x, size_t n) {
    // Sample by sample: there is no float buffer to hold intermediate sections.
    // Same arithmetic per section and sample as section_f32, so the results agree.
    const size_t n_sections = f->n_sections;
    for (size_t i = 0; i < n; i++) {
        float v = (float)x[i];
        for (size_t k = 0; k < n_sections; k++) {
            float *s = f->state + k * IIR_STATES;
            v = section_step(f->coeffs + k * IIR_COEFFS, &s[0], &s[1], v);
        }
        x[i] = saturate_i16(v);
    }
}
