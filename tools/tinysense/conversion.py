"""`tinysense convert` as a library: load a scikit-learn model, write the device model, prove parity.

Three device modules take converted models: emlearn_trees (tree ensembles, `tinysense.trees`), emlearn_neighbors
(KNeighborsClassifier, `tinysense.neighbors`) and emlearn_net (MLPClassifier/MLPRegressor, optionally behind affine
scalers in a Pipeline, `tinysense.net`). Parity is always against the user's own estimator on the test set:

* trees: classifiers predict the same class; regressors within trees.REGRESSION_RTOL.
* k-NN: the same class. Float features are quantised to int16 on the device; a disagreement that scikit-learn
  fitted on the device's quantised data shares is reported as caused by the quantisation (it still fails).
* CNN (emlearn_cnn; ONNX or PyTorch files, `tinysense.cnn.convert`): int8 outputs equal the NumPy integer
  reference bit for bit, float32 ones are within tolerance of the framework's.
* MLP: the same class, and every probability (regressors: every output, relative to max(1, |y|)) within
  net.DEFAULT_ATOL: the float32 device against scikit-learn's float64.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinysense import neighbors, net, trees
from tinysense.errors import CommandError

SUFFIXES = {"trees": ".trees", "neighbors": ".knn", "net": ".mlp"}
MLPS = ("MLPClassifier", "MLPRegressor")
LARGE_FLOAT32 = 1e6  # float32 steps are >= 1/16 from here on
SUPPORTED = (*trees.SUPPORTED_ESTIMATORS, *neighbors.SUPPORTED_ESTIMATORS, *MLPS,
             f"Pipeline({' | '.join(net.SCALERS)} ..., MLP)")


@dataclass
class Parity:
    n_samples: int
    n_agree: int
    mismatches: list[int]
    device_accuracy: float | None  # against the test labels, when known
    details: dict[str, Any] = field(default_factory=dict)  # what each model family adds (tolerances, causes)
    note: str = ""  # one clause for the command's message: the tolerance, or what caused the mismatches

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.n_samples, "agree": self.n_agree, "mismatches": self.mismatches[:100],
                "n_mismatches": len(self.mismatches), "device_accuracy": self.device_accuracy, **self.details,
                "parity": self.ok}


def is_cnn_file(path: Path) -> bool:
    """A CNN for emlearn_cnn (ONNX, PyTorch): converted by tinysense.cnn.convert, not as a scikit-learn model."""
    from tinysense.cnn.convert import is_network_file

    return is_network_file(path)


def family(estimator: Any) -> str | None:
    """Which device module runs this estimator ('trees', 'neighbors', 'net'), or None."""
    name = type(estimator).__name__
    if name in trees.SUPPORTED_ESTIMATORS:
        return "trees"
    if name in neighbors.SUPPORTED_ESTIMATORS:
        return "neighbors"
    if name in MLPS:
        return "net"
    steps = getattr(estimator, "steps", None)
    if name == "Pipeline" and steps and type(steps[-1][1]).__name__ in MLPS:
        return "net"
    return None


def describe(estimator: Any) -> str:
    """The estimator's class name; a Pipeline with its steps."""
    steps = getattr(estimator, "steps", None)
    if type(estimator).__name__ == "Pipeline" and steps:
        return "Pipeline(" + ", ".join(type(step).__name__ for _, step in steps) + ")"
    return type(estimator).__name__


def load_estimator(path: Path) -> Any:
    """A scikit-learn estimator from a joblib or pickle file, or a CommandError naming the problem and the fix."""
    import joblib
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"model file {path} does not exist; pass the model.joblib that `tinysense train` wrote") \
            from None
    except OSError as error:
        raise CommandError(f"cannot read model file {path} ({error.strerror}); check the path") from None
    for magic, kind in ((trees.MAGIC, "trees"), (neighbors.MAGIC, "k-NN"), (net.MAGIC, "MLP")):
        if data[:4] == magic:
            raise CommandError(f"{path} is already a device model (tinysense {kind} format); pass the scikit-learn "
                               "model (.joblib/.pkl) it was made from")
    try:
        estimator = joblib.load(path)
    except Exception:
        try:
            estimator = pickle.loads(data)
        except Exception:
            raise CommandError(f"{path} is not a scikit-learn model saved with joblib or pickle; save it with "
                               "joblib.dump(model, path)") from None
    name = describe(estimator)
    if family(estimator) is None:
        raise CommandError(f"{path}: {name} cannot be converted for the device; train one of {', '.join(SUPPORTED)}")
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise CommandError(f"{path}: the {name} is not fitted; fit it before saving") from None
    return estimator


