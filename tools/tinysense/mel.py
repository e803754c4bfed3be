"""NumPy reference for usermods/tinysense_mel: mel scales, triangular filterbanks, mel energies and MFCC of one frame.

Written from the definitions (float64 throughout), following librosa's conventions so the results can be compared
with ``librosa.feature.melspectrogram`` / ``librosa.feature.mfcc`` (tests/test_mel.py does when librosa is installed):

* HTK mel scale: ``m = 2595 log10(1 + f / 700)``. Slaney (Auditory Toolbox) scale: ``m = 3 f / 200`` below 1 kHz,
  ``15 + ln(f / 1000) / (ln(6.4) / 27)`` above (librosa's default, ``htk=False``).
* Filterbank: ``n_mels + 2`` corner frequencies evenly spaced in mel from fmin to fmax; band i is the triangle rising
  from corner i to 1 at corner i+1 and falling to 0 at corner i+2, sampled at the FFT bin frequencies
  ``k * sr / n_fft``; ``norm='slaney'`` scales each triangle by ``2 / (f[i+2] - f[i])`` (equal area). librosa's
  ``filters.mel`` defaults to ``norm='slaney'``; the C module and this file default to ``None``.
* Window: periodic Hann, ``0.5 - 0.5 cos(2 pi k / n)`` (scipy ``hann(n, sym=False)``, librosa's STFT window).
  One frame is one STFT column without centering or padding (librosa ``center=False``).
* int16 samples are read as ``x / 32768``.
* Power spectrum ``|rfft(x w)|^power`` (power 2) or magnitude (power 1), no scaling.
* dB: ``(20 / power) log10(max(E, amin))`` with ``amin = 1e-5 ** power`` (librosa ``power_to_db`` /
  ``amplitude_to_db`` with ``ref=1.0, top_db=None``); ln: ``ln(max(E, amin))``.
* MFCC: DCT-II with orthonormal scaling of the log mel energies (``scipy.fft.dct(type=2, norm='ortho')``), first
  ``n_mfcc`` coefficients.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Scale = Literal["htk", "slaney"]
Norm = Literal["slaney"] | None
Log = Literal["db", "ln"] | None

INT16_FULL_SCALE = 32768.0
_SLANEY_F_SP = 200.0 / 3.0
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
_SLANEY_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz: ArrayLike, scale: Scale = "htk") -> NDArray[np.float64]:
    f = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    if scale != "slaney":
        raise ValueError(f"scale must be 'htk' or 'slaney', got {scale!r}")
    linear = f / _SLANEY_F_SP
    logarithmic = _SLANEY_MIN_LOG_MEL + np.log(np.maximum(f, _SLANEY_MIN_LOG_HZ) / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
    return np.where(f >= _SLANEY_MIN_LOG_HZ, logarithmic, linear)


def mel_to_hz(mel: ArrayLike, scale: Scale = "htk") -> NDArray[np.float64]:
    m = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    if scale != "slaney":
        raise ValueError(f"scale must be 'htk' or 'slaney', got {scale!r}")
    linear = _SLANEY_F_SP * m
    above = np.maximum(m, _SLANEY_MIN_LOG_MEL) - _SLANEY_MIN_LOG_MEL
    logarithmic = _SLANEY_MIN_LOG_HZ * np.exp(_SLANEY_LOGSTEP * above)
    return np.where(m >= _SLANEY_MIN_LOG_MEL, logarithmic, linear)


def mel_corners(n_mels: int, fmin: float, fmax: float, scale: Scale = "htk") -> NDArray[np.float64]:
    """The n_mels + 2 corner frequencies (Hz) of the triangles, evenly spaced in mel."""
    mels = np.linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale), n_mels + 2)
    corners = mel_to_hz(mels, scale)
    corners[0], corners[-1] = fmin, fmax
    return corners


def filterbank(samplerate: float, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None,
               scale: Scale = "htk", norm: Norm = None) -> NDArray[np.float64]:
    """Triangular mel filterbank, shape (n_mels, n_fft // 2 + 1)."""
    if fmax is None:
        fmax = samplerate / 2
    if not 0 <= fmin < fmax <= samplerate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= samplerate / 2, got fmin={fmin} fmax={fmax}")
    freqs = np.arange(n_fft // 2 + 1) * (samplerate / n_fft)
    f = mel_corners(n_mels, fmin, fmax, scale)
    lower = (freqs[None, :] - f[:-2, None]) / (f[1:-1] - f[:-2])[:, None]
    upper = (f[2:, None] - freqs[None, :]) / (f[2:] - f[1:-1])[:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (f[2:] - f[:-2]))[:, None]
    elif norm is not None:
        raise ValueError(f"norm must be None or 'slaney', got {norm!r}")
    return weights


def hann_periodic(n: int) -> NDArray[np.float64]:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def as_float_frame(frame: ArrayLike) -> NDArray[np.float64]:
    """Samples as float64; int16 samples scaled by 1 / 32768."""
    x = np.asarray(frame)
    if x.dtype == np.int16:
        return x.astype(np.float64) / INT16_FULL_SCALE
    return x.astype(np.float64)


def spectrum(frame: ArrayLike, power: float = 2.0) -> NDArray[np.float64]:
    """|rfft(x * hann)|^power of one frame (n_fft = len(frame))."""
    x = as_float_frame(frame)
    return np.abs(np.fft.rfft(x * hann_periodic(x.size))) ** power


def to_log(energies: NDArray[np.float64], log: Log, power: float = 2.0) -> NDArray[np.float64]:
    if log is None:
        return energies
    amin = 1e-5**power
    clipped = np.maximum(energies, amin)
    if log == "db":
        return (20.0 / power) * np.log10(clipped)
    if log == "ln":
        return np.log(clipped)
    raise ValueError(f"log must be None, 'db' or 'ln', got {log!r}")


def dct_matrix(n_mfcc: int, n_mels: int) -> NDArray[np.float64]:
    """Rows 0..n_mfcc-1 of the orthonormal DCT-II matrix of size n_mels."""
    k = np.arange(n_mfcc)[:, None]
    i = np.arange(n_mels)[None, :]
    d = np.sqrt(2.0 / n_mels) * np.cos(np.pi * k * (2 * i + 1) / (2 * n_mels))
    d[0] /= np.sqrt(2.0)
    return d


def mel_frame(frame: ArrayLike, samplerate: float, n_mels: int, *, fmin: float = 0.0, fmax: float | None = None,
              scale: Scale = "htk", norm: Norm = None, power: float = 2.0, log: Log = None) -> NDArray[np.float64]:
    """The (log) mel energies of one frame, as tinysense_mel.Mel(len(frame), ...).run(frame, out)."""
    s = spectrum(frame, power)
    fb = filterbank(samplerate, 2 * (s.size - 1), n_mels, fmin, fmax, scale, norm)
    return to_log(fb @ s, log, power)


def mfcc_frame(frame: ArrayLike, samplerate: float, n_mels: int, n_mfcc: int = 13, *, fmin: float = 0.0,
               fmax: float | None = None, scale: Scale = "htk", norm: Norm = None, power: float = 2.0,
               log: Literal["db", "ln"] = "db") -> NDArray[np.float64]:
    """MFCCs of one frame, as tinysense_mel.MFCC(len(frame), ...).run(frame, out)."""
    logmel = mel_frame(frame, samplerate, n_mels, fmin=fmin, fmax=fmax, scale=scale, norm=norm, power=power, log=log)
    return dct_matrix(n_mfcc, n_mels) @ logmel
