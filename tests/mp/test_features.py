# tinysense_features inside the firmware: API, names, values of small hand-checked windows, bad input,
# no allocation in compute(). (Accuracy against the numpy reference is in tests/test_features.py.)
import array
import math

import tinysense_features
from mptest import heap_allocated_during, raises

TIME = ("mean", "std", "min", "max", "median", "q25", "q75", "iqr", "rms", "energy", "zcross")
SPECTRAL = ("domfreq", "centroid", "pow_0_1hz", "pow_1_3hz", "pow_3_8hz", "pow_8hz_up")


def zeros(n):
    return array.array("f", bytes(4 * n))


def features(f, window):
    out = zeros(f.n_features())
    f.compute(window, out)
    return dict(zip(f.names(), out))


def close(a, b, tol=1e-5):
    return abs(a - b) <= tol * max(1.0, abs(b))


def test_api_and_names():
    f = tinysense_features.Features(128, 3)
    assert type(f).__name__ == "Features"
    assert isinstance(f, tinysense_features.Features)
    names = f.names()
    assert len(names) == f.n_features() == 4 * (len(TIME) + len(SPECTRAL))
    assert names[0] == "x_mean" and names[-1] == "mag_pow_8hz_up"
    assert len(set(names)) == len(names)
    assert f.fft_size() == 128
    assert f.compute(array.array("h", bytes(2 * 384)), zeros(f.n_features())) is None
    # Channels and spectral features follow the options.
    assert tinysense_features.Features(400, 1).names() == ["x_" + n for n in TIME + SPECTRAL]
    assert tinysense_features.Features(400, 1).fft_size() == 512
    g = tinysense_features.Features(50, 2, spectral=False, magnitude=False)
    assert g.names() == ["x_" + n for n in TIME] + ["y_" + n for n in TIME]
    assert g.fft_size() == 0
    h = tinysense_features.Features(10, 1, magnitude=True, samplerate=25.5)
    assert h.n_features() == 2 * (len(TIME) + len(SPECTRAL)) and h.names()[-1] == "mag_pow_8hz_up"


def test_time_features_of_a_small_window():
    # x = 1, 5, 2, 8, 4, 3 (mean 23/6); y = -x; z = 0.
    xs = [1, 5, 2, 8, 4, 3]
    window = array.array("h")
    for v in xs:
        window.extend([v, -v, 0])
    for data in (window, array.array("f", window)):
        got = features(tinysense_features.Features(6, 3, spectral=False), data)
        mean = 23 / 6
        var = sum((v - mean) ** 2 for v in xs) / 6
        assert close(got["x_mean"], mean) and close(got["y_mean"], -mean)
        assert close(got["x_std"], math.sqrt(var))  # population std (ddof = 0)
        assert got["x_min"] == 1 and got["x_max"] == 8
        assert got["x_median"] == 3.5  # sorted 1 2 3 4 5 8
        assert got["x_q25"] == 2.25 and got["x_q75"] == 4.75  # numpy 'linear': positions 1.25 and 3.75
        assert got["x_iqr"] == 2.5
        assert close(got["x_energy"], sum(v * v for v in xs) / 6)  # mean of squares
        assert close(got["x_rms"], math.sqrt(sum(v * v for v in xs) / 6))
        # signs of x - mean: - + - + + -  -> 4 changes
        assert got["x_zcross"] == 4
        assert got["z_std"] == 0 and got["z_zcross"] == 0
        assert close(got["mag_mean"], math.sqrt(2) * mean)


def test_zero_crossings_skip_samples_at_the_mean():
    # mean 0: +, 0, - is one crossing; +, 0, + is none.
    f = tinysense_features.Features(7, 1, spectral=False)
    got = features(f, array.array("h", [3, 0, -3, 0, -3, 0, 3]))
    assert got["x_mean"] == 0 and got["x_zcross"] == 2


