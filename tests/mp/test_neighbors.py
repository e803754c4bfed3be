# emlearn_neighbors on the device side: the emlearn-micropython API, exact distances, ties,
# labels, model files and bad input. Expected values are computed here by hand or in plain Python.
import array
import struct

import emlearn_neighbors
from mptest import crc32, heap_allocated_during, raises


def model_file(items, labels, k, n_features=None, quantizer=None, version=1, kind=1, magic=b"TSKN", flags=None,
               reserved=0, fix_crc=True):
    n_features = len(items[0]) if n_features is None else n_features
    if flags is None:
        flags = 0 if quantizer is None else 1
    payload = b""
    if quantizer is not None:
        offset, scale = quantizer
        payload += struct.pack("<%df" % len(offset), *offset) + struct.pack("<%df" % len(scale), *scale)
    for item in items:
        payload += struct.pack("<%dh" % len(item), *item)
    payload += struct.pack("<%dh" % len(labels), *labels)
    header = struct.pack("<4sBBBBHHII", magic, version, kind, flags, reserved, n_features, 0, k, len(items))
    crc = crc32(payload, crc32(header)) if fix_crc else 0
    return header + struct.pack("<I", crc) + payload


def h(*values):
    return array.array("h", values)


def test_emlearn_micropython_api():
    m = emlearn_neighbors.new(100, 3, 1)
    assert m.additem(h(100, 100, 2), 1) == 0
    assert m.additem(h(-100, -100, 2), 0) == 1
    assert m.predict(h(100, 100, 2)) == 1
    assert m.predict(h(-90, -100, 2)) == 0
    # getresult(i): (item index, floor(Euclidean distance), label), nearest first.
    assert m.getresult(0) == (1, 10, 0)
    assert m.getresult(1) == (0, 275, 1)   # sqrt(190^2 + 200^2) = 275.86
    out = h(0, 0, 0)
    m.getitem(1, out)
    assert list(out) == [-100, -100, 2]
    assert m.items() == 2 and m.features() == 3 and m.k() == 1


def test_large_differences_do_not_overflow():
    # emlearn's int32 squares and uint32 sum wrap here: B's 5e9 becomes 705032704, so B would look nearest.
    m = emlearn_neighbors.new(4, 2, 1)
    m.additem(h(-32768, 32767), 0)     # A: squared distance 65535^2 = 4294836225 to the query
    m.additem(h(-17233, -17233), 1)    # B: 50000^2 + 50000^2 = 5e9
    assert m.predict(h(32767, 32767)) == 0
    assert m.getresult(0) == (0, 65535, 0)
    assert m.getresult(1) == (1, 70710, 1)  # floor(sqrt(5e9))
    # Every feature at its extreme: the largest possible distance, 64 * 65535 with 4096 features.
    n = 4096
    m = emlearn_neighbors.new(3, n, 1)
    m.additem(array.array("h", [-32768] * n), 7)
    m.additem(array.array("h", [32767] * n), 8)
    m.additem(array.array("h", [32767] * (n - 1) + [-32768]), 9)
    assert m.predict(array.array("h", [-32768] * n)) == 7
    assert [m.getresult(i) for i in range(3)] == [(0, 0, 7), (2, 4193727, 9), (1, 4194240, 8)]  # isqrt(4095 * 65535^2)
    assert m.predict(array.array("h", [32767] * n)) == 8
    assert m.getresult(2) == (0, 4194240, 7)


def test_labels_are_any_int16_and_many_classes():
    m = emlearn_neighbors.new(1000, 1, 1)
    for i in range(1000):
        m.additem(h(i * 60 - 30000), i * 65 - 32768)   # 1000 distinct labels from -32768 to 32167
    for i in (0, 1, 499, 998, 999):
        assert m.predict(h(i * 60 - 30000)) == i * 65 - 32768
    m = emlearn_neighbors.new(3, 1, 3)
    for label in (32767, -32768, 32767):
        m.additem(h(0), label)
    assert m.predict(h(0)) == 32767


def test_vote_ties_go_to_the_lowest_label():
    m = emlearn_neighbors.new(8, 1, 2)
    m.additem(h(-1), 7)
    m.additem(h(1), 3)
    assert m.predict(h(0)) == 3
    m = emlearn_neighbors.new(8, 1, 4)
    for x, label in ((1, 5), (2, 5), (3, -2), (4, -2), (100, -9)):
        m.additem(h(x), label)
    assert m.predict(h(0)) == -2
    m = emlearn_neighbors.new(8, 1, 3)
    for x, label in ((1, 5), (2, 5), (3, -2), (4, -2)):
        m.additem(h(x), label)
    assert m.predict(h(0)) == 5   # 2 votes to 1


