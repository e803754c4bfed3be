"""`tinysense convert`: device model + parity report; refuses models it cannot convert, writes nothing half-done."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits, load_iris
from sklearn.decomposition import PCA
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tinysense import cli, neighbors, net, trees


@pytest.fixture()
def iris(tmp_path: Path) -> tuple[Path, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    model = ExtraTreesClassifier(n_estimators=7, random_state=0).fit(X[::2], y[::2])
    joblib.dump(model, tmp_path / "model.joblib")
    np.savez(tmp_path / "test.npz", X_test=X[1::2].astype(np.float32), y_test=y[1::2])
    return tmp_path, model.predict(X[1::2].astype(np.float32))


def test_convert_writes_model_and_proves_parity(iris: tuple[Path, np.ndarray],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder, expected = iris
    assert cli.main(["convert", str(folder / "model.joblib")]) == 0
    model = (folder / "model.trees").read_bytes()
    report = json.loads((folder / "model.trees.parity.json").read_text())
    assert report["parity"] is True and report["agree"] == report["samples"] == 75
    X_test = np.load(folder / "test.npz")["X_test"]
    assert (trees.predict_on_host(model, X_test) == expected).all()  # independent re-run
    assert "75/75" in capsys.readouterr().out


def _fit(estimator: Any, X: np.ndarray, y: np.ndarray) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def _save(folder: Path, estimator: Any, X_test: np.ndarray, y_test: np.ndarray) -> Path:
    joblib.dump(estimator, folder / "model.joblib")
    np.savez(folder / "test.npz", X_test=X_test, y_test=y_test)
    return folder / "model.joblib"


def test_convert_knn_on_int_features_is_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = load_digits(return_X_y=True)
    knn = KNeighborsClassifier(n_neighbors=5).fit(X[:600], y[:600])  # integer pixels: stored as they are
    path = _save(tmp_path, knn, X[600:900], y[600:900])
    assert cli.main(["convert", str(path)]) == 0
    model = (tmp_path / "model.knn").read_bytes()
    assert model[:4] == neighbors.MAGIC
    report = json.loads((tmp_path / "model.knn.parity.json").read_text())
    assert report["parity"] is True and report["agree"] == report["samples"] == 300
    assert report["features"] == "int" and report["estimator"] == "KNeighborsClassifier"
    assert report["device_accuracy"] == pytest.approx(np.mean(knn.predict(X[600:900]) == y[600:900]))
    device = knn.classes_[neighbors.predict_on_host(model, X[600:900].astype(np.float32))]  # independent re-run
    assert (device == knn.predict(X[600:900])).all()
    assert "300/300" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["pipeline_classifier", "regressor"])
def test_convert_mlp_within_float32_tolerance(tmp_path: Path, kind: str) -> None:
    if kind == "pipeline_classifier":
        X, y = load_iris(return_X_y=True)
        estimator = _fit(make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=300,
                                                                       random_state=0)), X[::2], y[::2])
        expected_name = "Pipeline(StandardScaler, MLPClassifier)"
    else:
        X, y = load_diabetes(return_X_y=True)
        estimator = _fit(MLPRegressor(hidden_layer_sizes=(8,), max_iter=300, random_state=0), X[::2], y[::2])
        expected_name = "MLPRegressor"
    path = _save(tmp_path, estimator, X[1::2], y[1::2])
    assert cli.main(["convert", str(path)]) == 0
    model = (tmp_path / "model.mlp").read_bytes()
    report = json.loads((tmp_path / "model.mlp.parity.json").read_text())
    assert report["parity"] is True and report["agree"] == report["samples"] == len(X[1::2])
    assert report["estimator"] == expected_name and 0 < report["max_abs_diff"] <= net.DEFAULT_ATOL
    pred, outputs = net.predict_on_host(model, X[1::2])  # independent re-run
    if kind == "regressor":
        assert report["device_accuracy"] is None
        assert np.allclose(outputs[:, 0], estimator.predict(X[1::2]), rtol=1e-5)
    else:
        assert (estimator.classes_[pred] == estimator.predict(X[1::2])).all()
        assert np.allclose(outputs, estimator.predict_proba(X[1::2]), atol=1e-5)


def test_convert_knn_parity_failure_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Iris (one decimal) has training items at exactly equal distances; quantising the float features to int16
    # breaks such a tie differently from scikit-learn on one test row, and the device votes another class there.
    X, y = load_iris(return_X_y=True)
    knn = KNeighborsClassifier(n_neighbors=3).fit(X[::2], y[::2])
    path = _save(tmp_path, knn, X[1::2], y[1::2])
    assert cli.main(["convert", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "disagrees with scikit-learn on 1 of 75" in err[0] and "quantising" in err[0]
    report = json.loads((tmp_path / "model.knn.parity.json").read_text())
    assert report["parity"] is False and report["mismatches"] == [31] and report["features"] == "float"
    assert report["mismatches_from_quantisation"] == 1 and report["mismatches_at_distance_ties"] == 1
    assert not (tmp_path / "model.knn").exists()
    model = neighbors.convert(knn)  # the device really predicts another class on row 31
    assert knn.classes_[neighbors.predict_on_host(model, X[1::2][31:32])][0] != knn.predict(X[1::2][31:32])[0]


def test_convert_mlp_parity_failure_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Unix timestamps as a feature: float32 holds them to 128 s, so the device's scaled inputs and probabilities
    # differ from scikit-learn's (float64) far beyond the tolerance.
    rng = np.random.default_rng(0)
    t = 1.7e9 + rng.uniform(0, 86400, 400)
    X = np.column_stack([t, rng.normal(size=400)])
    y = (t - 1.7e9 > 43200).astype(int)
    mlp = _fit(make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0)),
               X[:300], y[:300])
    path = _save(tmp_path, mlp, X[300:], y[300:])
    assert cli.main(["convert", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "disagrees with scikit-learn" in err[0] and "subtract an origin" in err[0]
    report = json.loads((tmp_path / "model.mlp.parity.json").read_text())
    assert report["parity"] is False and report["n_mismatches"] > 10 and report["max_abs_diff"] > 1e-3
    assert not (tmp_path / "model.mlp").exists()


@pytest.mark.parametrize("case", ["logistic", "other_tool", "device_model", "missing", "no_test_set",
                                  "knn_regressor", "knn_distance_weights", "pca_mlp", "unfitted_mlp",
                                  "knn_device_model", "mlp_device_model", "mlp_int_features"])
def test_convert_refuses_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    path = tmp_path / "model.joblib"
    X, y = load_iris(return_X_y=True)
    np.savez(tmp_path / "test.npz", X_test=X)
    if case == "logistic":
        joblib.dump(LogisticRegression(max_iter=500).fit(X, y), path)
    elif case == "other_tool":
        path.write_bytes(b"\x00ONNX-or-tflite-model" * 10)
    elif case == "device_model":
        path.write_bytes(trees.MAGIC + bytes(60))
    elif case == "no_test_set":
        joblib.dump(ExtraTreesClassifier(n_estimators=2, random_state=0).fit(X, y), path)
        (tmp_path / "test.npz").unlink()
    elif case == "knn_regressor":
        joblib.dump(KNeighborsRegressor().fit(X, y), path)
    elif case == "knn_distance_weights":
        joblib.dump(KNeighborsClassifier(weights="distance").fit(X, y), path)
    elif case == "pca_mlp":
        joblib.dump(_fit(make_pipeline(PCA(2), MLPClassifier(max_iter=20, random_state=0)), X, y), path)
    elif case == "unfitted_mlp":
        joblib.dump(MLPClassifier(), path)
    elif case == "knn_device_model":
        path.write_bytes(neighbors.convert(KNeighborsClassifier().fit(X, y)))
    elif case == "mlp_device_model":
        path.write_bytes(net.convert(_fit(MLPClassifier(max_iter=20, random_state=0), X, y)))
    elif case == "mlp_int_features":
        joblib.dump(_fit(MLPClassifier(max_iter=20, random_state=0), X, y), path)
    extra = ["--features", "int"] if case == "mlp_int_features" else []
    status = cli.main(["convert", str(path), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1 and err[0].startswith("tinysense convert: error: ") and ";" in err[0]
    assert not [p.name for p in tmp_path.iterdir() if p.name not in ("model.joblib", "test.npz")]  # nothing written
