# emlearn_arrayutils.linear_map inside the host firmware: every typecode pair on small known vectors,
# clamping, truncation, in-place and overlapping views, errors that name the problem, no allocation.
# The random-data comparison against NumPy for all 36 pairs is tests/test_arrayutils.py.
import array
import struct

from emlearn_arrayutils import linear_map
from mptest import heap_allocated_during, raises

TYPECODES = "bBhHif"
SIGNED = "bhif"
TYPE_RANGE = {"b": (-128, 127), "B": (0, 255), "h": (-32768, 32767), "H": (0, 65535),
              "i": (-2147483648, 2147483647)}


def zeros(typecode, n):
    return array.array(typecode, [0] * n)


def mapped(inp_values, in_t, out_t, in_min, in_max, out_min, out_max):
    inp = array.array(in_t, inp_values)
    out = zeros(out_t, len(inp_values))
    assert linear_map(inp, out, in_min, in_max, out_min, out_max) is None
    return list(out)


def test_every_typecode_pair_exact_values():
    # [0, 100] -> [-50, 50] is x - 50: exact in float32; unsigned outputs clamp negatives to 0.
    values = [0, 10, 25, 50, 99, 100]
    for in_t in TYPECODES:
        for out_t in TYPECODES:
            got = mapped(values, in_t, out_t, 0, 100, -50, 50)
            want = [v - 50 for v in values] if out_t in SIGNED else [max(0, v - 50) for v in values]
            assert got == want, (in_t, out_t, got, want)


def test_every_typecode_pair_truncates_toward_zero():
    # [0, 4] -> [0, 10] gives 0, 2.5, 5, 7.5, 10; [0, 4] -> [-10, 0] gives -10, -7.5, -5, -2.5, 0.
    for in_t in TYPECODES:
        for out_t in TYPECODES:
            up = mapped([0, 1, 2, 3, 4], in_t, out_t, 0, 4, 0, 10)
            down = mapped([0, 1, 2, 3, 4], in_t, out_t, 0, 4, -10, 0)
            if out_t == "f":
                assert up == [0.0, 2.5, 5.0, 7.5, 10.0], (in_t, up)
                assert down == [-10.0, -7.5, -5.0, -2.5, 0.0], (in_t, down)
            else:
                assert up == [0, 2, 5, 7, 10], (in_t, out_t, up)
                # toward zero: -7.5 -> -7; unsigned outputs clamp every negative value to 0
                assert down == ([-10, -7, -5, -2, 0] if out_t in SIGNED else [0, 0, 0, 0, 0]), (in_t, out_t, down)


def test_float_results_that_round_to_integers_convert_exactly():
    # float32(0.7) * 10 is 6.99999988, which float32 rounds to 7.0: 7, not 6, in every variant
    # (the -m32 build must not keep x87 80-bit intermediates).
    # The float32 bits of 0.7, 0.3, 0.9, 0.1 (not parsed: the parser may be an ulp off).
    inp = array.array("f", struct.pack("<4I", 0x3F333333, 0x3E99999A, 0x3F666666, 0x3DCCCCCD))
    out = zeros("b", 4)
    linear_map(inp, out, 0, 1, 0, 10)
    assert list(out) == [7, 3, 9, 1], list(out)


def test_clamps_to_the_output_range_at_both_ends():
    # Inputs beyond [in_min, in_max] land on out_min / out_max, for float outputs too (as emlearn-micropython).
    values = [-1000, -101, -100, 0, 100, 101, 1000]
    assert mapped(values, "h", "f", -100, 100, -1.0, 1.0) == [-1.0, -1.0, -1.0, 0.0, 1.0, 1.0, 1.0]
    assert mapped(values, "h", "h", -100, 100, -10, 10) == [-10, -10, -10, 0, 10, 10, 10]
    assert mapped(values, "i", "B", -100, 100, 0, 200) == [0, 0, 0, 100, 200, 200, 200]


def test_clamps_to_the_output_type_at_both_ends():
    values = [-1000, -200, 0, 200, 1000]
    for out_t, (lo, hi) in TYPE_RANGE.items():
        if out_t == "i":
            continue
        got = mapped(values, "h", out_t, -1000, 1000, -100000, 100000)
        assert got[0] == lo and got[-1] == hi, (out_t, got)
        assert got[2] == max(lo, 0), (out_t, got)
    # int32: the float32 nearest INT32_MAX is 2**31, which saturates instead of wrapping.
    assert mapped([0.0, 0.5, 1.0], "f", "i", 0, 1, -2147483648, 2147483647) == [-2147483648, 0, 2147483647]
    assert mapped([-1.0, 2.0], "f", "i", 0, 1, -3e9, 3e9) == [-2147483648, 2147483647]
    # An output range wholly outside the type saturates at the nearer end of the type.
    assert mapped([0, 50, 100], "B", "B", 0, 100, 300, 400) == [255, 255, 255]
    assert mapped([0, 50, 100], "B", "b", 0, 100, -400, -300) == [-128, -128, -128]


def test_reversed_ranges():
    assert mapped([0, 2, 4], "B", "B", 0, 4, 255, 0) == [255, 127, 0]
    assert mapped([0, 2, 4], "B", "f", 4, 0, 0, 1) == [1.0, 0.5, 0.0]
    assert mapped([-5, 0, 5], "b", "h", 4, 0, 0, 100) == [100, 100, 0]


