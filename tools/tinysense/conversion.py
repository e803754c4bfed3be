"""`tinysense convert` as a library: load a scikit-learn model, write the device model, prove parity."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinysense import trees
from tinysense.errors import CommandError


@dataclass
class Parity:
    n_samples: int
    n_agree: int
    mismatches: list[int]
    device_accuracy: float | None  # against the test labels, when known

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.n_samples, "agree": self.n_agree, "mismatches": self.mismatches[:100],
                "n_mismatches": len(self.mismatches), "device_accuracy": self.device_accuracy, "parity": self.ok}


def load_estimator(path: Path) -> Any:
    """A scikit-learn estimator from a joblib or pickle file, or a CommandError naming the problem and the fix."""
    import joblib

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"model file {path} does not exist; pass the model.joblib that `tinysense train` wrote") \
            from None
    except OSError as error:
        raise CommandError(f"cannot read model file {path} ({error.strerror}); check the path") from None
    if data[:4] == trees.MAGIC:
        raise CommandError(f"{path} is already a device model (tinysense trees format); pass the scikit-learn "
                           "model (.joblib/.pkl) it was made from")
    try:
        estimator = joblib.load(path)
    except Exception:
        try:
            estimator = pickle.loads(data)
        except Exception:
            raise CommandError(f"{path} is not a scikit-learn model saved with joblib or pickle; save it with "
                               "joblib.dump(model, path)") from None
    name = type(estimator).__name__
    if name not in trees.SUPPORTED_ESTIMATORS:
        raise CommandError(f"{path}: {name} cannot be converted for the device; train one of "
                           f"{', '.join(trees.SUPPORTED_ESTIMATORS)}")
    if not hasattr(estimator, "classes_"):
        raise CommandError(f"{path}: the {name} is not fitted; fit it before saving")
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
            features: str = "float", variant: str = "standard") -> tuple[bytes, Parity]:
    """The device model, and how its predictions in the host firmware compare with scikit-learn's."""
    try:
        model = trees.convert(estimator, None, features=features)
    except (TypeError, ValueError) as error:
        raise CommandError(f"cannot convert the model: {error}; train a smaller model or use --features float") \
            from None
    device = np.asarray(estimator.classes_)[trees.predict_on_host(model, X_test, variant=variant)]
    expected = np.asarray(estimator.predict(X_test))
    mismatches = [int(i) for i in np.flatnonzero(device != expected)]
    accuracy = None if y_test is None else float(np.mean(device.astype(str) == y_test.astype(str)))
    return model, Parity(len(expected), len(expected) - len(mismatches), mismatches, accuracy)
