"""emlearn_neighbors against scikit-learn, through the C module in the host firmware.

Parity: the device must predict exactly what scikit-learn's brute-force KNeighborsClassifier predicts
when fitted on the same quantised data (the model file's own items). Every sample of a dataset goes
through one firmware process.
"""

from __future__ import annotations

import os
import random
import struct
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from fuzzing import edit_bytes, fuzz_cases, run_fuzz_script
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from tinysense import host, neighbors

DATASETS = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer, "digits": load_digits}
K_VALUES = (1, 3, 5, 10)
FUZZ_CASES = int(os.environ.get("TINYSENSE_NEIGHBORS_FUZZ", "300"))


def split(name: str):
    X, y = DATASETS[name](return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)
    return X, X_train, y_train


@pytest.mark.parametrize("variant", ["standard", "32"])
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_parity_with_sklearn_brute_force_on_quantised_data(dataset: str, variant: str) -> None:
    X, X_train, y_train = split(dataset)
    estimators = [KNeighborsClassifier(n_neighbors=k).fit(X_train, y_train) for k in K_VALUES]
    models = [neighbors.convert(e) for e in estimators]
    got = neighbors.predict_on_host(models, X, variant=variant)  # all samples, all k: one process
    for k, estimator, model, labels in zip(K_VALUES, estimators, models, got, strict=True):
        expected = neighbors.reference_predict(model, X)
        np.testing.assert_array_equal(labels, expected, err_msg=f"{dataset} k={k}")
        # The quantisation keeps the geometry: the original float estimator agrees almost everywhere
        # (digits is integer data, used as it is: exactly).
        original = np.mean(estimator.classes_[labels] == estimator.predict(X))
        assert original == 1.0 if dataset == "digits" else original >= 0.98, (k, original)
    assert (models[0][6] & neighbors.FLAG_QUANTIZER) == (0 if dataset == "digits" else 1)


def test_verify_reports_agreement() -> None:
    X, X_train, y_train = split("wine")
    estimator = KNeighborsClassifier(n_neighbors=5).fit(X_train, y_train)
    agreement = neighbors.verify(neighbors.convert(estimator), estimator, X)
    assert agreement.n_agree == agreement.n_samples == len(X) and not agreement.mismatches
    assert "agree with scikit-learn on the quantised data" in str(agreement)


def test_verify_raises_on_a_device_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    X, X_train, y_train = split("iris")
    estimator = KNeighborsClassifier(n_neighbors=3).fit(X_train, y_train)
    model = neighbors.convert(estimator)
    real = neighbors.predict_on_host

    def off_by_one(*args, **kwargs):
        labels = real(*args, **kwargs)
        labels[7] = (labels[7] + 1) % 3
        return labels

    monkeypatch.setattr(neighbors, "predict_on_host", off_by_one)
    with pytest.raises(neighbors.ParityError, match="first mismatches at rows \\[7\\]"):
        neighbors.verify(model, estimator, X)
    assert neighbors.verify(model, estimator, X, strict=False).mismatches == (7,)


def test_int16_and_float_input_agree_on_integer_features() -> None:
    X, X_train, y_train = split("digits")
    estimator = KNeighborsClassifier(n_neighbors=5).fit(X_train, y_train)
    model = neighbors.convert(estimator)
    as_int16 = neighbors.predict_on_host(model, X.astype(np.int16))
    as_float = neighbors.predict_on_host(model, X.astype(np.float32))
    np.testing.assert_array_equal(as_int16, as_float)
    np.testing.assert_array_equal(estimator.classes_[as_int16], estimator.predict(X))


QUANTIZE_SCRIPT = """\
import sys, array, emlearn_neighbors
model_path, x_path, out_path = sys.argv[1:4]
with open(model_path, 'rb') as f:
    m = emlearn_neighbors.load(f)
nf = m.features()
with open(x_path, 'rb') as f:
    X = array.array('f', f.read())
mv = memoryview(X)
q = array.array('h', bytes(2 * nf))
with open(out_path, 'wb') as f:
    for i in range(len(X) // nf):
        m.quantize(mv[i * nf:(i + 1) * nf], q)
        f.write(q)
"""


