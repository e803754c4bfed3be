"""Time-series features of sensor windows: the CPython reference and the host-firmware extractor.

The device computes features with the C module ``tinysense_features`` (usermods/tinysense_features).
Training must see exactly the same numbers, so ``extract_on_host`` runs that C module inside the host
firmware (one process for all windows). ``reference_features`` is an independent float64 numpy
implementation of the same definitions, used by the tests to check the C code.

Channels: the axes ``x``, ``y``, ``z`` (as many as the window has), then ``mag`` = sqrt(x² + y² + z²)
per sample (by default when there are 2 or 3 axes). Per channel, in this order:

* ``mean``; ``std`` (population, ddof=0); ``min``; ``max``;
* ``median``, ``q25``, ``q75``: numpy's default 'linear' quantiles; ``iqr`` = q75 - q25;
* ``rms`` = sqrt(mean of squares); ``energy`` = mean of squares (not the sum);
* ``zcross``: sign changes of the mean-removed signal between consecutive samples, samples exactly
  equal to the mean skipped (+, 0, - is one crossing; +, 0, + none);
* spectral (``spectral=True``), from P[k] = |rfft(x - mean, n=fft_size)[k]|² for k = 1 .. fft_size/2,
  fft_size the next power of two >= window_length (zero padding, no taper), f[k] = k·samplerate/fft_size:
  ``domfreq`` (f of the largest P, lowest k on a tie), ``centroid`` (Σ f·P / Σ P), and the fractions of
  Σ P with f in [0, 1), [1, 3), [3, 8) and [8, ∞) Hz (``pow_0_1hz`` … ``pow_8hz_up``; band b starts at
  bin max(1, ceil(edge·fft_size/samplerate))). All six are 0 for a channel without spectral power.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np

from tinysense import host

TIME_FEATURES = ("mean", "std", "min", "max", "median", "q25", "q75", "iqr", "rms", "energy", "zcross")
SPECTRAL_FEATURES = ("domfreq", "centroid", "pow_0_1hz", "pow_1_3hz", "pow_3_8hz", "pow_8hz_up")
BAND_EDGES_HZ = (0.0, 1.0, 3.0, 8.0)
AXES = ("x", "y", "z")
MIN_WINDOW, MAX_WINDOW = 4, 4096


def _default_magnitude(n_axes: int, magnitude: bool | None) -> bool:
    return n_axes >= 2 if magnitude is None else bool(magnitude)


def fft_size(window_length: int) -> int:
    """The FFT length of the spectral features: the next power of two >= window_length."""
    return 1 << max(0, int(window_length) - 1).bit_length()


def feature_names(n_axes: int, *, spectral: bool = True, magnitude: bool | None = None) -> list[str]:
    """Names in output order, e.g. "x_mean", ..., "mag_pow_8hz_up" (as Features.names() on the device)."""
    if not 1 <= n_axes <= 3:
        raise ValueError(f"n_axes must be 1, 2 or 3, got {n_axes}")
    channels = list(AXES[:n_axes]) + (["mag"] if _default_magnitude(n_axes, magnitude) else [])
    per_channel = TIME_FEATURES + (SPECTRAL_FEATURES if spectral else ())
    return [f"{c}_{f}" for c in channels for f in per_channel]


def band_starts(window_length: int, samplerate: float) -> list[int]:
    """First FFT bin of each band, then fft_size/2 + 1."""
    m = fft_size(window_length)
    half = m // 2
    starts: list[int] = []
    for edge in BAND_EDGES_HZ:
        k = min(max(1, math.ceil(edge * m / samplerate)), half + 1)
        starts.append(max(k, starts[-1]) if starts else k)
    return starts + [half + 1]


def power_spectrum(channel: np.ndarray) -> np.ndarray:
    """P[k] = |X[k]|², k = 0 .. fft_size/2, of the mean-removed, zero-padded channel (float64)."""
    x = np.asarray(channel, dtype=np.float64)
    spectrum = np.fft.rfft(x - x.mean(), n=fft_size(len(x)))
    return spectrum.real ** 2 + spectrum.imag ** 2


def _zero_crossings(d: np.ndarray) -> int:
    signs = np.sign(d)
    signs = signs[signs != 0]
    return int(np.count_nonzero(signs[1:] != signs[:-1]))


def _channel_features(x: np.ndarray, samplerate: float, spectral: bool) -> list[float]:
    mean = float(x.mean())
    q25, median, q75 = (float(q) for q in np.quantile(x, [0.25, 0.5, 0.75]))
    mean_square = float(np.mean(x * x))
    values = [mean, float(x.std()), float(x.min()), float(x.max()), median, q25, q75, q75 - q25,
              math.sqrt(mean_square), mean_square, float(_zero_crossings(x - mean))]
    if spectral:
        power = power_spectrum(x)[1:]  # bins 1 .. fft_size/2
        total = float(power.sum())
        if total > 0.0:
            bin_hz = samplerate / fft_size(len(x))
            k = np.arange(1, len(power) + 1)
            starts = band_starts(len(x), samplerate)
            bands = [float(power[a - 1:b - 1].sum()) / total for a, b in zip(starts[:-1], starts[1:], strict=True)]
            values += [float(k[int(np.argmax(power))]) * bin_hz, float((k * power).sum()) / total * bin_hz, *bands]
        else:
            values += [0.0] * len(SPECTRAL_FEATURES)
    return values


def reference_features(window: np.ndarray, samplerate: float = 100.0, *, spectral: bool = True,
                       magnitude: bool | None = None) -> np.ndarray:
    """The features of one window (n samples, axes) in float64, same names and order as the device."""
    w = np.asarray(window, dtype=np.float64)
    if w.ndim == 1:
        w = w[:, None]
    if w.ndim != 2 or not 1 <= w.shape[1] <= 3:
        raise ValueError(f"window must have shape (n, 1..3), got {np.shape(window)}")
    if not MIN_WINDOW <= w.shape[0] <= MAX_WINDOW:
        raise ValueError(f"window_length must be {MIN_WINDOW}..{MAX_WINDOW}, got {w.shape[0]}")
    if not np.all(np.isfinite(w)):
        raise ValueError("window holds a non-finite sample (NaN or inf)")
    channels = [w[:, a] for a in range(w.shape[1])]
    if _default_magnitude(w.shape[1], magnitude):
        channels.append(np.sqrt(np.sum(w * w, axis=1)))
    out: list[float] = []
    for channel in channels:
        out += _channel_features(channel, samplerate, spectral)
    return np.array(out, dtype=np.float64)


EXTRACT_SCRIPT = """\
import sys, array, tinysense_features
x_path, out_path, tc = sys.argv[1:4]
m, n, axes, spectral, magnitude = [int(a) for a in sys.argv[4:9]]
fs = float(sys.argv[9])
f = tinysense_features.Features(n, axes, samplerate=fs, spectral=bool(spectral), magnitude=bool(magnitude))
nf = f.n_features()
size = n * axes
item = 2 if tc == 'h' else 4
window = array.array(tc, bytes(item * size))
out = array.array('f', bytes(4 * nf))
with open(x_path, 'rb') as src, open(out_path, 'wb') as dst:
    for i in range(m):
        if src.readinto(window) != item * size:
            raise ValueError('short read at window %d' % i)
        f.compute(window, out)
        dst.write(out)
