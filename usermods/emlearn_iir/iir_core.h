// Cascaded biquad (second-order section) IIR filter, float32, no MicroPython dependency.
//
// Each section (b0 b1 b2 a0 a1 a2, divided by a0) is realised as a trapezoidal state-variable
// filter: the same transfer function as the sos row, computed with 6 coefficients and
// 2 state floats. In float32 it is far more accurate than the direct forms (scipy's
// transposed direct form II among them) when poles sit near z = 1 (low cut-off frequencies
// at high sample rates, e.g. A-weighting's 20 Hz poles at 48 kHz: max error 3e-7 instead of
// 3e-4 of full scale), and about as accurate elsewhere. The coefficients come from the
// gains of the numerator and denominator at z = 1 and z = -1:
//   g = sqrt(A(1) / A(-1)), A1 = A(-1)/4, A2 = g*A1, A3 = g*A2,
//   m0 = B(-1)/A(-1), m1 = 2*((b0 - b2) - (1 - a2)*m0) / (A(-1)*g), m2 = B(1)/A(1) - m0.
// Per sample: v3 = x - s2; v1 = A1*s1 + A2*v3; v2 = s2 + A2*s1 + A3*v3;
//   s1 = 2*v1 - s1; s2 = 2*v2 - s2; y = m0*x + m1*v1 + m2*v2.
// No allocation: the caller owns the coefficient and state memory.
#ifndef TINYSENSE_IIR_CORE_H
#define TINYSENSE_IIR_CORE_H

#include <stddef.h>
#include <stdint.h>

#define IIR_SOS_VALUES (6)    // b0 b1 b2 a0 a1 a2, scipy `sos` row order
#define IIR_COEFFS (6)        // A1 A2 A3 m0 m1 m2 (see above)
#define IIR_STATES (2)

typedef enum {
    IIR_OK = 0,
    IIR_NOT_FINITE,     // a coefficient is NaN or infinite
    IIR_A0_ZERO,        // a0 == 0: the section cannot be normalised
    IIR_UNSTABLE,       // a pole on (or numerically at) or outside the unit circle
} iir_status_t;

typedef struct {
    size_t n_sections;
    float *coeffs;      // n_sections * IIR_COEFFS
    float *state;       // n_sections * IIR_STATES
} iir_filter_t;

// Check one scipy `sos` row and convert it into `out` (IIR_COEFFS floats).
iir_status_t iir_section_init(const float sos[IIR_SOS_VALUES], float out[IIR_COEFFS]);

void iir_reset(iir_filter_t *f);

// y may equal x (in place). State carries over between calls.
void iir_run_f32(iir_filter_t *f, const float *x, float *y, size_t n);

// int16 input, float output in the same units (no scaling). y must not overlap x.
void iir_run_i16_f32(iir_filter_t *f, const int16_t *x, float *y, size_t n);

// int16 in place: output rounded to nearest and saturated to [-32768, 32767]; NaN -> 0.
// The state stays in float, so saturation does not feed back into the filter.
void iir_run_i16_inplace(iir_filter_t *f, int16_t *x, size_t n);

#endif
