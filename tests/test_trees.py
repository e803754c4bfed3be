"""emlearn_trees against scikit-learn: exact parity on held-out data, through the C module in the host firmware."""

from __future__ import annotations

import math
import os
import random
from typing import Any

import numpy as np
import pytest
from fuzzing import edit_bytes, fuzz_cases, run_fuzz_script
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from tinysense import trees

DATASETS = {"digits": load_digits, "iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer}
ESTIMATORS = {
    "rf": lambda: RandomForestClassifier(n_estimators=10, random_state=0),
    "extratrees": lambda: ExtraTreesClassifier(n_estimators=10, random_state=0),
    "tree": lambda: DecisionTreeClassifier(random_state=0),
}
REGRESSORS = {
    "rf": lambda: RandomForestRegressor(n_estimators=10, random_state=0),
    "extratrees": lambda: ExtraTreesRegressor(n_estimators=10, random_state=0),
    "tree": lambda: DecisionTreeRegressor(random_state=0),
}
FUZZ_CASES = int(os.environ.get("TINYSENSE_TREES_FUZZ", "300"))


def split(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = DATASETS[name](return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)


_fitted: dict[tuple[str, str], Any] = {}


def fitted(dataset: str, kind: str) -> Any:
    if (dataset, kind) not in _fitted:
        X_train, _, y_train, _ = split(dataset)
        _fitted[dataset, kind] = ESTIMATORS[kind]().fit(X_train, y_train)
    return _fitted[dataset, kind]


@pytest.mark.parametrize("variant", ["standard", "32"])
@pytest.mark.parametrize("fmt", ["binary", "csv"])
@pytest.mark.parametrize("kind", list(ESTIMATORS))
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_parity_with_sklearn(dataset: str, kind: str, fmt: str, variant: str) -> None:
    X_train, X_test, _, _ = split(dataset)
    estimator = fitted(dataset, kind)
    model = trees.convert(estimator, X_train) if fmt == "binary" else trees.to_csv(estimator, X_train)
    agreement = trees.verify(model, estimator, X_test, variant=variant)
    assert agreement.n_agree == agreement.n_samples == len(X_test)
    # digits is raw integer pixels: the int16 path; the others carry the float threshold table.
    assert (model[7] if isinstance(model, bytes) else int("\nq," in model)) == (0 if dataset == "digits" else 1)


@pytest.mark.parametrize("kind", list(ESTIMATORS))
def test_raw_int16_and_float_input_agree_on_integer_features(kind: str) -> None:
    X_train, X_test, _, _ = split("digits")
    estimator = fitted("digits", kind)
    model = trees.convert(estimator, X_train)
    as_int16 = trees.predict_on_host(model, X_test.astype(np.int16))
    as_float = trees.predict_on_host(model, X_test.astype(np.float32))
    np.testing.assert_array_equal(as_int16, as_float)
    np.testing.assert_array_equal(estimator.classes_[as_int16], estimator.predict(X_test))


def test_float_model_is_exact_beyond_the_data() -> None:
    """Inputs right at, just below and just above every threshold: parity is not luck with the test set."""
    X_train, X_test, _, _ = split("breast_cancer")
    estimator = fitted("breast_cancer", "rf")
    rng = np.random.default_rng(0)
    rows = []
    for tree in estimator.estimators_:
        t = tree.tree_
        for node in np.flatnonzero(t.children_left >= 0)[:20]:
            f, th = int(t.feature[node]), float(t.threshold[node])
            for value in (trees.round_down_f32(th), np.nextafter(trees.round_down_f32(th), np.float32(np.inf))):
                row = X_test[rng.integers(len(X_test))].astype(np.float32)
                row[f] = value
                rows.append(row)
    X = np.array(rows, dtype=np.float32)
    assert trees.verify(trees.convert(estimator, X_train), estimator, X).ratio == 1.0


def test_soft_vote_leaves() -> None:
    X_train, X_test, y_train, _ = split("breast_cancer")
    estimator = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X_train, y_train)
    model = trees.convert(estimator, X_train)
    assert model[6] == trees.LEAF_Q8  # impure leaves: soft vote, 8-bit leaves proven on X_train
    for leaves in ("proba8", "proba16", "proba"):
        model = trees.convert(estimator, X_train, leaves=leaves)
        assert model[6] == trees.LEAF_OPTIONS[leaves]
        assert trees.verify(model, estimator, X_test).ratio == 1.0
    with pytest.raises(ValueError, match="leaves"):
        trees.convert(estimator, X_train, leaves="bogus")


def soft_digits() -> tuple[Any, np.ndarray, np.ndarray]:
    """The benchmark's forest: digits, 10 trees of at most 100 leaves (impure leaves: soft voting)."""
    X_train, X_test, y_train, _ = split("digits")
    estimator = RandomForestClassifier(n_estimators=10, max_leaf_nodes=100, random_state=0).fit(X_train, y_train)
    return estimator, X_train, X_test


def test_quantise_sums_to_full_scale() -> None:
    rng = np.random.default_rng(0)
    for bits in (8, 16):
        for _ in range(200):
            p = rng.dirichlet(np.ones(10) * 0.3)
            q = trees.quantise(p, bits)
            assert q.sum() == (1 << bits) - 1 and q.min() >= 0
            assert np.max(np.abs(q / ((1 << bits) - 1) - p)) <= 1.0 / ((1 << bits) - 1)
    np.testing.assert_array_equal(trees.quantise(np.array([1 / 3, 1 / 3, 1 / 3]), 8), [85, 85, 85])
    np.testing.assert_array_equal(trees.quantise(np.array([0.5, 0.5]), 8), [128, 127])


@pytest.mark.parametrize("variant", ["standard", "32"])
def test_quantised_leaves_match_the_device_and_sklearn(variant: str) -> None:
    """The converter's simulation of the integer soft vote is what the C module computes, row by row, and the
    8-bit model it proves on train + test rows gives scikit-learn's predict on all of them."""
    estimator, X_train, X_test = soft_digits()
    X_all = np.vstack([X_train, X_test])
    model = trees.convert(estimator, X_train, X_check=X_all)
    assert model[6] == trees.LEAF_Q8
    device = trees.predict_on_host(model, X_all.astype(np.int16), variant=variant)
    np.testing.assert_array_equal(device, trees.quantised_predictions(estimator, X_all, 8))
    assert trees.verify(model, estimator, X_test, variant=variant).n_agree == len(X_test)
    # Smaller than float32 leaves: 1 byte per class value instead of 4.
    assert len(model) < len(trees.convert(estimator, X_train, leaves="proba")) / 2
    assert trees.capacity(model).leaf_bits == 8


def test_quantised_leaves_fall_back_when_8_bits_disagree(monkeypatch: pytest.MonkeyPatch) -> None:
    estimator, X_train, X_test = soft_digits()
    real = trees.quantised_predictions

    def flip_first_8_bit_row(est: Any, X: np.ndarray, bits: int) -> np.ndarray:
        got = real(est, X, bits)
        if bits == 8:
            got[0] = (got[0] + 1) % len(est.classes_)
        return got

    monkeypatch.setattr(trees, "quantised_predictions", flip_first_8_bit_row)
    with pytest.warns(UserWarning, match="8-bit leaf probabilities disagree with scikit-learn on 1 of"):
        model = trees.convert(estimator, X_train)
    assert model[6] == trees.LEAF_Q16
    assert trees.verify(model, estimator, X_test).ratio == 1.0
    # Without rows to check, nothing proves the quantised argmax: float32 leaves.
    assert trees.build(estimator, None, features="int").leaf_bits == trees.LEAF_PROBA


@pytest.mark.parametrize("variant", ["standard", "32"])
def test_csv_soft_vote_matches_sklearn_predict_and_predict_proba(variant: str) -> None:
    """Our CSV with 8-bit soft-vote leaves (emlearn's `lb,8` + `l,[...]` rows): scikit-learn's predict on every
    row, and predict_proba within the 8-bit quantisation step, computed exactly as the integer sums say."""
    estimator, X_train, X_test = soft_digits()
    X_all = np.vstack([X_train, X_test])
    csv = trees.to_csv(estimator, X_train, leaves="proba8")
    assert "\nlb,8\n" in csv and "\nl,[" in csv
    assert trees.to_csv(estimator, X_train, leaves="auto", X_check=X_all) == csv  # impure leaves: soft vote
    np.testing.assert_array_equal(trees.predict_on_host(csv, X_all.astype(np.int16), variant=variant),
                                  trees.quantised_predictions(estimator, X_all, 8))
    assert trees.verify(csv, estimator, X_test, variant=variant).n_agree == len(X_test)
    proba = trees.predict_on_host(csv, X_test.astype(np.int16), variant=variant, proba=True)
    assert np.max(np.abs(proba - estimator.predict_proba(X_test))) <= 1 / 255 + 1e-6
    binary = trees.convert(estimator, X_train, leaves="proba8")
    np.testing.assert_array_equal(proba, trees.predict_on_host(binary, X_test.astype(np.int16), proba=True))
    assert trees.capacity(csv) == trees.capacity(binary)
    with pytest.raises(ValueError, match="leaves must be 'class', 'proba8' or 'auto'"):
        trees.to_csv(estimator, X_train, leaves="proba16")


def emlearn_soft_csv(estimator: Any, lines_end: str = "\r\n") -> str:
    """A soft-vote CSV as emlearn 0.23's Wrapper(leaf_bits=8).save(format='csv') writes it, built here from
    scikit-learn's trees (independently of tinysense.trees): leaves quantised as emlearn does (round to 254
    steps, scaled to 0..255, truncated) and printed by numpy (long rows wrap), decimal thresholds, child links
    relative to the node, leaves de-duplicated in first-use order."""
    nodes: list[str] = []
    roots: list[int] = []
    leaves: list[np.ndarray] = []

    def leaf_ref(t: Any, node: int) -> int:
        value = t.value[node, 0] / t.value[node, 0].sum()
        q = (np.round(value * 254) / 254 * 255).astype(np.uint8)
        for i, known in enumerate(leaves):
            if np.array_equal(known, q):
                return -i - 1
        leaves.append(q)
        return -len(leaves)

    for tree in estimator.estimators_:
        t = tree.tree_
        internal = [n for n in range(t.node_count) if t.children_left[n] >= 0]  # scikit-learn's preorder
        index = {n: len(nodes) + i for i, n in enumerate(internal)}
        roots.append(index[0])
        for n in internal:
            links = [index[c] - index[n] if c in index else leaf_ref(t, int(c))
                     for c in (t.children_left[n], t.children_right[n])]
            nodes.append(f"n,{t.feature[n]},{round(float(t.threshold[n]), 6)},{links[0]},{links[1]}")
    lines = [f"f,{estimator.n_features_in_}", f"c,{len(estimator.classes_)}", "lb,8"]
    lines += [f"l,{leaf}" for leaf in leaves] + [f"r,{r}" for r in roots] + nodes
    return lines_end.join(lines)


def emlearn_soft_vote(estimator: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """emlearn's soft vote with those leaves: integer sums over the trees, argmax (lowest index on ties), and
    the sums / (255 * trees) as float32."""
    sums = np.zeros((len(X), len(estimator.classes_)), dtype=np.int64)
    for tree in estimator.estimators_:
        t = tree.tree_
        q = (np.round(t.value[:, 0] / t.value[:, 0].sum(axis=1, keepdims=True) * 254) / 254 * 255).astype(np.uint8)
        sums += q[tree.apply(X.astype(np.float32))]
    return np.argmax(sums, axis=1), (sums.astype(np.float32) / np.float32(255 * len(estimator.estimators_)))


@pytest.mark.parametrize("n_classes", [10, 30])
def test_reads_emlearn_soft_vote_csv(n_classes: int) -> None:
    """emlearn's own soft-vote CSV (numpy-printed leaf rows, wrapped over several lines for 30 classes, CRLF):
    predictions and out values are emlearn's soft vote exactly, and agree with scikit-learn's predict."""
    if n_classes == 10:
        estimator, X_train, X_test = soft_digits()
    else:
        rng = np.random.default_rng(3)
        y = rng.integers(0, n_classes, size=3000)
        X = (rng.normal(size=(3000, 8)) * 20 + y[:, None] * np.arange(1, 9)).round()
        X_train, X_test = X[:2000], X[2000:]
        estimator = RandomForestClassifier(n_estimators=10, max_leaf_nodes=100, random_state=0).fit(X_train, y[:2000])
    csv = emlearn_soft_csv(estimator)
    wrapped = any(not line[:1].isalpha() for line in csv.splitlines())  # numpy's continuation lines
    assert wrapped == (n_classes == 30)
    expected, expected_proba = emlearn_soft_vote(estimator, X_test)
    got = trees.predict_on_host(csv, X_test.astype(np.int16))
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(trees.predict_on_host(csv, X_test.astype(np.int16), proba=True), expected_proba)
    assert np.mean(estimator.classes_[got] == estimator.predict(X_test)) >= 0.97


def test_binary_format_is_bit_packed_and_versioned() -> None:
    estimator, X_train, _ = soft_digits()
    forest = trees.build(estimator, X_train)
    model = trees.pack(forest)
    assert model[:5] == b"TSTR\x02"
    feature_bits, threshold_bits, child_bits, root_bits = model[32:36]
    assert feature_bits == 6 and threshold_bits <= 5  # 64 pixel features, thresholds 1..17
    node_bits = feature_bits + threshold_bits + 2 * child_bits
    assert node_bits <= 32  # under 4 bytes a node (8 in format version 1)
    expected = (trees.HEADER_SIZE + (len(forest.roots) * root_bits + len(forest.nodes) * node_bits + 7) // 8
                + forest.n_leaf_values)
    assert len(model) == expected


def emlearn_style_predict(estimator: Any, X: np.ndarray) -> np.ndarray:
    """What emlearn(-micropython) computes: `x < int(threshold)` on int16, majority vote."""
    votes = np.zeros((len(X), len(estimator.classes_)))
    for tree in getattr(estimator, "estimators_", [estimator]):
        t = tree.tree_
        for i, x in enumerate(X.astype(np.int16)):
            node = 0
            while t.children_left[node] >= 0:
                go_left = x[t.feature[node]] < int(t.threshold[node])
                node = t.children_left[node] if go_left else t.children_right[node]
            votes[i, np.argmax(t.value[node, 0])] += 1
    return estimator.classes_[np.argmax(votes, axis=1)]


def test_naive_truncation_disagrees_ours_agrees() -> None:
    rng = np.random.default_rng(1)
    X = rng.integers(0, 4, size=(400, 3))  # small-range integer features: thresholds 0.5, 1.5, 2.5
    y = (X[:, 0] >= 2).astype(int) + (X[:, 1] >= 1).astype(int)
    estimator = DecisionTreeClassifier(random_state=0).fit(X, y)
    expected = estimator.predict(X)
    assert np.mean(emlearn_style_predict(estimator, X) != expected) > 0.2
    for model in (trees.convert(estimator, X), trees.to_csv(estimator, X)):
        np.testing.assert_array_equal(estimator.classes_[trees.predict_on_host(model, X.astype(np.int16))], expected)
    # A CSV as emlearn writes it (scikit-learn's decimal thresholds, absolute node order ignored here):
    # our loader reads a decimal threshold as `x <= t`.
    csv = trees.to_csv(estimator, X).splitlines()
    lines = []
    t = estimator.tree_
    internal = [n for n in range(t.node_count) if t.children_left[n] >= 0]
    order = iter(_preorder(t))
    for line in csv:
        if line.startswith("n,"):
            node = next(order)
            f, _, left, right = line.split(",")[1:]
            lines.append(f"n,{f},{float(t.threshold[node])!r},{left},{right}")
        else:
            lines.append(line)
    assert len(internal) == sum(line.startswith("n,") for line in lines)
    got = trees.predict_on_host("\n".join(lines) + "\n", X.astype(np.int16))
    np.testing.assert_array_equal(estimator.classes_[got], expected)


def _preorder(t: Any) -> list[int]:
    order, stack = [], [0]
    while stack:
        node = stack.pop()
        if t.children_left[node] >= 0:
            order.append(node)
            stack += [int(t.children_right[node]), int(t.children_left[node])]
    return order


def test_unsupported_estimator_and_parity_error() -> None:
    X_train, X_test, y_train, _ = split("iris")
    with pytest.raises(TypeError, match="LogisticRegression.*RandomForestClassifier"):
        trees.convert(LogisticRegression(max_iter=1000).fit(X_train, y_train))
    # A model checked against a different estimator must fail verification.
    other = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X_train, y_train)
    with pytest.raises(trees.ParityError, match="agree"):
        trees.verify(trees.convert(other, X_train), fitted("iris", "rf"), X_test)


def test_threshold_rounding_helpers() -> None:
    assert float(trees.round_down_f32(0.1)) <= 0.1 < float(np.nextafter(trees.round_down_f32(0.1), np.float32(1)))
    assert trees.choose_features(np.array([[1.0, 2.0]]), "auto") == trees.FEATURES_INT
    assert trees.choose_features(np.array([[1.5, 2.0]]), "auto") == trees.FEATURES_TABLE
    assert trees.choose_features(np.array([[40000.0]]), "auto") == trees.FEATURES_TABLE
    assert trees.choose_features(None, "auto") == trees.FEATURES_TABLE
    assert math.floor(4.5) + 1 == trees._int_threshold(4.5) == 5


FUZZ_SCRIPT = """\
import sys, array, emlearn_trees
import fuzzcases

m = emlearn_trees.new(64, 4096, 4096, max_features=64, max_classes=16)


def load(data):
    emlearn_trees.load_model(m, data)
    return m


def exercise(m):
    nf = m.features()
    out = array.array('f', bytes(4 * m.outputs()))
    for v in (-32768, 0, 7, 32767):
        c = m.predict(array.array('h', [v] * nf), out)
        if m.is_regressor():
            assert c is None and out[0] == out[0]
        else:
            assert 0 <= c < m.outputs()
        m.predict(array.array('f', [v * 0.01] * nf), out)


fuzzcases.run(sys.argv[1], int(sys.argv[2]), load, 'bad trees model: ', exercise)
"""


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    action = rng.randrange(5)
    if action == 0:
        return bytes(b[: rng.randrange(len(b))])

    def csv_char(data: bytearray, i: int) -> None:  # a character that keeps a CSV model looking like one
        data[i] = rng.choice(b"0123456789-,.\n[] ")

    edit_bytes(b, rng, ("set", "flip", csv_char, "delete")[action - 1])
    return bytes(b)


def test_fuzz_loader_in_sanitizer_build() -> None:
    X_train, _, y_train, _ = split("iris")
    estimator = RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(X_train, y_train)
    Xr, yr = load_diabetes(return_X_y=True)
    regressor = RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0).fit(Xr, yr)
    seeds = [trees.convert(estimator, X_train, leaves="class"), trees.convert(estimator, X_train, leaves="proba"),
             trees.convert(estimator, X_train, leaves="proba8"), trees.convert(estimator, X_train, leaves="proba16"),
             trees.to_csv(estimator, X_train).encode(), trees.to_csv(fitted("digits", "tree"), None).encode(),
             trees.to_csv(estimator, X_train, leaves="proba8").encode(), emlearn_soft_csv(estimator).encode(),
             trees.convert(regressor, Xr), trees.to_csv(regressor, Xr).encode()]
    _, loaded, rejected = run_fuzz_script(FUZZ_SCRIPT, fuzz_cases(seeds, mutate, FUZZ_CASES, seed=1234),
                                          timeout=600)
    assert int(loaded) + int(rejected) == FUZZ_CASES
    assert int(loaded) >= len(seeds) and int(rejected) > FUZZ_CASES // 2


