"""emlearn_arrayutils.linear_map in the host firmware against a NumPy float32 reference.

All 36 input/output typecode pairs, on random data with several kinds of ranges, run in one firmware
process per variant: the cases go in as one binary file, the outputs come back as another. The reference
is the documented formula (usermods/emlearn_arrayutils/arrayutils.h) in float32, operation by operation:

    y = ((x - in_min) * (out_max - out_min)) / (in_max - in_min) + out_min

clamped to the output range and, for integer outputs, the type's range; integers truncate toward zero,
nan goes to the low clamp end (integer outputs) or stays nan ('f'). Every step is one correctly rounded
float32 operation on both sides, so the outputs must be equal bit for bit: integer outputs and 'f' alike.

The last tests check how usermods/micropython.cmake (the esp32 build's module list) finds the emlearn headers.
"""

from __future__ import annotations

import itertools
import os
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tinysense.host import run, sanitizer_report
from tinysense.paths import HOST_VARIANTS, REPO

TYPECODES = "bBhHif"
DTYPES = {"b": np.int8, "B": np.uint8, "h": np.int16, "H": np.uint16, "i": np.int32, "f": np.float32}
HEADER = struct.Struct("<BBI4f")  # in typecode, out typecode, length, in_min, in_max, out_min, out_max
LENGTH = 257  # several 32-element blocks and a remainder
SEED = 20240607

# Reads the cases, maps each one, writes the outputs back to back.
RUNNER = """
import array, struct, sys
from emlearn_arrayutils import linear_map

SIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "f": 4}
with open(sys.argv[1], "rb") as src, open(sys.argv[2], "wb") as dst:
    count = struct.unpack("<I", src.read(4))[0]
    for _ in range(count):
        in_t, out_t, n, in_min, in_max, out_min, out_max = struct.unpack("<BBI4f", src.read(HEADER_SIZE))
        in_t, out_t = chr(in_t), chr(out_t)
        inp = array.array(in_t, src.read(n * SIZES[in_t]))
        out = array.array(out_t, bytes(n * SIZES[out_t]))
        linear_map(inp, out, in_min, in_max, out_min, out_max)
        dst.write(out)
print("mapped", count)
""".replace("HEADER_SIZE", str(HEADER.size))


@dataclass
class Case:
    in_t: str
    out_t: str
    kind: str
    x: np.ndarray
    in_min: np.float32
    in_max: np.float32
    out_min: np.float32
    out_max: np.float32

    def __str__(self) -> str:
        return (f"{self.in_t}->{self.out_t} {self.kind}: [{self.in_min!r}, {self.in_max!r}] -> "
                f"[{self.out_min!r}, {self.out_max!r}]")


def type_range(typecode: str) -> tuple[float, float]:
    """The natural value range of a typecode: the integer type's, or a sensor-like span for 'f'."""
    if typecode == "f":
        return -1000.0, 1000.0
    info = np.iinfo(DTYPES[typecode])
    return float(info.min), float(info.max)


def random_input(rng: np.random.Generator, typecode: str, in_min: float, in_max: float) -> np.ndarray:
    if typecode != "f":
        info = np.iinfo(DTYPES[typecode])
        return rng.integers(info.min, info.max, size=LENGTH, endpoint=True).astype(DTYPES[typecode])
    lo, hi = min(in_min, in_max), max(in_min, in_max)
    margin = (hi - lo) / 4
    x = rng.uniform(lo - margin, hi + margin, size=LENGTH).astype(np.float32)
    specials = [in_min, in_max, 0.0, -0.0, np.nan, np.inf, -np.inf, 1e30, -1e30]
    x[rng.choice(LENGTH, size=len(specials), replace=False)] = specials
    return x


