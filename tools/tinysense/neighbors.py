"""Convert scikit-learn's KNeighborsClassifier for the device's `emlearn_neighbors` module.

The device stores int16 features and computes exact integer distances. The converter owns the
quantisation from float features to int16, stored in the model file as a per-feature affine map
that the device applies in C to array('f') input:

    q = clip(round_half_away((x - offset) * scale), -32768, 32767)     (float32 arithmetic)

* features='int' (or 'auto' when every training value is an integer within int16): offset 0,
  scale 1 — the features are used as they are and the device reproduces the original estimator.
* features='float': per-feature offsets (range centres) and ONE scale for all features, so the
  quantised space is the original one shifted and uniformly scaled: Euclidean neighbours are
  preserved up to rounding.

`verify` runs the device module in the host firmware on test data and compares it with
scikit-learn's brute-force KNeighborsClassifier fitted on exactly the device's (quantised) data:
that must agree on every sample. Agreement with the original float estimator is reported too
(rounding may move a few near-equidistant neighbours).

Ties: scikit-learn picks the k neighbours with a max-heap fed in index order (ArgKmin); which of
several equally distant items at the k-th place vote depends on that heap, and with more than one
OpenMP thread also on how the items were split between threads. The device replays the heap of a
single thread, so the reference here runs scikit-learn with one OpenMP thread. Vote ties go to the
lowest class on both sides.
"""

from __future__ import annotations

import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinysense import host

SUPPORTED_ESTIMATORS = ("KNeighborsClassifier",)
MAGIC = b"TSKN"
FORMAT_VERSION = 1
KIND_CLASSIFIER = 1
FLAG_QUANTIZER = 1
HEADER = struct.Struct("<4sBBBBHHII")  # + uint32 CRC32
HEADER_SIZE = HEADER.size + 4
INT16_MIN, INT16_MAX = -32768, 32767
MAX_FEATURES = 4096
MAX_ITEMS = (1 << 20) - 1
# The float quantiser maps the widest feature's training range onto +-FLOAT_RANGE, leaving room for
# test values somewhat outside the training range before they saturate.
FLOAT_RANGE = 30000.0


class ParityError(AssertionError):
    """The device disagrees with scikit-learn on some samples."""


@dataclass(frozen=True)
class Quantizer:
    """The device's float -> int16 map: q = clip(round_half_away((x - offset) * scale))."""

    offset: np.ndarray  # float32, one per feature
    scale: np.ndarray   # float32, one per feature

    def __call__(self, X: Any) -> np.ndarray:
        x = np.asarray(X, dtype=np.float32)
        if np.isnan(x).any():
            raise ValueError("cannot quantise NaN features")
        with np.errstate(over="ignore", invalid="ignore"):
            t = ((x - self.offset).astype(np.float32) * self.scale).astype(np.float32).astype(np.float64)
        rounded = np.where(t >= 0, np.floor(t + 0.5), -np.floor(-t + 0.5))
        return np.clip(rounded, INT16_MIN, INT16_MAX).astype(np.int16)

    @property
    def is_identity(self) -> bool:
        return bool(np.all(self.offset == 0) and np.all(self.scale == 1))


