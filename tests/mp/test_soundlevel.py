# tinysense_soundlevel inside the firmware: API, levels of simple signals, resets, bad input, extreme input,
# no allocation in process(). (Frequency response, calibration and time weighting against IEC 61672-1 are
# measured from CPython in tests/test_soundlevel.py.)
import array
import math

from mptest import heap_allocated_during, raises
from tinysense_soundlevel import SoundLevel

FS = 16000


def tone(freq, n, amplitude, fs=FS):
    return array.array("h", [int(round(amplitude * math.sin(2 * math.pi * freq * i / fs))) for i in range(n)])


def spl_of_amplitude(amplitude, sensitivity=-26.0):
    # AES17: a sine of peak amplitude A reads 20 log10(A / 32768) dBFS.
    return 94.0 + 20 * math.log10(amplitude / 32768) - sensitivity


def test_api_and_empty_state():
    m = SoundLevel(FS)
    assert type(m).__name__ == "SoundLevel"
    for value in (m.fast(), m.slow(), m.leq(), m.lmax(), m.lmin(), m.lmax("S"), m.lmin("S")):
        assert value is None
    assert m.process(array.array("h")) is None
    assert m.leq() is None  # an empty chunk adds no samples
    assert m.reset_interval() is None
    assert m.reset() is None
    SoundLevel(32000, "C")
    SoundLevel(48000, weighting="Z", mic_sensitivity_dbfs=-42.5)
    SoundLevel(samplerate=16000.0, weighting="A")


def test_digital_silence_reads_minus_inf():
    m = SoundLevel(FS, "Z")
    m.process(array.array("h", bytes(2 * 800)))
    assert m.fast() == -math.inf and m.leq() == -math.inf and m.lmax() == -math.inf


def test_1khz_sine_levels_and_sensitivity():
    x = tone(1000, FS, 1000.0)
    for sensitivity in (-26.0, -40.0):
        m = SoundLevel(FS, "A", mic_sensitivity_dbfs=sensitivity)
        for _ in range(6):
            m.process(x)
        expected = spl_of_amplitude(1000.0, sensitivity)
        assert abs(m.fast() - expected) < 0.1, (m.fast(), expected)
        assert abs(m.slow() - expected) < 0.1, (m.slow(), expected)
        assert abs(m.leq() - expected) < 0.1, (m.leq(), expected)
        assert abs(m.lmax() - expected) < 0.1
        assert abs(m.lmin() - expected) < 0.1  # Fast settled after 5 x 125 ms
        assert m.lmin("S") is not None and abs(m.lmin("S") - expected) < 0.1  # Slow settled after 5 s


def test_chunking_does_not_change_levels():
    x = tone(440, 4000, 3000.0)
    a = SoundLevel(FS, "C")
    b = SoundLevel(FS, "C")
    a.process(x)
    mv = memoryview(x)
    for start, size in ((0, 1), (1, 63), (64, 65), (129, 1000), (1129, 2871)):
        b.process(mv[start:start + size])
    for name in ("fast", "slow", "leq", "lmax"):
        va, vb = getattr(a, name)(), getattr(b, name)()
        assert abs(va - vb) < 1e-4, (name, va, vb)


def test_reset_interval_and_reset():
    m = SoundLevel(FS, "Z")
    loud, quiet = tone(1000, 8000, 10000.0), tone(1000, 8000, 100.0)
    m.process(loud)
    m.process(loud)
    m.reset_interval()
    for _ in range(4):
        m.process(quiet)
    # Leq of the new interval only; Lmax still sees the Fast level falling from the loud tone.
    assert abs(m.leq() - spl_of_amplitude(100.0)) < 0.2, m.leq()
    assert m.lmax() > spl_of_amplitude(100.0) + 20
    fast_before = m.fast()
    m.reset_interval()
    assert m.leq() is None and m.lmax() is None and m.lmin() is None
    assert m.fast() == fast_before  # the time weighting carries on
    m.reset()
    assert m.fast() is None and m.slow() is None and m.leq() is None


def test_lmax_lmin_track_the_fast_level():
    m = SoundLevel(FS, "Z")
    for _ in range(8):
        m.process(tone(1000, 2000, 1000.0))  # 1 s: Fast settles
    m.reset_interval()
    m.process(tone(1000, 8000, 4000.0))   # +12 dB for 0.5 s
    for _ in range(2):
        m.process(tone(1000, 16000, 250.0))   # -12 dB for 2 s (the Fast level falls 24 dB: e^-16 left)
    assert abs(m.lmax() - spl_of_amplitude(4000.0)) < 0.2, m.lmax()
    assert abs(m.lmin() - spl_of_amplitude(250.0)) < 0.3, m.lmin()
    assert m.lmax("S") < m.lmax() - 3  # Slow does not reach the short loud part
    assert m.lmin("S") is None  # Slow has not settled 5 s after construction


