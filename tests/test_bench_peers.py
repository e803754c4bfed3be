"""The benchmarks' plain-MicroPython peers compute what they claim, so the speed-ups compare like with like:
bench/mp/pyfft.py (the FFT peer of the FFT, mel and features benchmarks) against numpy.fft, in the host firmware."""

from __future__ import annotations

import numpy as np
import pytest

from tinysense import host
from tinysense.paths import REPO

SCRIPT = """
import array, math, sys
from pyfft import fft
n, stride = int(sys.argv[1]), int(sys.argv[2])
x = [math.sin(0.05 * i) + 0.25 * math.sin(0.9 * i) + (i % 7) * 0.01 for i in range(n)]
table = n * stride
cos_t = array.array("f", (math.cos(2 * math.pi * k / table) for k in range(table // 2)))
sin_t = array.array("f", (math.sin(2 * math.pi * k / table) for k in range(table // 2)))
re = array.array("f", x)
im = array.array("f", (0.5 * v for v in x))
fft(re, im, n, cos_t, sin_t, stride)
print(" ".join(repr(v) for v in re))
print(" ".join(repr(v) for v in im))
"""


@pytest.mark.parametrize(("n", "stride"), [(8, 1), (256, 1), (1024, 1), (256, 2)])
def test_python_fft_peer_matches_numpy(n: int, stride: int, tmp_path) -> None:
    script = tmp_path / "peer.py"
    script.write_text(SCRIPT)
    proc = host.run([str(script), str(n), str(stride)], path=[REPO / "bench" / "mp"])
    assert proc.returncode == 0, proc.stderr.decode()
    re_line, im_line = proc.stdout.decode().split("\n")[:2]
    got = np.array(re_line.split(), dtype=float) + 1j * np.array(im_line.split(), dtype=float)
    i = np.arange(n)
    x = np.sin(0.05 * i) + 0.25 * np.sin(0.9 * i) + (i % 7) * 0.01
    want = np.fft.fft(x + 0.5j * x)
    np.testing.assert_allclose(got, want, atol=1e-4 * n)
