"""tinysense_features in the host firmware against the float64 numpy reference (tools/tinysense/features.py).

Every case runs the C module through `extract_on_host` (one firmware process per case, as training does) and
compares with `reference_features` on the same samples.

Tolerance rule (per feature, |C - reference| <= 1e-5 * |reference| + atol):
* atol is 0 for zero crossings (exact counts), 1e-5 * peak for features in signal units (mean, std, min, max,
  median, q25, q75, iqr, rms; peak = max |sample| of that channel in the window), 1e-5 * peak² for energy,
  1e-5 * samplerate / 2 for the centroid (Hz) and 1e-5 for the band power fractions (range 0..1). A feature
  near 0 (the mean of a centred signal, a band with almost no power) has no meaningful relative error, so
  its error is judged against the scale of the signal instead.
* domfreq must be the same bin, unless two bins' reference powers lie within 1e-5 of each other (a tie that
  float32 may break either way): then the C bin's reference power must be within 1e-5 of the maximum.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinysense.features import (
    SPECTRAL_FEATURES,
    TIME_FEATURES,
    extract_on_host,
    feature_names,
    fft_size,
    power_spectrum,
    reference_features,
)
from tinysense.host import run, sanitizer_report

VARIANTS = ("standard", "32")
RTOL = 1e-5
SAMPLERATE = 100.0
HAR_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "har_exercise_1" / "data"
SIGNAL_UNIT = {"mean", "std", "min", "max", "median", "q25", "q75", "iqr", "rms"}


def channels_of(window: np.ndarray, magnitude: bool) -> list[np.ndarray]:
    w = window.astype(np.float64)
    channels = [w[:, a] for a in range(w.shape[1])]
    if magnitude:
        channels.append(np.sqrt(np.sum(w * w, axis=1)))
    return channels


def worst_errors(got: np.ndarray, windows: np.ndarray, samplerate: float = SAMPLERATE, *, spectral: bool = True,
                 magnitude: bool | None = None) -> dict[str, float]:
    """Assert the tolerance rule for every window; return the worst relative error per feature kind."""
    n_axes = windows.shape[2]
    magnitude = n_axes >= 2 if magnitude is None else magnitude
    names = feature_names(n_axes, spectral=spectral, magnitude=magnitude)
    per_channel = TIME_FEATURES + (SPECTRAL_FEATURES if spectral else ())
    assert got.shape == (len(windows), len(names))
    worst: dict[str, float] = {}
    for i, window in enumerate(windows):
        expected = reference_features(window, samplerate, spectral=spectral, magnitude=magnitude)
        for c, channel in enumerate(channels_of(window, magnitude)):
            peak = float(np.max(np.abs(channel)))
            for j, kind in enumerate(per_channel):
                index = c * len(per_channel) + j
                g, e = float(got[i, index]), float(expected[index])
                where = f"window {i}, {names[index]}: C {g!r}, reference {e!r}"
                if kind == "domfreq":
                    power = power_spectrum(channel)
                    bin_hz = samplerate / fft_size(len(channel))
                    k = int(round(g / bin_hz))
                    assert 0 <= k < len(power), where
                    assert g == e or power[k] >= (1 - RTOL) * power[1:].max(), where
                    continue
                atol = {"zcross": 0.0, "energy": RTOL * peak * peak, "centroid": RTOL * samplerate / 2}.get(
                    kind, RTOL * peak if kind in SIGNAL_UNIT else RTOL)
                assert abs(g - e) <= RTOL * abs(e) + atol, where
                if e != 0.0:
                    worst[kind] = max(worst.get(kind, 0.0), abs(g - e) / abs(e))
    return worst


def random_windows(rng: np.random.Generator, m: int, n: int, n_axes: int) -> np.ndarray:
    """int16 accelerometer-like windows: gravity offset, slow motion, noise, some clipped samples."""
    t = np.arange(n) / SAMPLERATE
    offsets = np.array([120.0, -340.0, 4096.0])[:n_axes]
    out = np.empty((m, n, n_axes))
    for i in range(m):
        freq = rng.uniform(0.3, 12.0, n_axes)
        amplitude = rng.choice([2.0, 50.0, 2000.0], n_axes)
        phase = rng.uniform(0, 2 * np.pi, n_axes)
        out[i] = offsets + amplitude * np.sin(2 * np.pi * freq * t[:, None] + phase) + rng.normal(0, 20.0,
                                                                                                  (n, n_axes))
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def har_windows(n: int, hop: int, max_files: int = 12) -> np.ndarray:
    """Windows of the real recordings; files that do not load whole (truncated, empty) are left out."""
    if not HAR_DATA.is_dir():
        pytest.skip(f"the har_exercise_1 data set is not at {HAR_DATA} (it lives beside the repository)")
    windows = []
    used = 0
    for path in sorted(HAR_DATA.glob("*.npy")):
        try:
            data = np.load(path)
        except (ValueError, OSError, EOFError):
            continue  # truncated or empty as recorded (see the data set's README)
        if data.dtype != np.int16 or data.ndim != 2 or data.shape[1] != 3:
            continue
        windows += [data[s:s + n] for s in range(0, len(data) - n + 1, hop)]
        used += 1
        if used == max_files:
            break
    assert used > 0, f"no whole recording in {HAR_DATA}"
    return np.stack(windows)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("n", [128, 400])
@pytest.mark.parametrize("n_axes", [1, 2, 3])
def test_random_windows_match_reference(variant: str, n: int, n_axes: int) -> None:
    rng = np.random.default_rng(1000 * n + n_axes)
    windows = random_windows(rng, 12, n, n_axes)
    int16 = extract_on_host(windows, SAMPLERATE, variant)
    worst_errors(int16, windows)
    # The same samples as float32 go through the float path (compensated sums instead of integers).
    as_float = extract_on_host(windows.astype(np.float32), SAMPLERATE, variant)
    worst_errors(as_float, windows)
    # Float data that is not integer-valued, around zero and with a large offset.
    floats = (rng.normal(0.0, 1.0, (12, n, n_axes)) * rng.choice([1e-3, 1.0, 1e3], n_axes)
              + rng.choice([0.0, 9.81, -500.0], n_axes)).astype(np.float32)
    worst_errors(extract_on_host(floats, SAMPLERATE, variant), floats)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("n", [128, 400])
def test_har_recordings_match_reference(variant: str, n: int) -> None:
    windows = har_windows(n, hop=100 if n == 400 else 64)
    worst = {}
    for n_axes in (1, 2, 3):
        subset = np.ascontiguousarray(windows[:, :, :n_axes])
        for data in (subset, subset.astype(np.float32)):
            for kind, error in worst_errors(extract_on_host(data, SAMPLERATE, variant), data).items():
                worst[kind] = max(worst.get(kind, 0.0), error)
    print(f"\n{variant} n={n}: {len(windows)} windows; worst relative error per feature: "
          + ", ".join(f"{k} {v:.2g}" for k, v in sorted(worst.items())))


def test_edge_cases_match_reference() -> None:
    rng = np.random.default_rng(7)
    cases: list[tuple[np.ndarray, float, bool, bool | None]] = [
        (np.full((5, 64, 3), 4096, dtype=np.int16), 100.0, True, None),  # constant: std 0, no spectral power
        (np.full((2, 16, 1), -7, dtype=np.int16), 100.0, True, True),  # |x| as the magnitude of one axis
        (rng.integers(-32768, 32768, (6, 4, 3)).astype(np.int16), 100.0, True, None),  # shortest, full range
        (rng.integers(-32768, 32768, (6, 100, 3)).astype(np.int16), 50.0, True, None),  # not a power of two
        (rng.integers(-3, 4, (6, 33, 2)).astype(np.int16), 20.0, True, None),  # many ties and exact zeros
        (4096 + rng.integers(-2, 3, (6, 400, 3)).astype(np.int16), 100.0, True, None),  # large offset, tiny noise
        (rng.normal(0, 1, (6, 200, 3)).astype(np.float32), 100.0, False, None),  # no spectral features
        (rng.normal(0, 1, (6, 200, 2)).astype(np.float32), 100.0, True, False),  # no magnitude
    ]
    for windows, samplerate, spectral, magnitude in cases:
        got = extract_on_host(windows, samplerate, spectral=spectral, magnitude=magnitude)
        worst_errors(got, windows, samplerate, spectral=spectral, magnitude=magnitude)
    constant = extract_on_host(cases[0][0], 100.0)
    names = feature_names(3)
    for name in ("z_std", "z_iqr", "z_zcross", "z_domfreq", "z_centroid", "z_pow_1_3hz"):
        assert np.all(constant[:, names.index(name)] == 0.0), name
    assert np.all(constant[:, names.index("z_mean")] == 4096.0)


def test_int16_and_float_paths_agree() -> None:
    windows = random_windows(np.random.default_rng(3), 8, 400, 3)
    a = extract_on_host(windows, SAMPLERATE)
    b = extract_on_host(windows.astype(np.float32), SAMPLERATE)
    scale = np.maximum(np.abs(a), 1.0)
    assert np.max(np.abs(a - b) / scale) <= 2e-5


def test_names_match_the_device() -> None:
    script = ("import tinysense_features as t\n"
              "for args, kw in (((400, 3), {}), ((128, 1), {}), ((128, 2), {'spectral': False, 'magnitude': False})):\n"
              "    f = t.Features(*args, **kw)\n"
              "    print(f.n_features(), f.fft_size(), ','.join(f.names()))\n")
    proc = run(["-c", script])
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().split()
    expected = [(feature_names(3), 512), (feature_names(1), 128),
                (feature_names(2, spectral=False, magnitude=False), 0)]
    assert len(lines) == 3 * len(expected)
    listings = zip(lines[::3], lines[1::3], lines[2::3], strict=True)
    for (names, size), (count, fft, listed) in zip(expected, listings, strict=True):
        assert listed.split(",") == names
        assert int(count) == len(names)
        assert int(fft) == size


def test_extract_on_host_rejects_bad_windows() -> None:
    with pytest.raises(ValueError, match="shape"):
        extract_on_host(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="int16"):
        extract_on_host(np.full((1, 8, 1), 40000), typecode="h")
    bad = np.zeros((2, 8, 1), dtype=np.float32)
    bad[1, 3, 0] = np.nan
    with pytest.raises(RuntimeError, match="non-finite"):
        extract_on_host(bad)
    assert extract_on_host(np.zeros((0, 8, 3), dtype=np.int16)).shape == (0, 68)


def test_sanitize_build_is_clean() -> None:
    windows = random_windows(np.random.default_rng(5), 3, 400, 3)
    try:
        got = extract_on_host(windows, SAMPLERATE, "sanitize")
    except FileNotFoundError as missing:
        pytest.skip(str(missing))
    worst_errors(got, windows)
    proc = run(["-c", "import tinysense_features as t, array\n"
                "f = t.Features(4, 1)\n"
                "f.compute(array.array('h', [1, 2, 3, 4]), array.array('f', bytes(4 * f.n_features())))\n"],
               variant="sanitize")
    assert proc.returncode == 0 and sanitizer_report(proc.stderr.decode(errors="replace")) is None
