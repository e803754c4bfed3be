"""Frequency-weighting filter design for the sound level meter (IEC 61672-1:2013 A and C weightings).

The analogue A and C weightings (IEC 61672-1:2013 Annex E: poles at 20.598997, 107.65265, 737.86223 and
12194.217 Hz, normalised to 0 dB at 1 kHz) are turned into digital second-order sections for a given
sample rate. A plain bilinear transform is accurate at low frequencies but squeezes the whole analogue
axis into [0, fs/2): near 0.45 * fs it attenuates several dB too much (-5.8 dB at 6.3 kHz for 16 kHz).
So the design is split:

* the low-frequency part -- the zeros at 0 Hz and the poles at 20.6 Hz (twice), 107.7 Hz and 737.9 Hz
  (A) or 20.6 Hz (twice) (C) -- goes through the bilinear transform, where warping is negligible;
* the high-frequency part (the double pole at 12194 Hz, above the Nyquist frequency of 16 kHz audio,
  plus what the bilinear transform got wrong) is one biquad with two real poles, fitted by nonlinear
  least squares (scipy.optimize) to the remaining log-magnitude error on a dense logarithmic grid from
  10 Hz to 0.47 * fs.

The result is A: 3 sections, C: 2 sections, float64 scipy ``sos`` rows (b0 b1 b2 a0 a1 a2), normalised to
0 dB at 1 kHz. At 16, 32 and 48 kHz the response stays within 0.07 dB of the design goal at every exact
one-third-octave frequency from 10 Hz to 0.45 * fs, against Class 1 acceptance limits of 0.7 dB or more
(``check_class1`` gives the margins; tests/test_weighting.py checks float64 and float32 coefficients).

``python -m tinysense.dsp HEADER`` writes the C header of the built-in designs that
usermods/tinysense_soundlevel compiles in (tests/test_weighting.py checks it matches).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import optimize, signal

# IEC 61672-1:2013 Annex E (E.2-E.4): pole frequencies of the analogue weightings, in Hz.
F1 = 20.598997
F2 = 107.65265
F3 = 737.86223
F4 = 12194.217

# The sample rates with built-in designs in the C module (usermods/tinysense_soundlevel).
BUILTIN_SAMPLERATES = (16000, 32000, 48000)
WEIGHTINGS = ("A", "C")

INF = math.inf

# IEC 61672-1:2013 Table 3: frequency weightings and Class 1 acceptance limits, per nominal frequency.
# Row = (nominal frequency Hz, A dB, C dB, Class 1 upper limit dB, Class 1 lower limit dB).
# The A/C columns are the design goals rounded to 0.1 dB (the Annex E formulas at the exact base-10
# frequency, see `exact_frequencies`); the limits apply to the deviation of the measured relative
# response from the design goal. -inf: only the upper limit applies. Z weighting is 0 dB everywhere.
# Transcribed from the standard's table as reproduced in public sources, cross-checked between two of
# them; tests/test_weighting.py checks the A/C columns against the Annex E formulas.
IEC61672_TABLE3: tuple[tuple[float, float, float, float, float], ...] = (
    (10, -70.4, -14.3, 3.0, -INF),
    (12.5, -63.4, -11.2, 2.5, -INF),
    (16, -56.7, -8.5, 2.0, -4.0),
    (20, -50.5, -6.2, 2.0, -2.0),
    (25, -44.7, -4.4, 2.0, -1.5),
    (31.5, -39.4, -3.0, 1.5, -1.5),
    (40, -34.6, -2.0, 1.0, -1.0),
    (50, -30.2, -1.3, 1.0, -1.0),
    (63, -26.2, -0.8, 1.0, -1.0),
    (80, -22.5, -0.5, 1.0, -1.0),
    (100, -19.1, -0.3, 1.0, -1.0),
    (125, -16.1, -0.2, 1.0, -1.0),
    (160, -13.4, -0.1, 1.0, -1.0),
    (200, -10.9, 0.0, 1.0, -1.0),
    (250, -8.6, 0.0, 1.0, -1.0),
    (315, -6.6, 0.0, 1.0, -1.0),
    (400, -4.8, 0.0, 1.0, -1.0),
    (500, -3.2, 0.0, 1.0, -1.0),
    (630, -1.9, 0.0, 1.0, -1.0),
    (800, -0.8, 0.0, 1.0, -1.0),
    (1000, 0.0, 0.0, 0.7, -0.7),
    (1250, 0.6, 0.0, 1.0, -1.0),
    (1600, 1.0, -0.1, 1.0, -1.0),
    (2000, 1.2, -0.2, 1.0, -1.0),
    (2500, 1.3, -0.3, 1.0, -1.0),
    (3150, 1.2, -0.5, 1.0, -1.0),
    (4000, 1.0, -0.8, 1.0, -1.0),
    (5000, 0.5, -1.3, 1.5, -1.5),
    (6300, -0.1, -2.0, 1.5, -2.0),
    (8000, -1.1, -3.0, 1.5, -2.5),
    (10000, -2.5, -4.4, 2.0, -3.0),
    (12500, -4.3, -6.2, 2.0, -5.0),
    (16000, -6.6, -8.5, 2.5, -16.0),
    (20000, -9.3, -11.2, 3.0, -INF),
)
NOMINAL_FREQUENCIES = np.array([row[0] for row in IEC61672_TABLE3], dtype=float)

# The exact base-10 one-third-octave frequencies behind the nominal labels: 1000 * 10^(n/10), n = -20..13
# (IEC 61672-1:2013 Table 3 note; IEC 61260-1).
_BAND_INDEX = np.arange(-20, 14)
EXACT_FREQUENCIES = 1000.0 * 10.0 ** (_BAND_INDEX / 10.0)

FIT_UPPER = 0.47  # the least-squares fit covers 10 Hz .. FIT_UPPER * fs
CHECK_UPPER = 0.45  # the Class 1 check covers 10 Hz .. CHECK_UPPER * fs


def exact_frequencies(upper: float = INF) -> np.ndarray:
    """Exact base-10 one-third-octave frequencies from 10 Hz up to `upper` (inclusive), at most 20 kHz."""
    return EXACT_FREQUENCIES[EXACT_FREQUENCIES <= upper].copy()


def _check_weighting(weighting: str) -> str:
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}: choose one of {', '.join(WEIGHTINGS)}")
    return weighting


def analog_weighting_db(freqs: np.ndarray | float, weighting: str) -> np.ndarray:
    """The IEC 61672-1 design goal (Annex E formulas) in dB at `freqs` Hz, 0 dB at 1 kHz."""
    _check_weighting(weighting)

    def raw(f: np.ndarray) -> np.ndarray:
        f2 = f * f
        if weighting == "A":
            mag = F4**2 * f2**2 / ((f2 + F1**2) * np.sqrt((f2 + F2**2) * (f2 + F3**2)) * (f2 + F4**2))
        else:
            mag = F4**2 * f2 / ((f2 + F1**2) * (f2 + F4**2))
        return 20.0 * np.log10(mag)

    f = np.atleast_1d(np.asarray(freqs, dtype=float))
    return raw(f) - raw(np.array([1000.0]))[0]


def class1_limits(freqs: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) Class 1 acceptance limits in dB (IEC 61672-1:2013 Table 3) at one-third-octave
    frequencies: each frequency must lie within 1 % of an exact or a nominal band frequency, 10 Hz..20 kHz."""
    f = np.atleast_1d(np.asarray(freqs, dtype=float))
    lower = np.empty_like(f)
    upper = np.empty_like(f)
    for i, value in enumerate(f):
        ratio = np.minimum(np.abs(np.log(value / EXACT_FREQUENCIES)), np.abs(np.log(value / NOMINAL_FREQUENCIES)))
        k = int(np.argmin(ratio))
        if not ratio[k] < 0.01:
            raise ValueError(f"{value} Hz is not a one-third-octave frequency between 10 Hz and 20 kHz")
        upper[i] = IEC61672_TABLE3[k][3]
        lower[i] = IEC61672_TABLE3[k][4]
    return lower, upper