def diabetes_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = load_diabetes(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=42)


_regressors: dict[tuple[str, bool], Any] = {}


def fitted_regressor(kind: str, centered: bool = False) -> Any:
    if (kind, centered) not in _regressors:
        X_train, _, y_train, _ = diabetes_split()
        target = y_train - y_train.mean() if centered else y_train
        _regressors[kind, centered] = REGRESSORS[kind]().fit(X_train, target)
    return _regressors[kind, centered]


@pytest.mark.parametrize("variant", ["standard", "32"])
@pytest.mark.parametrize("fmt", ["binary", "csv"])
@pytest.mark.parametrize("kind", list(REGRESSORS))
def test_regression_within_1e5_relative_of_sklearn(kind: str, fmt: str, variant: str) -> None:
    X_train, X_test, _, _ = diabetes_split()
    estimator = fitted_regressor(kind)
    model = trees.convert(estimator, X_train) if fmt == "binary" else trees.to_csv(estimator, X_train)
    assert trees.model_is_regressor(model)
    got = trees.predict_on_host(model, X_test, variant=variant)
    expected = estimator.predict(X_test)
    assert got.dtype == np.float32 and got.shape == expected.shape
    # Diabetes targets are positive (25..346): every leaf is positive and the plain relative error applies.
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=0)
    assert trees.verify(model, estimator, X_test, variant=variant).max_error <= 1e-5


