"""emlearn_fft in the host firmware against numpy.fft.fft / numpy.fft.rfft.

For every size n = 2 .. 4096 (and the largest supported, 65536) the firmware runs the complex
transform (FFT.run) on random complex data and the real transform (FFT.rfft) on random float32
and int16 data. One firmware process per variant runs every case; data goes through files in a
temporary directory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinysense.host import run, sanitizer_report

VARIANTS = ("standard", "32")
SIZES = tuple(2**k for k in range(1, 13)) + (65536,)
MAX_ERROR_PER_N = 1e-4  # max abs error <= 1e-4 * n * max|x|
MAX_RELATIVE_RMS = 1e-6  # rms error / rms of the spectrum: float32 rounding, not table or algorithm error

# Runs the jobs listed in argv[1]; one job per line:  kind n typecode input_path output_path
#   kind "fft": input = real then imag (2n float32), output = the same, transformed
#   kind "rfft": input = n samples of `typecode`, output = n/2+1 real then n/2+1 imag float32
MP_SCRIPT = """\
import array
import sys

import emlearn_fft

with open(sys.argv[1]) as jobs:
    for line in jobs:
        kind, n, typecode, input_path, output_path = line.split()
        n = int(n)
        fft = emlearn_fft.FFT(n)
        emlearn_fft.fill(fft, n)  # the emlearn-micropython call sequence; a check here
        with open(input_path, "rb") as f:
            data = f.read()
        if kind == "fft":
            real = array.array("f", data[:4 * n])
            imag = array.array("f", data[4 * n:])
            fft.run(real, imag)
        else:
            x = array.array(typecode, data)
            real = array.array("f", bytes(4 * (n // 2 + 1)))
            imag = array.array("f", bytes(4 * (n // 2 + 1)))
            fft.rfft(x, real, imag)
        with open(output_path, "wb") as f:
            f.write(real)
            f.write(imag)
        fft = real = imag = data = x = None
print("done")
"""


def check(name: str, got: np.ndarray, expected: np.ndarray, n: int, max_abs_x: float) -> None:
    error = np.max(np.abs(got - expected))
    assert error <= MAX_ERROR_PER_N * n * max_abs_x, f"{name}: max error {error:.3g}"
    relative_rms = np.sqrt(np.mean(np.abs(got - expected) ** 2) / np.mean(np.abs(expected) ** 2))
    assert relative_rms <= MAX_RELATIVE_RMS, f"{name}: relative rms error {relative_rms:.3g}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_fft_matches_numpy(variant: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(99)
    inputs: dict[str, np.ndarray] = {}
    lines: list[str] = []
    for n in SIZES:
        complex_x = (rng.uniform(-1, 1, n) + 1j * rng.uniform(-1, 1, n)).astype(np.complex64)
        inputs[f"fft-{n}"] = complex_x
        np.concatenate([complex_x.real, complex_x.imag]).astype(np.float32).tofile(tmp_path / f"fft-{n}.in")
        lines.append(f"fft {n} f {tmp_path}/fft-{n}.in {tmp_path}/fft-{n}.out")
        for typecode, x in (("f", rng.uniform(-1, 1, n).astype(np.float32)),
                            ("h", rng.integers(-32768, 32768, n).astype(np.int16))):
            name = f"rfft{typecode}-{n}"
            inputs[name] = x
            x.tofile(tmp_path / f"{name}.in")
            lines.append(f"rfft {n} {typecode} {tmp_path}/{name}.in {tmp_path}/{name}.out")
    (tmp_path / "jobs.txt").write_text("\n".join(lines) + "\n")
    script = tmp_path / "fft_jobs.py"
    script.write_text(MP_SCRIPT)

    proc = run([str(script), str(tmp_path / "jobs.txt")], variant=variant, heapsize="8M", timeout=120)
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, stderr
    assert sanitizer_report(stderr) is None
    assert proc.stdout.decode().strip() == "done"

    for name, x in inputs.items():
        n = x.size
        out = np.fromfile(tmp_path / f"{name}.out", dtype=np.float32).astype(np.float64)
        bins = n if name.startswith("fft-") else n // 2 + 1
        assert out.size == 2 * bins, name
        got = out[:bins] + 1j * out[bins:]
        x64 = x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)
        expected = np.fft.fft(x64) if name.startswith("fft-") else np.fft.rfft(x64)
        check(name, got, expected, n, float(np.max(np.abs(x64))))
