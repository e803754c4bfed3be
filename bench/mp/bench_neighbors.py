# k-NN: one prediction per call on held-out digits (k = 5, int16 features) for several model sizes (training
# items x features), our emlearn_neighbors C module against the peer a user would write instead: brute force
# in plain MicroPython over a list of int16 arrays (m2cgen and everywhereml cannot export k-NN). Needs
# bench/results/neighbors/ from `python bench/models_size.py` (it trains the models and runs this script).
#
#   micropython bench_neighbors.py CASE N      benchlib protocol (cases: python_<size>, tinysense_<size>, loop_only)
#   micropython bench_neighbors.py --agree CASE   prints "agree <same as scikit-learn> <rows>" for a case

from benchlib import models_main, paired_cases, read_array, split_rows

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
    return read_array(DATA + "/" + path, typecode)


def _rows(n_features):
    x = _read("x_f%d.bin" % n_features, "h")
    return split_rows(x, n_features)


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


def loop_only():
    # The benchmark loop itself (cycling through the rows, one builtin call): bench/models_size.py subtracts it
    # to give the cost of the prediction alone.
    return len, _rows(8)


def _expected(case):
    # scikit-learn's predictions for the size a case belongs to (written by bench/models_size.py).
    return _read("y_" + case.split("_", 1)[1] + ".bin", "h")


if __name__ == "__main__":
    models_main(paired_cases([name for name, _ in _sizes()], _python_setup, _tinysense_setup), loop_only, _expected)
