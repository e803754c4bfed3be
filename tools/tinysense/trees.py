"""Convert scikit-learn tree ensembles for the device's `emlearn_trees` module, with exact parity.

Classifiers (RandomForest/ExtraTrees/DecisionTree) give scikit-learn's classes exactly; regressors
(RandomForestRegressor, ExtraTreesRegressor, DecisionTreeRegressor; one output) take the same leaves
exactly and give the mean of their float32 leaf values, within float32 rounding of scikit-learn's
float64 mean.

scikit-learn goes left when ``x <= t`` (float32 feature, float64 threshold); emlearn's C walk goes
left when ``x < T`` on int16 features. The converter owns the feature quantisation:

* integer features (every training value an integer within int16): features stay as they are and
  each threshold becomes ``T = floor(t) + 1``, which is exactly ``x <= t`` for every integer ``x``.
  (emlearn's ``int(t)`` truncation sends ``x == floor(t)`` the wrong way.)
* float features: each feature is quantised on the device to its rank among the model's own
  thresholds for that feature (stored with the model as float32 rounded towards -inf). A node
  with the k-th threshold gets ``T = k + 1``; then ``rank(x) < T`` is ``x <= t`` for every float32
  ``x``, so parity holds for all inputs, not only for the data it was checked on.

Soft-vote (probability) leaves are quantised to 8 bits per class by default (each leaf's values sum to
255; the device sums them exactly as integers and takes the argmax). Quantisation could flip the argmax on
a near-tie, so ``build`` checks the quantised model against ``estimator.predict`` on the rows it is given
(``X_check``, else ``X_train``) and falls back to 16-bit, then float32 leaves when a row disagrees (with a
warning naming the fallback).

``convert`` writes the compact binary format (format version 2: header + bit-packed nodes + leaves + CRC32),
``to_csv`` the emlearn CSV format (plus ``q`` records for the float threshold table), and
``verify`` runs a model in the host firmware and compares it with ``estimator.predict``.
"""

from __future__ import annotations

import math
import struct
import tempfile
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinysense import host

CLASSIFIERS = ("RandomForestClassifier", "ExtraTreesClassifier", "DecisionTreeClassifier")
REGRESSORS = ("RandomForestRegressor", "ExtraTreesRegressor", "DecisionTreeRegressor")
SUPPORTED_ESTIMATORS = CLASSIFIERS + REGRESSORS

MAGIC = b"TSTR"
FORMAT_VERSION = 2
KIND_CLASSIFIER = 1
KIND_REGRESSOR = 2
FEATURES_INT = 0
FEATURES_TABLE = 1
LEAF_CLASS = 0
LEAF_Q8 = 8  # n_classes uint8 per leaf, summing to 255
LEAF_Q16 = 16  # n_classes uint16 per leaf, summing to 65535
LEAF_PROBA = 32  # n_classes float32 per leaf (or one float32 regression value)
# magic, version, kind, leaf_bits, feature mode, n_features, n_classes, n_trees, threshold_base, n_nodes,
# n_leaves, n_table; then uint32 CRC32 and the node field widths (WIDTHS).
HEADER = struct.Struct("<4sBBBBHHHhIII")
WIDTHS = struct.Struct("<BBBB")  # feature, threshold, child, root bits
HEADER_SIZE = HEADER.size + 4 + WIDTHS.size
INT16_MIN, INT16_MAX = -32768, 32767


class ParityError(AssertionError):
    """The device disagrees with scikit-learn on some samples."""


@dataclass
class Forest:
    """A flattened ensemble in the device's layout (children: relative forward offsets or ~leaf)."""

    n_features: int
    n_classes: int
    feature_mode: int
    leaf_bits: int
    kind: int = KIND_CLASSIFIER
    roots: list[int] = field(default_factory=list)
    nodes: list[tuple[int, int, int, int]] = field(default_factory=list)  # feature, threshold, left, right
    leaves: list[Any] = field(default_factory=list)  # class index, tuple of n_classes values, or float32 value
    table: list[np.ndarray] = field(default_factory=list)  # per feature: sorted float32 thresholds

    @property
    def n_leaf_values(self) -> int:
        return len(self.leaves) * (1 if self.leaf_bits == LEAF_CLASS else self.n_classes)

    @property
    def n_table(self) -> int:
        return sum(len(t) for t in self.table)


