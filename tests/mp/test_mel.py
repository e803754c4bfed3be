# tinysense_mel inside the firmware: API, defaults, simple signals, bad input, no allocation in run().
# (Accuracy against the NumPy reference and librosa is measured from CPython in tests/test_mel.py.)
import array
import math

from mptest import heap_allocated_during, raises
from tinysense_mel import MFCC, Mel

FS = 16000


def zeros(n):
    return array.array("f", bytes(4 * n))


def tone(freq, n, amplitude=0.5, typecode="f", fs=FS):
    values = [amplitude * math.sin(2 * math.pi * freq * i / fs) for i in range(n)]
    if typecode == "h":
        return array.array("h", [int(round(32767 * v)) for v in values])
    return array.array("f", values)


def htk_mel(f):
    return 2595 * math.log10(1 + f / 700)


def htk_hz(m):
    return 700 * (10 ** (m / 2595) - 1)


def argmax(values):
    best = 0
    for i in range(len(values)):
        if values[i] > values[best]:
            best = i
    return best


def test_api_and_defaults():
    m = Mel(512, FS, 40)
    assert type(m).__name__ == "Mel"
    out = zeros(40)
    assert m.run(tone(1000, 512), out) is None
    assert m.run(tone(1000, 512, typecode="h"), out) is None
    Mel(256, 8000.0, 20, fmin=100, fmax=3000, scale="slaney", norm="slaney", power=1.0, log="db")
    Mel(n_fft=1024, samplerate=48000, n_mels=128, log="ln")
    c = MFCC(512, FS, 40)
    assert type(c).__name__ == "MFCC"
    assert c.run(tone(1000, 512), zeros(13)) is None  # n_mfcc defaults to 13
    assert c.mel(tone(1000, 512), zeros(40)) is None
    MFCC(512, FS, 40, 20, log="ln", scale="slaney")
    MFCC(512, FS, 40, n_mfcc=40)


def test_tone_lands_in_its_band():
    # HTK, no norm: band k peaks (weight 1) at corner k+1; put a bin-exact tone at each band's centre.
    n_fft, n_mels = 1024, 24
    m = Mel(n_fft, FS, n_mels)
    top = htk_mel(FS / 2)
    out = zeros(n_mels)
    for k in (3, 10, 17, 22):
        centre = htk_hz(top * (k + 1) / (n_mels + 1))
        freq = round(centre * n_fft / FS) * FS / n_fft
        m.run(tone(freq, n_fft), out)
        assert argmax(out) == k, (k, list(out))


def test_silence_and_log_floor():
    silence = array.array("h", bytes(2 * 256))
    out = zeros(20)
    Mel(256, FS, 20).run(silence, out)
    assert all(v == 0.0 for v in out)
    Mel(256, FS, 20, log="db").run(silence, out)
    assert all(abs(v + 100.0) < 1e-4 for v in out)  # 10 log10(1e-10)
    Mel(256, FS, 20, log="ln").run(silence, out)
    assert all(abs(v - math.log(1e-10)) < 1e-4 for v in out)
    Mel(256, FS, 20, power=1.0, log="db").run(silence, out)
    assert all(abs(v + 100.0) < 1e-4 for v in out)  # 20 log10(1e-5)
    c = MFCC(256, FS, 20, 5)
    cep = zeros(5)
    c.run(silence, cep)
    # A constant log spectrum has only a DC coefficient: -100 * sqrt(20).
    assert abs(cep[0] + 100 * math.sqrt(20)) < 1e-2, cep[0]
    assert all(abs(v) < 1e-3 for v in cep[1:])


def test_int16_is_float_over_32768():
    x16 = tone(700, 512, 0.3, "h")
    xf = array.array("f", [v / 32768 for v in x16])
    for kwargs in ({}, {"power": 1.0}, {"log": "db", "scale": "slaney", "norm": "slaney"}):
        m = Mel(512, FS, 40, **kwargs)
        a, b = zeros(40), zeros(40)
        m.run(x16, a)
        m.run(xf, b)
        for i in range(40):
            assert abs(a[i] - b[i]) <= 1e-5 * abs(b[i]) + 1e-12, (kwargs, i, a[i], b[i])


def test_power_one_is_sqrt_of_power_two_for_one_bin_bands():
    # With norm=None, a band whose triangle covers a single bin gives w * |X| vs w * |X|^2.
    m2 = Mel(256, FS, 4, fmin=1000, fmax=1200)
    m1 = Mel(256, FS, 4, fmin=1000, fmax=1200, power=1.0)
    fb = zeros(4 * 129)
    m2.filterbank(fb)
    x = tone(1062.5, 256)
    a, b = zeros(4), zeros(4)
    m2.run(x, a)
    m1.run(x, b)
    checked = 0
    for band in range(4):
        row = fb[band * 129:(band + 1) * 129]
        nonzero = [w for w in row if w > 0]
        if len(nonzero) == 1 and b[band] > 0:
            w = nonzero[0]
            assert abs(a[band] / w - (b[band] / w) ** 2) <= 1e-4 * a[band] / w
            checked += 1
    assert checked >= 1


def test_filterbank_shape_and_triangles():
    m = Mel(512, FS, 40)
    fb = zeros(40 * 257)
    m.filterbank(fb)
    # Without norm every bin between the first and the last band peak is covered by weights summing to 1.
    first_peak = htk_hz(htk_mel(FS / 2) / 41) * 512 / FS
    last_peak = htk_hz(htk_mel(FS / 2) * 40 / 41) * 512 / FS
    for j in range(int(first_peak) + 1, int(last_peak)):
        total = sum(fb[i * 257 + j] for i in range(40))
        assert abs(total - 1.0) < 1e-5, (j, total)
    assert max(fb) <= 1.0 and min(fb) >= 0.0
    with raises(ValueError, "length"):
        m.filterbank(zeros(40 * 256))


