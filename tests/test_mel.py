"""tinysense_mel in the host firmware against the NumPy reference (tools/tinysense/mel.py), and that reference
against librosa (when installed) and scipy.

* Reference vs librosa 0.11 (``filters.mel``, ``feature.melspectrogram(center=False)``, ``power_to_db`` /
  ``amplitude_to_db`` with ``top_db=None``, ``feature.mfcc``): HTK and Slaney scales, both norms, <= 1e-6 relative.
* Reference vs scipy and known properties: scipy's periodic Hann window, ``scipy.signal.spectrogram``,
  ``scipy.fft.dct(type=2, norm='ortho')``, published mel scale values, filterbank partition of unity and equal
  area, and a tone at a band's centre peaking in that band.
* Firmware vs reference: random frames and speech-like frames (synthesised: a glottal pulse train with intonation
  through formant resonators, fricative noise, a -50 dB noise floor), int16 and float, HTK and Slaney, n_fft
  256/512/1024, 20..128 bands, power 1 and 2, linear/dB/ln, MFCC; the mel energies agree within 1e-3 relative
  per band (dB within 0.0044 dB, ln within 1e-3: the same bound), MFCCs within 1e-3 of the frame's largest
  coefficient; and the firmware's filterbank equals the reference's to float32 rounding. One firmware process per
  variant (standard, 32, sanitize) runs every job; data goes through binary files.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import fft as sfft
from scipy import signal

from tinysense import mel
from tinysense.host import run, sanitizer_report

RELATIVE = 1e-3
# Bands where either side has (almost) no weight: a bin on a corner frequency can get a weight of 1e-16 in one
# implementation and 0 in the other. Negligible against any real band: 1e-9 of the frame's largest band.
FLOOR = 1e-9

MP_SCRIPT = """\
import array
import sys

from tinysense_mel import MFCC, Mel


def opt(value):
    return None if value == "-" else value