def make_cases() -> list[Case]:
    rng = np.random.default_rng(SEED)
    f32 = np.float32
    cases = []
    for in_t, out_t in itertools.product(TYPECODES, TYPECODES):
        in_lo, in_hi = type_range(in_t)
        out_lo, out_hi = type_range(out_t)
        if out_t == "f":
            out_lo, out_hi = -1.0, 1.0
        # Full type range to full type range with integer bounds: the usual conversion, often exact.
        ranges = {"full": (in_lo, in_hi, out_lo, out_hi)}
        # A random sub-range of the input to one of the output: most inputs fall outside and clamp.
        a, b = sorted(rng.uniform(in_lo, in_hi, size=2))
        c, d = sorted(rng.uniform(out_lo, out_hi, size=2))
        ranges["sub"] = (a, b, c, d)
        # Both ranges reversed.
        ranges["reversed"] = (b, a, d, c)
        # An output range twice as wide as the output type: the type's range clamps.
        span = out_hi - out_lo
        ranges["beyond"] = (in_lo, in_hi, out_lo - span / 2, out_hi + span / 2)
        for kind, (a, b, c, d) in ranges.items():
            a, b, c, d = f32(a), f32(b), f32(c), f32(d)
            cases.append(Case(in_t, out_t, kind, random_input(rng, in_t, float(a), float(b)), a, b, c, d))
    return cases


def reference(case: Case) -> np.ndarray:
    """The documented linear_map in NumPy float32."""
    f32 = np.float32
    x = case.x.astype(np.float32)
    in_span = f32(case.in_max - case.in_min)
    out_span = f32(case.out_max - case.out_min)
    with np.errstate(invalid="ignore", over="ignore"):
        y = ((x - case.in_min) * out_span) / in_span + case.out_min
    assert y.dtype == np.float32
    lo, hi = min(case.out_min, case.out_max), max(case.out_min, case.out_max)
    if case.out_t == "f":
        return np.where(y < lo, lo, np.where(y > hi, hi, y)).astype(np.float32)
    if case.out_t == "i":
        type_lo, type_hi = f32(-(2.0**31)), f32(2.0**31)  # float32(INT32_MAX) is 2**31
    else:
        info = np.iinfo(DTYPES[case.out_t])
        type_lo, type_hi = f32(info.min), f32(info.max)
    lo, hi = np.clip(lo, type_lo, type_hi), np.clip(hi, type_lo, type_hi)
    y = np.where(y >= lo, y, lo)  # nan -> lo
    y = np.minimum(y, hi)
    as_int = np.trunc(y).astype(np.int64)
    if case.out_t == "i":
        as_int = np.where(y >= f32(2.0**31), 2**31 - 1, as_int)
    return as_int.astype(DTYPES[case.out_t])


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return make_cases()


def encode(cases: list[Case]) -> bytes:
    parts = [struct.pack("<I", len(cases))]
    for case in cases:
        parts.append(HEADER.pack(ord(case.in_t), ord(case.out_t), len(case.x), case.in_min, case.in_max,
                                 case.out_min, case.out_max))
        parts.append(case.x.astype(np.dtype(DTYPES[case.in_t]).newbyteorder("<")).tobytes())
    return b"".join(parts)


def run_checked(variant: str, args: list[str]) -> str:
    proc = run(args, variant=variant, timeout=300)
    stderr = proc.stderr.decode(errors="replace")
    report = sanitizer_report(stderr)
    assert report is None, f"sanitizer report:\n{report}"
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{stderr}"
    return proc.stdout.decode(errors="replace")


def test_reference_cases_cover_all_pairs(cases):
    pairs = {(case.in_t, case.out_t) for case in cases}
    assert len(pairs) == 36
    # the cases exercise clamping at both ends, and nan/inf for float inputs
    assert any(np.isnan(case.x).any() for case in cases if case.in_t == "f")
    for out_t in TYPECODES.replace("f", ""):
        outs = np.concatenate([reference(case) for case in cases if case.out_t == out_t])
        assert (outs.min(), outs.max()) == type_range(out_t), out_t


