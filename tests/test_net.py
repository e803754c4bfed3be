"""emlearn_net against scikit-learn: MLP outputs within 1e-5 through the C module in the host firmware.

Every sample of a dataset goes through one firmware process per model.
"""

from __future__ import annotations

import os
import random
import struct
import time
import warnings
import zlib
from typing import Any

import numpy as np
import pytest
from fuzzing import edit_bytes, fuzz_cases, run_fuzz_script
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_linnerud, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, Normalizer, RobustScaler, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from tinysense import net

DATASETS = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer, "digits": load_digits}
ACTIVATIONS = ("relu", "tanh", "logistic", "identity")
FUZZ_CASES = int(os.environ.get("TINYSENSE_NET_FUZZ", "300"))


def fit(estimator: Any, X: np.ndarray, y: np.ndarray) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def tiny(sizes: tuple[int, ...] = (4,), kind: Any = MLPClassifier, **kwargs: Any) -> Any:
    return kind(hidden_layer_sizes=sizes, max_iter=20, random_state=0, **kwargs)


def split(name: str):
    X, y = DATASETS[name](return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)
    return X, X_train, y_train


_fitted: dict[tuple[str, str], Any] = {}


def classifier(dataset: str, activation: str) -> Any:
    if (dataset, activation) not in _fitted:
        _, X_train, y_train = split(dataset)
        mlp = MLPClassifier(hidden_layer_sizes=(24, 12), activation=activation, max_iter=80, random_state=0)
        _fitted[dataset, activation] = fit(make_pipeline(StandardScaler(), mlp), X_train, y_train)
    return _fitted[dataset, activation]