def is_regressor(estimator: Any) -> bool:
    return type(estimator).__name__ in REGRESSORS


def _estimators(estimator: Any) -> list[Any]:
    name = type(estimator).__name__
    if name not in SUPPORTED_ESTIMATORS:
        raise TypeError(f"unsupported estimator {name}: supported are {', '.join(SUPPORTED_ESTIMATORS)}")
    if not hasattr(estimator, "n_outputs_"):
        raise ValueError(f"{name} is not fitted")
    if estimator.n_outputs_ != 1:
        what = "regression" if is_regressor(estimator) else "classification"
        raise TypeError(f"{name} has {estimator.n_outputs_} outputs: multi-output {what} is not supported "
                        "(train one model per output)")
    return list(getattr(estimator, "estimators_", [estimator]))


def round_down_f32(t: float) -> np.float32:
    """The largest float32 <= t: for a float32 x, `x <= t` is exactly `x <= round_down_f32(t)`."""
    t32 = np.float32(t)
    if float(t32) > t:
        t32 = np.nextafter(t32, np.float32(-np.inf))
    return t32


def choose_features(X_train: np.ndarray | None, features: str) -> int:
    """FEATURES_INT or FEATURES_TABLE for features='auto'|'int'|'float'."""
    if features == "int":
        return FEATURES_INT
    if features == "float":
        return FEATURES_TABLE
    if features != "auto":
        raise ValueError(f"features must be 'auto', 'int' or 'float', got {features!r}")
    if X_train is None:
        return FEATURES_TABLE
    X = np.asarray(X_train, dtype=np.float64)
    integral = bool(np.all(np.isfinite(X)) and np.all(X == np.round(X)))
    in_range = bool(X.size == 0 or (X.min() >= INT16_MIN and X.max() <= INT16_MAX))
    return FEATURES_INT if integral and in_range else FEATURES_TABLE


def _tables(trees: Sequence[Any], n_features: int) -> list[np.ndarray]:
    per_feature: list[set[float]] = [set() for _ in range(n_features)]
    for tree in trees:
        t = tree.tree_
        for node in np.flatnonzero(t.children_left >= 0):
            per_feature[int(t.feature[node])].add(float(round_down_f32(float(t.threshold[node]))))
    return [np.array(sorted(values), dtype=np.float32) for values in per_feature]


def _int_threshold(t: float) -> int:
    threshold = math.floor(t) + 1
    if not INT16_MIN <= threshold <= INT16_MAX:
        raise ValueError(f"threshold {t} is outside the int16 range: use features='float'")
    return threshold


def _pure(trees: Sequence[Any]) -> bool:
    for tree in trees:
        t = tree.tree_
        values = t.value[t.children_left < 0, 0, :]
        if np.any(np.count_nonzero(values, axis=1) != 1):
            return False
    return True


LEAF_OPTIONS = {"class": LEAF_CLASS, "proba8": LEAF_Q8, "proba16": LEAF_Q16, "proba": LEAF_PROBA}


def quantise(proba: np.ndarray, bits: int) -> np.ndarray:
    """Probabilities (summing to 1) as integers summing to 2**bits - 1 (largest remainders round up, the
    lowest class first on equal remainders)."""
    full = (1 << bits) - 1
    raw = np.asarray(proba, dtype=np.float64) * full
    q = np.floor(raw).astype(np.int64)
    short = int(full - q.sum())
    order = np.argsort(-(raw - q), kind="stable")
    q[order[:max(short, 0)]] += 1
    return q


def _leaf_proba(t: Any, node: int) -> np.ndarray:
    value = np.asarray(t.value[node, 0, :], dtype=np.float64)
    return value / value.sum()


def quantised_predictions(estimator: Any, X: np.ndarray, bits: int) -> np.ndarray:
    """The class indices the device computes with `bits`-bit quantised leaves (exact integer sums, argmax with
    the lowest index on ties), from scikit-learn's own leaf assignment (the device walks the same paths)."""
    X32 = np.asarray(X, dtype=np.float32)
    total = np.zeros((len(X32), len(estimator.classes_)), dtype=np.int64)
    for tree in _estimators(estimator):
        t = tree.tree_
        q = np.zeros((t.node_count, total.shape[1]), dtype=np.int64)
        for node in np.flatnonzero(t.children_left < 0):
            q[node] = quantise(_leaf_proba(t, int(node)), bits)
        total += q[tree.apply(X32)]
    return np.argmax(total, axis=1)