def _low_sos(fs: float, weighting: str) -> np.ndarray:
    if weighting == "A":
        zeros, poles = np.zeros(4), -2.0 * np.pi * np.array([F1, F1, F2, F3])
    else:
        zeros, poles = np.zeros(2), -2.0 * np.pi * np.array([F1, F1])
    z, p, k = signal.bilinear_zpk(zeros, poles, 1.0, fs)
    return signal.zpk2sos(z, p, k)


def _hf_section(x: np.ndarray) -> np.ndarray:
    gain, c1, c2, u1, u2 = x
    p1, p2 = math.tanh(u1), math.tanh(u2)  # real poles, always inside the unit circle
    return np.array([[gain, gain * c1, gain * c2, 1.0, -(p1 + p2), p1 * p2]])


def _db(sos: np.ndarray, freqs: np.ndarray, fs: float) -> np.ndarray:
    _, h = signal.sosfreqz(sos, worN=freqs, fs=fs)
    return 20.0 * np.log10(np.maximum(np.abs(h), 1e-300))


@lru_cache(maxsize=32)
def _design(fs: float, weighting: str) -> np.ndarray:
    low = _low_sos(fs, weighting)
    grid = np.geomspace(10.0, FIT_UPPER * fs, 400)
    target = analog_weighting_db(grid, weighting) - _db(low, grid, fs)

    def residual(x: np.ndarray) -> np.ndarray:
        return _db(_hf_section(x), grid, fs) - target

    # Start from the bilinear transform of the double pole at F4 (numerator (1 + z^-1)^2).
    _, p, _ = signal.bilinear_zpk([], -2.0 * np.pi * np.array([F4, F4]), 1.0, fs)
    u0 = float(np.arctanh(np.clip(p[0].real, -0.99, 0.99)))
    fit = optimize.least_squares(residual, np.array([1.0, 2.0, 1.0, u0, u0 - 0.1]), method="lm", max_nfev=20000)
    hf = _hf_section(fit.x)
    if np.sum(hf[0, :3]) < 0.0:
        hf[0, :3] = -hf[0, :3]  # keep a positive gain at low frequencies (a sign flip does not change levels)
    sos = np.vstack([low, hf])
    _, h1k = signal.sosfreqz(sos, worN=[1000.0], fs=fs)
    sos[0, :3] /= abs(h1k[0])
    return sos


