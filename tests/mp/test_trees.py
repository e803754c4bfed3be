# emlearn_trees on the device side: loading (binary and CSV), prediction, and bad input.
# The models are built here by hand, so the expected predictions are known exactly.
import array
import struct

import emlearn_trees
from mptest import crc32, heap_allocated_during, raises, variant

# One tree, 2 features, 2 classes:  x0 < 5 -> class 0;  else x1 < 3 -> class 0, else class 1.
CSV = "f,2\nc,2\nlb,0\nr,0\nn,0,5,-1,1\nn,1,3,-1,-2\nl,0\nl,1\n"
CASES = [((4, 9), 0), ((5, 2), 0), ((5, 3), 1), ((-100, 100), 0), ((32767, 32767), 1)]


def bit_stream(fields):
    # (value, width) unsigned fields, LSB first, zero-padded to a byte (the format's root and node stream).
    acc, n = 0, 0
    for value, width in fields:
        acc |= value << n
        n += width
    return acc.to_bytes((n + 7) // 8, "little")


def bit_length(v):
    n = 0
    while v:
        v >>= 1
        n += 1
    return n


def binary(nodes, leaves, roots, n_features=2, n_classes=2, leaf_bits=0, mode=0, table=None, magic=b"TSTR", kind=1,
           version=2):
    # Format version 2 (see usermods/emlearn_trees/trees.h), as tinysense.trees.pack writes it.
    n_leaves = len(leaves) if leaf_bits == 0 else len(leaves) // n_classes
    base = min([n[1] for n in nodes]) if nodes else 0
    rows = [(f, th - base, left + n_leaves, right + n_leaves) for f, th, left, right in nodes]
    fb = bit_length(max([r[0] for r in rows])) if rows else 0
    tb = bit_length(max([r[1] for r in rows])) if rows else 0
    cb = max(1, bit_length(max([max(r[2], r[3]) for r in rows])) if rows else 1)
    rb = max(1, bit_length(max(r + n_leaves for r in roots)))
    widths = struct.pack("<BBBB", fb, tb, cb, rb)
    fields = [(r + n_leaves, rb) for r in roots]
    for row in rows:
        fields += [(row[i], (fb, tb, cb, cb)[i]) for i in range(4)]
    payload = widths + bit_stream(fields)
    fmt = {0: "<B", 8: "<B", 16: "<H", 32: "<f"}[leaf_bits]
    payload += b"".join(struct.pack(fmt, v) for v in leaves)
    n_table = 0
    if table is not None:
        payload += b"".join(struct.pack("<H", len(t)) for t in table)
        for t in table:
            n_table += len(t)
            payload += b"".join(struct.pack("<f", v) for v in t)
    header = struct.pack("<4sBBBBHHHhIII", magic, version, kind, leaf_bits, mode, n_features, n_classes, len(roots),
                         base, len(nodes), n_leaves, n_table)
    return header + struct.pack("<I", crc32(payload, crc32(header))) + payload


BINARY = binary([(0, 5, -1, 1), (1, 3, -1, -2)], [0, 1], [0])


def new_model(data=BINARY, **kw):
    m = emlearn_trees.new(4, 16, 16, **kw)
    emlearn_trees.load_model(m, data)
    return m


def test_binary_and_csv_predict_the_same():
    for data in (BINARY, CSV, CSV.encode()):
        m = new_model(data)
        assert m.outputs() == 2 and m.features() == 2
        out = array.array("f", [9.0, 9.0])
        for x, expected in CASES:
            assert m.predict(array.array("h", x), out) == expected, (data, x)
            assert out[expected] == 1.0 and out[1 - expected] == 0.0
            assert m.predict(array.array("f", x)) == expected


def test_load_from_files():
    with open("/tmp/tinysense_test_trees.csv", "w") as f:
        f.write(CSV)
    with open("/tmp/tinysense_test_trees.bin", "wb") as f:
        f.write(BINARY)
    for path, mode in (("/tmp/tinysense_test_trees.csv", "r"), ("/tmp/tinysense_test_trees.bin", "rb")):
        m = emlearn_trees.new(4, 16, 16)
        with open(path, mode) as f:
            m.load_model(f)
        assert m.predict(array.array("h", (5, 3))) == 1


def test_csv_decimal_threshold_means_less_or_equal():
    # emlearn writes scikit-learn's thresholds: 4.5 must mean x <= 4.5 (x < 5), not emlearn's x < int(4.5).
    m = new_model("f,1\nc,2\nr,0\nn,0,4.5,-1,-2\nl,0\nl,1\n")
    assert m.predict(array.array("h", [4])) == 0
    assert m.predict(array.array("h", [5])) == 1
    m = new_model("f,1\nc,2\nr,0\nn,0,-0.5,-1,-2\nl,0\nl,1\n")
    assert m.predict(array.array("h", [-1])) == 0
    assert m.predict(array.array("h", [0])) == 1
    m = new_model("f,1\nc,2\nr,0\nn,0,2.5e1,-1,-2\nl,0\nl,1\n")
    assert m.predict(array.array("h", [25])) == 0 and m.predict(array.array("h", [26])) == 1


def test_float_threshold_table():
    # x0 <= 0.25 -> class 0 else class 1; quantised by rank in the table [0.25, 1.5].
    table = [[0.25, 1.5], []]
    data = binary([(0, 1, -1, -2)], [0, 1], [0], mode=1, table=table)
    csv = "f,2\nc,2\nq,0,0x3e800000\nq,0,0x3fc00000\nr,0\nn,0,1,-1,-2\nl,0\nl,1\n"
    for model in (data, csv):
        m = new_model(model)
        assert m.predict(array.array("f", [0.25, 7.0])) == 0
        assert m.predict(array.array("f", [0.2500001, 7.0])) == 1
        assert m.predict(array.array("f", [float("-inf"), 0.0])) == 0
        q = array.array("h", [0, 0])
        m.quantize(array.array("f", [2.0, 1.0]), q)
        assert list(q) == [2, 0]
        with raises(ValueError, "NaN"):
            m.predict(array.array("f", [float("nan"), 0.0]))


def test_soft_vote_probabilities():
    # Two single-leaf trees with leaf probabilities: mean is (0.5, 0.5) -> lowest index wins the tie.
    data = binary([], [0.25, 0.75, 0.75, 0.25], [-1, -2], leaf_bits=32)
    m = new_model(data)
    out = array.array("f", [0, 0])
    assert m.predict(array.array("h", [0, 0]), out) == 0
    assert list(out) == [0.5, 0.5]


def test_quantised_soft_vote_leaves():
    # 8-bit leaves (each summing to 255): tree 0 -> (64, 191), tree 1 -> (191, 64): an exact integer tie,
    # lowest index wins; 16-bit leaves likewise. One tree with a node: x0 < 5 -> (255, 0) else (10, 245).
    for bits, full in ((8, 255), (16, 65535)):
        low = full // 4
        m = new_model(binary([], [low, full - low, full - low, low], [-1, -2], leaf_bits=bits), leaf_bits=bits)
        out = array.array("f", [9, 9])
        assert m.predict(array.array("h", [0, 0]), out) == 0
        assert list(out) == [0.5, 0.5]
        m = new_model(binary([(0, 5, -1, -2)], [full, 0, 10, full - 10], [0], leaf_bits=bits))
        assert m.predict(array.array("h", [4, 0]), out) == 0 and list(out) == [1.0, 0.0]
        assert m.predict(array.array("h", [5, 0]), out) == 1 and out[0] == 10 / full
        x = array.array("h", [5, 0])
        assert heap_allocated_during(lambda m=m, x=x, out=out: m.predict(x, out), 1000) == 0
        with raises(ValueError, f"quantised probabilities sum to {full + 1}, not {full}"):
            emlearn_trees.load_model(m, binary([], [1, full], [-1], leaf_bits=bits))
    # leaf_bits in new() bounds the leaf buffer: 8 holds class and 8-bit leaves, not 16/32-bit ones.
    small = emlearn_trees.new(4, 16, 16, leaf_bits=8)
    emlearn_trees.load_model(small, BINARY)
    emlearn_trees.load_model(small, binary([], [255, 0], [-1], leaf_bits=8))
    with raises(ValueError, "16-bit leaves, new() allows leaf_bits=8"):
        emlearn_trees.load_model(small, binary([], [65535, 0], [-1], leaf_bits=16))
    with raises(ValueError, "32-bit leaves, new() allows leaf_bits=8"):
        emlearn_trees.load_model(small, binary([], [1.0, 0.0], [-1], leaf_bits=32))
    with raises(ValueError, "line 4: float32 leaves, new() allows leaf_bits=8"):
        emlearn_trees.load_model(small, "f,1\nc,0\nlf,32\nl,1.5\nr,-1\n")
    with raises(ValueError, "leaf_bits must be 8, 16 or 32, got 12"):
        emlearn_trees.new(1, 1, 1, leaf_bits=12)


def test_8bit_soft_vote_sums_at_the_lane_limit():
    # 8-bit soft vote sums 4 classes per step in 16-bit lanes up to 257 trees (257 * 255 = 65535, the lane's
    # maximum) and class by class beyond. Both must give the exact integer sums: trees alternate between leaf
    # A (all 255 in class 2, a lane class) and leaf B (spread over all 6 classes: 4 lane classes, 2 others).
    leaf_a = [0, 0, 255, 0, 0, 0]
    leaf_b = [10, 20, 200, 1, 4, 20]
    for n_trees, n_a in ((1, 1), (5, 3), (257, 257), (257, 129), (258, 258), (300, 150)):
        roots = [-1] * n_a + [-2] * (n_trees - n_a)
        m = emlearn_trees.new(300, 1, 12, max_classes=6, leaf_bits=8)
        emlearn_trees.load_model(m, binary([], leaf_a + leaf_b, roots, n_classes=6, leaf_bits=8))
        out = array.array("f", [9] * 6)
        counts = [n_a * leaf_a[c] + (n_trees - n_a) * leaf_b[c] for c in range(6)]
        assert m.predict(array.array("h", [0, 0]), out) == counts.index(max(counts))
        assert list(out) == [c / (255 * n_trees) for c in counts], (n_trees, list(out))


# Soft-vote CSV as emlearn 0.23 writes it (`lb,8`; a leaf is numpy's print of its uint8 class proportions,
# which need not sum to 255): 2 trees, 3 classes. Tree 0: x0 < 5 -> A else B; tree 1: x1 < 2 -> C else A.
SOFT_CSV = "f,2\r\nc,3\r\nlb,8\r\nl,[255   0   0]\r\nl,[  0  64 190]\r\nl,[  0 255   0]\r\nr,0\r\nr,1\r\n" \
    "n,0,4.5,-1,-2\r\nn,1,1.5,-3,-1\r\n"
SOFT_CASES = [((4, 1), (255, 255, 0)), ((4, 2), (510, 0, 0)), ((5, 1), (0, 319, 190)), ((5, 2), (255, 64, 190))]


def test_csv_soft_vote_leaves():
    for text in (SOFT_CSV, SOFT_CSV.replace("[  0  64 190]", "[0, 64,\n   190]")):
        m = emlearn_trees.new(2, 2, 9, max_classes=3, leaf_bits=8)
        emlearn_trees.load_model(m, text)
        out = array.array("f", [9, 9, 9])
        for x, counts in SOFT_CASES:
            assert m.predict(array.array("h", x), out) == counts.index(max(counts)), x
            assert list(out) == [c / 510 for c in counts], (x, list(out))
        x = array.array("h", [5, 1])
        if variant() != "sanitize":  # no GC heap to measure there
            assert heap_allocated_during(lambda m=m, x=x, out=out: m.predict(x, out), 100) == 0
    # A soft-vote leaf holds n_classes values: max_leaves counts values, as for binary models.
    with raises(ValueError, "line 6: more leaf values than new() allows (max_leaves=8; a soft-vote leaf holds 3"):
        emlearn_trees.load_model(emlearn_trees.new(2, 2, 8, max_classes=3), SOFT_CSV)


def test_csv_soft_vote_errors_name_the_line():
    m = emlearn_trees.new(4, 16, 16, max_classes=3)
    head = "f,2\nc,3\nlb,8\n"
    bad = [
        (head + "l,[1 2]\n", "line 4: leaf has 2 values, the model has 3 classes"),
        (head + "l,[1 2 3 4]\n", "line 4: leaf has more values than the model's 3 classes"),
        (head + "l,[1 2 256]\n", "line 4: leaf value 3 is not an integer 0..255"),
        (head + "l,[1 -2 3]\n", "line 4: leaf value 2 is not an integer 0..255"),
        (head + "l,[1 2 3\nr,0\n", "line 4: leaf row has no closing ']'"),
        (head + "l,1\n", "line 4: with lb,1..8 a leaf is a row of class proportions"),
        ("f,2\nc,3\nlb,0\nl,[1 2 3]\n", "line 4: a leaf of class proportions needs a classifier with lb,1..8"),
        ("f,2\nc,3\nl,[1 2 3]\nlb,8\n", "line 3: a leaf of class proportions needs"),
        ("f,2\nc,3\nlb,0\nl,1\nlb,8\n", "line 5: the lb record must come before the leaves"),
        ("f,2\nc,3\nlb,9\n", "line 3: leaf_bits 9 is not supported in CSV"),
        ("f,2\nc,0\nlb,8\n", "line 3: leaf_bits 8 is not supported in CSV"),
        ("lb,8\nf,2\nc,0\nr,0\n", "a regressor (c,0) needs lf,32"),
        ("l,[1 2 3]\nf,2\nc,3\n", "line 1: f and c records must come before"),
        (head + "l,[1 2\n3]\nl,[1 2 x]\n", "line 6: leaf value 3 is not an integer"),
    ]
    for text, message in bad:
        with raises(ValueError, message):
            emlearn_trees.load_model(m, text)


def test_version_1_files_ask_to_reconvert():
    with raises(ValueError, "format version 1 is no longer supported (expected 2): re-convert"):
        emlearn_trees.load_model(emlearn_trees.new(4, 16, 16), b"TSTR\x01" + BINARY[5:])


def test_wrong_typecode_and_length():
    m = new_model()
    with raises(ValueError, "typecode 'i'"):
        m.predict(array.array("i", [1, 2]))
    with raises(ValueError, "typecode 'B'"):
        m.predict(b"ab")
    with raises(ValueError, "x has 1 features, the model expects 2"):
        m.predict(array.array("h", [1]))
    with raises(ValueError, "x has 3 features, the model expects 2"):
        m.predict(array.array("h", [1, 2, 3]))
    with raises(ValueError, "out must be array('f')"):
        m.predict(array.array("h", [1, 2]), array.array("h", [0, 0]))
    with raises(ValueError, "out has 3 values"):
        m.predict(array.array("h", [1, 2]), array.array("f", [0, 0, 0]))


def test_new_limits():
    with raises(ValueError, "max_trees must be 1.."):
        emlearn_trees.new(0, 10, 10)
    with raises(ValueError, "max_nodes must be 1.."):
        emlearn_trees.new(1, 10000000, 10)
    with raises(ValueError, "max_features must be 1.."):
        emlearn_trees.new(1, 10, 10, max_features=0)
    for data in (BINARY, CSV):
        with raises(ValueError, "max_nodes=1"):
            emlearn_trees.load_model(emlearn_trees.new(1, 1, 16), data)
        with raises(ValueError, "max_leaves=1"):
            emlearn_trees.load_model(emlearn_trees.new(1, 16, 1), data)
        with raises(ValueError, "max_features=1"):
            emlearn_trees.load_model(emlearn_trees.new(1, 16, 16, max_features=1), data)
        with raises(ValueError, "max_classes=1"):
            emlearn_trees.load_model(emlearn_trees.new(1, 16, 16, max_classes=1), data)
    # The float threshold table has its own limit (default max_nodes); integer models need none.
    table_model = binary([(0, 1, -1, -2)], [0, 1], [0], mode=1, table=[[0.25, 1.5], []])
    with raises(ValueError, "max_thresholds=1"):
        emlearn_trees.load_model(emlearn_trees.new(1, 16, 16, max_thresholds=1), table_model)
    emlearn_trees.load_model(emlearn_trees.new(1, 1, 2, max_thresholds=2), table_model)
    emlearn_trees.load_model(emlearn_trees.new(1, 16, 16, max_thresholds=0), BINARY)
    with raises(ValueError, "max_thresholds must be 0.."):
        emlearn_trees.new(1, 10, 10, max_thresholds=-1)
    two_trees = binary([(0, 5, -1, 1), (1, 3, -1, -2)], [0, 1], [0, -1])
    with raises(ValueError, "max_trees=1"):
        emlearn_trees.load_model(emlearn_trees.new(1, 16, 16), two_trees)


def test_truncated_binary():
    m = emlearn_trees.new(4, 16, 16)
    for n in range(len(BINARY)):
        with raises(ValueError, "bad trees model"):
            emlearn_trees.load_model(m, BINARY[:n])
    with raises(ValueError, "truncated model"):
        emlearn_trees.load_model(m, BINARY[:-1])
    with raises(ValueError, "trailing bytes"):
        emlearn_trees.load_model(m, BINARY + b"\0")


def test_garbled_binary():
    m = emlearn_trees.new(4, 16, 16)
    for i in range(4, len(BINARY)):
        data = bytearray(BINARY)
        data[i] ^= 0x40
        with raises(ValueError, "bad trees model"):
            emlearn_trees.load_model(m, data)
    data = bytearray(BINARY)
    data[-1] ^= 1
    with raises(ValueError, "checksum"):
        emlearn_trees.load_model(m, data)
    with raises(ValueError, "magic 'TSKN'"):
        emlearn_trees.load_model(m, b"TSKN" + BINARY[4:])
    with raises(ValueError, "not CSV text"):
        emlearn_trees.load_model(m, b"\x89PNG\r\n\x1a\n" + BINARY)
    # Structurally wrong but correctly checksummed models.
    bad = [
        (binary([(0, 5, 0, 1), (1, 3, -1, -2)], [0, 1], [0]), "links to itself"),
        (binary([(0, 5, -1, 2), (1, 3, -1, -2)], [0, 1], [0]), "past the last node"),
        (binary([(0, 5, -1, 1), (1, 3, -1, -2)], [0, 1], [0], n_features=1), "uses feature 1"),
        (binary([(2, 5, -1, 1), (1, 3, -1, -2)], [0, 1], [0]), "uses feature 2"),
        (binary([(0, 5, -1, 1), (1, 3, -1, -2)], [0, 2], [0]), "holds class 2"),
        (binary([(0, 5, -1, 1), (1, 3, -1, -2)], [0, 1], [2]), "root"),
        (binary([(0, 3, -1, -2)], [0, 1], [0], mode=1, table=[[1.0, 0.5], []]), "increasing"),
        (binary([(0, 3, -1, -2)], [0, 1], [0], mode=1, table=[[0.5, 1.0], []]), "threshold 3 outside"),
        (binary([], [0.5, 1.5], [-1], leaf_bits=32), "probability"),
    ]
    for data, message in bad:
        with raises(ValueError, message):
            emlearn_trees.load_model(m, data)


def test_csv_errors_name_the_line():
    m = emlearn_trees.new(4, 16, 16)
    bad = [
        ("f,2\nc,2\nr,0\nn,0,abc,-1,1\n", "line 4: field 3 is not an integer"),
        ("f,2\nc,2\nr,0\nn,0,1.2.3,-1,1\n", "line 4: field 3 is not a number"),
        ("f,2\nc,2\nr,0\nn,0,1e,-1,1\n", "line 4: field 3 is not a number"),
        ("f,2\nc,2\nr,x\n", "line 3: field 2 is not an integer"),
        ("f,2\nc,2\nr,0\nn,0,5,-1\n", "line 4: expected 5 fields"),
        ("f,2\nc,2\nzz,1\n", "line 3: unknown record"),
        ("r,0\nf,2\nc,2\n", "line 1: f and c records must come before"),
        ("f,2\nc,2\nr,0\nn,0,5,-1,1\nn,1,3,-1,-2\nl,0\nl,2\n", "line 7: leaf class 2 out of range"),
        ("f,2\nc,2\nr,0\nn,5,5,-1,-1\n", "line 4: feature 5 out of range"),
        ("f,2\nc,2\nr,0\nn,0,40000,-1,-1\n", "line 4: field 3 out of int16 range"),
        ("f,2\nc,2\nlb,32\n", "line 3: leaf_bits 32"),
        ("f,2\nc,2\nr,0\nn,0,5,-1,1\nl,0\n", "past the last node"),
        ("f,2\nc,2\nr,0\nn,0,5,-1,-3\nl,0\nl,1\n", "missing leaf"),
        ("f,2\nc,2\n", "no trees"),
        ("", "no feature count"),
        ("f,2\nc,2\nr,0\nn,0,5,-1,-1\nl,0\x00\n", "line 5: byte 0x00"),
    ]
    for text, message in bad:
        with raises(ValueError, message):
            emlearn_trees.load_model(m, text)


def test_failed_load_leaves_model_unloaded():
    m = new_model()
    with raises(ValueError, "bad trees model"):
        emlearn_trees.load_model(m, BINARY[:-3])
    with raises(ValueError, "no model loaded"):
        m.predict(array.array("h", [1, 2]))
    with raises(ValueError, "no model loaded"):
        m.outputs()
    with raises(TypeError, "file, bytes or str"):
        emlearn_trees.load_model(m, 42)

    class NotAFile:
        def read(self):
            return 42

    with raises(TypeError, "read() returned neither bytes nor str"):
        emlearn_trees.load_model(m, NotAFile())


def test_predict_accepts_keywords():
    # Positional calls take a fast path; keywords go through the general argument parser, same results.
    m = new_model()
    x = array.array("h", [5, 3])
    out = array.array("f", [9, 9])
    assert m.predict(x=x) == 1
    assert m.predict(x, out=out) == 1 and list(out) == [0.0, 1.0]
    assert m.predict(x=x, out=None) == 1
    for bad in (lambda: m.predict(), lambda: m.predict(x, out, out), lambda: m.predict(x, bogus=1)):
        with raises(TypeError):
            bad()


def test_predict_allocates_nothing():
    m = new_model()
    xh = array.array("h", [5, 3])
    xf = array.array("f", [5.0, 3.0])
    out = array.array("f", [0, 0])
    assert heap_allocated_during(lambda: m.predict(xh, out), 1000) == 0
    assert heap_allocated_during(lambda: m.predict(xf, out), 1000) == 0


# Regression: two trees over 2 features. Tree 0: x0 < 5 -> 1.5 else 2.5; tree 1: x1 < 3 -> -4.0 else 10.0.
REG_BINARY = binary([(0, 5, -1, -2), (1, 3, -3, -4)], [1.5, 2.5, -4.0, 10.0], [0, 1], n_classes=1, leaf_bits=32,
                    kind=2)
REG_CSV = "f,2\nc,0\nlf,32\nr,0\nr,1\nn,0,5,-1,-2\nn,1,3,-3,-4\nl,1.5\nl,2.5\nl,-4\nl,1e1\n"
REG_CASES = [((4, 2), (1.5 - 4.0) / 2), ((5, 2), (2.5 - 4.0) / 2), ((4, 3), (1.5 + 10.0) / 2), ((9, 9), 6.25)]


def test_regression_binary_and_csv():
    for data in (REG_BINARY, REG_CSV):
        m = new_model(data)
        assert m.is_regressor() and m.outputs() == 1 and m.features() == 2
        out = array.array("f", [99.0])
        for x, expected in REG_CASES:
            assert m.predict(array.array("h", x), out) is None
            assert out[0] == expected, (data, x, out[0])
            assert m.predict(array.array("h", x)) == expected
            assert m.predict(array.array("f", x)) == expected
    assert not new_model().is_regressor()


def test_regression_sum_is_compensated():
    # 1 tree with leaf 2**24 and 1000 trees with leaf 1.0: plain float32 accumulation loses every 1.0
    # (2**24 + 1 rounds to 2**24) and would give 2**24 / 1001; the compensated sum gives the true mean.
    roots = [-1] + [-2] * 1000
    m = emlearn_trees.new(1001, 1, 2)
    emlearn_trees.load_model(m, binary([], [16777216.0, 1.0], roots, n_classes=1, leaf_bits=32, kind=2))
    expected = (16777216.0 + 1000.0) / 1001.0
    got = m.predict(array.array("h", [0, 0]))
    assert abs(got - expected) <= 1e-6 * expected, (got, expected)


def test_regression_errors():
    m = emlearn_trees.new(4, 16, 16)
    bad = [
        (binary([(0, 5, -1, -2)], [1.0, 2.0, 3.0, 4.0], [0], n_classes=2, leaf_bits=32, kind=2), "2 outputs"),
        (binary([(0, 5, -1, -2)], [0, 1], [0], n_classes=1, kind=2), "leaf_bits 32"),
        (binary([(0, 5, -1, -2)], [1.0, float("inf")], [0], n_classes=1, leaf_bits=32, kind=2), "not finite"),
        (binary([(0, 5, -1, -2)], [1.0, 2.0], [0], n_classes=1, leaf_bits=32, kind=3), "model kind 3"),
        ("f,1\nc,0\nlf,32\nr,0\nn,0,5,-1,-2\nl,1.5\nl,abc\n", "line 7: field 2 is not a finite number"),
        ("f,1\nc,0\nlf,32\nr,0\nn,0,5,-1,-2\nl,1.5\nl,nan\n", "line 7: field 2 is not a finite number"),
        ("f,1\nc,0\nlf,32\nr,0\nn,0,5,-1,-2\nl,1.5\nl,1e99\n", "line 7: field 2 is not a finite number"),
        ("f,1\nc,0\nr,0\nn,0,5,-1,-2\nl,1.5\nl,2.5\n", "line 5: regression leaves need lf,32"),
        ("f,1\nc,0\nlf,16\n", "line 3: leaf_bits 16"),
        ("f,1\nc,2\nr,0\nlf,32\n", "line 4: leaf_bits 32"),
        ("f,1\nlf,32\nc,2\nr,-1\nl,0\n", "leaf_bits 32 is not supported in CSV for classifiers"),
    ]
    for data, message in bad:
        with raises(ValueError, message):
            emlearn_trees.load_model(m, data)
    with raises(ValueError, "out has 2 values, the model has 1 outputs"):
        new_model(REG_BINARY).predict(array.array("h", [1, 2]), array.array("f", [0, 0]))


def test_regression_predict_with_out_allocates_nothing():
    m = new_model(REG_BINARY)
    xh = array.array("h", [5, 3])
    xf = array.array("f", [5.0, 3.0])
    out = array.array("f", [0])
    assert heap_allocated_during(lambda: m.predict(xh, out), 1000) == 0
    assert heap_allocated_during(lambda: m.predict(xf, out), 1000) == 0
