"""Convert scikit-learn MLPs (MLPClassifier, MLPRegressor) for the device's `emlearn_net` module.

Supported: hidden activations identity, relu, logistic and tanh; binary (logistic output) and
multi-class (softmax) classifiers, single- and multi-output regressors; optionally behind affine
scalers in a Pipeline (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler), which become the
model file's input transform ``x' = (x - offset) * scale`` computed on the device.

The device computes in float32. `verify` runs the model in the host firmware on test data and
compares with scikit-learn (float64): class probabilities within `atol` (1e-5) absolute, regression
outputs within `atol` relative to max(1, |output|), and the same predicted class except where
scikit-learn's two best classes are closer than that tolerance.
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

MAGIC = b"TSNN"
FORMAT_VERSION = 1
KIND_CLASSIFIER = 1
KIND_REGRESSOR = 2
FLAG_INPUT_TRANSFORM = 1
ACTIVATIONS = {"identity": 0, "relu": 1, "logistic": 2, "tanh": 3, "softmax": 4}
HEADER = struct.Struct("<4sBBBB")  # + uint32 CRC32
MAX_LAYERS = 32
MAX_WIDTH = 4096
SCALERS = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler")
DEFAULT_ATOL = 1e-5


class ParityError(AssertionError):
    """The device disagrees with scikit-learn beyond the tolerance."""


def _scaler_map(step: Any) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale) with step.transform(x) == (x - offset) * scale."""
    name = type(step).__name__
    n = int(step.n_features_in_)
    zeros, ones = np.zeros(n), np.ones(n)
    if name == "StandardScaler":
        mean = step.mean_ if getattr(step, "mean_", None) is not None and step.with_mean else zeros
        scale = 1 / step.scale_ if getattr(step, "scale_", None) is not None and step.with_std else ones
        return np.asarray(mean, np.float64), np.asarray(scale, np.float64)
    if name == "MinMaxScaler":
        if getattr(step, "clip", False):
            raise ValueError("MinMaxScaler(clip=True) is not affine: not supported")
        return -step.min_ / step.scale_, np.asarray(step.scale_, np.float64)
    if name == "MaxAbsScaler":
        return zeros, 1 / step.scale_
    if name == "RobustScaler":
        center = step.center_ if getattr(step, "center_", None) is not None else zeros
        scale = 1 / step.scale_ if getattr(step, "scale_", None) is not None else ones
        return np.asarray(center, np.float64), np.asarray(scale, np.float64)
    raise TypeError(f"unsupported pipeline step {name}: supported are {', '.join(SCALERS)}")


def split(estimator: Any) -> tuple[Any, np.ndarray | None, np.ndarray | None]:
    """(mlp, offset, scale) of an MLP or a Pipeline of affine scalers ending in an MLP."""
    steps = [step for _, step in estimator.steps] if hasattr(estimator, "steps") else [estimator]
    steps = [s for s in steps if s is not None and s != "passthrough"]
    mlp = steps[-1]
    name = type(mlp).__name__
    if name not in ("MLPClassifier", "MLPRegressor"):
        raise TypeError(f"unsupported estimator {name}: supported are MLPClassifier and MLPRegressor "
                        f"(optionally after {', '.join(SCALERS)} in a Pipeline)")
    if not hasattr(mlp, "coefs_"):
        raise ValueError(f"{name} is not fitted")
    offset = scale = None
    for step in steps[:-1]:
        o, s = _scaler_map(step)
        if offset is None:
            offset, scale = o, s
        else:  # ((x - o1) * s1 - o2) * s2 == (x - (o1 + o2 / s1)) * (s1 * s2)
            if np.any(scale == 0):
                raise ValueError("a scaler with a zero scale cannot be combined with another")
            offset, scale = offset + o / scale, scale * s
    return mlp, offset, scale


def convert(estimator: Any) -> bytes:
    """The model file for emlearn_net.new() (see usermods/emlearn_net/net.h for the format)."""
    mlp, offset, scale = split(estimator)
    is_classifier = type(mlp).__name__ == "MLPClassifier"
    if is_classifier:
        y_type = getattr(getattr(mlp, "_label_binarizer", None), "y_type_", "")
        if y_type == "multilabel-indicator":
            raise ValueError("multi-label MLPClassifier is not supported")
    hidden = mlp.activation
    output = mlp.out_activation_
    if hidden not in ACTIVATIONS or hidden == "softmax":
        raise ValueError(f"hidden activation {hidden!r} is not supported")
    if output not in ACTIVATIONS:
        raise ValueError(f"output activation {output!r} is not supported")
    coefs, intercepts = mlp.coefs_, mlp.intercepts_
    n_layers = len(coefs)
    sizes = [int(coefs[0].shape[0])] + [int(w.shape[1]) for w in coefs]
    if n_layers > MAX_LAYERS:
        raise ValueError(f"{n_layers} layers: the device allows at most {MAX_LAYERS}")
    if max(sizes) > MAX_WIDTH:
        raise ValueError(f"a layer of {max(sizes)} units: the device allows at most {MAX_WIDTH}")
    activations = [ACTIVATIONS[hidden]] * (n_layers - 1) + [ACTIVATIONS[output]]
    flags = 0
    table = struct.pack(f"<{len(sizes)}H{n_layers}B", *sizes, *activations)
    table += bytes(-(HEADER.size + 4 + len(table)) % 4)
    params = []
    if offset is not None:
        flags |= FLAG_INPUT_TRANSFORM
        params += [np.asarray(offset, "<f4").tobytes(), np.asarray(scale, "<f4").tobytes()]
    for w, b in zip(coefs, intercepts, strict=True):
        values = np.concatenate([np.asarray(w, np.float64).T.ravel(), np.asarray(b, np.float64)])
        if not np.all(np.isfinite(values.astype(np.float32))):
            raise ValueError("the network has weights that are not finite in float32")
        params.append(values.astype("<f4").tobytes())
    body = table + b"".join(params)
    header = HEADER.pack(MAGIC, FORMAT_VERSION, KIND_CLASSIFIER if is_classifier else KIND_REGRESSOR, n_layers, flags)
    return header + struct.pack("<I", zlib.crc32(body, zlib.crc32(header))) + body


