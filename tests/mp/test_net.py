# emlearn_net on the device side: small networks written here by hand, with outputs computed in
# plain Python; model file validation and bad input.
import array
import math
import struct

import emlearn_net
from mptest import crc32, heap_allocated_during, raises

IDENTITY, RELU, LOGISTIC, TANH, SOFTMAX = 0, 1, 2, 3, 4


def floats(values):
    return struct.pack("<%df" % len(values), *values)


def net_file(layers, acts, kind=1, transform=None, version=1, magic=b"TSNN", flags=None, pad=None, sizes=None,
             n_layers=None, fix_crc=True):
    # layers: [(W, b)], W one row of inputs per output.
    if sizes is None:
        sizes = [len(layers[0][0][0])] + [len(b) for _, b in layers]
    n_layers = len(acts) if n_layers is None else n_layers
    table = struct.pack("<%dH" % len(sizes), *sizes) + bytes(acts)
    padding = (-(12 + len(table))) % 4
    table += bytes(padding) if pad is None else pad
    body = table
    if flags is None:
        flags = 0 if transform is None else 1
    if transform is not None:
        body += floats(transform[0]) + floats(transform[1])
    for w, b in layers:
        for row in w:
            body += floats(row)
        body += floats(b)
    header = struct.pack("<4sBBBB", magic, version, kind, n_layers, flags)
    crc = crc32(body, crc32(header)) if fix_crc else 0
    return header + struct.pack("<I", crc) + body


def f(*values):
    return array.array("f", values)


def close(a, b, tol=1e-6):
    return abs(a - b) <= tol * max(1.0, abs(b))


def dense(w, b, x):
    return [sum(wi * xi for wi, xi in zip(row, x)) + bi for row, bi in zip(w, b)]


def softmax(z):
    top = max(z)
    e = [math.exp(v - top) for v in z]
    s = sum(e)
    return [v / s for v in e]


W1 = [[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]
B1 = [0.0, 0.5, -1.0]
W2 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]]
B2 = [0.0, 0.0, 0.1]
SOFTMAX_NET = net_file([(W1, B1), (W2, B2)], [RELU, SOFTMAX])


def test_softmax_classifier_by_hand():
    m = emlearn_net.new(SOFTMAX_NET)
    assert m.inputs() == 2 and m.outputs() == 3 and m.is_classifier()
    out = f(0, 0, 0)
    for x in ((0.0, 0.0), (2.0, -1.0), (-3.0, 4.0), (0.25, 0.75)):
        hidden = [max(0.0, v) for v in dense(W1, B1, x)]
        proba = softmax(dense(W2, B2, hidden))
        best = proba.index(max(proba))
        assert m.predict(f(*x), out) == best, x
        assert all(close(a, b) for a, b in zip(out, proba)), (x, list(out), proba)
        assert m.predict(f(*x)) == best


def test_hidden_activations_by_hand():
    w1 = [[0.5, -1.5], [2.0, 0.25]]
    b1 = [0.1, -0.2]
    w2 = [[1.0, -2.0]]
    b2 = [0.3]
    functions = {IDENTITY: lambda v: v, RELU: lambda v: max(0.0, v), LOGISTIC: lambda v: 1 / (1 + math.exp(-v)),
                 TANH: math.tanh}
    for act, fn in functions.items():
        m = emlearn_net.new(net_file([(w1, b1), (w2, b2)], [act, IDENTITY], kind=2))
        assert not m.is_classifier() and m.outputs() == 1
        out = f(0)
        for x in ((0.0, 0.0), (1.0, 2.0), (-3.0, 0.5), (40.0, -40.0)):
            assert m.predict(f(*x), out) is None
            expected = dense(w2, b2, [fn(v) for v in dense(w1, b1, x)])[0]
            assert close(out[0], expected), (act, x, out[0], expected)


def test_binary_classifier_reports_both_probabilities():
    m = emlearn_net.new(net_file([([[2.0, -1.0]], [0.5])], [LOGISTIC]))
    assert m.outputs() == 2 and m.inputs() == 2
    out = f(0, 0)
    for x in ((0.0, 0.0), (-1.0, 1.0), (3.0, 1.0), (-0.25, 0.0)):
        p = 1 / (1 + math.exp(-(2 * x[0] - x[1] + 0.5)))
        assert m.predict(f(*x), out) == (1 if p > 0.5 else 0), x
        assert close(out[1], p) and close(out[0], 1 - p)
    # p == 0.5 exactly: scikit-learn's predict needs p > 0.5 for class 1.
    assert m.predict(f(-0.25, 0.0), out) == 0 and out[1] == 0.5