def test_regression_near_zero_uses_the_scaled_tolerance() -> None:
    """Centred targets: predictions near 0 are means of leaves of both signs, so float32 rounding is relative
    to the leaves' magnitude (regression_scale), not to the prediction."""
    X_train, X_test, _, _ = diabetes_split()
    estimator = fitted_regressor("rf", centered=True)
    model = trees.convert(estimator, X_train)
    agreement = trees.verify(model, estimator, X_test)
    assert agreement.ratio == 1.0 and agreement.max_error <= 1e-5
    scale = trees.regression_scale(estimator, X_test)
    assert np.all(scale >= np.abs(estimator.predict(X_test)))
    assert np.any(scale > 10 * np.abs(estimator.predict(X_test)))  # some predictions really are near 0


def test_regression_verify_catches_a_different_model() -> None:
    X_train, X_test, _, _ = diabetes_split()
    other = DecisionTreeRegressor(max_depth=2, random_state=0).fit(X_train, fitted_regressor("tree").predict(X_train))
    with pytest.raises(trees.ParityError, match="agree"):
        trees.verify(trees.convert(other, X_train), fitted_regressor("rf"), X_test)
    # Leaves are float32 exactly: a model whose leaves were perturbed by 1e-4 relative fails the 1e-5 tolerance.
    forest = trees.build(fitted_regressor("rf"), X_train)
    forest.leaves = [leaf * (1 + 1e-4) for leaf in forest.leaves]
    agreement = trees.verify(trees.pack(forest), fitted_regressor("rf"), X_test, strict=False)
    assert agreement.n_agree == 0 and agreement.max_error > 5e-5