def test_custom_coeffs_and_unsupported_rate():
    with raises(ValueError, "16000, 32000, 48000"):
        SoundLevel(44100)
    with raises(ValueError, "44100"):
        SoundLevel(44100, "C")
    SoundLevel(44100, "Z")  # no filter needed
    # A pass-through section makes an A meter with custom coeffs read like Z.
    x = tone(100, FS, 2000.0, fs=44100)
    m = SoundLevel(44100, "A", coeffs=array.array("f", [1, 0, 0, 1, 0, 0]))
    z = SoundLevel(44100, "Z")
    m.process(x)
    z.process(x)
    assert abs(m.leq() - z.leq()) < 1e-3
    # A gain of 2 in two sections of 6 values reads 6.02 dB higher.
    g = SoundLevel(44100, "A", coeffs=array.array("f", [2, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]))
    g.process(x)
    assert abs(g.leq() - z.leq() - 20 * math.log10(2)) < 1e-3


def test_bad_arguments_raise():
    for rate in (0, -16000, float("nan"), float("inf"), -float("inf")):
        with raises(ValueError, "samplerate"):
            SoundLevel(rate)
    with raises(TypeError):
        SoundLevel("16000")
    with raises(ValueError, "weighting"):
        SoundLevel(FS, "B")
    with raises(ValueError, "weighting"):
        SoundLevel(FS, "a")
    with raises(ValueError, "weighting"):
        SoundLevel(FS, "")
    with raises(TypeError, "weighting"):
        SoundLevel(FS, 65)
    with raises(ValueError, "mic_sensitivity_dbfs"):
        SoundLevel(FS, mic_sensitivity_dbfs=float("nan"))
    with raises(ValueError, "mic_sensitivity_dbfs"):
        SoundLevel(FS, mic_sensitivity_dbfs=float("inf"))
    with raises(TypeError):
        SoundLevel()


def test_bad_coeffs_raise():
    with raises(ValueError, "typecode 'd'"):
        SoundLevel(FS, coeffs=array.array("d", [1, 0, 0, 1, 0, 0]))
    with raises(ValueError, "typecode 'B'"):
        SoundLevel(FS, coeffs=bytearray(24))
    with raises(TypeError, "coeffs"):
        SoundLevel(FS, coeffs=[1, 0, 0, 1, 0, 0])
    for n in (0, 5, 7, 54):
        with raises(ValueError, "per section"):
            SoundLevel(FS, coeffs=array.array("f", [1.0] * n))
    with raises(ValueError, "section 1 is unstable"):
        SoundLevel(FS, coeffs=array.array("f", [1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1.0]))
    with raises(ValueError, "section 0 is unstable"):
        SoundLevel(FS, coeffs=array.array("f", [1, 0, 0, 1, -2.0, 1.0]))  # double pole at z = 1
    with raises(ValueError, "a0 == 0"):
        SoundLevel(FS, coeffs=array.array("f", [1, 0, 0, 0, 0, 0]))
    with raises(ValueError, "non-finite"):
        SoundLevel(FS, coeffs=array.array("f", [float("nan"), 0, 0, 1, 0, 0]))
    with raises(ValueError, "non-finite"):
        SoundLevel(FS, coeffs=array.array("f", [1, 0, 0, 1, float("inf"), 0]))


def test_bad_chunks_raise():
    m = SoundLevel(FS)
    with raises(ValueError, "typecode 'f'"):
        m.process(array.array("f", [0.0, 1.0]))
    with raises(ValueError, "typecode 'i'"):
        m.process(array.array("i", [0, 1]))
    with raises(ValueError, "typecode 'B'"):
        m.process(bytearray(4))
    with raises(ValueError, "typecode 'B'"):
        m.process(b"\x00\x01")
    with raises(TypeError, "array('h')"):
        m.process([0, 1, 2])
    with raises(TypeError, "array('h')"):
        m.process(None)
    with raises(ValueError, "'F' (Fast) or 'S' (Slow)"):
        m.lmax("X")
    with raises(ValueError, "'F' (Fast) or 'S' (Slow)"):
        m.lmin(1)
    assert m.leq() is None  # nothing was processed


def test_full_scale_square_wave_stays_finite():
    # The loudest int16 input: a full-scale 1 kHz square wave (overshoots in the weighting filters).
    x = array.array("h", [32767 if (i // 8) % 2 == 0 else -32768 for i in range(FS)])
    for weighting in ("A", "C", "Z"):
        m = SoundLevel(FS, weighting, mic_sensitivity_dbfs=-60.0)
        for _ in range(3):
            m.process(x)
        for value in (m.fast(), m.slow(), m.leq(), m.lmax(), m.lmin()):
            assert value is not None and math.isfinite(value), (weighting, value)
        # A square wave's rms is its amplitude: sqrt(2) x a sine's, +3.01 dB; the weightings change its
        # harmonics (3, 5, 7 kHz: A lifts them ~1 dB, C lowers them) by a fraction of a dB overall.
        square = 94.0 + 20 * math.log10(math.sqrt(2)) + 60.0
        assert square - 1.0 < m.leq() < square + 0.5, (weighting, m.leq())


def test_process_allocates_nothing():
    m = SoundLevel(FS, "A")
    x = tone(1000, 1600, 8000.0)
    assert heap_allocated_during(lambda: m.process(x), repeat=100) == 0
    z = SoundLevel(FS, "Z")
    assert heap_allocated_during(lambda: z.process(x), repeat=100) == 0