@pytest.mark.parametrize("variant", ["standard", "32"])
def test_device_quantiser_equals_numpy(variant: str) -> None:
    rng = np.random.default_rng(3)
    X_train = rng.normal(0, [1.0, 10.0, 1000.0, 0.01], size=(50, 4))
    quantizer = neighbors.fit_quantizer(X_train, "float")
    model = neighbors.pack(neighbors.Model(1, quantizer(X_train), np.zeros(50, np.int16), quantizer))
    # Random values, values far outside the training range, infinities, and inputs right at the
    # rounding boundaries q +- 0.5 (and their float32 neighbours).
    rows = [rng.normal(0, [2.0, 20.0, 2000.0, 0.02], size=(2000, 4)), rng.normal(0, 1e6, size=(200, 4)),
            np.array([[np.inf, -np.inf, np.inf, -np.inf], [-np.inf, np.inf, 0, 0]])]
    q = rng.integers(-32000, 32000, size=(3000, 4)) + 0.5
    at_half = (q / quantizer.scale + quantizer.offset).astype(np.float32)
    rows += [at_half, np.nextafter(at_half, np.float32(np.inf)), np.nextafter(at_half, np.float32(-np.inf))]
    X = np.concatenate(rows).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="tinysense-quantize-") as tmp:
        d = Path(tmp)
        (d / "model").write_bytes(model)
        (d / "x").write_bytes(X.astype("<f4").tobytes())
        (d / "q.py").write_text(QUANTIZE_SCRIPT)
        proc = host.run([str(d / "q.py"), str(d / "model"), str(d / "x"), str(d / "out")], variant=variant)
        assert proc.returncode == 0, proc.stderr.decode()
        got = np.frombuffer((d / "out").read_bytes(), dtype="<i2").reshape(X.shape)
    np.testing.assert_array_equal(got, quantizer(X))
    assert np.any(quantizer(X) == 32767) and np.any(quantizer(X) == -32768)


def test_duplicated_points_follow_sklearn_tie_breaking() -> None:
    """Many equidistant items at the k-th place: the device picks the voters as scikit-learn does."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, size=(600, 2)).astype(np.float64)  # 9 distinct points, ~67 copies of each
    y = rng.integers(0, 4, size=600)
    Q = rng.integers(-1, 4, size=(300, 2)).astype(np.int16)
    distances = ((X[None, :, :] - Q[:, None, :]) ** 2).sum(-1)
    k_values = (1, 2, 5, 40, 67, 68, 100, 150, 333, 599, 600)
    estimators = [KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(X, y) for k in k_values]
    got = neighbors.predict_on_host([neighbors.convert(e) for e in estimators], Q)
    stable_sort_differs = 0
    for k, estimator, labels in zip(k_values, estimators, got, strict=True):
        with threadpool_limits(limits=1, user_api="openmp"):
            expected = estimator.predict(Q.astype(np.float64))
        np.testing.assert_array_equal(labels, expected, err_msg=f"k={k}")
        # A stable sort by (distance, index) picks different voters: the test can tell them apart.
        lexicographic = [np.argmax(np.bincount(y[np.lexsort((np.arange(len(X)), row))[:k]], minlength=4))
                         for row in distances]
        stable_sort_differs += int(np.sum(lexicographic != expected))
    assert stable_sort_differs > 0


def test_extreme_values_do_not_overflow() -> None:
    """Features at the int16 extremes: squared distances up to 64 * 65535^2, far past int32/uint32."""
    rng = np.random.default_rng(5)
    X = rng.choice([-32768, -32767, 0, 32766, 32767], size=(200, 64)).astype(np.int16)
    y = rng.integers(0, 3, size=200)
    Q = rng.choice([-32768, 32767, 1], size=(100, 64)).astype(np.int16)
    estimator = KNeighborsClassifier(n_neighbors=3, algorithm="brute").fit(X.astype(np.float64), y)
    model = neighbors.convert(estimator)
    assert model[6] == 0  # integer features: stored as they are
    with threadpool_limits(limits=1, user_api="openmp"):
        expected = estimator.predict(Q.astype(np.float64))
    np.testing.assert_array_equal(neighbors.predict_on_host(model, Q), expected)


def test_many_classes() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 3))
    y = np.arange(3000) % 1500  # 1500 classes, far beyond emlearn's 10
    estimator = KNeighborsClassifier(n_neighbors=1).fit(X, y)
    model = neighbors.convert(estimator)
    got = neighbors.predict_on_host(model, X[:500])
    np.testing.assert_array_equal(got, neighbors.reference_predict(model, X[:500]))
    np.testing.assert_array_equal(estimator.classes_[got], y[:500])


def test_converter_refuses_what_the_device_cannot_do() -> None:
    _, X_train, y_train = split("iris")
    with pytest.raises(TypeError, match="LogisticRegression.*KNeighborsClassifier"):
        neighbors.convert(LogisticRegression(max_iter=500).fit(X_train, y_train))
    with pytest.raises(ValueError, match="not fitted"):
        neighbors.convert(KNeighborsClassifier())
    with pytest.raises(ValueError, match="weights='distance'"):
        neighbors.convert(KNeighborsClassifier(weights="distance").fit(X_train, y_train))
    with pytest.raises(ValueError, match="metric 'manhattan'"):
        neighbors.convert(KNeighborsClassifier(metric="manhattan").fit(X_train, y_train))
    with pytest.raises(ValueError, match="features='int' needs integer"):
        neighbors.convert(KNeighborsClassifier().fit(X_train, y_train), features="int")
    with pytest.raises(ValueError, match="features must be"):
        neighbors.convert(KNeighborsClassifier().fit(X_train, y_train), features="fixed")
    # p=2 Minkowski is Euclidean; the float quantiser on integer data is fine too.
    model = neighbors.convert(KNeighborsClassifier(metric="minkowski", p=2).fit(X_train, y_train))
    assert neighbors.unpack(model).k == 5


def test_pack_unpack_round_trip() -> None:
    _, X_train, y_train = split("wine")
    built = neighbors.build(KNeighborsClassifier(n_neighbors=4).fit(X_train, y_train))
    back = neighbors.unpack(neighbors.pack(built))
    assert back.k == 4
    np.testing.assert_array_equal(back.data, built.data)
    np.testing.assert_array_equal(back.labels, built.labels)
    np.testing.assert_array_equal(back.quantizer.scale, built.quantizer.scale)
    assert len(neighbors.pack(built)) == 24 + 8 * 13 + 2 * 14 * len(X_train)


# ---- fuzzing: every loader (load, load_model) on mutated files, in the sanitizer build ----

FUZZ_SCRIPT = """\
import sys, array, emlearn_neighbors
from fuzzcases import cases
path, n = sys.argv[1], int(sys.argv[2])
fixed = emlearn_neighbors.new(64, 4, 3)
counts = [0, 0, 0, 0]
for data in cases(path, n):
    try:
        m = emlearn_neighbors.load(data)
        counts[0] += 1
    except ValueError as e:
        assert str(e).startswith('bad k-NN model: '), e
        counts[1] += 1
        m = None
    try:
        fixed.load_model(data)
        counts[2] += 1
    except ValueError as e:
        assert str(e).startswith('bad k-NN model: '), e
        counts[3] += 1
    for model in (m, fixed):
        if model is None or model.items() < model.k():
            continue
        nf = model.features()
        for v in (-32768, 0, 32767):
            model.predict(array.array('h', [v] * nf))
            model.predict(array.array('f', [v * 0.37] * nf))
        for j in range(model.items()):
            index, distance, label = model.getresult(j)
            assert 0 <= index < model.items()
        out = array.array('h', [0] * nf)
        model.getitem(model.items() - 1, out)
        assert emlearn_neighbors.load(model.save()).items() == model.items()
