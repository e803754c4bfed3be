// Sound level meter core: frequency weighting, Fast/Slow exponential time weighting, Leq, Lmax, Lmin.
// Pure C, float32 only, no MicroPython dependency, no allocation (the caller owns the filter memory).
//
// Chain per sample: int16 x -> weighting filter (cascaded biquads of emlearn_iir's iir_core, or none
// for Z) -> e = y^2 -> exponential averagers  ms += alpha * (e - ms)  with alpha = 1 - exp(-1/(tau fs)),
// tau = 0.125 s (Fast) and 1 s (Slow) (IEC 61672-1 time weightings F and S) -> Lmax/Lmin of each
// time-weighted mean square; and the interval's sum of e (Kahan-compensated float, per block of samples)
// with its sample count for Leq. Mean squares are in int16 units squared; soundlevel_db() turns one into
// a level with the calibration offset.
#ifndef TINYSENSE_SOUNDLEVEL_H
#define TINYSENSE_SOUNDLEVEL_H

#include <stddef.h>
#include <stdint.h>

#include "../emlearn_iir/iir_core.h"   // requires the emlearn_iir module (compiles iir_core.c)

#define SOUNDLEVEL_TAU_FAST (0.125f)
#define SOUNDLEVEL_TAU_SLOW (1.0f)
// Lmin ignores the first SETTLE time constants after soundlevel_reset(), while an averager still rises
// from zero energy (after 5 tau it is within 0.03 dB of a steady level).
#define SOUNDLEVEL_SETTLE_TAUS (5.0f)
#define SOUNDLEVEL_BLOCK (64)   // samples filtered per pass (stack buffer of floats)

typedef struct {
    iir_filter_t filter;        // n_sections == 0: no weighting (Z)
    float alpha_fast, alpha_slow;
    float ms_fast, ms_slow;     // current time-weighted mean squares
    float max_fast, min_fast, max_slow, min_slow;   // since the last interval reset; min INFINITY: none yet
    float sum, sum_comp;        // interval sum of squares (Kahan)
    uint64_t interval_n;        // samples since the last interval reset
    uint64_t total_n;           // samples since the last full reset (saturates at settle_slow)
    uint64_t settle_fast, settle_slow;  // samples before Lmin starts to track, per time weighting
    float offset_db;            // level = 10 log10(mean square) + offset_db
} soundlevel_t;

// samplerate > 0 and finite, filter set up by the caller (sections initialised with iir_section_init),
// offset_db from soundlevel_offset_db(). Resets everything.
void soundlevel_init(soundlevel_t *m, float samplerate, float offset_db);

// dB SPL of a mean square in int16 units squared, following AES17 (a full-scale sine reads 0 dBFS):
//   dBFS = 20 log10(rms * sqrt(2) / 32768),  dB SPL = 94 + dBFS - sensitivity_dbfs
// (sensitivity_dbfs: the microphone's output in dBFS for a 94 dB SPL (1 Pa) tone).
float soundlevel_offset_db(float sensitivity_dbfs);
float soundlevel_db(const soundlevel_t *m, float mean_square);   // -INFINITY for 0

void soundlevel_reset(soundlevel_t *m);            // filter state, averagers, interval
void soundlevel_reset_interval(soundlevel_t *m);   // Leq, Lmax, Lmin only

void soundlevel_process_i16(soundlevel_t *m, const int16_t *x, size_t n);

// Interval mean square for Leq; returns 0 when the interval holds no samples (then *ok = 0).
float soundlevel_leq_ms(const soundlevel_t *m, int *ok);

#endif