def fit_quantizer(X_train: Any, features: str = "auto") -> Quantizer:
    """The quantiser for features='auto'|'int'|'float' (see the module docstring)."""
    X = np.asarray(X_train, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError("X_train must be a non-empty 2-D array")
    if not np.all(np.isfinite(X)):
        raise ValueError("X_train has NaN or infinite values")
    n_features = X.shape[1]
    integral = bool(np.all(X == np.round(X)) and X.min() >= INT16_MIN and X.max() <= INT16_MAX)
    if features == "auto":
        features = "int" if integral else "float"
    if features == "int":
        if not integral:
            raise ValueError("features='int' needs integer training values within int16: use features='float'")
        return Quantizer(np.zeros(n_features, np.float32), np.ones(n_features, np.float32))
    if features != "float":
        raise ValueError(f"features must be 'auto', 'int' or 'float', got {features!r}")
    low, high = X.min(axis=0).astype(np.float64), X.max(axis=0).astype(np.float64)
    offset = ((low + high) / 2).astype(np.float32)
    half_range = float(np.max((high - low) / 2))
    scale = FLOAT_RANGE / half_range if half_range > 0 else 1.0
    return Quantizer(offset, np.full(n_features, scale, dtype=np.float32))


@dataclass
class Model:
    """The contents of a device model file."""

    k: int
    data: np.ndarray      # int16 (n_items, n_features)
    labels: np.ndarray    # int16 (n_items,)
    quantizer: Quantizer


def _check_estimator(estimator: Any) -> None:
    name = type(estimator).__name__
    if name not in SUPPORTED_ESTIMATORS:
        raise TypeError(f"unsupported estimator {name}: supported are {', '.join(SUPPORTED_ESTIMATORS)}")
    if not hasattr(estimator, "classes_") or not hasattr(estimator, "_fit_X"):
        raise ValueError(f"{name} is not fitted")
    if getattr(estimator, "outputs_2d_", False):
        raise ValueError("multi-output classifiers are not supported")
    if estimator.weights != "uniform":
        raise ValueError(f"weights={estimator.weights!r} is not supported: the device votes uniformly")
    metric = getattr(estimator, "effective_metric_", estimator.metric)
    if metric not in ("euclidean", "sqeuclidean"):
        raise ValueError(f"metric {metric!r} is not supported: the device uses Euclidean distance")


def build(estimator: Any, *, features: str = "auto") -> Model:
    """The device model for a fitted KNeighborsClassifier: its training data, quantised."""
    _check_estimator(estimator)
    X = estimator._fit_X
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X)  # sparse training data too
    labels = np.asarray(estimator._y)  # indices into classes_
    n_items, n_features = X.shape
    if len(estimator.classes_) > INT16_MAX + 1:
        raise ValueError(f"{len(estimator.classes_)} classes: the device's int16 labels hold at most 32768")
    if n_features > MAX_FEATURES:
        raise ValueError(f"{n_features} features: the device allows at most {MAX_FEATURES}")
    if n_items > MAX_ITEMS:
        raise ValueError(f"{n_items} training samples: the device allows at most {MAX_ITEMS}")
    quantizer = fit_quantizer(X, features)
    return Model(int(estimator.n_neighbors), quantizer(X), labels.astype(np.int16), quantizer)


def pack(model: Model) -> bytes:
    """The binary model file (see usermods/emlearn_neighbors/neighbors.h)."""
    n_items, n_features = model.data.shape
    flags = 0 if model.quantizer.is_identity else FLAG_QUANTIZER
    parts = []
    if flags:
        parts += [model.quantizer.offset.astype("<f4").tobytes(), model.quantizer.scale.astype("<f4").tobytes()]
    parts += [np.ascontiguousarray(model.data, dtype="<i2").tobytes(), model.labels.astype("<i2").tobytes()]
    payload = b"".join(parts)
    header = HEADER.pack(MAGIC, FORMAT_VERSION, KIND_CLASSIFIER, flags, 0, n_features, 0, model.k, n_items)
    return header + struct.pack("<I", zlib.crc32(payload, zlib.crc32(header))) + payload


def unpack(blob: bytes) -> Model:
    """Read a model file back (checked like the device checks it, more briefly)."""
    if len(blob) < HEADER_SIZE or blob[:4] != MAGIC:
        raise ValueError("not a k-NN model file")
    _, version, kind, flags, _, n_features, _, k, n_items = HEADER.unpack_from(blob)
    (crc,) = struct.unpack_from("<I", blob, HEADER.size)
    if version != FORMAT_VERSION or kind != KIND_CLASSIFIER or zlib.crc32(blob[HEADER_SIZE:],
                                                                            zlib.crc32(blob[:HEADER.size])) != crc:
        raise ValueError("unsupported or corrupted k-NN model file")
    pos = HEADER_SIZE
    if flags & FLAG_QUANTIZER:
        offset = np.frombuffer(blob, "<f4", n_features, pos).astype(np.float32)
        scale = np.frombuffer(blob, "<f4", n_features, pos + 4 * n_features).astype(np.float32)
        pos += 8 * n_features
    else:
        offset, scale = np.zeros(n_features, np.float32), np.ones(n_features, np.float32)
    data = np.frombuffer(blob, "<i2", n_items * n_features, pos).reshape(n_items, n_features).astype(np.int16)
    labels = np.frombuffer(blob, "<i2", n_items, pos + 2 * n_items * n_features).astype(np.int16)
    return Model(k, data, labels, Quantizer(offset, scale))


def convert(estimator: Any, *, features: str = "auto") -> bytes:
    """The model file for emlearn_neighbors.load() from a fitted KNeighborsClassifier.

    Device labels are indices into estimator.classes_."""
    return pack(build(estimator, features=features))