def choose_leaf_bits(estimator: Any, X_check: np.ndarray | None) -> int:
    """The narrowest soft-vote leaves (8, 16, else float32) that give estimator.predict on every row of X_check
    (float32 when there are no rows to check)."""
    if X_check is None or len(X_check) == 0:
        return LEAF_PROBA
    expected = np.argmax(estimator.predict_proba(X_check), axis=1)
    for bits in (LEAF_Q8, LEAF_Q16):
        wrong = int(np.count_nonzero(quantised_predictions(estimator, X_check, bits) != expected))
        if wrong == 0:
            return bits
        warnings.warn(f"{bits}-bit leaf probabilities disagree with scikit-learn on {wrong} of {len(expected)} "
                      f"check rows: trying {'16-bit' if bits == LEAF_Q8 else 'float32'} leaves", stacklevel=3)
    return LEAF_PROBA


def build(estimator: Any, X_train: np.ndarray | None = None, *, features: str = "auto",
          leaves: str = "auto", X_check: np.ndarray | None = None) -> Forest:
    """Flatten a fitted classifier or regressor into the device layout.

    features: 'int' (raw int16 features), 'float' (threshold-table quantisation) or 'auto' ('int'
    when every X_train value is an integer within int16). leaves: 'class' (hard voting), 'proba8',
    'proba16' (soft voting with 8/16-bit quantised leaf probabilities), 'proba' (soft voting with float32
    leaf probabilities) or 'auto': 'class' when every leaf is pure or there is one tree (which reproduces
    scikit-learn's predict exactly), else the narrowest of 8-bit, 16-bit and float32 leaves that reproduces
    estimator.predict on every row of X_check (default X_train; float32 without rows to check).
    Regressors always have float32 leaf values ('auto' or 'value').
    """
    trees = _estimators(estimator)
    n_features = int(estimator.n_features_in_)
    if is_regressor(estimator):
        if leaves not in ("auto", "value"):
            raise ValueError(f"leaves must be 'auto' or 'value' for a regressor, got {leaves!r}")
        forest = Forest(n_features, 1, choose_features(X_train, features), LEAF_PROBA, KIND_REGRESSOR)
        return _fill(forest, trees)
    n_classes = int(len(estimator.classes_))
    if leaves == "auto":
        if len(trees) == 1 or _pure(trees):
            leaf_bits = LEAF_CLASS
        else:
            leaf_bits = choose_leaf_bits(estimator, X_train if X_check is None else X_check)
    elif leaves in LEAF_OPTIONS:
        leaf_bits = LEAF_OPTIONS[leaves]
    else:
        raise ValueError(f"leaves must be 'auto', 'class', 'proba8', 'proba16' or 'proba', got {leaves!r}")
    forest = Forest(n_features, n_classes, choose_features(X_train, features), leaf_bits)
    if forest.leaf_bits == LEAF_CLASS:
        forest.leaves = list(range(n_classes))
    return _fill(forest, trees)


def _fill(forest: Forest, trees: Sequence[Any]) -> Forest:
    if forest.feature_mode == FEATURES_TABLE:
        forest.table = _tables(trees, forest.n_features)
    leaf_ids: dict[bytes, int] = {}
    for tree in trees:
        _flatten(tree.tree_, forest, leaf_ids)
    if len(forest.roots) > 65535:
        raise ValueError(f"{len(forest.roots)} trees: the format holds at most 65535")
    return forest