def sklearn_heap_voters(distances, k):
    # scikit-learn's heap_push (sklearn/utils/_heap.pyx), pushed in index order: the voters.
    values = [float("inf")] * k
    indices = [-1] * k
    for index, value in enumerate(distances):
        if value >= values[0]:
            continue
        current = 0
        while True:
            left = 2 * current + 1
            right = left + 1
            if left >= k:
                break
            elif right >= k:
                if values[left] > value:
                    swap = left
                else:
                    break
            elif values[left] >= values[right]:
                if value < values[left]:
                    swap = left
                else:
                    break
            else:
                if value < values[right]:
                    swap = right
                else:
                    break
            values[current] = values[swap]
            indices[current] = indices[swap]
            current = swap
        values[current] = value
        indices[current] = index
    return indices


def test_equal_distances_choose_voters_like_scikit_learn():
    # Duplicated points: many items at each distance, so the k-th place is a tie most of the time.
    seed = 12345
    points = []
    for i in range(300):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        points.append(((seed >> 8) % 4, (seed >> 12) % 3))
    lexicographic_differs = 0
    for k in (1, 2, 7, 30, 64, 150, 299, 300):
        m = emlearn_neighbors.new(300, 2, k)
        for i, p in enumerate(points):
            m.additem(h(*p), i % 5)
        for q in ((0, 0), (1, 1), (3, 2), (2, 0), (-1, 5)):
            m.predict(h(*q))
            d = [(p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 for p in points]
            expected = sklearn_heap_voters(d, k)
            got = [m.getresult(i) for i in range(300)]
            voters = [r[0] for r in got[:k]]
            assert sorted(voters) == sorted(expected), (k, q)
            # Voters nearest first, then everyone else nearest first; distances as floor(sqrt).
            assert [r[1] for r in got[:k]] == sorted(r[1] for r in got[:k])
            assert [r[1] for r in got[k:]] == sorted(r[1] for r in got[k:])
            assert sorted(r[0] for r in got) == list(range(300))
            for index, distance, label in got:
                assert distance * distance <= d[index] < (distance + 1) * (distance + 1)
                assert label == index % 5
            lex = sorted(range(300), key=lambda i: (d[i], i))[:k]
            lexicographic_differs += sorted(lex) != sorted(expected)
    assert lexicographic_differs > 0   # the test can tell the heap rule from a stable sort


def test_two_models_do_not_interfere():
    a = emlearn_neighbors.new(10, 2, 1)
    b = emlearn_neighbors.new(10, 2, 3)
    for i in range(5):
        a.additem(h(i, i), 100 + i)
        b.additem(h(-i, -i), 200 + i % 2)
    assert a.predict(h(3, 3)) == 103
    assert b.predict(h(0, 0)) == 200
    assert a.getresult(0) == (3, 0, 103)
    assert b.getresult(0) == (0, 0, 200)
    a.additem(h(9, 9), 1)
    assert b.getresult(2) == (2, 2, 200)
    assert a.predict(h(9, 9)) == 1 and b.predict(h(-2, -2)) == 201   # items 2, 1, 3 vote


def test_float_input_uses_the_stored_quantiser():
    # q = round_half_away((x - offset) * scale), saturated to int16.
    data = model_file([(0, 0), (100, -100)], [4, 5], 1, quantizer=([1.0, -2.0], [10.0, 0.5]))
    m = emlearn_neighbors.load(data)
    q = h(0, 0)
    for x, expected in (((1.0, -2.0), (0, 0)), ((1.25, -1.0), (3, 1)), ((0.75, -3.0), (-3, -1)), ((1.2, -2.5), (2, 0)),
                        ((1e9, -1e9), (32767, -32768)), ((float("inf"), float("-inf")), (32767, -32768)),
                        ((11.0, -202.0), (100, -100))):
        m.quantize(array.array("f", x), q)
        assert tuple(q) == expected, (x, tuple(q))
    assert m.predict(array.array("f", [1.1, -2.0])) == 4
    assert m.predict(array.array("f", [9.0, -150.0])) == 5
    out = array.array("f", [0, 0])
    m.getitem(1, out)
    assert list(out) == [11.0, -202.0]
    with raises(ValueError, "x[1] is NaN"):
        m.predict(array.array("f", [0.0, float("nan")]))
    # A model from new() has the identity map: floats are rounded.
    m = emlearn_neighbors.new(2, 1, 1)
    assert m.additem(array.array("f", [2.5]), 1) == 0
    out = array.array("h", [0])
    m.getitem(0, out)
    assert out[0] == 3


def test_save_load_and_load_model():
    m = emlearn_neighbors.new(10, 2, 3)
    for i in range(4):
        m.additem(h(i, -i), i % 2)
    blob = m.save()
    again = emlearn_neighbors.load(blob)
    assert again.items() == 4 and again.k() == 3 and again.features() == 2
    assert again.predict(h(0, 0)) == m.predict(h(0, 0))
    assert again.save() == blob
    roomy = emlearn_neighbors.load(blob, max_items=6)
    roomy.additem(h(5, 5), 1)
    roomy.additem(h(6, 6), 1)
    with raises(ValueError, "full: max_items=6"):
        roomy.additem(h(7, 7), 1)
    other = emlearn_neighbors.new(5, 2, 1)
    other.additem(h(9, 9), 9)
    other.load_model(blob)
    assert other.items() == 4 and other.k() == 3
    emlearn_neighbors.load_model(other, blob)
    with open("/tmp/tinysense_test_neighbors.bin", "wb") as f:
        f.write(blob)
    with open("/tmp/tinysense_test_neighbors.bin", "rb") as f:
        assert emlearn_neighbors.load(f).items() == 4
    with open("/tmp/tinysense_test_neighbors.bin", "rb") as f:
        other.load_model(f)
    with open("/tmp/tinysense_test_neighbors.txt", "w") as f:
        f.write("TSKN text")
    with open("/tmp/tinysense_test_neighbors.txt") as f:
        with raises(TypeError, "binary mode"):
            emlearn_neighbors.load(f)
    with raises(TypeError, "file opened 'rb' or bytes"):
        emlearn_neighbors.load(42)


def test_load_model_must_fit_and_failure_changes_nothing():
    blob = model_file([(1, 2), (3, 4), (5, 6)], [0, 1, 1], 2)
    m = emlearn_neighbors.new(3, 2, 1)
    m.additem(h(0, 0), 42)
    with raises(ValueError, "the file has 2 features, this model has 3"):
        emlearn_neighbors.new(5, 3, 1).load_model(blob)
    with raises(ValueError, "the file has 3 items, new() allows max_items=2"):
        emlearn_neighbors.new(2, 2, 1).load_model(blob)
    with raises(ValueError, "k=5, more than max_items=3"):
        m.load_model(model_file([(1, 2)], [0], 5))
    with raises(ValueError, "checksum"):
        m.load_model(blob[:-1] + b"\x01")
    assert m.items() == 1 and m.k() == 1 and m.predict(h(1, 1)) == 42
    m.load_model(blob)
    assert m.items() == 3 and m.k() == 2


def test_bad_input():
    m = emlearn_neighbors.new(4, 2, 2)
    with raises(ValueError, "the model has 0 items, k=2 needs at least 2"):
        m.predict(h(1, 2))
    m.additem(h(1, 2), 0)
    with raises(ValueError, "the model has 1 items"):
        m.predict(h(1, 2))
    m.additem(h(3, 4), 1)
    with raises(ValueError, "typecode 'i'"):
        m.predict(array.array("i", [1, 2]))
    with raises(ValueError, "typecode 'B'"):
        m.predict(b"abcd")
    with raises(ValueError, "typecode 'B'"):
        m.predict(bytearray(4))
    with raises(ValueError, "typecode 'd'"):
        m.additem(array.array("d", [1, 2]), 0)
    with raises(TypeError, "not int"):
        m.predict(5)
    with raises(ValueError, "x has 1 features, the model expects 2"):
        m.predict(h(1))
    with raises(ValueError, "x has 3 features, the model expects 2"):
        m.predict(h(1, 2, 3))
    with raises(ValueError, "x has 3 features"):
        m.additem(h(1, 2, 3), 0)
    with raises(ValueError, "x has 3 features"):
        m.predict(array.array("f", [1, 2, 3]))
    with raises(ValueError, "label 32768 is outside int16"):
        m.additem(h(1, 2), 32768)
    with raises(ValueError, "label -32769 is outside int16"):
        m.additem(h(1, 2), -32769)
    with raises(IndexError, "item 2 is out of range (2 items)"):
        m.getitem(2, h(0, 0))
    with raises(IndexError, "item -1"):
        m.getitem(-1, h(0, 0))
    with raises(ValueError, "out must be array('h') or array('f') of 2 values"):
        m.getitem(0, h(0, 0, 0))
    with raises(ValueError, "out must be array('h') or array('f')"):
        m.getitem(0, array.array("i", [0, 0]))
    with raises(ValueError, "call predict() first"):
        m.getresult(0)
    m.predict(h(1, 2))
    with raises(IndexError, "result 2 is out of range (2 items ranked)"):
        m.getresult(2)
    with raises(IndexError, "result -1"):
        m.getresult(-1)
    m.additem(h(5, 5), 1)
    with raises(ValueError, "call predict() first"):
        m.getresult(0)
    with raises(ValueError, "out must be array('h') of 2 values"):
        m.quantize(array.array("f", [1, 2]), h(0))
    with raises(ValueError, "x must be array('f')"):
        m.quantize(h(1, 2), h(0, 0))
    for args, message in (((0, 2, 1), "max_items must be 1..1048575, got 0"),
                          ((1048576, 1, 1), "max_items must be 1..1048575"),
                          ((10, 0, 1), "n_features must be 1..4096, got 0"),
                          ((10, 4097, 1), "n_features must be 1..4096"),
                          ((10, 2, 0), "k must be 1..10, got 0"),
                          ((10, 2, 11), "k must be 1..10, got 11")):
        with raises(ValueError, message):
            emlearn_neighbors.new(*args)
    with raises(ValueError, "max_items must be 0.."):
        emlearn_neighbors.load(m.save(), max_items=-1)
    with raises(TypeError, "expected a model"):
        emlearn_neighbors.load_model(object(), b"")
    m.__del__()
    m.__del__()
    with raises(ValueError, "freed"):
        m.predict(h(1, 2))


def test_truncated_and_garbled_files():
    blob = model_file([(1, 2), (3, 4)], [0, 1], 1, quantizer=([0.5, 0.5], [2.0, 4.0]))
    for n in range(len(blob)):
        with raises(ValueError, "bad k-NN model"):
            emlearn_neighbors.load(blob[:n])
    with raises(ValueError, "truncated model: 51 of 52 bytes"):
        emlearn_neighbors.load(blob[:-1])
    with raises(ValueError, "1 trailing bytes"):
        emlearn_neighbors.load(blob + b"\0")
    for i in range(len(blob)):
        for bit in (0x01, 0x80):
            data = bytearray(blob)
            data[i] ^= bit
            with raises(ValueError, "bad k-NN model"):
                emlearn_neighbors.load(data)
    with raises(ValueError, "this is an emlearn_trees model (magic 'TSTR')"):
        emlearn_neighbors.load(b"TSTR" + blob[4:])
    with raises(ValueError, "this is an emlearn_net model (magic 'TSNN')"):
        emlearn_neighbors.load(b"TSNN" + blob[4:])
    with raises(ValueError, "magic '?PNG', expected 'TSKN'"):
        emlearn_neighbors.load(b"\x89PNG\r\n\x1a\n" + blob)
    with raises(ValueError, "truncated magic: 3 bytes"):
        emlearn_neighbors.load(b"TSK")
    # Correctly checksummed but wrong.
    bad = [
        (model_file([(1, 2)], [0], 1, version=2), "format version 2"),
        (model_file([(1, 2)], [0], 1, kind=2), "model kind 2"),
        (model_file([(1, 2)], [0], 1, flags=2), "unknown flags"),
        (model_file([(1, 2)], [0], 1, reserved=1), "reserved"),
        (model_file([(1, 2)], [0], 0), "k 0 is outside"),
        (model_file([()], [0], 1, n_features=0), "n_features 0 is outside 1..4096"),
        (model_file([(1, 2)], [0], 1, quantizer=([float("nan"), 0.0], [1.0, 1.0])), "offset of feature 0"),
        (model_file([(1, 2)], [0], 1, quantizer=([0.0, 0.0], [1.0, 0.0])), "scale of feature 1"),
        (model_file([(1, 2)], [0], 1, quantizer=([0.0, 0.0], [-1.0, 1.0])), "scale of feature 0"),
        (model_file([(1, 2)], [0], 1, quantizer=([0.0, 0.0], [1.0, float("inf")])), "scale of feature 1"),
        (model_file([(1, 2)], [0], 1, fix_crc=False), "checksum mismatch"),
    ]
    for data, message in bad:
        with raises(ValueError, message):
            emlearn_neighbors.load(data)
    header = bytearray(model_file([(1, 2)], [0], 1))
    header[16:20] = struct.pack("<I", 0xFFFFFFFF)   # n_items: 4 billion
    with raises(ValueError, "n_items 4294967295 is more than 1048575"):
        emlearn_neighbors.load(header)
    # A file with no items loads; it predicts once it has k items.
    m = emlearn_neighbors.load(model_file([], [], 2, n_features=3), max_items=4)
    assert m.items() == 0 and m.features() == 3
    m.additem(h(1, 1, 1), 3)
    m.additem(h(2, 2, 2), 3)
    assert m.predict(h(0, 0, 0)) == 3


def test_predict_allocates_nothing():
    m = emlearn_neighbors.load(model_file([(i, -i, 2 * i) for i in range(50)], [i % 7 for i in range(50)], 5,
                                          quantizer=([0.0, 0.0, 0.0], [3.0, 3.0, 3.0])))
    xh = h(10, -3, 8)
    xf = array.array("f", [1.5, -2.0, 7.25])
    assert heap_allocated_during(lambda: m.predict(xh), 1000) == 0
    assert heap_allocated_during(lambda: m.predict(xf), 1000) == 0
