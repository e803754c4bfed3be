# k-NN: one prediction per call on held-out digits (k = 5, int16 features) for several model sizes (training
# items x features), our emlearn_neighbors C module against the peer a user would write instead: brute force
# in plain MicroPython over a list of int16 arrays (m2cgen and everywhereml cannot export k-NN). Needs
# bench/results/neighbors/ from `python bench/models_size.py` (it trains the models and runs this script).
#
#   micropython bench_neighbors.py CASE N      benchlib protocol (cases: python_<size>, tinysense_<size>, loop_only)
#   micropython bench_neighbors.py --agree CASE   prints "agree <same as scikit-learn> <rows>" for a case
import array
import sys

from benchlib import main

DATA = "../results/neighbors"  # relative to bench/mp, where bench/run.py runs the firmware


def _sizes():
    # meta.txt: one line per model size: "<name> <items> <features> <k>"
    try:
        with open(DATA + "/meta.txt") as f:
            lines = [line.split() for line in f.read().splitlines() if line]
    except OSError:
        raise SystemExit("bench_neighbors: run `python bench/models_size.py neighbors` first (it trains the models "
                         "into bench/results/neighbors/)")
    return [(w[0], [int(v) for v in w[1:]]) for w in lines]  # in file order (MicroPython dicts are unordered)


def _read(path, typecode):
    with open(DATA + "/" + path, "rb") as f:
        return array.array(typecode, f.read())


def _rows(n_features):
    x = _read("x_f%d.bin" % n_features, "h")
    return [x[i * n_features:(i + 1) * n_features] for i in range(len(x) // n_features)]


def _cycle(predict, rows):
    state = [0]
    n = len(rows)

    def run():
        i = state[0]
        state[0] = i + 1 if i + 1 < n else 0
        return predict(rows[i])

    return run


def python_knn(items, labels, k):
    # Brute force as a user would write it: squared distance to every item, keep the k nearest (sorted,
    # earlier items first among equals), majority vote with ties to the lowest label.
    n_items = len(items)

    def predict(x):
        nf = len(x)
        best = []
        for j in range(n_items):
            item = items[j]
            d = 0
            for f in range(nf):
                t = item[f] - x[f]
                d += t * t
            if len(best) < k:
                best.append((d, j))
                best.sort()
            elif d < best[-1][0]:
                best[-1] = (d, j)
                best.sort()
        votes = {}
        for _, j in best:
            label = labels[j]
            votes[label] = votes.get(label, 0) + 1
        winner, top = None, -1
        for label in sorted(votes):
            if votes[label] > top:
                winner, top = label, votes[label]
        return winner

    return predict


def _python_setup(name):
    def setup():
        n_items, n_features, k = dict(_sizes())[name]
        flat = _read(name + "_items.bin", "h")
        items = [flat[i * n_features:(i + 1) * n_features] for i in range(n_items)]
        return python_knn(items, _read(name + "_labels.bin", "h"), k), _rows(n_features)

    return setup


def _tinysense_setup(name):
    def setup():
        import emlearn_neighbors

        with open(DATA + "/" + name + ".bin", "rb") as f:
            m = emlearn_neighbors.load(f)
        return m.predict, _rows(dict(_sizes())[name][1])

    return setup


def _case(setup):
    def case():
        predict, rows = setup()
        return _cycle(predict, rows)

    return case


def loop_only():
    # The benchmark loop itself (cycling through the rows, one builtin call): bench/models_size.py subtracts it
    # to give the cost of the prediction alone.
    return _cycle(len, _rows(8))


def setups():
    out = []
    for name, _ in _sizes():
        out += [("python_" + name, _python_setup(name)), ("tinysense_" + name, _tinysense_setup(name))]
    return out


def agree(case):
    # Predictions of a case on every test row, compared with scikit-learn's (brute force, one thread).
    predict, rows = dict(setups())[case]()
    expected = _read("y_" + case.split("_", 1)[1] + ".bin", "h")
    same = 0
    for i in range(len(rows)):
        if predict(rows[i]) == expected[i]:
            same += 1
    print("agree", same, len(rows))


if __name__ == "__main__":
    if sys.argv[1] == "--agree":
        agree(sys.argv[2])
    else:
        main([(case, _case(setup)) for case, setup in setups()] + [("loop_only", loop_only)])
