"""`tinysense convert`: device model + parity report; refuses models it cannot convert, writes nothing half-done."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.linear_model import LogisticRegression

from tinysense import cli, trees


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


@pytest.mark.parametrize("case", ["logistic", "other_tool", "device_model", "missing", "no_test_set"])
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
    status = cli.main(["convert", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1 and err[0].startswith("tinysense convert: error: ") and ";" in err[0]
    assert not (tmp_path / "model.trees").exists()
    assert not list(tmp_path.glob(".*.part"))