def test_empty_bands_are_zero():
    # 128 bands on 33 bins: many triangles fall between bins and have no weight at all.
    m = Mel(64, FS, 128)
    out = zeros(128)
    m.run(tone(3000, 64), out)
    fb = zeros(128 * 33)
    m.filterbank(fb)
    empty = [i for i in range(128) if max(fb[i * 33:(i + 1) * 33]) == 0.0]
    assert empty
    assert all(out[i] == 0.0 for i in empty)


def test_bad_constructor_arguments_raise():
    for rate in (0, -16000, float("nan"), float("inf")):
        with raises(ValueError, "samplerate"):
            Mel(512, rate, 40)
    for n in (0, -512, 2, 500, 131072):
        with raises(ValueError, "n_fft"):
            Mel(n, FS, 40)
    for n in (0, -1, 1025):
        with raises(ValueError, "n_mels"):
            Mel(512, FS, n)
    with raises(ValueError, "fmin"):
        Mel(512, FS, 40, fmin=-1)
    with raises(ValueError, "fmax"):
        Mel(512, FS, 40, fmax=9000)
    with raises(ValueError, "fmin"):
        Mel(512, FS, 40, fmin=4000, fmax=4000)
    with raises(ValueError, "fmax"):
        Mel(512, FS, 40, fmax=float("nan"))
    with raises(ValueError, "scale"):
        Mel(512, FS, 40, scale="bark")
    with raises(ValueError, "scale"):
        Mel(512, FS, 40, scale=None)
    with raises(ValueError, "norm"):
        Mel(512, FS, 40, norm="l2")
    with raises(ValueError, "power"):
        Mel(512, FS, 40, power=3.0)
    with raises(ValueError, "log"):
        Mel(512, FS, 40, log="log10")
    with raises(ValueError, "log"):
        MFCC(512, FS, 40, log=None)
    with raises(ValueError, "n_mfcc"):
        MFCC(512, FS, 20, 21)
    with raises(ValueError, "n_mfcc"):
        MFCC(512, FS, 20, 0)
    with raises(TypeError):
        Mel(512, FS, 40, n_mfcc=13)  # Mel has no n_mfcc
    with raises(TypeError):
        Mel(512, FS, 40, 300)  # fmin is keyword-only
    with raises(TypeError):
        Mel(512, FS)
    with raises(TypeError):
        Mel("512", FS, 40)


def test_bad_run_arguments_raise():
    m = Mel(256, FS, 20)
    c = MFCC(256, FS, 20, 8)
    x = tone(500, 256)
    with raises(ValueError, "typecode 'd'"):
        m.run(array.array("d", range(256)), zeros(20))
    with raises(ValueError, "typecode 'B'"):
        m.run(bytearray(512), zeros(20))
    with raises(ValueError, "typecode 'i'"):
        m.run(array.array("i", range(256)), zeros(20))
    with raises(TypeError, "frame"):
        m.run([0.0] * 256, zeros(20))
    with raises(ValueError, "length 255"):
        m.run(tone(500, 255), zeros(20))
    with raises(ValueError, "length 0"):
        m.run(array.array("h"), zeros(20))
    with raises(ValueError, "out"):
        m.run(x, zeros(19))
    with raises(ValueError, "out"):
        m.run(x, array.array("h", range(20)))
    with raises(TypeError, "out"):
        m.run(x, b"\x00" * 80)
    with raises(ValueError, "n_mfcc"):
        c.run(x, zeros(20))
    with raises(ValueError, "n_mels"):
        c.mel(x, zeros(8))
    for bad in (float("nan"), float("inf"), -float("inf")):
        y = array.array("f", x)
        y[77] = bad
        with raises(ValueError, "index 77"):
            m.run(y, zeros(20))
        with raises(ValueError, "non-finite"):
            c.run(y, zeros(8))


def test_out_is_untouched_on_bad_input():
    m = Mel(256, FS, 20)
    out = array.array("f", [7.0] * 20)
    y = tone(500, 256)
    y[0] = float("nan")
    with raises(ValueError, "non-finite"):
        m.run(y, out)
    assert all(v == 7.0 for v in out)


def test_extreme_input_does_not_crash():
    m = Mel(256, FS, 20, log="db")
    out = zeros(20)
    m.run(array.array("h", [32767, -32768] * 128), out)  # full-scale Nyquist tone
    assert argmax(out) == 19
    m.run(array.array("f", [1e30] * 256), out)  # float32 overflow: inf/NaN, no crash
    m.run(array.array("f", [1e-30] * 256), out)
    assert all(abs(v + 100.0) < 1e-4 for v in out)


def test_run_allocates_nothing():
    m = Mel(512, FS, 40, log="db")
    c = MFCC(512, FS, 40)
    xf, xh = tone(440, 512), tone(440, 512, typecode="h")
    out, cep = zeros(40), zeros(13)
    assert heap_allocated_during(lambda: m.run(xf, out), 200) == 0
    assert heap_allocated_during(lambda: m.run(xh, out), 200) == 0
    assert heap_allocated_during(lambda: c.run(xf, cep), 200) == 0
    assert heap_allocated_during(lambda: c.run(xh, cep), 200) == 0
    assert heap_allocated_during(lambda: c.mel(xh, out), 200) == 0