def load_test_set(path: Path, n_features: int) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "X_test" not in npz.files:
                raise CommandError(f"{path} has no X_test array; pass the test.npz that `tinysense train` wrote")
            X = np.asarray(npz["X_test"])
            y = np.asarray(npz["y_test"]) if "y_test" in npz.files else None
    except FileNotFoundError:
        raise CommandError(f"test set {path} does not exist; pass --test-set (test.npz from `tinysense train`)") \
            from None
    except (OSError, ValueError, EOFError) as error:
        raise CommandError(f"cannot read test set {path} ({error}); pass a .npz with X_test (and y_test)") from None
    if X.ndim != 2 or X.shape[1] != n_features or len(X) == 0:
        raise CommandError(f"test set {path}: X_test has shape {X.shape}, the model needs (rows, {n_features}); "
                           "pass the test set made with the same features")
    if not np.isfinite(X).all():
        raise CommandError(f"test set {path}: X_test holds NaN or inf; drop those rows")
    return X, y


def metadata_beside(model_path: Path) -> dict[str, Any]:
    meta = model_path.with_suffix(".json")
    if not meta.exists():
        return {}
    try:
        data = json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CommandError(f"cannot read {meta} ({error}); delete it or fix it") from None
    return data if isinstance(data, dict) else {}


def convert(estimator: Any, X_test: np.ndarray, y_test: np.ndarray | None, *,
            features: str | None = None, variant: str = "standard") -> tuple[bytes, Parity]:
    """The device model, and how its predictions in the host firmware compare with scikit-learn's.

    features: trees 'int'|'float' (default 'float'), k-NN 'auto'|'int'|'float' (default 'auto': 'int' when every
    training value is an int16 integer); MLPs compute in float32 and take None only."""
    kind = family(estimator)
    if kind == "trees":
        return _convert_trees(estimator, X_test, y_test, features or "float", variant)
    if kind == "neighbors":
        return _convert_neighbors(estimator, X_test, y_test, features or "auto", variant)
    if kind == "net":
        if features not in (None, "auto"):
            raise CommandError(f"--features {features} applies to trees and k-NN only; an MLP runs on float32 "
                               "features: drop --features")
        return _convert_net(estimator, X_test, y_test, variant)
    raise CommandError(f"{describe(estimator)} cannot be converted for the device; train one of "
                       f"{', '.join(SUPPORTED)}")


def _accuracy(device: np.ndarray, y_test: np.ndarray | None) -> float | None:
    return None if y_test is None else float(np.mean(device.astype(str) == y_test.astype(str)))


def _convert_trees(estimator: Any, X_test: np.ndarray, y_test: np.ndarray | None, features: str,
                   variant: str) -> tuple[bytes, Parity]:
    try:
        model = trees.convert(estimator, None, features=features)
    except (TypeError, ValueError) as error:
        raise CommandError(f"cannot convert the model: {error}; train a smaller model or use --features float") \
            from None
    if trees.is_regressor(estimator):
        agreement = trees.verify(model, estimator, X_test, variant=variant, strict=False)
        return model, Parity(agreement.n_samples, agreement.n_agree, list(agreement.mismatches), None,
                             {"features": features, "max_relative_error": agreement.max_error,
                              "rtol": trees.REGRESSION_RTOL},
                             f"relative error at most {agreement.max_error:.2g} (tolerance {trees.REGRESSION_RTOL:g})")
    device = np.asarray(estimator.classes_)[trees.predict_on_host(model, X_test, variant=variant)]
    expected = np.asarray(estimator.predict(X_test))
    mismatches = [int(i) for i in np.flatnonzero(device != expected)]
    return model, Parity(len(expected), len(expected) - len(mismatches), mismatches, _accuracy(device, y_test),
                         {"features": features})


