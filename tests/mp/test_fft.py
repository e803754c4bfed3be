# emlearn_fft inside the firmware: API, transforms against a direct DFT, rfft, bad input, no allocation.
# (Accuracy against numpy for n up to 65536 is in tests/test_fft.py.)
import array
import math

import emlearn_fft
from mptest import heap_allocated_during, raises


def zeros(n):
    return array.array("f", bytes(4 * n))


def signal(n, seed=7):
    # Deterministic pseudo-random samples in [-1, 1) (the firmware has no random module).
    out = zeros(n)
    state = seed
    for i in range(n):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = state / 1073741824.0 - 1.0
    return out


def dft(real, imag):
    # Direct O(n^2) DFT: the independent reference.
    n = len(real)
    out_re, out_im = [], []
    for k in range(n):
        sr = si = 0.0
        for m in range(n):
            angle = -2.0 * math.pi * ((k * m) % n) / n
            c, s = math.cos(angle), math.sin(angle)
            sr += real[m] * c - imag[m] * s
            si += real[m] * s + imag[m] * c
        out_re.append(sr)
        out_im.append(si)
    return out_re, out_im


def assert_close(got, expected, tolerance):
    assert len(got) == len(expected), (len(got), len(expected))
    for i in range(len(got)):
        assert abs(got[i] - expected[i]) <= tolerance, (i, got[i], expected[i])


def test_api_matches_emlearn_micropython():
    fft = emlearn_fft.FFT(16)
    assert type(fft).__name__ == "FFT"
    assert emlearn_fft.fill(fft, 16) is None  # the tables are already there: a check only
    real, imag = zeros(16), zeros(16)
    real[0] = 1.0
    assert fft.run(real, imag) is None
    assert list(real) == [1.0] * 16
    assert list(imag) == [0.0] * 16


def test_constant_and_impulse():
    fft = emlearn_fft.FFT(32)
    real, imag = array.array("f", [1.0] * 32), zeros(32)
    fft.run(real, imag)
    assert abs(real[0] - 32.0) < 1e-5
    assert max(abs(v) for v in real[1:]) < 1e-5
    assert max(abs(v) for v in imag) < 1e-5


def test_run_matches_direct_dft():
    for n in (2, 4, 8, 16, 64):
        real, imag = signal(n, seed=n), signal(n, seed=n + 1)
        expected_re, expected_im = dft(real, imag)
        emlearn_fft.FFT(n).run(real, imag)
        assert_close(real, expected_re, 1e-5 * n)
        assert_close(imag, expected_im, 1e-5 * n)


