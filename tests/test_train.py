"""`tinysense train`: real accuracy against scikit-learn, device parity of the saved model, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.metrics import f1_score

from tinysense import cli, datasets, features, training, trees


def train(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(["train", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_digits_trains_and_saved_model_matches_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m"
    status, stdout, err = train(capsys, "digits", "--n-estimators", "3,8", "--max-leaf-nodes", "32",
                                "--splits", "2", "--no-instructions", "-o", str(out))
    assert status == 0, err
    meta = json.loads((out / "model.json").read_text())
    estimator = joblib.load(out / "model.joblib")
    with np.load(out / "test.npz") as test:
        X_test, y_test = test["X_test"], test["y_test"]
    reference = f1_score(y_test, estimator.predict(X_test), average="micro")
    assert meta["test"]["f1_micro"] == pytest.approx(reference)
    assert reference > 0.8
    assert meta["model"]["params"]["n_estimators"] == 8  # the more accurate candidate
    device = estimator.classes_[trees.predict_on_host((out / "model.trees").read_bytes(), X_test)]
    assert (device == estimator.predict(X_test)).all()
    for png in ("pareto.png", "confusion.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 8 | 32 |" in (out / "pareto.md").read_text()
    assert "chosen: RandomForestClassifier" in stdout


def test_timeseries_features_come_from_the_c_module(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(300) / 50.0
    recordings = [(2000 * np.sin(2 * np.pi * f * t)[:, None] + rng.normal(0, 200, (300, 3))).astype(np.int16)
                  for f in (1, 1, 4, 4)]
    dataset = datasets.Dataset("synthetic", np.array(["slow", "slow", "fast", "fast"]),
                               {"file": np.array(["a", "b", "c", "d"])}, 50.0, ["x", "y", "z"], [[0, 1, 2]],
                               recordings)
    prepared, _ = training.prepare(dataset, window=100, hop=50, group_by="file")
    assert prepared.X.shape == (4 * 5, len(features.feature_names(3)))
    expected = features.reference_features(recordings[2][50:150], 50.0)
    np.testing.assert_allclose(prepared.X[2 * 5 + 1], expected, rtol=1e-4, atol=1e-2)
    assert list(prepared.y[:5]) == ["slow"] * 5 and list(prepared.groups[-5:]) == ["d"] * 5


def test_truncated_and_empty_recordings_are_reported(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i, label in enumerate(["walk", "walk", "run", "run"]):
        np.save(folder / f"2024-01-01T00000{i}_{label}.npy", rng.integers(-1000, 1000, (200, 3)).astype(np.int16))
    whole = (folder / "2024-01-01T000000_walk.npy").read_bytes()
    (folder / "2024-01-01T000009_run.npy").write_bytes(whole[: len(whole) - 6 * 50 - 3])  # 149 whole samples
    (folder / "2024-01-01T000008_walk.npy").write_bytes(b"")
    with pytest.warns(datasets.DatasetWarning) as caught:
        dataset = datasets.load(str(folder))
    messages = [str(w.message) for w in caught]
    assert any("000009_run.npy is truncated: 149 of 200" in m for m in messages)
    assert any("000008_walk.npy is empty; skipped" in m for m in messages)
    assert len(dataset) == 5 and sorted(len(r) for r in dataset.recordings)[0] == 149


def _bad(tmp_path: Path, name: str, write) -> str:
    path = tmp_path / name
    write(path)
    return str(path)


@pytest.mark.parametrize(("case", "message"), [
    ("nan", "NaN"), ("ragged", "ragged windows"), ("one_class", "only one class"), ("missing", "does not exist"),
    ("unknown", "unknown labels"), ("ragged_csv", "different number of fields"),
])
def test_bad_datasets_fail_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str,
                                       message: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 20, 3)).astype(np.float32)
    y = np.array(["a", "b"] * 4)
    extra: list[str] = []
    if case == "nan":
        X[3, 5, 1] = np.nan
        source = _bad(tmp_path, "d.npz", lambda p: np.savez(p, X=X, y=y))
    elif case == "ragged":
        source = _bad(tmp_path, "d.npz", lambda p: np.savez(p, X=np.array([X[0], X[1, :10]], dtype=object), y=y[:2]))
    elif case == "one_class":
        source = _bad(tmp_path, "d.npz", lambda p: np.savez(p, X=X, y=np.array(["a"] * 8)))
    elif case == "unknown":
        source = _bad(tmp_path, "d.npz", lambda p: np.savez(p, X=X, y=y))
        extra = ["--classes", "a,c"]
    elif case == "ragged_csv":
        source = _bad(tmp_path, "d.csv", lambda p: p.write_text("label,x,y\na,1,2\na,1\n"))
    else:
        source = str(tmp_path / "nope.npz")
    out = tmp_path / "out"
    status, _, err = train(capsys, source, "--window", "10", "-o", str(out), "--no-instructions", *extra)
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinysense train: error: ") and message in lines[0], err
    assert ";" in lines[0]  # problem; fix
    assert not out.exists()