def test_regression_layout_and_errors() -> None:
    X_train, _, y_train, _ = diabetes_split()
    estimator = fitted_regressor("rf")
    model = trees.convert(estimator, X_train)
    assert model[5] == trees.KIND_REGRESSOR and model[6] == trees.LEAF_PROBA and model[7] == trees.FEATURES_TABLE
    forest = trees.build(estimator, X_train)
    assert forest.n_classes == 1 and all(isinstance(leaf, float) for leaf in forest.leaves)
    expected_leaves = {float(np.float32(v)) for tree in estimator.estimators_
                       for v in tree.tree_.value[tree.tree_.children_left < 0, 0, 0]}
    assert set(forest.leaves) == expected_leaves  # deduplicated, exactly sklearn's leaves in float32
    csv = trees.to_csv(estimator, X_train)
    assert csv.startswith("f,10\nc,0\nlf,32\n")
    assert trees.capacity(csv) == trees.capacity(model)
    with pytest.raises(ValueError, match="'auto' or 'value'"):
        trees.convert(estimator, X_train, leaves="proba")
    multi = RandomForestRegressor(n_estimators=2, random_state=0).fit(X_train, np.c_[y_train, y_train])
    with pytest.raises(TypeError, match="2 outputs: multi-output regression is not supported"):
        trees.convert(multi, X_train)