def _weighting_sos(samplerate: float, weighting: str) -> np.ndarray:
    fs = float(samplerate)
    if not (math.isfinite(fs) and fs >= 2.0 * 1000.0 / CHECK_UPPER):
        minimum = 2000.0 / CHECK_UPPER
        raise ValueError(f"samplerate must be a finite number of at least {minimum:.0f} Hz, got {samplerate}")
    return _design(fs, weighting).copy()


def a_weighting_sos(samplerate: float) -> np.ndarray:
    """A-weighting as float64 scipy sos (3 sections), 0 dB at 1 kHz, for `samplerate` Hz."""
    return _weighting_sos(samplerate, "A")


def c_weighting_sos(samplerate: float) -> np.ndarray:
    """C-weighting as float64 scipy sos (2 sections), 0 dB at 1 kHz, for `samplerate` Hz."""
    return _weighting_sos(samplerate, "C")


def weighting_sos(samplerate: float, weighting: str) -> np.ndarray:
    return _weighting_sos(samplerate, _check_weighting(weighting))


@dataclass
class Class1Check:
    """Worst Class 1 margin of a response: positive means inside the acceptance limits by that many dB."""

    margin_db: float
    frequency: float  # the exact one-third-octave frequency of the worst margin
    deviations_db: np.ndarray  # relative response minus design goal, per frequency
    frequencies: np.ndarray

    @property
    def passed(self) -> bool:
        return self.margin_db >= 0.0