def test_argmax_ties_go_to_the_lowest_class():
    m = emlearn_net.new(net_file([([[0.0], [0.0], [0.0], [0.0]], [1.0, 3.0, 3.0, 3.0])], [SOFTMAX]))
    out = f(0, 0, 0, 0)
    assert m.predict(f(5.0), out) == 1
    assert out[1] == out[2] == out[3]


def test_regressor_with_input_transform():
    # x' = (x - offset) * scale, then one identity layer with two outputs.
    w = [[1.0, 2.0, 0.0], [0.0, -1.0, 0.5]]
    b = [0.0, 10.0]
    m = emlearn_net.new(net_file([(w, b)], [IDENTITY], kind=2, transform=([1.0, -2.0, 0.0], [0.5, 2.0, 4.0])))
    out = f(0, 0)
    assert m.predict(f(3.0, -1.0, 0.5), out) is None
    assert list(out) == [1.0 + 4.0, -2.0 + 1.0 + 10.0]
    with raises(ValueError, "a regressor needs out=array('f') of 2 values"):
        m.predict(f(3.0, -1.0, 0.5))


def test_two_models_do_not_interfere():
    a = emlearn_net.new(SOFTMAX_NET)
    b = emlearn_net.new(net_file([([[1.0, 1.0]], [0.0])], [IDENTITY], kind=2))
    out_a, out_b = f(0, 0, 0), f(0)
    a.predict(f(2.0, -1.0), out_a)
    first = list(out_a)
    b.predict(f(100.0, 200.0), out_b)
    a.predict(f(2.0, -1.0), out_a)
    assert list(out_a) == first and out_b[0] == 300.0


def test_load_from_file():
    with open("/tmp/tinysense_test_net.bin", "wb") as fh:
        fh.write(SOFTMAX_NET)
    with open("/tmp/tinysense_test_net.bin", "rb") as fh:
        m = emlearn_net.new(fh)
    assert m.outputs() == 3
    with open("/tmp/tinysense_test_net.txt", "w") as fh:
        fh.write("TSNN text")
    with open("/tmp/tinysense_test_net.txt") as fh:
        with raises(TypeError, "binary mode"):
            emlearn_net.new(fh)
    with raises(TypeError, "file opened 'rb' or bytes"):
        emlearn_net.new(3)
    assert emlearn_net.new(bytearray(SOFTMAX_NET)).inputs() == 2
    assert emlearn_net.new(memoryview(SOFTMAX_NET)).inputs() == 2


def test_bad_input():
    m = emlearn_net.new(SOFTMAX_NET)
    with raises(ValueError, "x must be array('f'), got typecode 'h'"):
        m.predict(array.array("h", [1, 2]))
    with raises(ValueError, "x must be array('f'), got typecode 'B'"):
        m.predict(b"12345678")
    with raises(ValueError, "x must be array('f'), got typecode 'd'"):
        m.predict(array.array("d", [1, 2]))
    with raises(TypeError, "x must be an array('f'), not int"):
        m.predict(7)
    with raises(ValueError, "x has 1 values, the model has 2 inputs"):
        m.predict(f(1))
    with raises(ValueError, "x has 3 values, the model has 2 inputs"):
        m.predict(f(1, 2, 3))
    with raises(ValueError, "out has 2 values, the model has 3 outputs"):
        m.predict(f(1, 2), f(0, 0))
    with raises(ValueError, "out must be array('f'), got typecode 'h'"):
        m.predict(f(1, 2), array.array("h", [0, 0, 0]))
    with raises(TypeError, "out must be a writable array('f'), not bytes"):
        m.predict(f(1, 2), b"123456789012")
    for bad in (float("nan"), float("inf"), float("-inf")):
        with raises(ValueError, "x[1] is not finite"):
            m.predict(f(1, bad))
    with raises(TypeError):
        emlearn_net.Net.predict(object(), f(1, 2))