@pytest.mark.parametrize("variant", HOST_VARIANTS)
def test_all_typecode_pairs_match_numpy(variant, cases, tmp_path):
    script = tmp_path / "map_cases.py"
    script.write_text(RUNNER)
    src, dst = tmp_path / "cases.bin", tmp_path / "mapped.bin"
    src.write_bytes(encode(cases))
    out = run_checked(variant, [str(script), str(src), str(dst)])
    assert f"mapped {len(cases)}" in out
    data = dst.read_bytes()
    offset = 0
    failures = []
    for case in cases:
        dtype = np.dtype(DTYPES[case.out_t]).newbyteorder("<")
        size = len(case.x) * dtype.itemsize
        got = np.frombuffer(data, dtype=dtype, count=len(case.x), offset=offset)
        offset += size
        want = reference(case)
        # exact: nan equals nan, and (as in ==) 0.0 equals -0.0
        equal = got == want
        if case.out_t == "f":
            equal |= np.isnan(got) & np.isnan(want)
        if not equal.all():
            bad = np.flatnonzero(~equal)
            examples = ", ".join(f"x={case.x[i]!r} got {got[i]!r} want {want[i]!r}" for i in bad[:5])
            failures.append(f"{case}: {len(bad)} differ, e.g. {examples}")
    assert offset == len(data)
    assert not failures, "\n".join(failures)


# Error cases: (name, statement, exception type, text the message must hold).
ERROR_CASES = [
    ("length", "linear_map(array.array('h', [0] * 5), array.array('f', [0] * 4), 0, 1, 0, 1)",
     "ValueError", "same length, got 5 and 4"),
    ("in_typecode", "linear_map(array.array('d', [1]), array.array('f', [0]), 0, 1, 0, 1)",
     "ValueError", "inp: unsupported array typecode 'd'"),
    ("out_typecode", "linear_map(array.array('f', [1]), array.array('q', [0]), 0, 1, 0, 1)",
     "ValueError", "out: unsupported array typecode 'q'"),
    ("long_typecode", "linear_map(array.array('l', [1]), array.array('f', [0]), 0, 1, 0, 1)",
     "ValueError", "'l'"),
    ("empty_range", "linear_map(array.array('h', [1]), array.array('f', [0]), 3, 3, 0, 1)",
     "ValueError", "in_min and in_max must differ"),
    ("not_finite", "linear_map(array.array('h', [1]), array.array('f', [0]), 0, 1, 0, float('inf'))",
     "ValueError", "finite"),
    ("too_wide", "linear_map(array.array('h', [1]), array.array('f', [0]), -3e38, 3e38, 0, 1)",
     "ValueError", "too wide"),
    ("not_an_array", "linear_map([1, 2], array.array('f', [0, 0]), 0, 1, 0, 1)",
     "TypeError", "inp must be an array"),
    ("read_only_out", "linear_map(array.array('f', [0]), b'1234', 0, 1, 0, 1)",
     "TypeError", "out must be a writable array"),
    ("bad_number", "linear_map(array.array('f', [0]), array.array('f', [0]), 0, 1, None, 1)",
     "TypeError", ""),
    ("arg_count", "linear_map(array.array('f', [0]), array.array('f', [0]))", "TypeError", ""),
]

ERROR_RUNNER = """
import array
from emlearn_arrayutils import linear_map
for name, statement in CASES:
    try:
        exec(statement, {"array": array, "linear_map": linear_map})
        print("@@", name, "no exception")
    except Exception as e:
        print("@@", name, type(e).__name__ + ":", e)
print("@@ end")
"""


@pytest.mark.parametrize("variant", HOST_VARIANTS)
def test_errors_raise_python_exceptions_without_sanitizer_reports(variant, tmp_path):
    """In the sanitize build every bad call must end in its Python exception, not in a report."""
    script = tmp_path / "errors.py"
    script.write_text(ERROR_RUNNER.replace("CASES", repr([(name, statement) for name, statement, _, _ in ERROR_CASES])))
    out = run_checked(variant, [str(script)])
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("@@ ")}
    assert "end" in lines, out
    for name, _, exc_type, text in ERROR_CASES:
        line = lines.get(name, "")
        assert f"@@ {name} {exc_type}:" in line and text in line, f"{name}: {line or 'no output'}"