def _convert_neighbors(estimator: Any, X_test: np.ndarray, y_test: np.ndarray | None, features: str,
                       variant: str) -> tuple[bytes, Parity]:
    try:
        model = neighbors.convert(estimator, features=features)
    except (TypeError, ValueError) as error:
        hint = ("use --features float" if "features='int'" in str(error) else
                "train a KNeighborsClassifier the device supports (weights='uniform', Euclidean metric, one output)")
        raise CommandError(f"cannot convert the model: {error}; {hint}") from None
    X32 = np.asarray(X_test, dtype=np.float32)  # quantised on the device with the model's own map
    classes = np.asarray(estimator.classes_)
    device = classes[neighbors.predict_on_host(model, X32, variant=variant)]
    expected = np.asarray(estimator.predict(X_test))
    quantised = classes[neighbors.reference_predict(model, X32)]
    bad = device != expected
    mismatches = [int(i) for i in np.flatnonzero(bad)]
    from_quantisation = int(np.sum(bad & (device == quantised)))
    mode = "int" if neighbors.unpack(model).quantizer.is_identity else "float"
    details = {"features": mode,
               # scikit-learn fitted on the device's int16 data predicts as the device does on these rows:
               "mismatches_from_quantisation": from_quantisation,
               "mismatches_at_distance_ties": _ties_at_k(estimator, X_test[bad]),
               "agree_with_quantised_reference": int(np.sum(device == quantised))}
    note = ""
    if from_quantisation:
        note = (f"{from_quantisation} from quantising float features to int16 (scikit-learn on the device's int16 "
                f"data predicts as the device does), {details['mismatches_at_distance_ties']} where training items "
                "tie for the k-th nearest place")
    return model, Parity(len(expected), len(expected) - len(mismatches), mismatches, _accuracy(device, y_test),
                         details, note)


def _ties_at_k(estimator: Any, X: np.ndarray) -> int:
    """Rows where the k-th and (k+1)-th nearest training items are equally distant (to rounding) in scikit-learn:
    which of them votes is arbitrary, and quantisation can change it."""
    k = int(estimator.n_neighbors)
    if len(X) == 0 or estimator.n_samples_fit_ <= k:
        return 0
    distances, _ = estimator.kneighbors(X, n_neighbors=k + 1)
    return int(np.sum(np.isclose(distances[:, k - 1], distances[:, k], rtol=1e-9, atol=0)))


def _convert_net(estimator: Any, X_test: np.ndarray, y_test: np.ndarray | None,
                 variant: str) -> tuple[bytes, Parity]:
    try:
        model = net.convert(estimator)
    except (TypeError, ValueError) as error:
        raise CommandError(f"cannot convert the model: {error}; train an MLP the device supports (see "
                           "tinysense.net)") from None
    agreement = net.verify(model, estimator, X_test, variant=variant, strict=False)
    mlp, _, _ = net.split(estimator)
    bad = np.zeros(len(X_test), dtype=bool)
    bad[list(agreement.mismatches)] = True
    accuracy = None
    if type(mlp).__name__ == "MLPClassifier":
        # A different class is a mismatch even where scikit-learn's best two are within the tolerance.
        device = np.asarray(estimator.classes_)[net.predict_on_host(model, X_test, variant=variant)[0]]
        bad |= device != np.asarray(estimator.predict(X_test))
        accuracy = _accuracy(device, y_test)
    mismatches = [int(i) for i in np.flatnonzero(bad)]
    details = {"features": "float32", "atol": agreement.atol, "max_abs_diff": agreement.max_abs_diff,
               "within_tolerance": agreement.n_within, "near_ties": agreement.n_near_ties}
    outputs = "probabilities" if type(mlp).__name__ == "MLPClassifier" else "outputs"
    note = f"{outputs} differ by at most {agreement.max_abs_diff:.2g} (tolerance {agreement.atol:g})"
    if mismatches and float(np.max(np.abs(X_test))) >= LARGE_FLOAT32:
        note += (f"; the device computes in float32 and features reach {float(np.max(np.abs(X_test))):.3g}, where "
                 "float32 loses precision (e.g. Unix timestamps): subtract an origin from them before training")
    return model, Parity(len(X_test), len(X_test) - len(mismatches), mismatches, accuracy, details, note)