with open(sys.argv[1]) as jobs:
    for line in jobs:
        kind, n_fft, fs, n_mels, n_mfcc, fmin, fmax, scale, norm, power, log, typecode, src, dst = line.split()
        n_fft, n_mels, n_mfcc = int(n_fft), int(n_mels), int(n_mfcc)
        kw = dict(fmin=float(fmin), fmax=float(fmax), scale=scale, norm=opt(norm), power=float(power))
        if kind == "mfcc":
            m = MFCC(n_fft, float(fs), n_mels, n_mfcc, log=log, **kw)
            out = array.array("f", bytes(4 * n_mfcc))
        else:
            m = Mel(n_fft, float(fs), n_mels, log=opt(log), **kw)
            out = array.array("f", bytes(4 * n_mels))
        with open(dst, "wb") as f:
            if kind == "fb":
                fb = array.array("f", bytes(4 * n_mels * (n_fft // 2 + 1)))
                m.filterbank(fb)
                f.write(fb)
                continue
            with open(src, "rb") as g:
                data = array.array(typecode, g.read())
            for start in range(0, len(data), n_fft):
                m.run(memoryview(data)[start:start + n_fft], out)
                f.write(out)
print("done")
"""


@dataclass(frozen=True)
class Job:
    kind: str  # "mel", "mfcc" or "fb"
    n_fft: int
    fs: int
    n_mels: int
    n_mfcc: int = 0
    fmin: float = 0.0
    fmax: float | None = None
    scale: mel.Scale = "htk"
    norm: mel.Norm = None
    power: float = 2.0
    log: mel.Log = None
    typecode: str = "f"

    @property
    def name(self) -> str:
        return "-".join(str(v) for v in (self.kind, self.n_fft, self.fs, self.n_mels, self.n_mfcc, self.fmin,
                                         self.fmax, self.scale, self.norm, self.power, self.log, self.typecode))

    def line(self, src: Path, dst: Path) -> str:
        fmax = self.fs / 2 if self.fmax is None else self.fmax
        values = (self.kind, self.n_fft, self.fs, self.n_mels, self.n_mfcc, self.fmin, fmax, self.scale,
                  self.norm or "-", self.power, self.log or "-", self.typecode, src, dst)
        return " ".join(str(v) for v in values)

    def reference(self, frame: NDArray[np.generic]) -> NDArray[np.float64]:
        kw = dict(fmin=self.fmin, fmax=self.fmax, scale=self.scale, norm=self.norm, power=self.power)
        if self.kind == "mfcc":
            assert self.log is not None
            return mel.mfcc_frame(frame, self.fs, self.n_mels, self.n_mfcc, log=self.log, **kw)  # type: ignore[arg-type]
        return mel.mel_frame(frame, self.fs, self.n_mels, log=self.log, **kw)  # type: ignore[arg-type]


def speech_like(n: int, fs: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """A vowel-fricative-vowel utterance: pulse train (f0 100..140 Hz) through formant resonators, then noise."""
    t = np.arange(n) / fs
    f0 = 120 + 20 * np.sin(2 * np.pi * 2.5 * t) + 2 * rng.standard_normal(n).cumsum() / math.sqrt(n)
    cycles = np.cumsum(f0) / fs
    pulses = np.diff(np.floor(cycles), prepend=0.0)
    glottal = signal.lfilter([1.0], [1.0, -0.95], pulses)  # -6 dB/octave source tilt
    voiced = np.zeros(n)
    for formant, bandwidth, gain in ((700, 90, 1.0), (1220, 110, 0.6), (2600, 160, 0.25), (3400, 250, 0.1)):
        r = math.exp(-math.pi * bandwidth / fs)
        voiced += gain * signal.lfilter([1 - r], [1, -2 * r * math.cos(2 * math.pi * formant / fs), r * r], glottal)
    sos = signal.butter(4, min(3000, 0.4 * fs), "highpass", fs=fs, output="sos")
    fricative = signal.sosfilt(sos, rng.standard_normal(n))
    envelope = np.clip(np.abs(t / t[-1] - 0.5) * 6 - 0.5, 0, 1)  # voiced at the ends, fricative in the middle
    x = envelope * voiced / np.max(np.abs(voiced)) + (1 - envelope) * 0.3 * fricative / np.max(np.abs(fricative))
    x += 10 ** (-50 / 20) * rng.standard_normal(n)
    return 0.7 * x / np.max(np.abs(x))


def frames_for(job: Job, rng: np.random.Generator) -> NDArray[np.generic]:
    """4 random frames and 6 speech-like frames (voiced, transitions, fricative), in the job's sample type."""
    n = job.n_fft
    speech = speech_like(12 * n, job.fs, rng)
    starts = np.linspace(0, 11 * n, 6).astype(int)
    parts = [speech[s:s + n] for s in starts]
    if job.typecode == "h":
        noise = [rng.integers(-32768, 32768, n).astype(np.int16) for _ in range(4)]
        return np.concatenate(noise + [np.round(p * 32767).astype(np.int16) for p in parts])
    noise = [rng.uniform(-1, 1, n).astype(np.float32) for _ in range(4)]
    return np.concatenate(noise + [p.astype(np.float32) for p in parts])


def c_jobs() -> list[Job]:
    jobs: list[Job] = []
    configs = [  # (n_fft, fs, n_mels, fmin, fmax)
        (256, 16000, 20, 0.0, None), (256, 8000, 32, 100.0, 3800.0),
        (512, 16000, 40, 0.0, None), (512, 16000, 64, 300.0, 7600.0),
        (1024, 16000, 40, 20.0, 8000.0), (1024, 48000, 128, 0.0, None),
    ]
    variants: list[tuple[mel.Norm, float, mel.Log]] = [
        (None, 2.0, None), ("slaney", 2.0, "db"), (None, 1.0, "ln"), ("slaney", 1.0, None), (None, 2.0, "db"),
    ]
    i = 0
    for n_fft, fs, n_mels, fmin, fmax in configs:
        for scale in ("htk", "slaney"):
            for typecode in ("h", "f"):
                norm, power, log = variants[i % len(variants)]
                i += 1
                jobs.append(Job("mel", n_fft, fs, n_mels, 0, fmin, fmax, scale, norm, power, log, typecode))
            jobs.append(Job("fb", n_fft, fs, n_mels, 0, fmin, fmax, scale, "slaney" if i % 2 else None))
        log_mfcc: mel.Log = "db" if n_fft != 256 else "ln"
        jobs.append(Job("mfcc", n_fft, fs, n_mels, min(13, n_mels), fmin, fmax, "htk", None, 2.0, log_mfcc, "h"))
        jobs.append(Job("mfcc", n_fft, fs, n_mels, 20, fmin, fmax, "slaney", "slaney", 2.0, "db", "f"))
    return jobs


def mel_errors(job: Job, got: NDArray[np.float64], ref: NDArray[np.float64]) -> float:
    """The error in units of the 1e-3 budget (<= 1 passes)."""
    if job.kind == "mfcc":
        return float(np.max(np.abs(got - ref)) / (RELATIVE * np.max(np.abs(ref))))
    if job.log is not None:
        # Back to energies: a relative energy error e is (20 / power) log10(1 + e) dB or ln(1 + e).
        got, ref = from_log(got, job.log, job.power), from_log(ref, job.log, job.power)
    bound = RELATIVE * ref + FLOOR * np.max(ref)
    return float(np.max(np.abs(got - ref) / bound))


def from_log(values: NDArray[np.float64], log: mel.Log, power: float) -> NDArray[np.float64]:
    return 10 ** (values * power / 20) if log == "db" else np.exp(values)


@pytest.mark.parametrize("variant", ["standard", "32", "sanitize"])
def test_firmware_matches_reference(tmp_path: Path, variant: str) -> None:
    rng = np.random.default_rng(2024)
    jobs = c_jobs()
    lines, inputs = [], {}
    for k, job in enumerate(jobs):
        src, dst = tmp_path / f"{k}.in", tmp_path / f"{k}.out"
        if job.kind != "fb":
            inputs[k] = frames_for(job, rng)
            inputs[k].tofile(src)
        lines.append(job.line(src, dst))
    (tmp_path / "jobs.txt").write_text("\n".join(lines) + "\n")
    script = tmp_path / "mel_jobs.py"
    script.write_text(MP_SCRIPT)
    proc = run([str(script), str(tmp_path / "jobs.txt")], variant=variant, heapsize="4M", timeout=120)
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, proc.stdout.decode(errors="replace") + stderr
    assert sanitizer_report(stderr) is None
    assert proc.stdout.decode().strip() == "done"

    worst: dict[str, float] = {}
    for k, job in enumerate(jobs):
        got = np.fromfile(tmp_path / f"{k}.out", dtype=np.float32).astype(np.float64)
        if job.kind == "fb":
            ref_fb = mel.filterbank(job.fs, job.n_fft, job.n_mels, job.fmin, job.fmax, job.scale, job.norm)
            assert got.shape == (ref_fb.size,), job.name
            error = np.max(np.abs(got.reshape(ref_fb.shape) - ref_fb)) / np.max(ref_fb)
            assert error < 1e-6, (job.name, error)
            continue
        width = job.n_mfcc if job.kind == "mfcc" else job.n_mels
        frames = inputs[k].reshape(-1, job.n_fft)
        got = got.reshape(len(frames), width)
        for frame, out in zip(frames, got, strict=True):
            ref = job.reference(frame)
            score = mel_errors(job, out, ref)
            worst[job.name] = max(worst.get(job.name, 0.0), score)
            assert score <= 1.0, (job.name, score, out, ref)
    # Print the worst errors (pytest -s) in units of the 1e-3 budget.
    for name, score in sorted(worst.items(), key=lambda item: -item[1]):
        print(f"{variant} {name}: {score * RELATIVE:.2e}")


def test_reference_against_scipy_and_known_values() -> None:
    rng = np.random.default_rng(7)
    for n in (256, 512, 1024):
        assert np.allclose(mel.hann_periodic(n), signal.get_window("hann", n), rtol=0, atol=1e-15)
        x = rng.standard_normal(n)
        _, _, z = signal.spectrogram(x, window="hann", nperseg=n, noverlap=0, detrend=False, scaling="spectrum",
                                     mode="complex")
        window_sum = signal.get_window("hann", n).sum()  # scaling="spectrum" divides by the window's sum
        assert np.allclose(mel.spectrum(x), np.abs(z[:, 0] * window_sum) ** 2, rtol=1e-10, atol=0)
        assert np.allclose(mel.spectrum(x, 1.0), np.abs(z[:, 0] * window_sum), rtol=1e-10, atol=0)
    for n_mels, n_mfcc in ((40, 13), (20, 20), (128, 30)):
        logmel = rng.standard_normal(n_mels)
        expected = sfft.dct(logmel, type=2, norm="ortho")[:n_mfcc]
        assert np.allclose(mel.dct_matrix(n_mfcc, n_mels) @ logmel, expected, rtol=0, atol=1e-12)
    # Mel scales: HTK 700 Hz = 2595 log10(2); Slaney: 15 mels at 1 kHz, +27 mels per factor 6.4.
    assert abs(float(mel.hz_to_mel(700.0, "htk")) - 2595 * math.log10(2)) < 1e-9
    assert abs(float(mel.hz_to_mel(1000.0, "htk")) - 1000.0) < 0.02  # the scale's design point
    assert abs(float(mel.hz_to_mel(1000.0, "slaney")) - 15.0) < 1e-12
    assert abs(float(mel.hz_to_mel(6400.0, "slaney")) - 42.0) < 1e-12
    assert abs(float(mel.hz_to_mel(500.0, "slaney")) - 7.5) < 1e-12
    f = np.array([0.0, 55.0, 999.0, 1000.0, 1001.0, 4000.0, 22050.0])
    for scale in ("htk", "slaney"):
        assert np.allclose(mel.mel_to_hz(mel.hz_to_mel(f, scale), scale), f, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("scale", ["htk", "slaney"])
def test_reference_filterbank_properties(scale: mel.Scale) -> None:
    fs, n_fft, n_mels = 16000, 1024, 40
    fb = mel.filterbank(fs, n_fft, n_mels, scale=scale)
    corners = mel.mel_corners(n_mels, 0.0, fs / 2, scale)
    freqs = np.arange(n_fft // 2 + 1) * fs / n_fft
    inside = (freqs > corners[1]) & (freqs < corners[-2])
    assert np.allclose(fb.sum(axis=0)[inside], 1.0, atol=1e-12)  # adjacent triangles sum to 1
    assert np.all(fb >= 0) and np.max(fb) <= 1.0
    # Slaney norm: every triangle has unit area in Hz (checked on bands spanning >= 8 bins).
    area = mel.filterbank(fs, n_fft, n_mels, scale=scale, norm="slaney").sum(axis=1) * fs / n_fft
    wide = (corners[2:] - corners[:-2]) * n_fft / fs >= 8
    assert np.allclose(area[wide], 1.0, atol=0.02)
    # A tone on the bin nearest a band's peak lands in that band.
    t = np.arange(n_fft) / fs
    for band in (2, 11, 25, 38):
        freq = round(corners[band + 1] * n_fft / fs) * fs / n_fft
        energies = mel.mel_frame(np.sin(2 * np.pi * freq * t), fs, n_mels, scale=scale)
        assert int(np.argmax(energies)) == band


@pytest.mark.skipif(importlib.util.find_spec("librosa") is None, reason="librosa is not installed (dev pin)")
def test_reference_matches_librosa() -> None:
    import librosa

    warnings.simplefilter("ignore", UserWarning)  # "Empty filters detected": 128 bands on 1024 bins at 48 kHz
    rng = np.random.default_rng(3)
    for htk in (True, False):
        scale: mel.Scale = "htk" if htk else "slaney"
        for norm in (None, "slaney"):
            for fs, n_fft, n_mels, fmin, fmax in ((16000, 512, 40, 0.0, None), (8000, 256, 20, 100.0, 3800.0),
                                                 (48000, 1024, 128, 20.0, 20000.0)):
                expected = librosa.filters.mel(sr=fs, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk,
                                               norm=norm, dtype=np.float64)
                got = mel.filterbank(fs, n_fft, n_mels, fmin, fmax, scale, norm)  # type: ignore[arg-type]
                assert np.max(np.abs(got - expected)) <= 1e-12 * np.max(expected), (scale, norm, n_fft)
        x = speech_like(512, 16000, rng)
        for power in (1.0, 2.0):
            spec = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=512, hop_length=512, center=False, n_mels=40,
                                                  htk=htk, norm=None, power=power, dtype=np.float64)[:, 0]
            ref = mel.mel_frame(x, 16000, 40, scale=scale, power=power)
            assert np.allclose(ref, spec, rtol=1e-6, atol=0), (scale, power)
            to_db = librosa.power_to_db if power == 2.0 else librosa.amplitude_to_db
            expected_db = to_db(spec, ref=1.0, top_db=None)
            assert np.allclose(mel.to_log(ref, "db", power), expected_db, rtol=0, atol=1e-5)
        mfcc = librosa.feature.mfcc(S=librosa.power_to_db(spec[:, None], top_db=None), n_mfcc=13)[:, 0]
        got_mfcc = mel.mfcc_frame(x, 16000, 40, 13, scale=scale)
        assert np.allclose(got_mfcc, mfcc, rtol=0, atol=1e-4 * np.max(np.abs(mfcc)))
