# emlearn_iir inside the firmware: API, state across calls, reset, int16 paths, bad input, no allocation.
# (Accuracy against scipy over long signals is in tests/test_iir.py.)
import array

import emlearn_iir
from mptest import heap_allocated_during, raises

# 2nd-order Butterworth lowpass at fs/8 (scipy.signal.butter(2, 0.25, output="sos")) and a DC blocker.
BUTTER2 = [0.09763107, 0.19526215, 0.09763107, 1.0, -0.94280904, 0.33333333]
DC_BLOCK = [1.0, -1.0, 0.0, 1.0, -0.95, 0.0]


def coeffs(*sections):
    values = []
    for section in sections:
        values.extend(section)
    return array.array("f", values)


def signal(n, seed=1):
    # Deterministic pseudo-random samples in [-1, 1) (the firmware has no random module).
    out = array.array("f", bytes(4 * n))
    state = seed
    for i in range(n):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = state / 1073741824.0 - 1.0
    return out


def reference(sections, x):
    # Direct form I in MicroPython floats: an independent (if less accurate) implementation.
    y = list(x)
    for b0, b1, b2, a0, a1, a2 in sections:
        x1 = x2 = y1 = y2 = 0.0
        for i, v in enumerate(y):
            out = (b0 * v + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2) / a0
            x2, x1, y2, y1 = x1, v, y1, out
            y[i] = out
    return y


def assert_close(got, expected, tolerance):
    assert len(got) == len(expected), (len(got), len(expected))
    for i in range(len(got)):
        assert abs(got[i] - expected[i]) <= tolerance, (i, got[i], expected[i])


def test_api_matches_emlearn_micropython():
    iir = emlearn_iir.new(coeffs(BUTTER2))
    assert type(iir).__name__ == "IIR"
    assert isinstance(iir, emlearn_iir.IIR)
    x = array.array("f", [1.0, 0.0, 0.0])
    assert iir.run(x) is None
    assert iir.reset() is None


def test_filters_like_direct_form_reference():
    sections = [BUTTER2, DC_BLOCK]
    x = signal(300)
    expected = reference(sections, x)
    emlearn_iir.new(coeffs(*sections)).run(x)
    assert_close(x, expected, 1e-5)


def test_impulse_response_starts_with_b0():
    iir = emlearn_iir.new(coeffs(BUTTER2))
    x = array.array("f", [1.0, 0.0, 0.0, 0.0])
    iir.run(x)
    assert_close(x, reference([BUTTER2], [1.0, 0.0, 0.0, 0.0]), 1e-6)
    assert abs(x[0] - BUTTER2[0]) < 1e-6


def test_a0_is_normalised():
    scaled = [2.0 * c for c in BUTTER2]
    x1, x2 = signal(64), signal(64)
    emlearn_iir.new(coeffs(BUTTER2)).run(x1)
    emlearn_iir.new(coeffs(scaled)).run(x2)
    assert_close(x2, x1, 1e-6)


def test_state_carries_across_calls():
    x = signal(200)
    one_shot = array.array("f", x)
    emlearn_iir.new(coeffs(BUTTER2, DC_BLOCK)).run(one_shot)
    for chunk in (1, 3, 64):
        iir = emlearn_iir.new(coeffs(BUTTER2, DC_BLOCK))
        chunked = array.array("f", x)
        view = memoryview(chunked)
        for start in range(0, len(x), chunk):
            iir.run(view[start:start + chunk])
        assert_close(chunked, one_shot, 1e-6)


def test_reset_clears_state():
    iir = emlearn_iir.new(coeffs(BUTTER2))
    first = signal(50)
    iir.run(first)
    second = signal(50)
    iir.reset()
    iir.run(second)
    assert list(first) == list(second)
    third = signal(50)
    iir.run(third)  # continues from the state: differs
    assert list(third) != list(first)


def test_int16_in_place_rounds_and_saturates():
    gain_two = emlearn_iir.new(coeffs([2.0, 0.0, 0.0, 1.0, 0.0, 0.0]))
    x = array.array("h", [20000, -20000, 3, -3, 16383, -16384, 0])
    gain_two.run(x)
    assert list(x) == [32767, -32768, 6, -6, 32766, -32768, 0]
    half = emlearn_iir.new(coeffs([0.5, 0.0, 0.0, 1.0, 0.0, 0.0]))
    x = array.array("h", [3, -3, 5, 1, -1, 32767, -32768])
    half.run(x)
    assert list(x) == [2, -2, 3, 1, -1, 16384, -16384]  # halves round away from zero


def test_int16_in_place_matches_float_path():
    samples = [int(v * 30000) for v in signal(100)]
    as_int = array.array("h", samples)
    as_float = array.array("f", samples)
    emlearn_iir.new(coeffs(BUTTER2, DC_BLOCK)).run(as_int)
    emlearn_iir.new(coeffs(BUTTER2, DC_BLOCK)).run(as_float)
    for i in range(len(samples)):
        expected = max(-32768, min(32767, as_float[i]))
        assert abs(as_int[i] - expected) <= 0.5 + 1e-3, (i, as_int[i], as_float[i])


def test_int16_to_float_output_leaves_input():
    samples = [int(v * 32767) for v in signal(120)]
    x = array.array("h", samples)
    out = array.array("f", bytes(4 * len(samples)))
    iir = emlearn_iir.new(coeffs(BUTTER2))
    iir.run(x[:60], memoryview(out)[:60])
    iir.run(x[60:], memoryview(out)[60:])  # state carries across the two calls
    assert list(x) == samples
    expected = array.array("f", samples)
    emlearn_iir.new(coeffs(BUTTER2)).run(expected)
    assert_close(out, expected, 1e-6 * 32768)