def test_pure_tone_lands_in_its_bin():
    n = 256
    fft = emlearn_fft.FFT(n)
    real = array.array("f", [math.cos(2 * math.pi * 10 * i / n) for i in range(n)])
    out_re, out_im = zeros(n // 2 + 1), zeros(n // 2 + 1)
    fft.rfft(real, out_re, out_im)
    assert abs(out_re[10] - n / 2) < 1e-3
    for k in range(n // 2 + 1):
        if k != 10:
            assert abs(out_re[k]) < 1e-3 and abs(out_im[k]) < 1e-3, k


def test_rfft_matches_complex_run():
    for n in (2, 4, 8, 32, 256, 1024):
        fft = emlearn_fft.FFT(n)
        x = signal(n, seed=3 * n)
        real, imag = array.array("f", x), zeros(n)
        fft.run(real, imag)
        out_re, out_im = zeros(n // 2 + 1), zeros(n // 2 + 1)
        fft.rfft(x, out_re, out_im)
        assert_close(out_re, real[: n // 2 + 1], 2e-6 * n)
        assert_close(out_im, imag[: n // 2 + 1], 2e-6 * n)
        assert out_im[0] == 0.0 and out_im[n // 2] == 0.0
        assert list(x) == list(signal(n, seed=3 * n))  # input unchanged


def test_rfft_int16_equals_float_input():
    n = 128
    samples = [int(v * 32767) for v in signal(n)]
    fft = emlearn_fft.FFT(n)
    a_re, a_im, b_re, b_im = zeros(65), zeros(65), zeros(65), zeros(65)
    fft.rfft(array.array("h", samples), a_re, a_im)
    fft.rfft(array.array("f", samples), b_re, b_im)
    assert list(a_re) == list(b_re)
    assert list(a_im) == list(b_im)


def test_largest_and_smallest_sizes():
    fft = emlearn_fft.FFT(65536)
    emlearn_fft.fill(fft, 65536)
    fft = emlearn_fft.FFT(2)
    real, imag = array.array("f", [3.0, 1.0]), array.array("f", [0.5, 0.25])
    fft.run(real, imag)
    assert list(real) == [4.0, 2.0] and list(imag) == [0.75, 0.25]


def test_fill_method_compatibility():
    n = 16
    fft = emlearn_fft.FFT(n)
    # emlearn-micropython's own table fill, done from Python
    sin = array.array("f", [math.sin(2 * math.pi * k / n) for k in range(n // 2)])
    cos = array.array("f", [math.cos(2 * math.pi * k / n) for k in range(n // 2)])
    fft.fill(sin, cos)
    real, imag = signal(n), signal(n, seed=9)
    expected_re, expected_im = dft(real, imag)
    fft.run(real, imag)
    assert_close(real, expected_re, 1e-4)
    assert_close(imag, expected_im, 1e-4)
    with raises(ValueError, "sin has length 7, expected 8"):
        fft.fill(zeros(7), cos)
    with raises(ValueError, "cos has length 9, expected 8"):
        fft.fill(sin, zeros(9))
    with raises(ValueError, "typecode 'd'"):
        fft.fill(array.array("d", [0.0] * 8), cos)


def test_bad_sizes():
    for n in (0, 1, 3, 6, 12, 100, 131072, -8):
        with raises(ValueError, "got " + str(n)):
            emlearn_fft.FFT(n)
    with raises(TypeError):
        emlearn_fft.FFT("16")
    with raises(TypeError):
        emlearn_fft.FFT()


def test_fill_function_checks():
    fft = emlearn_fft.FFT(64)
    with raises(ValueError, "n=32 for an FFT of size 64"):
        emlearn_fft.fill(fft, 32)
    with raises(ValueError, "n=-64"):
        emlearn_fft.fill(fft, -64)
    with raises(TypeError, "needs an FFT object"):
        emlearn_fft.fill(array.array("f", [0.0] * 64), 64)


def test_bad_run_arguments():
    fft = emlearn_fft.FFT(8)
    with raises(ValueError, "real has length 7, expected 8"):
        fft.run(zeros(7), zeros(8))
    with raises(ValueError, "imag has length 16, expected 8"):
        fft.run(zeros(8), zeros(16))
    with raises(ValueError, "real must be array('f'), got typecode 'h'"):
        fft.run(array.array("h", [0] * 8), zeros(8))
    with raises(ValueError, "typecode 'B'"):
        fft.run(bytearray(32), zeros(8))
    with raises(TypeError, "imag must be a writable array, not list"):
        fft.run(zeros(8), [0.0] * 8)
    with raises(TypeError, "real must be a writable array, not bytes"):
        fft.run(bytes(32), zeros(8))
    same = zeros(8)
    with raises(ValueError, "different arrays"):
        fft.run(same, same)


def test_bad_rfft_arguments():
    fft = emlearn_fft.FFT(16)
    x, re, im = zeros(16), zeros(9), zeros(9)
    with raises(ValueError, "x has length 8, expected 16"):
        fft.rfft(zeros(8), re, im)
    with raises(ValueError, "x must be array('f') or array('h'), got typecode 'i'"):
        fft.rfft(array.array("i", [0] * 16), re, im)
    with raises(ValueError, "out_real has length 8, expected 9"):
        fft.rfft(x, zeros(8), im)
    with raises(ValueError, "out_imag has length 16, expected 9"):
        fft.rfft(x, re, zeros(16))
    with raises(ValueError, "out_imag must be array('f'), got typecode 'h'"):
        fft.rfft(x, re, array.array("h", [0] * 9))
    with raises(TypeError, "x must be an array, not tuple"):
        fft.rfft(tuple(range(16)), re, im)
    with raises(TypeError):
        fft.rfft(x, re)
    # Outputs that share memory with each other or with x are refused, not silently corrupted.
    buf = zeros(34)
    view = memoryview(buf)
    with raises(ValueError, "share memory"):
        fft.rfft(view[:16], view[10:19], view[25:34])
    with raises(ValueError, "share memory"):
        fft.rfft(view[:16], view[16:25], view[20:29])
    with raises(ValueError, "share memory"):
        fft.rfft(x, re, re)
    fft.rfft(view[:16], view[16:25], view[25:34])  # adjacent, not overlapping: fine


def test_nan_and_inf_propagate_without_crashing():
    fft = emlearn_fft.FFT(8)
    real = array.array("f", [1.0, float("nan"), 0.0, 0.0, float("inf"), 0.0, 0.0, 0.0])
    imag = zeros(8)
    fft.run(real, imag)
    assert any(v != v for v in real)  # NaN spread
    re, im = zeros(5), zeros(5)
    fft.rfft(array.array("f", [float("inf")] * 8), re, im)
    big = array.array("f", [3e38] * 8)
    fft.run(big, zeros(8))  # overflows to inf, no crash


def test_run_and_rfft_allocate_nothing():
    fft = emlearn_fft.FFT(512)
    real, imag = signal(512), signal(512, seed=2)
    x, h = signal(512, seed=3), array.array("h", range(512))
    re, im = zeros(257), zeros(257)
    assert heap_allocated_during(lambda: fft.run(real, imag), 100) == 0
    assert heap_allocated_during(lambda: fft.rfft(x, re, im), 100) == 0
    assert heap_allocated_during(lambda: fft.rfft(h, re, im), 100) == 0
    assert heap_allocated_during(lambda: emlearn_fft.fill(fft, 512), 100) == 0