def class1_margin(freqs: np.ndarray, relative_db: np.ndarray, weighting: str) -> Class1Check:
    """Check relative responses (dB, 0 at 1 kHz) at one-third-octave `freqs` against the design goal
    ('A', 'C' or 'Z') and the Class 1 acceptance limits."""
    f = np.asarray(freqs, dtype=float)
    goal = np.zeros_like(f) if weighting == "Z" else analog_weighting_db(f, weighting)
    deviation = np.asarray(relative_db, dtype=float) - goal
    lower, upper = class1_limits(f)
    margins = np.minimum(upper - deviation, deviation - lower)
    k = int(np.argmin(margins))
    return Class1Check(float(margins[k]), float(f[k]), deviation, f)


def check_class1(sos: np.ndarray, samplerate: float, weighting: str, upper: float = CHECK_UPPER) -> Class1Check:
    """The worst Class 1 margin of `sos` (evaluated in float64 with the coefficients as given, so pass
    sos.astype(np.float32) to check the device's coefficients) at every exact one-third-octave frequency
    from 10 Hz to `upper` * samplerate."""
    f = exact_frequencies(upper * samplerate)
    coeffs = np.asarray(sos, dtype=np.float64)
    relative = _db(coeffs, f, samplerate) - _db(coeffs, np.array([1000.0]), samplerate)[0]
    return class1_margin(f, relative, weighting)


def _c_float(value: float) -> str:
    """A C float literal that reads back as the same float32 (9 significant digits)."""
    text = f"{value:.9g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text + "f"


def c_header() -> str:
    """The C header with the built-in designs (float32 sos rows) for tinysense_soundlevel."""
    lines = [
        "// Generated by `python -m tinysense.dsp` (tools/tinysense/dsp.py): do not edit.",
        "// IEC 61672-1 A and C weightings as scipy sos rows (b0 b1 b2 a0 a1 a2), 0 dB at 1 kHz,",
        "// for the sample rates below; tests/test_weighting.py checks this file against the generator.",
        "#ifndef TINYSENSE_SOUNDLEVEL_WEIGHTINGS_H",
        "#define TINYSENSE_SOUNDLEVEL_WEIGHTINGS_H",
        "",
        "#define SOUNDLEVEL_BUILTIN_RATES \"" + ", ".join(str(r) for r in BUILTIN_SAMPLERATES) + "\"",
        "",
    ]
    table = []
    for rate in BUILTIN_SAMPLERATES:
        for weighting in WEIGHTINGS:
            sos = weighting_sos(rate, weighting).astype(np.float32)
            name = f"soundlevel_{weighting.lower()}_{rate}"
            lines.append(f"static const float {name}[{sos.size}] = {{")
            for row in sos:
                lines.append("    " + " ".join(f"{_c_float(float(v))}," for v in row))
            lines.append("};")
            table.append(f"    {{ {rate}, '{weighting}', {len(sos)}, {name} }},")
    lines += [
        "",
        "typedef struct {",
        "    int samplerate;",
        "    char weighting;",
        "    int n_sections;",
        "    const float *sos;",
        "} soundlevel_builtin_t;",
        "",
        "static const soundlevel_builtin_t soundlevel_builtins[] = {",
        *table,
        "};",
        "",
        "#endif",
        "",
    ]
    return "\n".join(lines)


HEADER_PATH = Path(__file__).resolve().parents[2] / "usermods" / "tinysense_soundlevel" / "weightings.h"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else HEADER_PATH
    path.write_text(c_header())
    for rate in BUILTIN_SAMPLERATES:
        for weighting in WEIGHTINGS:
            sos = weighting_sos(rate, weighting)
            m64 = check_class1(sos, rate, weighting)
            m32 = check_class1(sos.astype(np.float32), rate, weighting)
            print(f"{weighting} {rate} Hz: worst Class 1 margin {m64.margin_db:.3f} dB at {m64.frequency:.1f} Hz,"
                  f" largest deviation {np.abs(m64.deviations_db).max():.4f} dB"
                  f" (float32: {m32.margin_db:.3f} dB, {np.abs(m32.deviations_db).max():.4f} dB)")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