def test_truncated_and_garbled_files():
    for n in range(len(SOFTMAX_NET)):
        with raises(ValueError, "bad net model"):
            emlearn_net.new(SOFTMAX_NET[:n])
    with raises(ValueError, "truncated model: %d of %d bytes" % (len(SOFTMAX_NET) - 1, len(SOFTMAX_NET))):
        emlearn_net.new(SOFTMAX_NET[:-1])
    with raises(ValueError, "4 trailing bytes"):
        emlearn_net.new(SOFTMAX_NET + bytes(4))
    for i in range(len(SOFTMAX_NET)):
        for bit in (0x01, 0x10, 0x80):
            data = bytearray(SOFTMAX_NET)
            data[i] ^= bit
            with raises(ValueError, "bad net model"):
                emlearn_net.new(data)
    with raises(ValueError, "this is an emlearn_trees model (magic 'TSTR')"):
        emlearn_net.new(b"TSTR" + SOFTMAX_NET[4:])
    with raises(ValueError, "this is an emlearn_neighbors model (magic 'TSKN')"):
        emlearn_net.new(b"TSKN" + SOFTMAX_NET[4:])
    with raises(ValueError, "magic '????', expected 'TSNN'"):
        emlearn_net.new(bytes([0, 255, 10, 13]) + SOFTMAX_NET)
    one = [([[1.0]], [0.0])]
    bad = [
        (net_file(one, [IDENTITY], kind=2, version=9), "format version 9"),
        (net_file(one, [IDENTITY], kind=3), "model kind 3"),
        (net_file(one, [IDENTITY], kind=2, flags=2), "unknown flags 0x02"),
        (net_file(one, [IDENTITY], kind=2, n_layers=0, sizes=[1]), "0 layers: must be 1..32"),
        (net_file(one, [IDENTITY] * 33, kind=2, sizes=[1] * 34), "33 layers"),
        (net_file(one, [9], kind=2), "layer 0 has unknown activation 9"),
        (net_file(one, [IDENTITY], kind=2, pad=b"\x00\x01\x00"), "non-zero padding"),
        (net_file([], [IDENTITY], kind=2, sizes=[0, 1]), "layer size 0 (sizes[0]) is outside 1..4096"),
        (net_file([], [IDENTITY], kind=2, sizes=[1, 4097]), "layer size 4097 (sizes[1])"),
        (net_file([(W1, B1), (W2, B2)], [SOFTMAX, SOFTMAX]), "hidden layer 0 uses softmax"),
        (net_file(one, [IDENTITY]), "a classifier needs softmax over >= 2 outputs or logistic over 1, not identity"),
        (net_file([([[1.0], [2.0]], [0.0, 0.0])], [LOGISTIC]), "not logistic over 2"),
        (net_file(one, [SOFTMAX]), "not softmax over 1"),
        (net_file(one, [TANH], kind=2), "a regressor needs an identity output layer, not tanh"),
        (net_file([([[float("nan")]], [0.0])], [IDENTITY], kind=2), "layer 0 has a weight or bias that is not finite"),
        (net_file([(W1, B1), (W2, [0.0, float("inf"), 0.0])], [RELU, SOFTMAX]), "layer 1 has a weight or bias"),
        (net_file(one, [IDENTITY], kind=2, transform=([float("inf")], [1.0])), "input transform of input 0"),
        (net_file(one, [IDENTITY], kind=2, fix_crc=False), "checksum mismatch"),
    ]
    for data, message in bad:
        with raises(ValueError, message):
            emlearn_net.new(data)
    # The biggest sizes the header can claim, without the data: rejected by length, nothing allocated.
    with raises(ValueError, "truncated model"):
        emlearn_net.new(net_file([], [RELU] * 31 + [IDENTITY], kind=2, sizes=[4096] * 33))


def test_predict_allocates_nothing():
    m = emlearn_net.new(SOFTMAX_NET)
    x = f(0.5, -0.5)
    out = f(0, 0, 0)
    assert heap_allocated_during(lambda: m.predict(x, out), 1000) == 0
    assert heap_allocated_during(lambda: m.predict(x), 1000) == 0
    r = emlearn_net.new(net_file([([[1.0, 2.0]], [0.5])], [IDENTITY], kind=2, transform=([1.0, 1.0], [2.0, 2.0])))
    out = f(0)
    assert heap_allocated_during(lambda: r.predict(x, out), 1000) == 0