def test_nan_and_infinity_inputs():
    nan, inf = float("nan"), float("inf")
    out = zeros("f", 4)
    linear_map(array.array("f", [nan, inf, -inf, 0.5]), out, 0, 1, -1, 1)
    assert out[0] != out[0]  # nan stays nan for a float output
    assert list(out)[1:] == [1.0, -1.0, 0.0]
    # Integer outputs: nan goes to the low end of the clamp range, infinities to the ends.
    assert mapped([nan, inf, -inf, 0.5], "f", "h", 0, 1, -100, 100) == [-100, 100, -100, 0]
    assert mapped([nan, inf, -inf], "f", "B", 0, 1, 10, 20) == [10, 20, 10]


def test_bytes_and_bytearray_are_unsigned_bytes():
    out = zeros("f", 3)
    linear_map(b"\x00\x80\xff", out, 0, 255, 0, 1)
    assert list(out) == [0.0, 128 / 255, 1.0]
    buf = bytearray(3)
    linear_map(array.array("f", [0.0, 0.5, 1.0]), buf, 0, 1, 0, 255)
    assert buf == b"\x00\x7f\xff"


def test_in_place():
    a = array.array("f", [i / 10 for i in range(100)])
    linear_map(a, a, 0, 10, 0, 100)
    assert list(a) == [min(100.0, (i / 10) * 100 / 10) for i in range(100)]
    h = array.array("h", [i * 20 - 1000 for i in range(100)])
    want = [(v + 1000) // 2 for v in h]  # [-1000, 1000] -> [0, 1000]: halves of even numbers, exact
    linear_map(h, h, -1000, 1000, 0, 1000)
    assert list(h) == want
    b = bytearray(range(256))
    linear_map(b, b, 0, 255, 255, 0)
    assert b == bytes(range(255, -1, -1))


def test_overlapping_views_behave_like_a_copy_first():
    # Identity map between shifted views of one array (longer than the 32-element block), both directions.
    n = 100
    a = array.array("h", range(n))
    view = memoryview(a)
    linear_map(view[0 : n - 3], view[3:n], 0, 1000, 0, 1000)
    assert list(a) == [0, 1, 2] + list(range(n - 3))
    a = array.array("h", range(n))
    view = memoryview(a)
    linear_map(view[3:n], view[0 : n - 3], 0, 1000, 0, 1000)
    assert list(a) == list(range(3, n)) + [n - 3, n - 2, n - 1]
    # Same element size, different types: 'h' into 'H' over the same bytes is not possible without
    # casting, so only the same-array case is checked here; arrayutils.c refuses size-changing overlaps.


def test_length_zero():
    linear_map(array.array("h"), array.array("f"), 0, 1, 0, 1)


def test_length_mismatch_names_both_lengths():
    with raises(ValueError, "same length") as e:
        linear_map(zeros("h", 5), zeros("f", 4), 0, 1, 0, 1)
    assert "5" in str(e.value) and "4" in str(e.value)
    with raises(ValueError, "got 0 and 1"):
        linear_map(zeros("B", 0), zeros("B", 1), 0, 1, 0, 1)


def test_unsupported_typecodes_are_named():
    for typecode in "dlqILQ":
        with raises(ValueError, "'%s'" % typecode) as e:
            linear_map(array.array(typecode, [1, 2]), zeros("f", 2), 0, 1, 0, 1)
        assert str(e.value).startswith("inp"), str(e.value)
        with raises(ValueError, "'%s'" % typecode) as e:
            linear_map(zeros("f", 2), array.array(typecode, [1, 2]), 0, 1, 0, 1)
        assert str(e.value).startswith("out"), str(e.value)


def test_non_arrays_and_read_only_out_raise_type_error():
    with raises(TypeError, "inp must be an array"):
        linear_map([1, 2], zeros("f", 2), 0, 1, 0, 1)
    with raises(TypeError, "out must be a writable array"):
        linear_map(zeros("f", 2), b"\x00\x00", 0, 1, 0, 1)
    with raises(TypeError, "out must be a writable array"):
        linear_map(zeros("f", 2), None, 0, 1, 0, 1)
    with raises(TypeError):
        linear_map(zeros("f", 2), zeros("f", 2), "0", 1, 0, 1)
    with raises(TypeError):
        linear_map(zeros("f", 2), zeros("f", 2), 0, 1, 0)


def test_bad_ranges_raise_value_error():
    inp, out = zeros("h", 3), zeros("f", 3)
    with raises(ValueError, "in_min and in_max must differ"):
        linear_map(inp, out, 5, 5, 0, 1)
    with raises(ValueError, "in_min and in_max must differ"):
        linear_map(inp, out, 0.0, -0.0, 0, 1)
    for bad in (float("inf"), float("-inf"), float("nan")):
        with raises(ValueError, "finite"):
            linear_map(inp, out, 0, bad, 0, 1)
        with raises(ValueError, "finite"):
            linear_map(inp, out, 0, 1, bad, 1)
    with raises(ValueError, "too wide"):
        linear_map(inp, out, -3e38, 3e38, 0, 1)
    # out_min == out_max is allowed: a constant output
    linear_map(inp, out, 0, 1, 2, 2)
    assert list(out) == [2.0, 2.0, 2.0]


def test_no_heap_allocation():
    inp = array.array("h", range(-500, 500))
    out = zeros("f", 1000)
    back = zeros("B", 1000)

    def run():
        linear_map(inp, out, -500, 500, -1.0, 1.0)
        linear_map(out, back, -1.0, 1.0, 0, 255)
        linear_map(out, out, -1.0, 1.0, 0.0, 2.0)

    assert heap_allocated_during(run, repeat=100) == 0