def _leaf(t: Any, node: int, forest: Forest, leaf_ids: dict[bytes, int]) -> int:
    value = np.asarray(t.value[node, 0, :], dtype=np.float64)
    if forest.kind == KIND_REGRESSOR:
        leaf: Any = np.float32(value[0])
        key = leaf.tobytes()
        leaf = float(leaf)
    elif forest.leaf_bits == LEAF_CLASS:
        return -int(np.argmax(value)) - 1
    elif forest.leaf_bits in (LEAF_Q8, LEAF_Q16):
        q = quantise(value / value.sum(), forest.leaf_bits)
        key = q.tobytes()
        leaf = tuple(int(v) for v in q)
    else:
        proba = (value / value.sum()).astype(np.float32)
        key = proba.tobytes()
        leaf = tuple(float(p) for p in proba)
    if key not in leaf_ids:
        leaf_ids[key] = len(forest.leaves)
        forest.leaves.append(leaf)
    return -leaf_ids[key] - 1


def _flatten(t: Any, forest: Forest, leaf_ids: dict[bytes, int]) -> None:
    left, right = t.children_left, t.children_right
    if left[0] < 0:
        forest.roots.append(_leaf(t, 0, forest, leaf_ids))
        return
    order: list[int] = []
    stack = [0]
    while stack:  # preorder, left child first: every child comes after its parent
        node = stack.pop()
        if left[node] >= 0:
            order.append(node)
            stack += [int(right[node]), int(left[node])]
    position = {node: i for i, node in enumerate(order)}
    base = len(forest.nodes)
    forest.roots.append(base)
    for node in order:
        feature = int(t.feature[node])
        threshold = float(t.threshold[node])
        if forest.feature_mode == FEATURES_INT:
            T = _int_threshold(threshold)
        else:
            T = int(np.searchsorted(forest.table[feature], round_down_f32(threshold))) + 1
        children = []
        for child in (int(left[node]), int(right[node])):
            if left[child] < 0:
                children.append(_leaf(t, child, forest, leaf_ids))
            else:
                offset = position[child] - position[node]
                if offset > INT16_MAX:
                    raise ValueError("a tree has more than 32767 nodes: too large for the int16 layout")
                children.append(offset)
        forest.nodes.append((feature, T, children[0], children[1]))


