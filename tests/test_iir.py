"""emlearn_iir in the host firmware against scipy.signal.sosfilt.

Two filters (a 4th-order Butterworth lowpass, a 3-section A-weighting filter) run on noise and a
full-scale chirp, as float32 in place, int16 in place (rounded, saturated) and int16 -> float32,
fed in chunks of several sizes so the state must carry over between run() calls. One firmware
process per variant runs every case; data goes through files in a temporary directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from tinysense.host import run, sanitizer_report

VARIANTS = ("standard", "32")
N_SAMPLES = 4096
CHUNK_SIZES = (1, 7, 160, N_SAMPLES)  # the last one is one-shot filtering
TOLERANCE = 1e-4  # of full scale
INT16_FULL_SCALE = 32768.0

# Runs the jobs listed in argv[1]; one job per line:
#   coeffs_path n_coeffs input_path typecode n mode chunk output_path
MP_SCRIPT = """\
import array
import sys

import emlearn_iir


def load(path, typecode, n):
    with open(path, "rb") as f:
        data = f.read()
    values = array.array(typecode, data)
    assert len(values) == n, (path, len(values), n)
    return values


with open(sys.argv[1]) as jobs:
    for line in jobs:
        coeffs_path, n_coeffs, input_path, typecode, n, mode, chunk, output_path = line.split()
        n = int(n)
        chunk = int(chunk)
        iir = emlearn_iir.new(load(coeffs_path, "f", int(n_coeffs)))
        x = load(input_path, typecode, n)
        xs = memoryview(x)
        if mode == "inplace":
            for start in range(0, n, chunk):
                iir.run(xs[start:start + chunk])
            result = x
        else:
            result = array.array("f", bytes(4 * n))
            ys = memoryview(result)
            for start in range(0, n, chunk):
                iir.run(xs[start:start + chunk], ys[start:start + chunk])
        with open(output_path, "wb") as f:
            f.write(result)
print("done")
"""


def butterworth_lowpass() -> np.ndarray:
    return signal.butter(4, 1000.0, btype="lowpass", fs=16000.0, output="sos")


def a_weighting(fs: float = 48000.0) -> np.ndarray:
    """IEC 61672 A-weighting, bilinear transform of the analog prototype, 0 dB at 1 kHz: 3 sections."""
    f1, f2, f3, f4 = 20.598997, 107.65265, 737.86223, 12194.217
    zeros = np.zeros(4)
    poles = -2 * np.pi * np.array([f1, f1, f2, f3, f4, f4])
    z, p, k = signal.bilinear_zpk(zeros, poles, 1.0, fs)
    _, h = signal.freqz_zpk(z, p, k, worN=[1000.0], fs=fs)
    return signal.zpk2sos(z, p, k / abs(h[0]))


FILTERS = {"butter4": butterworth_lowpass(), "aweight": a_weighting()}


def float_signals(rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.arange(N_SAMPLES) / 16000.0
    return {
        "noise": rng.uniform(-1.0, 1.0, N_SAMPLES),
        "chirp": signal.chirp(t, f0=20.0, t1=t[-1], f1=8000.0, method="logarithmic"),
        # A full-scale step overshoots in the Butterworth lowpass: the int16 output must saturate.
        "step": np.where(t < 0.05, -1.0, 1.0),
    }


@dataclass
class Job:
    filter_name: str
    signal_name: str
    typecode: str  # "f" or "h"
    mode: str  # "inplace" or "out"
    chunk: int
    output: Path


def write_jobs(tmp: Path) -> tuple[list[Job], dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(1234)
    sos32 = {name: sos.astype(np.float32) for name, sos in FILTERS.items()}
    inputs: dict[str, np.ndarray] = {}
    for name, x in float_signals(rng).items():
        inputs[f"f_{name}"] = x.astype(np.float32)
        inputs[f"h_{name}"] = np.round(x * 32767.0).astype(np.int16)
    inputs["h_noise"] = rng.integers(-32768, 32768, N_SAMPLES).astype(np.int16)  # the whole int16 range
    for name, sos in sos32.items():
        sos.tofile(tmp / f"{name}.coeffs")
    for name, x in inputs.items():
        x.tofile(tmp / f"{name}.in")

    jobs: list[Job] = []
    lines: list[str] = []
    for filter_name, sos in sos32.items():
        for input_name, x in inputs.items():
            typecode, _, signal_name = input_name.partition("_")
            modes = ("inplace",) if typecode == "f" else ("inplace", "out")
            for mode in modes:
                for chunk in CHUNK_SIZES:
                    output = tmp / f"{filter_name}-{input_name}-{mode}-{chunk}.out"
                    jobs.append(Job(filter_name, signal_name, typecode, mode, chunk, output))
                    lines.append(f"{tmp / filter_name}.coeffs {sos.size} {tmp / input_name}.in {typecode} "
                                 f"{x.size} {mode} {chunk} {output}")
    (tmp / "jobs.txt").write_text("\n".join(lines) + "\n")
    return jobs, sos32, inputs


@pytest.mark.parametrize("variant", VARIANTS)
def test_iir_matches_sosfilt_in_chunks(variant: str, tmp_path: Path) -> None:
    jobs, sos32, inputs = write_jobs(tmp_path)
    script = tmp_path / "iir_jobs.py"
    script.write_text(MP_SCRIPT)
    proc = run([str(script), str(tmp_path / "jobs.txt")], variant=variant, heapsize="4M", timeout=120)
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, stderr
    assert sanitizer_report(stderr) is None
    assert proc.stdout.decode().strip() == "done"

    one_shot: dict[tuple[str, str, str, str], np.ndarray] = {}
    saturated = 0
    for job in jobs:
        key = (job.filter_name, job.signal_name, job.typecode, job.mode)
        x = inputs[f"{job.typecode}_{job.signal_name}"].astype(np.float64)
        # Reference: float64 filtering with the float32 coefficients the firmware was given.
        reference = signal.sosfilt(sos32[job.filter_name].astype(np.float64), x)
        if job.typecode == "f":
            got = np.fromfile(job.output, dtype=np.float32).astype(np.float64)
            full_scale = 1.0
        elif job.mode == "inplace":
            got = np.fromfile(job.output, dtype=np.int16).astype(np.float64)
            saturated += int(np.sum(np.abs(reference) > 32767.5))
            reference = np.clip(np.round(reference), -32768, 32767)
            full_scale = INT16_FULL_SCALE
        else:
            got = np.fromfile(job.output, dtype=np.float32).astype(np.float64)
            full_scale = INT16_FULL_SCALE
        assert got.shape == reference.shape, job
        error = np.max(np.abs(got - reference)) / full_scale
        assert error <= TOLERANCE, f"{job}: max error {error:.3g} of full scale"
        if job.chunk == N_SAMPLES:
            one_shot[key] = got
    assert saturated > 0, "no int16 case drove the output past the int16 range"
    # Chunked filtering equals one-shot filtering: bit for bit with SSE float arithmetic; the -m32 build
    # uses x87 excess precision inside a call, so a chunk boundary (state stored as float) rounds differently.
    limit = 1e-5 if variant == "32" else 0.0
    for job in jobs:
        key = (job.filter_name, job.signal_name, job.typecode, job.mode)
        got = np.fromfile(job.output, dtype=np.int16 if (job.typecode, job.mode) == ("h", "inplace") else np.float32)
        scale = 1.0 if job.typecode == "f" else INT16_FULL_SCALE
        difference = np.max(np.abs(got.astype(np.float64) - one_shot[key])) / scale
        assert difference <= limit, f"{job}: chunked output differs from one-shot by {difference:.3g}"