print('extracted', m)
"""


def extract_on_host(windows: np.ndarray, samplerate: float = 100.0, variant: str = "standard", *,
                    spectral: bool = True, magnitude: bool | None = None,
                    typecode: str | None = None) -> np.ndarray:
    """Features of every window (m, n, axes) computed by the device's C module in the host firmware.

    One firmware process handles all windows (binary file in, binary file out). Integer windows go in as
    int16 (array('h')), others as float32 (array('f')) unless `typecode` ('h' or 'f') says otherwise.
    Returns float32 (m, n_features) in feature_names() order.
    """
    w = np.asarray(windows)
    if w.ndim == 2:
        w = w[:, :, None]
    if w.ndim != 3:
        raise ValueError(f"windows must have shape (m, n, axes), got {np.shape(windows)}")
    m, n, axes = w.shape
    if typecode is None:
        typecode = "h" if np.issubdtype(w.dtype, np.integer) else "f"
    if typecode not in ("h", "f"):
        raise ValueError(f"typecode must be 'h' or 'f', got {typecode!r}")
    if typecode == "h" and (w.size and (w.min() < -32768 or w.max() > 32767)):
        raise ValueError("int16 windows must lie within -32768..32767")
    names = feature_names(axes, spectral=spectral, magnitude=magnitude)
    if m == 0:
        return np.zeros((0, len(names)), dtype=np.float32)
    dtype = {"h": "<i2", "f": "<f4"}[typecode]
    with tempfile.TemporaryDirectory(prefix="tinysense-features-") as tmp:
        d = Path(tmp)
        (d / "x.bin").write_bytes(np.ascontiguousarray(w, dtype=dtype).tobytes())
        (d / "extract.py").write_text(EXTRACT_SCRIPT)
        args = [str(d / "extract.py"), str(d / "x.bin"), str(d / "out.bin"), typecode, str(m), str(n), str(axes),
                str(int(spectral)), str(int(_default_magnitude(axes, magnitude))), repr(float(samplerate))]
        proc = host.run(args, variant=variant)
        report = host.sanitizer_report(proc.stderr.decode(errors="replace"))
        if proc.returncode != 0 or report:
            output = (proc.stdout + proc.stderr).decode(errors="replace")
            raise RuntimeError(f"host firmware failed ({proc.returncode}):\n{report or output}")
        out = np.frombuffer((d / "out.bin").read_bytes(), dtype="<f4")
    if out.size != m * len(names):
        raise RuntimeError(f"host firmware wrote {out.size} values, expected {m} x {len(names)}")
    return out.reshape(m, len(names)).copy()
