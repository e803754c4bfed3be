"""tinysense_image (C, in the host firmware) against NumPy references, bit for bit.

- rgb565_to_gray: every one of the 65536 RGB565 values, both byte orders (BT.601 integer luma, see image.h).
- downscale_area: exact area weights (an independent weight-matrix formulation) for integer, non-integer and
  upscaling ratios, incl. 320x240 -> 32x32, 96x96 -> 28x28, 64x48 -> 30x20; rounding half up.
- normalize: min-max and mean/std (integer square root) on random, low-contrast, constant and two-valued images.
- preprocess: equals gray -> downscale -> normalize.
One firmware process per variant (standard, 32, and sanitize for out-of-bounds reads at the edge sizes): the
inputs and outputs go through binary files.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tinysense import host

RUNNER = """
import sys
import tinysense_image as ti

def read(path):
    with open(path, "rb") as f:
        return f.read()

with open(sys.argv[1]) as f:
    lines = f.read().split("\\n")
done = 0
for line in lines:
    if not line:
        continue
    parts = line.split()
    op, out, inp = parts[0], parts[1], parts[2]
    p = [int(x) for x in parts[3:]]
    src = read(inp)
    if op == "gray":
        dst = bytearray(p[0] * p[1])
        ti.rgb565_to_gray(src, dst, p[0], p[1], byteswap=bool(p[2]))
    elif op == "down":
        dst = bytearray(p[2] * p[3])
        ti.downscale_area(src, p[0], p[1], dst, p[2], p[3])
    elif op == "norm":
        dst = bytearray(len(src))
        ti.normalize(src, dst, mode=("minmax", "mean_std")[p[0]], mean=p[1], std=p[2])
    elif op == "pre":
        dst = bytearray(p[3] * p[4])
        ti.preprocess(src, p[0], p[1], p[2], dst, p[3], p[4], byteswap=bool(p[5]),
                      normalize=(None, "minmax", "mean_std")[p[6]], mean=p[7], std=p[8])
    with open(out, "wb") as f:
        f.write(dst)
    done += 1
