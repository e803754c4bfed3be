"""The A and C weighting designs of tinysense.dsp against IEC 61672-1:2013 (Annex E design goals, Table 3
Class 1 acceptance limits), in float64 and with float32 coefficients as the device uses them, and the C
header of built-in designs against its generator."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import signal

from tinysense import dsp

RATES = dsp.BUILTIN_SAMPLERATES


def test_table3_design_goals_are_the_annex_e_formulas() -> None:
    for nominal, a_db, c_db, upper, lower in dsp.IEC61672_TABLE3:
        exact = float(dsp.exact_frequencies()[list(dsp.NOMINAL_FREQUENCIES).index(nominal)])
        assert abs(exact / nominal - 1) < 0.03, nominal
        assert abs(float(dsp.analog_weighting_db(exact, "A")[0]) - a_db) <= 0.05 + 1e-9, nominal
        assert abs(float(dsp.analog_weighting_db(exact, "C")[0]) - c_db) <= 0.05 + 1e-9, nominal
        assert upper > 0 > lower


def test_class1_limits_lookup() -> None:
    lower, upper = dsp.class1_limits([1000.0, 15848.93, 16000.0, 10.0, 6309.6])
    assert list(upper) == [0.7, 2.5, 2.5, 3.0, 1.5]
    assert list(lower) == [-0.7, -16.0, -16.0, -np.inf, -2.0]
    with pytest.raises(ValueError, match="one-third-octave"):
        dsp.class1_limits([1100.0])
    with pytest.raises(ValueError, match="one-third-octave"):
        dsp.class1_limits([25000.0])


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("weighting", ["A", "C"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_design_is_class1_from_10hz_to_045_fs(fs: int, weighting: str, dtype: type) -> None:
    sos = dsp.weighting_sos(fs, weighting)
    assert sos.dtype == np.float64 and sos.shape == ({"A": 3, "C": 2}[weighting], 6)
    check = dsp.check_class1(sos.astype(dtype), fs, weighting)
    assert check.passed, (check.frequency, check.margin_db)
    assert check.frequencies[-1] <= 0.45 * fs < check.frequencies[-1] * 10 ** 0.1  # up to the last band
    assert len(check.frequencies) >= 29
    # Much better than required: within 0.07 dB of the design goal everywhere checked.
    assert np.max(np.abs(check.deviations_db)) < 0.07, check.deviations_db


@pytest.mark.parametrize("fs", RATES)
def test_design_is_stable_with_zeros_at_dc(fs: int) -> None:
    for weighting in ("A", "C"):
        sos = dsp.weighting_sos(fs, weighting)
        for row in sos.astype(np.float32).astype(np.float64):
            assert np.all(np.abs(np.roots(row[3:])) < 1.0)
        _, h = signal.sosfreqz(sos, worN=[1.0, 1000.0], fs=fs)
        assert abs(20 * np.log10(abs(h[1]))) < 1e-9
        assert 20 * np.log10(abs(h[0])) < -100 if weighting == "A" else -35


def test_a_plain_bilinear_transform_fails_the_check() -> None:
    """The check can fail: the textbook bilinear A-weighting misses Class 1 near 0.45 fs at 16 kHz."""
    zeros, poles = np.zeros(4), -2 * np.pi * np.array([dsp.F1, dsp.F1, dsp.F2, dsp.F3, dsp.F4, dsp.F4])
    z, p, k = signal.bilinear_zpk(zeros, poles, 1.0, 16000)
    check = dsp.check_class1(signal.zpk2sos(z, p, k), 16000, "A")
    assert not check.passed and check.frequency > 6000


def test_other_rates_and_bad_input() -> None:
    sos = dsp.a_weighting_sos(44100)
    assert dsp.check_class1(sos, 44100, "A").passed
    assert np.array_equal(dsp.c_weighting_sos(16000), dsp.weighting_sos(16000, "C"))
    for bad in (0, -16000, float("nan"), float("inf"), 1000):
        with pytest.raises(ValueError, match="samplerate"):
            dsp.a_weighting_sos(bad)
    with pytest.raises(ValueError, match="weighting"):
        dsp.weighting_sos(16000, "B")


def test_c_header_matches_the_generator() -> None:
    """usermods/tinysense_soundlevel/weightings.h is `python -m tinysense.dsp`'s output (regenerate if not)."""
    text = dsp.HEADER_PATH.read_text()
    for fs in RATES:
        for weighting in ("A", "C"):
            name = f"soundlevel_{weighting.lower()}_{fs}"
            match = re.search(rf"{name}\[(\d+)\] = \{{(.*?)\}};", text, re.S)
            assert match, name
            values = np.array([float(v.rstrip("f")) for v in match.group(2).replace(",", " ").split()])
            expected = dsp.weighting_sos(fs, weighting).astype(np.float32).ravel()
            assert int(match.group(1)) == len(values) == len(expected), name
            assert np.allclose(values, expected, rtol=2e-6, atol=1e-7), (name, values - expected)
            assert f"{{ {fs}, '{weighting}', {len(expected) // 6}, {name} }}" in text
    assert '#define SOUNDLEVEL_BUILTIN_RATES "16000, 32000, 48000"' in text
