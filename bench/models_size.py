"""The k-NN and MLP benchmarks end to end: train the models of every size on digits, write them for the device
and for the plain-MicroPython peers, then measure each case of bench/mp/bench_neighbors.py and
bench/mp/bench_net.py with bench/run.py's own functions (callgrind instructions and wall time per call) and write
bench/results/neighbors.md and bench/results/net.md: instructions per prediction as a table per model size.

    python bench/models_size.py [neighbors] [net]      (default: both; bench/run.py calls it for these names)

Peers (the issue's rule: what a user would pick instead, in the same VM, in the same run): the same algorithm
in plain MicroPython (k-NN brute force over a list of int16 arrays; an MLP forward pass with Python loops over
array('f') weight rows). m2cgen 0.10 and everywhereml export neither k-NN nor MLPs, so they have no case here.
Every case's predictions are also checked against scikit-learn's on all held-out rows ("agreement").
"""

from __future__ import annotations

import argparse
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402

NEIGHBORS_SIZES = [(100, 8), (1000, 8), (1000, 64)]  # training items x features
K = 5
NET_SIZES = [(16,), (64,), (64, 32)]  # hidden layers
NAMES = ("neighbors", "net")


@dataclass(frozen=True)
class Size:
    name: str         # case suffix, e.g. n100_f8 or h64_32
    label: str        # table column(s)
    model_bytes: int


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)


def _features(X: np.ndarray, n_features: int) -> np.ndarray:
    """int16 features: the 64 pixels (0..16), or the 8 row sums of the 8x8 image (0..128)."""
    if n_features == 64:
        return X.astype(np.int16)
    return X.reshape(len(X), 8, 8).sum(axis=2).astype(np.int16)


def prepare_neighbors(out: Path) -> list[Size]:
    from sklearn.neighbors import KNeighborsClassifier

    from tinysense import neighbors

    out.mkdir(parents=True, exist_ok=True)
    X_train, X_test, y_train, _ = _digits()
    meta, sizes = [], []
    for n_features in sorted({f for _, f in NEIGHBORS_SIZES}):
        (out / f"x_f{n_features}.bin").write_bytes(_features(X_test, n_features).astype("<i2").tobytes())
    for n_items, n_features in NEIGHBORS_SIZES:
        name = f"n{n_items}_f{n_features}"
        Xtr = _features(X_train[:n_items], n_features)
        clf = KNeighborsClassifier(n_neighbors=K, algorithm="brute").fit(Xtr, y_train[:n_items])
        model = neighbors.convert(clf, features="int")
        (out / f"{name}.bin").write_bytes(model)
        (out / f"{name}_items.bin").write_bytes(Xtr.astype("<i2").tobytes())
        (out / f"{name}_labels.bin").write_bytes(y_train[:n_items].astype("<i2").tobytes())
        # scikit-learn's brute force on one thread (the device replays its choice among equally distant items).
        expected = neighbors.reference_predict(model, _features(X_test, n_features))
        (out / f"y_{name}.bin").write_bytes(np.asarray(clf.classes_)[expected].astype("<i2").tobytes())
        meta.append(f"{name} {n_items} {n_features} {K}")
        sizes.append(Size(name, f"{n_items} | {n_features}", len(model)))
    (out / "meta.txt").write_text("\n".join(meta) + "\n")
    return sizes


def prepare_net(out: Path) -> list[Size]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from tinysense import net

    out.mkdir(parents=True, exist_ok=True)
    X_train, X_test, y_train, _ = _digits()
    X_train, X_test = (X_train / 16).astype(np.float32), (X_test / 16).astype(np.float32)
    (out / "x.bin").write_bytes(X_test.astype("<f4").tobytes())
    meta, sizes = [], []
    for hidden in NET_SIZES:
        name = "h" + "_".join(map(str, hidden))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = MLPClassifier(hidden_layer_sizes=hidden, max_iter=300, random_state=0).fit(X_train, y_train)
        model = net.convert(clf)
        net.verify(model, clf, X_test)  # raises if the device differs
        (out / f"{name}.bin").write_bytes(model)
        weights = [np.concatenate([w.T.ravel(), b]) for w, b in zip(clf.coefs_, clf.intercepts_, strict=True)]
        (out / f"{name}_weights.bin").write_bytes(np.concatenate(weights).astype("<f4").tobytes())
        (out / f"y_{name}.bin").write_bytes(clf.predict(X_test).astype("<i2").tobytes())
        layer_sizes = [X_train.shape[1], *hidden, len(clf.classes_)]
        meta.append(f"{name} {clf.activation} " + " ".join(map(str, layer_sizes)))
        sizes.append(Size(name, " × ".join(map(str, hidden)), len(model)))
    (out / "meta.txt").write_text("\n".join(meta) + "\n")
    return sizes