print("done", done)
"""

RGB565, GRAYSCALE = 0, 3


# ---- NumPy references (the formulas of usermods/tinysense_image/image.h) ----

def ref_gray(src: bytes, byteswap: bool = False) -> np.ndarray:
    b = np.frombuffer(src, np.uint8).astype(np.uint32).reshape(-1, 2)
    v = (b[:, 1] << 8 | b[:, 0]) if byteswap else (b[:, 0] << 8 | b[:, 1])
    r5, g6, b5 = v >> 11 & 31, v >> 5 & 63, v & 31
    r8, g8, b8 = r5 << 3 | r5 >> 2, g6 << 2 | g6 >> 4, b5 << 3 | b5 >> 2
    return ((77 * r8 + 150 * g8 + 29 * b8 + 128) >> 8).astype(np.uint8)


def area_weights(src: int, dst: int) -> np.ndarray:
    """dst x src integer weights: the overlap of [x*dst, (x+1)*dst) with [i*src, (i+1)*src)."""
    i = np.arange(dst)[:, None].astype(np.int64)
    x = np.arange(src)[None, :].astype(np.int64)
    w = np.minimum((x + 1) * dst, (i + 1) * src) - np.maximum(x * dst, i * src)
    return np.maximum(w, 0)


def ref_downscale(img: np.ndarray, dst_w: int, dst_h: int) -> np.ndarray:
    src_h, src_w = img.shape
    wy, wx = area_weights(src_h, dst_h), area_weights(src_w, dst_w)
    assert (wy.sum(axis=1) == src_h).all() and (wx.sum(axis=1) == src_w).all()
    total = src_w * src_h
    sums = wy @ img.astype(np.int64) @ wx.T
    return ((sums + total // 2) // total).astype(np.uint8)


def ref_minmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    lo, hi = int(x.min()), int(x.max())
    if lo == hi:
        return np.zeros(x.shape, np.uint8)
    return ((510 * (x - lo) + (hi - lo)) // (2 * (hi - lo))).astype(np.uint8)


def ref_mean_std(x: np.ndarray, mean: int, std: int) -> np.ndarray:
    n, s1, s2 = x.size, int(x.astype(np.int64).sum()), int((x.astype(np.int64) ** 2).sum())
    s = math.isqrt(n * s2 - s1 * s1)
    if s == 0:
        return np.full(x.shape, mean, np.uint8)
    y = mean + (2 * std * (n * x.astype(np.int64) - s1) + s) // (2 * s)
    return np.clip(y, 0, 255).astype(np.uint8)


# ---- cases ----

DOWN_SIZES = [(320, 240, 32, 32), (96, 96, 28, 28), (64, 48, 30, 20), (320, 240, 96, 96), (7, 5, 3, 2),
              (5, 3, 7, 4), (1, 1, 1, 1), (13, 1, 4, 1), (1, 13, 1, 5), (100, 100, 33, 17), (31, 29, 31, 29),
              (2, 2, 1, 1), (640, 480, 1, 1), (160, 120, 96, 96)]


class Cases:
    def __init__(self, d: Path) -> None:
        self.d = d
        self.lines: list[str] = []
        self.expect: list[tuple[str, np.ndarray]] = []

    def add(self, op: str, src: bytes, params: list[int], expect: np.ndarray, name: str) -> None:
        k = len(self.lines)
        inp, out = self.d / f"in{k}.bin", self.d / f"out{k}.bin"
        inp.write_bytes(src)
        self.lines.append(" ".join([op, str(out), str(inp)] + [str(p) for p in params]))
        self.expect.append((name, expect.reshape(-1)))

    def run(self, variant: str) -> None:
        (self.d / "runner.py").write_text(RUNNER)
        (self.d / "cases.txt").write_text("\n".join(self.lines) + "\n")
        proc = host.run([str(self.d / "runner.py"), str(self.d / "cases.txt")], variant=variant, timeout=120)
        assert host.sanitizer_report(proc.stderr.decode(errors="replace")) is None, proc.stderr.decode()
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout.split() == [b"done", str(len(self.lines)).encode()], proc.stdout
        for k, (name, expect) in enumerate(self.expect):
            got = np.frombuffer((self.d / f"out{k}.bin").read_bytes(), np.uint8)
            assert got.shape == expect.shape, name
            bad = np.flatnonzero(got != expect)
            assert bad.size == 0, f"{name}: {bad.size} differ, first at {bad[0]}: {got[bad[0]]} != {expect[bad[0]]}"


def build_cases(d: Path) -> Cases:
    rng = np.random.default_rng(20260501)
    c = Cases(d)
    # every RGB565 value, as a 256x256 frame, in both byte orders
    values = np.arange(65536, dtype=np.uint16)
    be, le = values.astype(">u2").tobytes(), values.astype("<u2").tobytes()
    c.add("gray", be, [256, 256, 0], ref_gray(be), "gray all values big-endian")
    c.add("gray", le, [256, 256, 1], ref_gray(be), "gray all values byteswap")
    frame = rng.integers(0, 256, 2 * 320 * 240, dtype=np.uint8).tobytes()
    c.add("gray", frame, [320, 240, 0], ref_gray(frame), "gray 320x240")
    for sw, sh, dw, dh in DOWN_SIZES:
        img = rng.integers(0, 256, (sh, sw), dtype=np.uint8)
        c.add("down", img.tobytes(), [sw, sh, dw, dh], ref_downscale(img, dw, dh), f"down {sw}x{sh}->{dw}x{dh}")
    white = np.full((480, 640), 255, np.uint8)  # the largest sums: must not overflow
    c.add("down", white.tobytes(), [640, 480, 3, 7], np.full((7, 3), 255, np.uint8), "down white 640x480")
    smooth = (np.add.outer(np.arange(240), np.arange(320)) % 256).astype(np.uint8)
    c.add("down", smooth.tobytes(), [320, 240, 30, 20], ref_downscale(smooth, 30, 20), "down ramp 320x240->30x20")
    images = {
        "random": rng.integers(0, 256, 1024, dtype=np.uint8),
        "low contrast": rng.integers(100, 111, 1024, dtype=np.uint8),
        "normal": np.clip(rng.normal(90, 20, 96 * 96), 0, 255).astype(np.uint8),
        "constant": np.full(784, 37, np.uint8),
        "two values": np.array([3, 250] * 50, np.uint8),
        "single": np.array([200], np.uint8),
    }
    for name, img in images.items():
        c.add("norm", img.tobytes(), [0, 128, 64], ref_minmax(img), f"minmax {name}")
        for mean, std in [(128, 64), (100, 30), (0, 1), (255, 255)]:
            c.add("norm", img.tobytes(), [1, mean, std], ref_mean_std(img, mean, std), f"mean_std {name} {mean},{std}")
    for byteswap in (0, 1):
        for norm, (mean, std) in [(0, (128, 64)), (1, (128, 64)), (2, (120, 50))]:
            gray = ref_downscale(ref_gray(frame, bool(byteswap)).reshape(240, 320), 32, 32)
            expect = gray if norm == 0 else ref_minmax(gray) if norm == 1 else ref_mean_std(gray, mean, std)
            c.add("pre", frame, [RGB565, 320, 240, 32, 32, byteswap, norm, mean, std], expect,
                  f"preprocess rgb565 swap={byteswap} norm={norm}")
    img = rng.integers(0, 256, (48, 64), dtype=np.uint8)
    c.add("pre", img.tobytes(), [GRAYSCALE, 64, 48, 30, 20, 0, 0, 128, 64], ref_downscale(img, 30, 20),
          "preprocess gray 64x48->30x20")
    return c


@pytest.mark.parametrize("variant", ["standard", "32", "sanitize"])
def test_c_equals_numpy_reference(variant: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        build_cases(Path(tmp)).run(variant)


def test_reference_properties() -> None:
    """The references themselves: BT.601 within 1 of the float formula, integer ratios are block means,
    mean/std output has the requested statistics."""
    values = np.arange(65536, dtype=np.uint16)
    y = ref_gray(values.astype(">u2").tobytes()).astype(np.int64)
    r5, g6, b5 = values >> 11 & 31, values >> 5 & 63, values & 31
    r8, g8, b8 = r5 << 3 | r5 >> 2, g6 << 2 | g6 >> 4, b5 << 3 | b5 >> 2
    exact = 0.299 * r8 + 0.587 * g8 + 0.114 * b8  # BT.601 in float on the same 8-bit channels
    assert np.abs(y - exact).max() < 1.0
    assert y[0xFFFF] == 255 and y[0] == 0
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (240, 320), dtype=np.uint8)
    blocks = img.reshape(24, 10, 32, 10).astype(np.int64).sum(axis=(1, 3))
    assert (ref_downscale(img, 32, 24) == (blocks + 50) // 100).all()
    x = np.clip(rng.normal(90, 20, 9216), 0, 255).astype(np.uint8)
    out = ref_mean_std(x, 128, 40).astype(np.float64)
    assert abs(out.mean() - 128) < 0.6 and abs(out.std() - 40) < 0.6
    assert ref_minmax(x).min() == 0 and ref_minmax(x).max() == 255