# Runs inside the host firmware: every model on every row of a binary matrix, in one process.
PREDICT_SCRIPT = """\
import sys, array, emlearn_neighbors
x_path, out_path, tc, nf = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(x_path, 'rb') as f:
    X = array.array(tc, f.read())
mv = memoryview(X)
n = len(X) // nf
paths = sys.argv[5:]
out = array.array('h', bytes(2 * n * len(paths)))
j = 0
for path in paths:
    with open(path, 'rb') as f:
        m = emlearn_neighbors.load(f)
    for i in range(n):
        out[j] = m.predict(mv[i * nf:(i + 1) * nf])
        j += 1
    m = None
with open(out_path, 'wb') as f:
    f.write(out)
print('predicted', n, 'x', len(paths))
"""


def predict_on_host(models: bytes | list[bytes], X: Any, *, variant: str = "standard",
                    typecode: str | None = None) -> np.ndarray:
    """Labels the device predicts for every row of X: shape (n,) for one model, (n_models, n) for a
    list. X goes in as array('f') (quantised on the device) unless it is int16 or typecode='h'."""
    single = isinstance(models, bytes | bytearray)
    model_list = [bytes(models)] if single else [bytes(m) for m in models]
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError("X must be 2-D")
    if typecode is None:
        typecode = "h" if X.dtype == np.int16 else "f"
    dtype = {"h": "<i2", "f": "<f4"}[typecode]
    with tempfile.TemporaryDirectory(prefix="tinysense-neighbors-") as tmp:
        d = Path(tmp)
        paths = []
        for i, blob in enumerate(model_list):
            paths.append(d / f"model{i}.bin")
            paths[-1].write_bytes(blob)
        (d / "x.bin").write_bytes(np.ascontiguousarray(X, dtype=dtype).tobytes())
        (d / "predict.py").write_text(PREDICT_SCRIPT)
        proc = host.run([str(d / "predict.py"), str(d / "x.bin"), str(d / "out.bin"), typecode, str(X.shape[1]),
                         *map(str, paths)], variant=variant, timeout=600)
        report = host.sanitizer_report(proc.stderr.decode(errors="replace"))
        if proc.returncode != 0 or report:
            raise RuntimeError(f"host firmware failed ({proc.returncode}):\n{report or proc.stderr.decode()}")
        out = np.frombuffer((d / "out.bin").read_bytes(), dtype="<i2").astype(np.int64)
    out = out.reshape(len(model_list), len(X))
    return out[0] if single else out


def reference_predict(model: bytes | Model, X: Any) -> np.ndarray:
    """scikit-learn's brute-force KNeighborsClassifier fitted on the model file's own (quantised) data,
    on X quantised as the device does it; single-threaded (see the module docstring on ties)."""
    from sklearn.neighbors import KNeighborsClassifier
    from threadpoolctl import threadpool_limits

    m = unpack(model) if isinstance(model, bytes | bytearray) else model
    X = np.asarray(X)
    Xq = X.astype(np.int16) if X.dtype == np.int16 else m.quantizer(X)
    reference = KNeighborsClassifier(n_neighbors=m.k, algorithm="brute")
    reference.fit(m.data.astype(np.float64), m.labels.astype(np.int64))
    with threadpool_limits(limits=1, user_api="openmp"):
        return np.asarray(reference.predict(Xq.astype(np.float64)))


@dataclass(frozen=True)
class Agreement:
    n_samples: int
    n_agree: int                  # device == scikit-learn on the quantised data (must be all)
    mismatches: tuple[int, ...]
    n_agree_original: int         # device == the original (float) estimator

    @property
    def ratio(self) -> float:
        return self.n_agree / self.n_samples if self.n_samples else 1.0

    def __str__(self) -> str:
        return (f"{self.n_agree}/{self.n_samples} agree with scikit-learn on the quantised data, "
                f"{self.n_agree_original}/{self.n_samples} with the original estimator")


def verify(model: bytes, estimator: Any, X_test: Any, variant: str = "standard", *, strict: bool = True) -> Agreement:
    """Run the model in the host firmware on X_test (float32 input, quantised on the device) and
    compare with scikit-learn. Raises ParityError when strict and any sample differs from the
    quantised-data reference."""
    X_test = np.asarray(X_test)
    got = predict_on_host(model, X_test, variant=variant)
    expected = reference_predict(model, X_test)
    classes = np.asarray(estimator.classes_)
    original = np.asarray(estimator.predict(X_test))
    mismatches = tuple(int(i) for i in np.flatnonzero(got != expected))
    agreement = Agreement(len(got), len(got) - len(mismatches), mismatches, int(np.sum(classes[got] == original)))
    if strict and mismatches:
        raise ParityError(f"{agreement}; first mismatches at rows {list(mismatches[:10])}")
    return agreement