# usermods/micropython.cmake (the esp32 build's module list) must find the emlearn headers the way the
# Docker/ESP-IDF build gets them: -DEMLEARN_INCLUDE_DIR, else $EMLEARN_INCLUDE_DIR, else the emlearn pip
# package of the build's Python; and stop with a message saying what to do when none works.
EMLEARN_PROBE = """
cmake_minimum_required(VERSION 3.12)
project(emlearn_probe NONE)
add_library(usermod INTERFACE)
include(USERMODS/micropython.cmake)
file(WRITE ${CMAKE_BINARY_DIR}/emlearn_dir.txt "${EMLEARN_INCLUDE_DIR}")
"""


def emlearn_headers() -> Path:
    pin = next(line.split() for line in (REPO / "sources.lock").read_text().splitlines()
               if line.startswith("emlearn "))
    headers = REPO / ".cache" / f"emlearn-{pin[2]}" / "emlearn"
    if not (headers / "eml_common.h").exists():
        pytest.fail(f"no emlearn headers in {headers}: run make host (it fetches them)")
    return headers


@pytest.fixture
def probe(tmp_path):
    """Configure a project that includes usermods/micropython.cmake; returns (result, chosen dir)."""
    (tmp_path / "CMakeLists.txt").write_text(EMLEARN_PROBE.replace("USERMODS", str(REPO / "usermods")))
    env = {key: value for key, value in os.environ.items()
           if key not in ("EMLEARN_INCLUDE_DIR", "PYTHONPATH", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}

    def configure(*defines: str, env_dir: Path | None = None, pythonpath: Path | None = None):
        build = tmp_path / "build"
        shutil.rmtree(build, ignore_errors=True)
        run_env = dict(env)
        if env_dir is not None:
            run_env["EMLEARN_INCLUDE_DIR"] = str(env_dir)
        if pythonpath is not None:
            run_env["PYTHONPATH"] = str(pythonpath)
        proc = subprocess.run(["cmake", "-S", str(tmp_path), "-B", str(build), *defines], env=run_env,
                              capture_output=True, text=True, timeout=120)
        chosen = build / "emlearn_dir.txt"
        return proc, (chosen.read_text() if chosen.exists() else None)

    return configure


def header_copy(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(emlearn_headers(), folder)
    return folder


def test_usermods_cmake_takes_emlearn_dir_from_cmake_then_environment(probe, tmp_path):
    from_define, from_env = header_copy(tmp_path, "define"), header_copy(tmp_path, "env")
    proc, chosen = probe(f"-DEMLEARN_INCLUDE_DIR={from_define}", env_dir=from_env)
    assert proc.returncode == 0, proc.stderr
    assert chosen == str(from_define)
    proc, chosen = probe(env_dir=from_env)
    assert proc.returncode == 0, proc.stderr
    assert chosen == str(from_env)


def test_usermods_cmake_asks_the_emlearn_package_of_the_build_python(probe, tmp_path):
    headers = header_copy(tmp_path, "site")
    package = tmp_path / "pkgs" / "emlearn"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f"includedir = {str(headers)!r}\n")
    proc, chosen = probe(f"-DPython3_EXECUTABLE={sys.executable}", pythonpath=package.parent)
    assert proc.returncode == 0, proc.stderr
    assert chosen == str(headers)


@pytest.mark.parametrize("how", ["no-emlearn-package", "folder-without-headers"])
def test_usermods_cmake_says_what_to_do_without_emlearn(probe, tmp_path, how):
    if how == "no-emlearn-package":
        proc, _ = probe("-DPython3_EXECUTABLE=/bin/false")
    else:
        (tmp_path / "empty").mkdir()
        proc, _ = probe(env_dir=tmp_path / "empty")
    assert proc.returncode != 0
    message = " ".join(proc.stderr.split())
    assert "emlearn C headers were not found" in message
    assert "-DEMLEARN_INCLUDE_DIR" in message and "pip install emlearn" in message