def test_float_to_float_output():
    x = signal(40)
    original = list(x)
    out = array.array("f", bytes(4 * 40))
    emlearn_iir.new(coeffs(DC_BLOCK)).run(x, out)
    assert list(x) == original
    emlearn_iir.new(coeffs(DC_BLOCK)).run(x)
    assert list(out) == list(x)


def test_empty_input_is_a_no_op():
    iir = emlearn_iir.new(coeffs(BUTTER2))
    iir.run(array.array("f"))
    iir.run(array.array("h"), array.array("f"))


def test_bad_coefficient_counts():
    for n in (0, 1, 5, 7, 13):
        with raises(ValueError, "got " + str(n)):
            emlearn_iir.new(array.array("f", [1.0] * n))


def test_bad_coefficient_values():
    with raises(ValueError, "section 1 has a0 == 0"):
        emlearn_iir.new(coeffs(BUTTER2, [1.0, 0.0, 0.0, 0.0, 0.1, 0.1]))
    for bad in (float("nan"), float("inf"), -float("inf")):
        with raises(ValueError, "section 0 has a non-finite coefficient"):
            emlearn_iir.new(coeffs([1.0, bad, 0.0, 1.0, 0.0, 0.0]))
    with raises(ValueError, "section 0 has a non-finite coefficient"):
        emlearn_iir.new(coeffs([1.0, 0.0, 0.0, 1e-30, 1e10, 0.0]))  # overflows when divided by a0
    unstable = [
        [1.0, 0.0, 0.0, 1.0, 0.0, 1.0],  # poles at +-j, on the unit circle
        [1.0, 0.0, 0.0, 1.0, -2.0, 1.0],  # double pole at z = 1
        [1.0, 0.0, 0.0, 1.0, 1.0, 0.0],  # pole at z = -1
        [1.0, 0.0, 0.0, 1.0, -2.5, 1.0],  # real poles outside
        [1.0, 0.0, 0.0, 1.0, 0.0, -1.5],  # a2 beyond the triangle
        [1.0, 0.0, 0.0, 1.0, -1.0, 1.2],  # complex poles outside
    ]
    for section in unstable:
        with raises(ValueError, "section 2 is unstable"):
            emlearn_iir.new(coeffs(BUTTER2, DC_BLOCK, section))
    emlearn_iir.new(coeffs([1.0, 0.0, 0.0, 1.0, -1.999, 0.9990005]))  # poles at 0.9995: stable


def test_bad_coefficient_types():
    with raises(ValueError, "typecode 'd'"):
        emlearn_iir.new(array.array("d", BUTTER2))
    with raises(ValueError, "typecode 'h'"):
        emlearn_iir.new(array.array("h", [1, 0, 0, 1, 0, 0]))
    with raises(ValueError, "typecode 'B'"):
        emlearn_iir.new(bytearray(24))
    with raises(TypeError, "coeffs must be an array, not list"):
        emlearn_iir.new(BUTTER2)


def test_bad_run_arguments():
    iir = emlearn_iir.new(coeffs(BUTTER2))
    with raises(ValueError, "typecode 'i'"):
        iir.run(array.array("i", [1, 2]))
    with raises(ValueError, "typecode 'd'"):
        iir.run(array.array("d", [1.0]))
    with raises(ValueError, "typecode 'B'"):
        iir.run(bytearray(4))
    with raises(TypeError, "x must be a writable array, not bytes"):
        iir.run(b"\x00\x00\x00\x00")
    with raises(TypeError, "x must be a writable array, not list"):
        iir.run([1.0, 2.0])
    with raises(ValueError, "out must be array('f'), got typecode 'h'"):
        iir.run(array.array("h", [1]), array.array("h", [1]))
    with raises(ValueError, "x has length 4 but out has length 3"):
        iir.run(array.array("h", [1, 2, 3, 4]), array.array("f", [0.0] * 3))
    with raises(ValueError, "x has length 2 but out has length 5"):
        iir.run(array.array("f", [1.0, 2.0]), array.array("f", [0.0] * 5))
    with raises(TypeError, "out must be a writable array, not bytes"):
        iir.run(array.array("f", [1.0]), b"\x00\x00\x00\x00")
    with raises(TypeError):
        iir.run()


def test_nan_and_inf_propagate_without_crashing():
    iir = emlearn_iir.new(coeffs(BUTTER2))
    x = array.array("f", [1.0, float("nan"), 1.0, float("inf"), 1.0])
    iir.run(x)
    assert x[0] == x[0]
    assert x[1] != x[1]  # NaN
    # The state is NaN now: int16 output maps it to 0; reset() recovers.
    h = array.array("h", [1000, 1000])
    iir.run(h)
    assert list(h) == [0, 0]
    iir.reset()
    y = array.array("f", [1.0, 1.0])
    iir.run(y)
    assert y[0] == y[0] and y[1] == y[1]
    big = array.array("f", [3e38, -3e38, 3e38])
    iir.run(big)  # overflows to inf/NaN, no crash


def test_run_allocates_nothing():
    iir = emlearn_iir.new(coeffs(BUTTER2, DC_BLOCK))
    x = signal(256)
    h = array.array("h", [100] * 256)
    out = array.array("f", bytes(4 * 256))
    assert heap_allocated_during(lambda: iir.run(x), 200) == 0
    assert heap_allocated_during(lambda: iir.run(h), 200) == 0
    assert heap_allocated_during(lambda: iir.run(h, out), 200) == 0
    assert heap_allocated_during(lambda: iir.run(x, out), 200) == 0
    assert heap_allocated_during(iir.reset, 200) == 0