def agreement(script: Path, case: str) -> tuple[int, int]:
    words = run.run_firmware([str(run.firmware_or_raise()), str(script), "--agree", case]).stdout.split()
    return int(words[1]), int(words[2])


def _instr(r: run.CaseResult) -> str:
    return f"{r.instructions_per_call:,.0f}" if r.instructions_per_call is not None else "n/a"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}×" if a and b else "n/a"


def size_table(name: str, sizes: list[Size], header: str) -> list[str]:
    script = BENCH / "mp" / f"bench_{name}.py"
    results, _ = run.bench_script(script)
    by_case = {r.case: r for r in results}
    loop = by_case["loop_only"].instructions_per_call
    lines = [header, "",
             "Instructions are per benchmark call (one prediction on the next held-out row, callgrind); net = minus "
             "`loop_only` (the same loop with a no-op builtin instead of predict: "
             + (f"{loop:,.0f}" if loop else "n/a") + " instructions/call). Agreement = predictions equal to "
             "scikit-learn's on every held-out row.", "",
             f"| {'items | features' if name == 'neighbors' else 'hidden layers'} | model bytes | "
             "plain MicroPython instr./prediction | ours instr./prediction | speed-up raw | speed-up net | "
             "speed-up (wall, noisy) | agreement ours | agreement peer |",
             "|---:|" + ("---:|" if name == "neighbors" else "") + "---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size in sizes:
        peer, ours = by_case[f"python_{size.name}"], by_case[f"tinysense_{size.name}"]
        net_speedup = "n/a"
        if loop and peer.instructions_per_call and ours.instructions_per_call:
            net_speedup = _ratio(peer.instructions_per_call - loop, ours.instructions_per_call - loop)
        agree_ours, n = agreement(script, ours.case)
        agree_peer, _ = agreement(script, peer.case)
        lines.append(f"| {size.label} | {size.model_bytes:,} | {_instr(peer)} | {_instr(ours)} | "
                     f"{_ratio(peer.instructions_per_call, ours.instructions_per_call)} | {net_speedup} | "
                     f"{_ratio(peer.us_per_call, ours.us_per_call)} | {agree_ours}/{n} | {agree_peer}/{n} |")
    if shutil.which("valgrind") is None:
        lines += ["", "valgrind is not installed: no instruction counts."]
    lines += ["", "## Every case", "", "| case | instructions/call (callgrind) | µs/call (wall, noisy) |",
              "|---|---:|---:|"]
    lines += [f"| {r.case} | {_instr(r)} | {r.us_per_call:.1f} |" for r in results]
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(NAMES)} (default: both)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    import sklearn

    run.RESULTS.mkdir(exist_ok=True)
    for name in args.names or NAMES:
        if name == "neighbors":
            sizes = prepare_neighbors(run.RESULTS / "neighbors")
            header = (f"# neighbors: emlearn_neighbors against plain MicroPython, by model size\n\n"
                      f"digits (scikit-learn {sklearn.__version__}), `KNeighborsClassifier(n_neighbors={K})`, int16 "
                      "features (8 = row sums of the 8×8 image, 64 = the pixels), the first N training rows as "
                      "items; host firmware (standard variant), same VM, same run. Peer: brute force over a list of "
                      "int16 arrays with Python loops, keeping the k nearest in a sorted list (m2cgen and everywhereml "
                      "cannot export k-NN). Agreement is against scikit-learn's brute force on one thread, which the "
                      "device replays among equally distant items; the peer keeps the earliest of equally distant "
                      "items instead.")
        else:
            sizes = prepare_net(run.RESULTS / "net")
            header = (f"# net: emlearn_net against plain MicroPython, by model size\n\n"
                      f"digits (scikit-learn {sklearn.__version__}) pixels / 16 as float32, "
                      "`MLPClassifier(hidden_layer_sizes=H, max_iter=300)`, relu, softmax output; host firmware "
                      "(standard variant), same VM, same run. Peer: the forward pass with Python loops over "
                      "array('f') weight rows, arg max of the output layer (softmax skipped: it does not change the "
                      "class; ours computes it). m2cgen 0.10 and everywhereml cannot export MLPs.")
        text = "\n".join(size_table(name, sizes, header))
        (run.RESULTS / f"{name}.md").write_text(text)
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