def _bitstream(fields: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
    """Rows of unsigned fields (each column with its width) as LSB-first bits, row after row."""
    columns = [((np.asarray(values, dtype=np.uint64)[:, None] >> np.arange(width, dtype=np.uint64)) & 1)
               for values, width in fields if width]
    if not columns:
        return np.zeros(0, dtype=np.uint8)
    return np.concatenate(columns, axis=1).astype(np.uint8).ravel()


def pack(forest: Forest) -> bytes:
    """The binary format (version 2): header (magic, version, kind, leaf_bits, feature mode, counts, threshold
    base, CRC32, node field widths); a bit stream of the roots and nodes (feature, threshold - base, left and
    right, children and roots offset by n_leaves so that they are unsigned) with the fewest bits each field
    needs; the leaves (u8 class, n_classes u8/u16 quantised or float32 probabilities, or a float32 value); and
    for float features u16 per-feature threshold counts + the float32 table."""
    n_leaves = len(forest.leaves)
    nodes = np.asarray(forest.nodes, dtype=np.int64).reshape(-1, 4)
    roots = np.asarray(forest.roots, dtype=np.int64) + n_leaves
    base = int(nodes[:, 1].min()) if len(nodes) else 0
    nodes[:, 1] -= base
    nodes[:, 2:] += n_leaves
    feature_bits = int(nodes[:, 0].max()).bit_length() if len(nodes) else 0
    threshold_bits = int(nodes[:, 1].max()).bit_length() if len(nodes) else 0
    child_bits = max(1, int(nodes[:, 2:].max()).bit_length() if len(nodes) else 1)
    root_bits = max(1, int(roots.max()).bit_length())
    bits = np.concatenate([
        _bitstream([(roots, root_bits)]),
        _bitstream([(nodes[:, 0], feature_bits), (nodes[:, 1], threshold_bits), (nodes[:, 2], child_bits),
                    (nodes[:, 3], child_bits)])])
    parts = [np.packbits(bits, bitorder="little").tobytes()]
    if forest.leaf_bits == LEAF_CLASS:
        parts.append(bytes(forest.leaves))
    else:
        dtype = {LEAF_Q8: "<u1", LEAF_Q16: "<u2", LEAF_PROBA: "<f4"}[forest.leaf_bits]
        parts.append(np.asarray(forest.leaves, dtype=dtype).tobytes())
    if forest.feature_mode == FEATURES_TABLE:
        parts.append(struct.pack(f"<{forest.n_features}H", *(len(t) for t in forest.table)))
        parts += [t.astype("<f4").tobytes() for t in forest.table]
    payload = WIDTHS.pack(feature_bits, threshold_bits, child_bits, root_bits) + b"".join(parts)
    header = HEADER.pack(MAGIC, FORMAT_VERSION, forest.kind, forest.leaf_bits, forest.feature_mode,
                         forest.n_features, forest.n_classes, len(forest.roots), base, len(forest.nodes),
                         n_leaves, forest.n_table)
    crc = zlib.crc32(payload, zlib.crc32(header))
    return header + struct.pack("<I", crc) + payload


def convert(estimator: Any, X_train: np.ndarray | None = None, *, features: str = "auto",
            leaves: str = "auto", X_check: np.ndarray | None = None) -> bytes:
    """The binary model for emlearn_trees.load_model (see build() for the options)."""
    return pack(build(estimator, X_train, features=features, leaves=leaves, X_check=X_check))


def to_csv(estimator: Any, X_train: np.ndarray | None = None, *, features: str = "auto", leaves: str = "class",
           X_check: np.ndarray | None = None) -> str:
    """The emlearn CSV model: f, c, lb|lf, [q,] r, n, l records.

    Classifiers have class leaves by default (`lb,0`, `l,<class>`: hard vote). leaves='proba8' writes soft-vote
    leaves as emlearn 0.23 does (`lb,8`, `l,[p0 p1 ...]`: class proportions as integers 0..255, here summing to
    exactly 255 as in the binary format); 'auto' picks class leaves when every leaf is pure or there is one tree,
    else 8-bit leaves when they reproduce estimator.predict on every row of X_check (default X_train), and
    raises ValueError otherwise (CSV has no 16-bit or float32 class leaves: use convert()).
    Regressors follow emlearn's convention (`c,0`, `lf,32`, `l,<float32 value>` written with 9 significant
    digits, which read back exactly). Thresholds are written as the C module's integer `x < T`; with integer
    features this file also gives scikit-learn's predictions in emlearn-micropython. Float features add q
    records (feature, float32 bit pattern) that emlearn-micropython ignores.
    """
    if is_regressor(estimator):
        forest = build(estimator, X_train, features=features)
        lines = [f"f,{forest.n_features}", "c,0", f"lf,{forest.leaf_bits}"]
    else:
        if leaves == "auto":
            forest = build(estimator, X_train, features=features, leaves="auto", X_check=X_check)
            if forest.leaf_bits not in (LEAF_CLASS, LEAF_Q8):
                raise ValueError("8-bit leaf probabilities do not reproduce scikit-learn's predictions on the check "
                                 "rows and CSV holds no wider class leaves: use the binary format (convert())")
        elif leaves in ("class", "proba8"):
            forest = build(estimator, X_train, features=features, leaves=leaves)
        else:
            raise ValueError(f"leaves must be 'class', 'proba8' or 'auto' for CSV, got {leaves!r}")
        lines = [f"f,{forest.n_features}", f"c,{forest.n_classes}", f"lb,{forest.leaf_bits}"]
    for feature, table in enumerate(forest.table):
        lines += [f"q,{feature},0x{int(bits):08x}" for bits in table.view(np.uint32)]
    lines += [f"r,{root}" for root in forest.roots]
    lines += [f"n,{f},{t},{left},{right}" for f, t, left, right in forest.nodes]
    if forest.kind == KIND_REGRESSOR:
        lines += [f"l,{leaf:.9g}" for leaf in forest.leaves]
    elif forest.leaf_bits == LEAF_Q8:
        lines += ["l,[" + " ".join(str(v) for v in leaf) + "]" for leaf in forest.leaves]
    else:
        lines += [f"l,{leaf}" for leaf in forest.leaves]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Capacity:
    """Arguments for emlearn_trees.new() that fit a model."""

    max_trees: int
    max_nodes: int
    max_leaves: int
    max_features: int
    max_classes: int
    max_thresholds: int = 0  # float threshold table entries (0 for integer-feature models)
    leaf_bits: int = 32  # new(leaf_bits=...): 8 for class and 8-bit leaves, 16, or 32 (float32 leaves)


def capacity(model: bytes | str) -> Capacity:
    """The smallest new() limits that hold this binary or CSV model."""
    if isinstance(model, bytes) and model[:4] == MAGIC:
        (_, _, _, leaf_bits, _, n_features, n_classes, n_trees, _, n_nodes, n_leaves, n_table) = HEADER.unpack(
            model[: HEADER.size])
        leaf_values = n_leaves * (1 if leaf_bits == LEAF_CLASS else n_classes)
        return Capacity(max(n_trees, 1), max(n_nodes, 1), max(leaf_values, 1), max(n_features, 1),
                        max(n_classes, 1), n_table, max(leaf_bits, LEAF_Q8))
    text = model.decode() if isinstance(model, bytes) else model
    counts: dict[str, int] = {}
    meta: dict[str, int] = {}
    for line in text.splitlines():
        # Continuation lines of a wrapped `l,[...]` row start with neither a record type nor a comma after it.
        kind, _, rest = line.strip().partition(",")
        counts[kind] = counts.get(kind, 0) + 1
        if kind in ("f", "c", "lb", "lf"):
            meta[kind] = int(rest)
    n_classes = meta.get("c", 1)
    soft = 1 <= meta.get("lb", meta.get("lf", 0)) <= 8  # emlearn's soft-vote leaves: n_classes bytes each
    leaf_values = counts.get("l", 0) * (n_classes if soft else 1)
    return Capacity(max(counts.get("r", 0), 1), max(counts.get("n", 0), 1), max(leaf_values, 1),
                    max(meta.get("f", 1), 1), max(n_classes, 1), counts.get("q", 0),
                    LEAF_PROBA if n_classes == 0 else LEAF_Q8)


# Runs inside the host firmware: predicts every row of a binary matrix in one process
# (class indices as int16, or regression values as float32; with "proba" the out values as float32).
PREDICT_SCRIPT = """\
import sys, array, emlearn_trees
model_path, x_path, out_path, tc = sys.argv[1:5]
nt, nn, nl, nf, nc, nq, lb = [int(a) for a in sys.argv[5:12]]
want_proba = sys.argv[12:] == ['proba']
m = emlearn_trees.new(nt, nn, nl, max_features=nf, max_classes=nc, max_thresholds=nq, leaf_bits=lb)
with open(model_path, 'rb') as f:
    emlearn_trees.load_model(m, f)
nf = m.features()
with open(x_path, 'rb') as f:
    X = array.array(tc, f.read())
mv = memoryview(X)
n = len(X) // nf
if want_proba:
    no = m.outputs()
    out = array.array('f', bytes(4 * n * no))
    row = array.array('f', bytes(4 * no))
    for i in range(n):
        m.predict(mv[i * nf:(i + 1) * nf], row)
        out[i * no:(i + 1) * no] = row
elif m.is_regressor():
    out = array.array('f', bytes(4 * n))
    value = array.array('f', [0.0])
    for i in range(n):
        m.predict(mv[i * nf:(i + 1) * nf], value)
        out[i] = value[0]
else:
    out = array.array('h', bytes(2 * n))
    for i in range(n):
        out[i] = m.predict(mv[i * nf:(i + 1) * nf])
with open(out_path, 'wb') as f:
    f.write(out)
print('predicted', n)
"""


def predict_on_host(model: bytes | str, X: np.ndarray, *, variant: str = "standard",
                    typecode: str | None = None, proba: bool = False) -> np.ndarray:
    """What the device module predicts for every row of X (one firmware process): class indices (int64)
    for a classifier, float32 values for a regressor; with proba=True the values predict() writes into out
    (n_rows x outputs float32: vote fractions or mean leaf probabilities, or the regression value)."""
    X = np.asarray(X)
    if typecode is None:
        typecode = "h" if np.issubdtype(X.dtype, np.integer) else "f"
    dtype = {"h": "<i2", "f": "<f4"}[typecode]
    cap = capacity(model)
    with tempfile.TemporaryDirectory(prefix="tinysense-trees-") as tmp:
        d = Path(tmp)
        (d / "model").write_bytes(model.encode() if isinstance(model, str) else model)
        (d / "x.bin").write_bytes(np.ascontiguousarray(X, dtype=dtype).tobytes())
        (d / "predict.py").write_text(PREDICT_SCRIPT)
        args = [str(d / "predict.py"), str(d / "model"), str(d / "x.bin"), str(d / "out.bin"), typecode,
                str(cap.max_trees), str(cap.max_nodes), str(cap.max_leaves), str(cap.max_features),
                str(cap.max_classes), str(cap.max_thresholds), str(cap.leaf_bits)] + (["proba"] if proba else [])
        proc = host.run(args, variant=variant)
        report = host.sanitizer_report(proc.stderr.decode(errors="replace"))
        if proc.returncode != 0 or report:
            raise RuntimeError(f"host firmware failed ({proc.returncode}):\n{report or proc.stderr.decode()}")
        out = (d / "out.bin").read_bytes()
        if proba:
            return np.frombuffer(out, dtype="<f4").reshape(len(X), -1).copy()
        if model_is_regressor(model):
            return np.frombuffer(out, dtype="<f4").copy()
        return np.frombuffer(out, dtype="<i2").astype(np.int64)


def model_is_regressor(model: bytes | str) -> bool:
    """Is this binary or CSV model a regressor (binary kind 2, CSV `c,0`)?"""
    if isinstance(model, bytes) and model[:4] == MAGIC:
        return len(model) > 5 and model[5] == KIND_REGRESSOR
    text = model.decode() if isinstance(model, bytes) else model
    return "c,0" in text.splitlines()


@dataclass(frozen=True)
class Agreement:
    n_samples: int
    n_agree: int
    mismatches: tuple[int, ...]
    max_error: float = 0.0  # regression: the largest |device - sklearn| / scale (see regression_scale)

    @property
    def ratio(self) -> float:
        return self.n_agree / self.n_samples if self.n_samples else 1.0

    def __str__(self) -> str:
        text = f"{self.n_agree}/{self.n_samples} agree with scikit-learn ({100 * self.ratio:.2f} %)"
        return text + (f", max relative error {self.max_error:.3g}" if self.max_error else "")


REGRESSION_RTOL = 1e-5


def regression_scale(estimator: Any, X: np.ndarray) -> np.ndarray:
    """Per sample, the magnitude the float32 sum works at: max(|prediction|, mean over trees of |leaf|).

    Rounding errors scale with the terms summed, not with their sum: for a prediction near 0 from leaves
    of both signs a relative error of the result is meaningless, so the tolerance is relative to this
    scale. With leaves of one sign (e.g. positive targets) the scale is |prediction| itself."""
    trees = getattr(estimator, "estimators_", [estimator])
    X32 = np.asarray(X, dtype=np.float32)
    mean_abs = np.mean([np.abs(tree.predict(X32)) for tree in trees], axis=0)
    return np.maximum(np.abs(estimator.predict(X)), mean_abs)


def verify(model: bytes | str, estimator: Any, X_test: np.ndarray, variant: str = "standard", *,
           typecode: str | None = None, strict: bool = True, rtol: float = REGRESSION_RTOL) -> Agreement:
    """Run the model in the host firmware on X_test and compare with estimator.predict.

    Classifiers must agree exactly; regressors within rtol relative to regression_scale() (which is
    plain relative error when the leaf values share a sign). Raises ParityError on any disagreement
    when strict (the default)."""
    expected = np.asarray(estimator.predict(X_test))
    got = predict_on_host(model, X_test, variant=variant, typecode=typecode)
    if is_regressor(estimator):
        error = np.abs(got.astype(np.float64) - expected) / np.maximum(regression_scale(estimator, X_test), 1e-30)
        mismatches = tuple(int(i) for i in np.flatnonzero(~(error <= rtol)))
        agreement = Agreement(len(expected), len(expected) - len(mismatches), mismatches,
                              float(np.max(error, initial=0.0)))
    else:
        got = np.asarray(estimator.classes_)[got]
        mismatches = tuple(int(i) for i in np.flatnonzero(got != expected))
        agreement = Agreement(len(expected), len(expected) - len(mismatches), mismatches)
    if strict and mismatches:
        raise ParityError(f"{agreement}; first mismatches at rows {list(mismatches[:10])}")
    return agreement
