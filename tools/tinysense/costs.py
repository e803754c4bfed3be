"""What a model costs on the device: flash bytes, RAM bytes and instructions per inference.

* flash: the size of the binary model file (trees.convert).
* RAM: the buffers emlearn_trees.new() allocates for the model's capacity (trees.capacity), laid out as in
  usermods/emlearn_trees/mod_emlearn_trees.c, plus the model object.
* instructions: counted by callgrind in the host firmware (as bench/run.py does): the difference between a run
  that loads the model and predicts N rows and one that only loads it, divided by N. It includes the
  MicroPython call of predict() as the app makes it. None when valgrind is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinysense import host, trees

NODE_BYTES = 8  # trees_node_t: u16 feature, i16 threshold, i16 left, i16 right
OBJECT_BYTES = 128  # the emlearn_trees object (trees_model_t + pointers), rounded up to GC blocks


@dataclass(frozen=True)
class Cost:
    flash_bytes: int
    ram_bytes: int
    instructions: float | None  # per inference, or None (valgrind missing)


def ram_bytes(model: bytes) -> int:
    """Bytes emlearn_trees.new() allocates for this model's capacity (what the device app asks for)."""
    c = trees.capacity(model)
    return (4 * c.max_trees + NODE_BYTES * c.max_nodes + 4 * c.max_leaves + 4 * c.max_nodes
            + 2 * (c.max_features + 1) + 4 * c.max_classes + 2 * c.max_features + OBJECT_BYTES)


PREDICT_LOOP = """\
import sys, array, emlearn_trees
model_path, x_path, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
nt, nn, nl, nf, nc = [int(a) for a in sys.argv[4:9]]
m = emlearn_trees.new(nt, nn, nl, max_features=nf, max_classes=nc)
with open(model_path, 'rb') as f:
    emlearn_trees.load_model(m, f)
with open(x_path, 'rb') as f:
    X = array.array('f', f.read())
nf = m.features()
mv = memoryview(X)
rows = len(X) // nf
rows_mv = [mv[i * nf:(i + 1) * nf] for i in range(rows)]
for i in range(calls):
    m.predict(rows_mv[i % rows])
"""

FEATURES_LOOP = """\
import sys, array, tinysense_features
x_path = sys.argv[1]
calls, n, axes, spectral, magnitude = [int(a) for a in sys.argv[2:7]]
fs = float(sys.argv[7])
f = tinysense_features.Features(n, axes, samplerate=fs, spectral=bool(spectral), magnitude=bool(magnitude))
with open(x_path, 'rb') as src:
    window = array.array('f', src.read())
out = array.array('f', bytes(4 * f.n_features()))
for i in range(calls):
    f.compute(window, out)
"""


def have_valgrind() -> bool:
    return shutil.which("valgrind") is not None


def _callgrind(args: list[str], variant: str) -> int:
    with tempfile.TemporaryDirectory(prefix="tinysense-callgrind-") as tmp:
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={Path(tmp) / 'out'}",
               str(host.firmware_or_raise(variant)), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"callgrind run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    for line in proc.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split()[-1])
    raise RuntimeError("callgrind printed no instruction count")


def _difference(make_args: list[str], calls: int, variant: str) -> float:
    with ThreadPoolExecutor(2) as pool:  # the two runs are independent: use both cores
        full, base = pool.map(lambda n: _callgrind(_with_calls(make_args, n), variant), (calls, 0))
    return (full - base) / calls


def _with_calls(args: list[str], calls: int) -> list[str]:
    return [a if a != "{calls}" else str(calls) for a in args]


def instructions_per_inference(model: bytes, X: np.ndarray, *, calls: int = 50,
                               variant: str = "standard") -> float | None:
    """Instructions of one predict() call in the host firmware (callgrind, N calls minus 0 calls)."""
    if not have_valgrind():
        return None
    cap = trees.capacity(model)
    rows = np.ascontiguousarray(np.asarray(X, dtype="<f4")[: max(1, min(len(X), calls))])
    with tempfile.TemporaryDirectory(prefix="tinysense-cost-") as tmp:
        d = Path(tmp)
        (d / "model").write_bytes(model)
        (d / "x.bin").write_bytes(rows.tobytes())
        (d / "loop.py").write_text(PREDICT_LOOP)
        args = [str(d / "loop.py"), str(d / "model"), str(d / "x.bin"), "{calls}", str(cap.max_trees),
                str(cap.max_nodes), str(cap.max_leaves), str(cap.max_features), str(cap.max_classes)]
        return _difference(args, calls, variant)


def feature_instructions(window: np.ndarray, samplerate: float, *, calls: int = 10, variant: str = "standard",
                         spectral: bool = True) -> float | None:
    """Instructions of one Features.compute() on a (samples, axes) float window in the host firmware."""
    if not have_valgrind():
        return None
    w = np.asarray(window, dtype="<f4")
    w = w[:, None] if w.ndim == 1 else w
    n, axes = w.shape
    magnitude = int(axes >= 2)
    with tempfile.TemporaryDirectory(prefix="tinysense-cost-") as tmp:
        d = Path(tmp)
        (d / "x.bin").write_bytes(np.ascontiguousarray(w).tobytes())
        (d / "loop.py").write_text(FEATURES_LOOP)
        args = [str(d / "loop.py"), str(d / "x.bin"), "{calls}", str(n), str(axes), str(int(spectral)),
                str(magnitude), repr(float(samplerate))]
        return _difference(args, calls, variant)


def model_cost(model: bytes, X: np.ndarray, *, instructions: bool = True, variant: str = "standard") -> Cost:
    count = instructions_per_inference(model, X, variant=variant) if instructions else None
    return Cost(len(model), ram_bytes(model), count)