print('fuzz', *counts)
"""


def _recrc(data: bytearray) -> None:
    if len(data) >= neighbors.HEADER_SIZE:
        crc = zlib.crc32(bytes(data[neighbors.HEADER_SIZE:]), zlib.crc32(bytes(data[:neighbors.HEADER.size])))
        data[neighbors.HEADER.size:neighbors.HEADER_SIZE] = struct.pack("<I", crc)


def mutate(seed: bytes, rng: random.Random) -> bytes:
    data = bytearray(seed)
    action = rng.randrange(7)
    if action == 0:
        return bytes(data[: rng.randrange(len(data))])
    if action == 1:  # a header field set to an interesting value, checksum fixed
        offset, fmt = rng.choice([(4, "<B"), (5, "<B"), (6, "<B"), (7, "<B"), (8, "<H"), (10, "<H"), (12, "<I"),
                                  (16, "<I")])
        value = rng.choice([0, 1, 2, 3, 4, 5, 63, 64, 65, 255, 4096, 4097, 65535, 1 << 20, 0xFFFFFFFF])
        data[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value % (256 ** struct.calcsize(fmt)))
        _recrc(data)
        return bytes(data)
    # random bytes anywhere (5), or in the quantiser/data with the checksum fixed (6)
    edit_bytes(data, rng, ("set", "flip", "delete", "set", "set")[action - 2])
    if action in (4, 6) or rng.random() < 0.3:
        _recrc(data)
    return bytes(data)


def fuzz_seeds() -> list[bytes]:
    X, X_train, y_train = split("iris")
    seeds = [neighbors.convert(KNeighborsClassifier(n_neighbors=3).fit(X_train[:20], y_train[:20])),
             neighbors.convert(KNeighborsClassifier(n_neighbors=1).fit(X_train[:5], y_train[:5]))]
    digits, _, digits_y = split("digits")
    small = digits[:6, :4]
    seeds.append(neighbors.convert(KNeighborsClassifier(n_neighbors=2).fit(small, digits_y[:6])))  # int16, no map
    seeds.append(neighbors.pack(neighbors.Model(3, np.zeros((0, 4), np.int16), np.zeros(0, np.int16),
                                                neighbors.fit_quantizer(X_train))))  # no items yet
    return seeds


def test_fuzz_loaders_in_sanitizer_build() -> None:
    seeds = fuzz_seeds()
    started = time.monotonic()
    cases = fuzz_cases(seeds, mutate, FUZZ_CASES, seed=2024)
    _, loaded, rejected, loaded_fixed, rejected_fixed = run_fuzz_script(FUZZ_SCRIPT, cases)
    print(f"neighbors fuzz: {FUZZ_CASES} files, load: {loaded} loaded / {rejected} rejected, load_model: "
          f"{loaded_fixed} / {rejected_fixed}, {time.monotonic() - started:.1f} s")
    assert int(loaded) + int(rejected) == FUZZ_CASES == int(loaded_fixed) + int(rejected_fixed)
    assert int(loaded) >= len(seeds) and int(rejected) > FUZZ_CASES // 2
