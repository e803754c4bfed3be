# MLP: one prediction per call on held-out digits (pixels / 16, float32) for several hidden-layer sizes, our
# emlearn_net C module against the peer a user would write instead: the forward pass with Python loops over
# array('f') weight rows (m2cgen 0.10 and everywhereml cannot export MLPs). Needs bench/results/net/ from
# `python bench/models_size.py net` (it trains the models and runs this script).
#
#   micropython bench_net.py CASE N         benchlib protocol (cases: python_<size>, tinysense_<size>, loop_only)
#   micropython bench_net.py --agree CASE   prints "agree <same class as scikit-learn> <rows>" for a case
import math

from benchlib import models_main, paired_cases, read_array, split_rows

DATA = "../results/net"  # relative to bench/mp, where bench/run.py runs the firmware


def _sizes():
    # meta.txt: one line per network: "<name> <activation> <layer sizes...>" (inputs first, outputs last)
    try:
        with open(DATA + "/meta.txt") as f:
            lines = [line.split() for line in f.read().splitlines() if line]
    except OSError:
        raise SystemExit("bench_net: run `python bench/models_size.py net` first (it trains the models into "
                         "bench/results/net/)")
    return [(w[0], (w[1], [int(v) for v in w[2:]])) for w in lines]  # file order (MicroPython dicts are unordered)


def _read(path, typecode):
    return read_array(DATA + "/" + path, typecode)


def _rows(n_features):
    x = _read("x.bin", "f")
    return split_rows(x, n_features)


def python_mlp(layers, activation):
    # layers: [(weight rows (one array('f') per output unit), biases)]; hidden activation relu/tanh/logistic;
    # the class is the arg max of the last layer (softmax does not change it, so it is skipped).
    last = len(layers) - 1

    def predict(x):
        a = x
        for n, (rows, bias) in enumerate(layers):
            out = []
            n_in = len(a)
            for j in range(len(rows)):
                w = rows[j]
                s = bias[j]
                for i in range(n_in):
                    s += w[i] * a[i]
                if n < last:
                    if activation == "relu":
                        s = s if s > 0 else 0.0
                    elif activation == "tanh":
                        s = math.tanh(s)
                    elif activation == "logistic":
                        s = 1 / (1 + math.exp(-s))
                out.append(s)
            a = out
        if len(a) == 1:
            return 1 if a[0] > 0 else 0
        best = 0
        for j in range(1, len(a)):
            if a[j] > a[best]:
                best = j
        return best

    return predict


def _python_setup(name):
    def setup():
        activation, sizes = dict(_sizes())[name]
        flat = _read(name + "_weights.bin", "f")  # per layer: weights (outputs x inputs, row-major), then biases
        layers, pos = [], 0
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            rows = [flat[pos + j * n_in:pos + (j + 1) * n_in] for j in range(n_out)]
            pos += n_in * n_out
            layers.append((rows, flat[pos:pos + n_out]))
            pos += n_out
        return python_mlp(layers, activation), _rows(sizes[0])

    return setup


def _tinysense_setup(name):
    def setup():
        import emlearn_net

        with open(DATA + "/" + name + ".bin", "rb") as f:
            m = emlearn_net.new(f)
        return m.predict, _rows(m.inputs())

    return setup


def loop_only():
    # The benchmark loop itself (cycling through the rows, one builtin call): bench/models_size.py subtracts it
    # to give the cost of the prediction alone.
    sizes = _sizes()[0][1][1]
    return len, _rows(sizes[0])


def _expected(case):
    # scikit-learn's predictions for the size a case belongs to (written by bench/models_size.py).
    return _read("y_" + case.split("_", 1)[1] + ".bin", "h")


if __name__ == "__main__":
    models_main(paired_cases([name for name, _ in _sizes()], _python_setup, _tinysense_setup), loop_only, _expected)