# Runs inside the host firmware: every row of a float32 matrix in one process.
PREDICT_SCRIPT = """\
import sys, array, emlearn_net
model_path, x_path, out_path, pred_path = sys.argv[1:5]
with open(model_path, 'rb') as f:
    m = emlearn_net.new(f)
nin, nout = m.inputs(), m.outputs()
with open(x_path, 'rb') as f:
    X = array.array('f', f.read())
mv = memoryview(X)
n = len(X) // nin
out = array.array('f', bytes(4 * nout))
pred = array.array('h', bytes(2 * n))
with open(out_path, 'wb') as f:
    for i in range(n):
        c = m.predict(mv[i * nin:(i + 1) * nin], out)
        pred[i] = -1 if c is None else c
        f.write(out)
with open(pred_path, 'wb') as f:
    f.write(pred)
print('predicted', n)
"""


def predict_on_host(model: bytes, X: Any, *, variant: str = "standard") -> tuple[np.ndarray, np.ndarray]:
    """(predicted class indices (-1 for a regressor), outputs) of the device for every row of X."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError("X must be 2-D")
    with tempfile.TemporaryDirectory(prefix="tinysense-net-") as tmp:
        d = Path(tmp)
        (d / "model.bin").write_bytes(model)
        (d / "x.bin").write_bytes(np.ascontiguousarray(X, dtype="<f4").tobytes())
        (d / "predict.py").write_text(PREDICT_SCRIPT)
        proc = host.run([str(d / "predict.py"), str(d / "model.bin"), str(d / "x.bin"), str(d / "out.bin"),
                         str(d / "pred.bin")], variant=variant, timeout=600)
        report = host.sanitizer_report(proc.stderr.decode(errors="replace"))
        if proc.returncode != 0 or report:
            raise RuntimeError(f"host firmware failed ({proc.returncode}):\n{report or proc.stderr.decode()}")
        outputs = np.frombuffer((d / "out.bin").read_bytes(), dtype="<f4").astype(np.float64)
        pred = np.frombuffer((d / "pred.bin").read_bytes(), dtype="<i2").astype(np.int64)
    return pred, outputs.reshape(len(X), -1)


@dataclass(frozen=True)
class Agreement:
    n_samples: int
    max_abs_diff: float            # largest |device - scikit-learn| (relative to max(1, |y|) for regressors)
    n_within: int                  # samples whose outputs are all within the tolerance
    n_class_agree: int             # classifiers: same predicted class (regressors: n_samples)
    n_near_ties: int               # class disagreements where scikit-learn's best two are within the tolerance
    mismatches: tuple[int, ...]    # samples out of tolerance or with a different class (not a near tie)
    atol: float

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def __str__(self) -> str:
        return (f"{self.n_within}/{self.n_samples} within {self.atol:g} of scikit-learn "
                f"(max difference {self.max_abs_diff:.3g}), {self.n_class_agree}/{self.n_samples} same prediction"
                + (f" ({self.n_near_ties} near ties)" if self.n_near_ties else ""))


def verify(model: bytes, estimator: Any, X_test: Any, variant: str = "standard", *, atol: float = DEFAULT_ATOL,
           strict: bool = True) -> Agreement:
    """Run the model in the host firmware on X_test and compare with scikit-learn."""
    X_test = np.asarray(X_test, dtype=np.float64)
    mlp, _, _ = split(estimator)
    pred, outputs = predict_on_host(model, X_test, variant=variant)
    if type(mlp).__name__ == "MLPClassifier":
        expected = np.asarray(estimator.predict_proba(X_test), dtype=np.float64)
        diff = np.abs(outputs - expected)
        classes = np.asarray(estimator.classes_)
        same_class = classes[pred] == np.asarray(estimator.predict(X_test))
        top2 = np.sort(expected, axis=1)[:, -2:]
        near_tie = (top2[:, 1] - top2[:, 0]) < 2 * atol
    else:
        expected = np.asarray(estimator.predict(X_test), dtype=np.float64).reshape(len(X_test), -1)
        diff = np.abs(outputs - expected) / np.maximum(1.0, np.abs(expected))
        same_class = np.ones(len(X_test), dtype=bool)
        near_tie = np.zeros(len(X_test), dtype=bool)
    within = np.all(diff <= atol, axis=1)
    bad = ~within | (~same_class & ~near_tie)
    agreement = Agreement(len(X_test), float(diff.max()) if diff.size else 0.0, int(within.sum()),
                          int(same_class.sum()), int(np.sum(~same_class & near_tie)),
                          tuple(int(i) for i in np.flatnonzero(bad)), atol)
    if strict and not agreement.ok:
        raise ParityError(f"{agreement}; first mismatches at rows {list(agreement.mismatches[:10])}")
    return agreement
