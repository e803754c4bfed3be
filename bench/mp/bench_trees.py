# Trees: one prediction per call on held-out digits (RandomForestClassifier, 10 trees, at most 100 leaves
# per tree) with the peers a user would pick instead: the same forest exported to Python by m2cgen and by
# everywhereml, imported (compiled .mpy) in this same VM, against our emlearn_trees C module.
# Needs bench/results/trees/ from `python bench/peers.py` (models are trained at bench time).
import sys

from benchlib import main, read_array, split_rows

PEERS = "../results/trees"  # relative to bench/mp, where bench/run.py runs the firmware


def _meta():
    try:
        with open(PEERS + "/meta.txt") as f:
            return [int(v) for v in f.read().split()]
    except OSError:
        raise SystemExit("bench_trees: run `python bench/peers.py` first (it trains the models and generates "
                         "the peers into bench/results/trees/)")


def _rows():
    n_rows, n_features = _meta()[:2]
    return split_rows(read_array(PEERS + "/digits_x.bin", "h"), n_features)[:n_rows]


def _import_peer(name):
    if PEERS + "/mpy" not in sys.path:
        sys.path.insert(0, PEERS + "/mpy")
    return __import__(name)


def m2cgen_py():
    rows = [list(r) for r in _rows()]
    return _import_peer("m2cgen_rf").score, rows


def everywhereml_py():
    rows = [list(r) for r in _rows()]
    return _import_peer("everywhereml_rf").RandomForestClassifier().predict, rows


def load_tinysense(name):
    # emlearn_trees.new() with the capacity the model needs (bench/peers.py wrote it to capacity.txt).
    import emlearn_trees

    with open(PEERS + "/capacity.txt") as f:
        caps = {line.split()[0]: [int(v) for v in line.split()[1:]] for line in f.read().splitlines() if line}
    nt, nn, nl, nf, nc, nq, lb = caps[name]
    m = emlearn_trees.new(nt, nn, nl, max_features=nf, max_classes=nc, max_thresholds=nq, leaf_bits=lb)
    with open(PEERS + "/" + name, "rb") as f:
        m.load_model(f)
    return m


def loop_only():
    # The benchmark loop itself (cycling through the rows, one builtin call): subtracted from every case to
    # give the cost of the prediction alone in bench/trees_size.py.
    return len, _rows()


def tinysense_trees():
    return load_tinysense("tinysense_rf.bin").predict, _rows()


if __name__ == "__main__":
    # Every case is counted over all test rows once (the rows differ in depth per tree).
    main([("m2cgen_py", m2cgen_py), ("everywhereml_py", everywhereml_py), ("tinysense_trees", tinysense_trees),
          ("loop_only", loop_only)], callgrind_calls=_meta()[0])