@pytest.mark.parametrize("variant", ["standard", "32"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_predict_proba_within_1e5_of_sklearn(dataset: str, activation: str, variant: str) -> None:
    X, _, _ = split(dataset)
    estimator = classifier(dataset, activation)
    model = net.convert(estimator)
    agreement = net.verify(model, estimator, X, variant=variant)  # every sample, one process
    assert agreement.ok and agreement.n_within == len(X), agreement
    assert agreement.max_abs_diff <= 1e-5
    assert agreement.n_class_agree + agreement.n_near_ties == len(X)
    # Binary breast_cancer: one logistic output, reported as two probabilities.
    assert model[5] == net.KIND_CLASSIFIER and model[6] == 3 and model[7] == net.FLAG_INPUT_TRANSFORM


def test_outputs_are_predict_proba_and_class_indices() -> None:
    X, _, _ = split("wine")
    estimator = classifier("wine", "relu")
    pred, proba = net.predict_on_host(net.convert(estimator), X)
    np.testing.assert_allclose(proba, estimator.predict_proba(X), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(estimator.classes_[pred], estimator.predict(X))


def test_plain_mlp_without_scaler_and_string_classes() -> None:
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    estimator = fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=1), X, names)
    model = net.convert(estimator)
    assert model[7] == 0  # no input transform
    assert net.verify(model, estimator, X).ok


@pytest.mark.parametrize("variant", ["standard", "32"])
def test_regressors(variant: str) -> None:
    X, y = load_diabetes(return_X_y=True)
    mlp = MLPRegressor(hidden_layer_sizes=(16, 8), activation="tanh", max_iter=100, random_state=0)
    single = fit(make_pipeline(StandardScaler(), mlp), X, y)
    agreement = net.verify(net.convert(single), single, X, variant=variant)
    assert agreement.ok and agreement.n_within == len(X), agreement
    X, Y = load_linnerud(return_X_y=True)
    # Two scalers in a row become one input transform on the device.
    mlp = MLPRegressor(hidden_layer_sizes=(6,), activation="logistic", max_iter=500, random_state=0)
    multi = fit(make_pipeline(MinMaxScaler(), StandardScaler(), mlp), X, Y)
    model = net.convert(multi)
    assert model[5] == net.KIND_REGRESSOR and model[7] == net.FLAG_INPUT_TRANSFORM
    pred, outputs = net.predict_on_host(model, X, variant=variant)
    assert outputs.shape == (len(X), 3) and np.all(pred == -1)
    assert net.verify(model, multi, X, variant=variant).ok


@pytest.mark.parametrize("scaler", [MinMaxScaler(), MaxAbsScaler(), RobustScaler(), StandardScaler(with_mean=False)])
def test_scaler_input_transform(scaler: Any) -> None:
    X, X_train, y_train = split("breast_cancer")
    mlp = MLPClassifier(hidden_layer_sizes=(10,), max_iter=200, random_state=0)
    estimator = fit(make_pipeline(scaler, mlp), X_train, y_train)
    assert net.verify(net.convert(estimator), estimator, X).ok


def test_verify_detects_a_different_model() -> None:
    X, _, _ = split("iris")
    with pytest.raises(net.ParityError, match="within 1e-05"):
        net.verify(net.convert(classifier("iris", "relu")), classifier("iris", "tanh"), X)
    agreement = net.verify(net.convert(classifier("iris", "relu")), classifier("iris", "tanh"), X, strict=False)
    assert agreement.mismatches and agreement.max_abs_diff > 1e-5


def test_converter_refuses_what_the_device_cannot_do() -> None:
    _, X_train, y_train = split("iris")
    with pytest.raises(TypeError, match="DecisionTreeClassifier"):
        net.convert(DecisionTreeClassifier().fit(X_train, y_train))
    with pytest.raises(ValueError, match="not fitted"):
        net.convert(MLPClassifier())
    with pytest.raises(TypeError, match="Normalizer"):
        net.convert(fit(make_pipeline(Normalizer(), tiny()), X_train, y_train))
    multilabel = np.stack([y_train == 0, y_train == 1], axis=1).astype(int)
    with pytest.raises(ValueError, match="multi-label"):
        net.convert(fit(tiny(), X_train, multilabel))
    X_reg, y_reg = load_diabetes(return_X_y=True)
    with pytest.raises(ValueError, match="output activation 'exp'"):
        net.convert(fit(MLPRegressor(loss="poisson", hidden_layer_sizes=(4,), max_iter=20), X_reg, y_reg))
    with pytest.raises(ValueError, match="clip=True"):
        net.convert(fit(make_pipeline(MinMaxScaler(clip=True), tiny()), X_train, y_train))


# ---- fuzzing the loader (emlearn_net.new) on mutated files, in the sanitizer build ----

FUZZ_SCRIPT = """\
import sys, array, emlearn_net
import fuzzcases


def exercise(m):
    out = array.array('f', [0.0] * m.outputs())
    for v in (-1e30, -3.5, 0.0, 1.0, 1e30):
        c = m.predict(array.array('f', [v] * m.inputs()), out)
        assert c is None if not m.is_classifier() else 0 <= c < m.outputs()


fuzzcases.run(sys.argv[1], int(sys.argv[2]), emlearn_net.new, 'bad net model: ', exercise)
"""


def _recrc(data: bytearray) -> None:
    if len(data) >= 12:
        data[8:12] = struct.pack("<I", zlib.crc32(bytes(data[12:]), zlib.crc32(bytes(data[:8]))))


def mutate(seed: bytes, rng: random.Random) -> bytes:
    data = bytearray(seed)
    action = rng.randrange(7)
    if action == 0:
        return bytes(data[: rng.randrange(len(data))])
    if action == 1:  # a header or layer-table field set to an interesting value, checksum fixed
        offset = rng.choice([4, 5, 6, 7, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21])
        data[offset] = rng.choice([0, 1, 2, 3, 4, 5, 16, 31, 32, 33, 255])
        _recrc(data)
        return bytes(data)

    def odd_weight(data: bytearray, _i: int) -> None:  # a weight set to NaN, inf, a huge or a tiny value
        j = 12 + 4 * rng.randrange(max(1, (len(data) - 12) // 4))
        value = rng.choice([float("nan"), float("inf"), -1e38, 1e38, 1e-45, 0.0])
        data[j:j + 4] = struct.pack("<f", value)[: len(data[j:j + 4])]

    edit_bytes(data, rng, ("set", "flip", "delete", "insert", odd_weight)[action - 2])
    if action in (4, 5, 6) or rng.random() < 0.3:
        _recrc(data)
    return bytes(data)


def fuzz_seeds() -> list[bytes]:
    _, X_train, y_train = split("iris")
    X_reg, y_reg = load_diabetes(return_X_y=True)
    return [
        net.convert(fit(make_pipeline(StandardScaler(), tiny((5, 3))), X_train, y_train)),
        net.convert(fit(tiny((4,), activation="tanh"), X_train, y_train == 1)),
        net.convert(fit(tiny((3,), MLPRegressor, activation="logistic"), X_reg[:50, :3], y_reg[:50])),
        net.convert(fit(tiny((2,), MLPRegressor, activation="identity"), X_reg[:50, :2], y_reg[:50])),
    ]


def test_fuzz_loader_in_sanitizer_build() -> None:
    seeds = fuzz_seeds()
    started = time.monotonic()
    _, loaded, rejected = run_fuzz_script(FUZZ_SCRIPT, fuzz_cases(seeds, mutate, FUZZ_CASES, seed=77))
    print(f"net fuzz: {FUZZ_CASES} files, {loaded} loaded / {rejected} rejected, {time.monotonic() - started:.1f} s")
    assert int(loaded) + int(rejected) == FUZZ_CASES
    assert int(loaded) >= len(seeds) and int(rejected) > FUZZ_CASES // 2