def test_spectral_features_of_a_sine():
    # 2 Hz sine at 64 Hz over 128 samples: every bin is at a multiple of 0.5 Hz, bin 4 holds all power.
    n, fs = 128, 64.0
    f = tinysense_features.Features(n, 1, samplerate=fs)
    window = array.array("f", [1000.0 + 3.0 * math.sin(2 * math.pi * 2.0 * i / fs) for i in range(n)])
    got = features(f, window)
    assert got["x_domfreq"] == 2.0
    assert close(got["x_centroid"], 2.0, 1e-3)
    assert close(got["x_pow_1_3hz"], 1.0, 1e-4) and got["x_pow_0_1hz"] < 1e-4 and got["x_pow_8hz_up"] < 1e-4
    assert close(got["x_pow_0_1hz"] + got["x_pow_1_3hz"] + got["x_pow_3_8hz"] + got["x_pow_8hz_up"], 1.0)
    # A constant window has no spectral power: all spectral features are 0.
    got = features(f, array.array("h", [4096] * n))
    for name in SPECTRAL:
        assert got["x_" + name] == 0, name


def test_memoryview_slices_are_accepted():
    f = tinysense_features.Features(8, 2)
    data = array.array("h", range(-40, 40))
    out = zeros(f.n_features())
    f.compute(memoryview(data)[16:32], out)
    expected = zeros(f.n_features())
    f.compute(array.array("h", range(-24, -8)), expected)
    assert list(out) == list(expected)


def test_bad_construction_raises():
    with raises(ValueError, "window_length"):
        tinysense_features.Features(0, 3)
    with raises(ValueError, "window_length"):
        tinysense_features.Features(3, 3)
    with raises(ValueError, "window_length"):
        tinysense_features.Features(5000, 1)
    with raises(ValueError, "window_length"):
        tinysense_features.Features(-1, 1)
    with raises(ValueError, "n_axes"):
        tinysense_features.Features(128, 0)
    with raises(ValueError, "n_axes"):
        tinysense_features.Features(128, 4)
    for samplerate in (0, -100, float("nan"), float("inf")):
        with raises(ValueError, "samplerate"):
            tinysense_features.Features(128, 3, samplerate=samplerate)
    with raises(TypeError):
        tinysense_features.Features(128)
    with raises(TypeError):
        tinysense_features.Features(128, 3, 100)  # samplerate is keyword-only


def test_bad_compute_arguments_raise():
    f = tinysense_features.Features(16, 3)
    window = array.array("h", bytes(2 * 48))
    out = zeros(f.n_features())
    with raises(ValueError, "typecode 'i'"):
        f.compute(array.array("i", bytes(4 * 48)), out)
    with raises(ValueError, "typecode 'd'"):
        f.compute(array.array("d", bytes(8 * 48)), out)
    with raises(ValueError, "typecode 'B'"):
        f.compute(bytearray(96), out)
    with raises(ValueError, "48 samples, got 47"):
        f.compute(array.array("h", bytes(2 * 47)), out)
    with raises(ValueError, "48 samples, got 16"):
        f.compute(array.array("f", bytes(4 * 16)), out)
    with raises(ValueError, "48 samples, got 0"):
        f.compute(array.array("h"), out)
    with raises(ValueError, "out must be array('f')"):
        f.compute(window, array.array("h", bytes(2 * f.n_features())))
    with raises(ValueError, "n_features() = 68 values, got 67"):
        f.compute(window, zeros(67))
    with raises(TypeError, "window"):
        f.compute([0] * 48, out)
    with raises(TypeError, "out"):
        f.compute(window, None)
    with raises(TypeError, "out"):
        f.compute(window, b"\x00" * 4 * f.n_features())  # read-only


def test_non_finite_samples_raise():
    f = tinysense_features.Features(16, 3)
    out = zeros(f.n_features())
    for bad in (float("nan"), float("inf"), float("-inf")):
        window = array.array("f", bytes(4 * 48))
        window[29] = bad
        with raises(ValueError, "non-finite sample (NaN or inf) at index 29"):
            f.compute(window, out)


def test_compute_allocates_nothing():
    for n, axes, typecode in ((128, 3, "h"), (400, 3, "f"), (100, 1, "h")):
        f = tinysense_features.Features(n, axes)
        window = array.array(typecode, [((i * 7919) % 2001 - 1000) for i in range(n * axes)])
        out = zeros(f.n_features())
        assert heap_allocated_during(lambda: f.compute(window, out), 50) == 0
