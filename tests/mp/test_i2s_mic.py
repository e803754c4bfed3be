# The I2S microphone driver (firmware/drivers/i2s_mic.py) against the simulated machine.I2S fed from WAV files
# (ports/host/sim): chunks equal the file's samples (16/32-bit frames, mono/stereo), overruns counted when the
# consumer is too slow, DC removal, callback mode, the WAV reader's errors, no allocation per chunk.
import sys

sys.path.insert(0, "ports/host/sim")

import array
import math

import machine
import sim_wav
from drivers.i2s_mic import I2SMic
from mptest import heap_allocated_during, raises, variant

RATE = 16000


def wav_path(name):
    return "/tmp/tinysense_mptest_i2s_%s_%s.wav" % (variant(), name)


def ramp(n):
    return array.array("h", [(i * 37) % 2001 - 1000 + (i // 500) * 7 for i in range(n)])


def make_wav(name, samples, rate=RATE, channels=1):
    path = wav_path(name)
    sim_wav.write_wav(path, samples, rate, channels)
    return path


def pins(bits=16, rate=RATE):
    return {"I2S_MIC": {"id": 0, "sck": 41, "ws": 42, "sd": 2, "rate": rate, "bits": bits}}  # boards/s3-eye


def mic_on(path, bits=16, **kwargs):
    machine.sim_reset()
    machine.sim_attach_i2s(0, path)
    mic = I2SMic(pins(bits), **kwargs)
    mic.start()
    return mic


def drain(mic, got):
    while True:
        chunk = mic.read()
        if chunk is None:
            return
        got.extend(chunk)


def test_chunks_equal_the_wav_16_and_32_bit():
    x = ramp(8000)
    path = make_wav("ramp", x)
    for bits in (16, 32):
        mic = mic_on(path, bits, chunk=256, n_chunks=16, dc_cutoff_hz=None)
        got = []
        for ms in (3, 16, 40, 1, 100, 7, 200, 50, 83):  # 500 ms in uneven steps
            machine.sim_advance_ms(ms)
            drain(mic, got)
        assert len(got) == 31 * 256, len(got)  # 8000 frames make 31 whole chunks
        assert got == list(x[:len(got)]), bits
        assert mic.overruns == 0 and mic.produced == 31 and mic.seq == 30
        mic.stop()


def test_stereo_wav_gives_the_first_channel():
    left = ramp(3000)
    inter = array.array("h", bytes(4 * 3000))
    for i in range(3000):
        inter[2 * i] = left[i]
        inter[2 * i + 1] = -left[i] // 2
    mic = mic_on(make_wav("stereo", inter, channels=2), chunk=500, n_chunks=8, dc_cutoff_hz=None)
    got = []
    machine.sim_advance_ms(180)
    drain(mic, got)
    assert got == list(left[:2500])


def test_overruns_are_counted_when_the_consumer_is_slow():
    x = ramp(RATE * 2)
    mic = mic_on(make_wav("slow", x), chunk=256, n_chunks=3, dc_cutoff_hz=None)
    machine.sim_advance_ms(1000)  # 62 chunks complete, only 2 can wait
    assert mic.produced == 62 and mic.pending() == 2
    assert mic.overruns == 60
    first = list(mic.read())
    assert first == list(x[:256]) and mic.seq == 0
    second = list(mic.read())
    assert second == list(x[256:512]) and mic.seq == 1
    assert mic.read() is None
    machine.sim_advance_ms(16)  # the next chunk: number 62, the data at its place in the file
    chunk = mic.read()
    assert chunk is not None and mic.seq == 62 and mic.overruns == 60
    assert list(chunk) == list(x[62 * 256:63 * 256])


def test_dc_offset_is_removed():
    n = RATE
    x = array.array("h", [int(5000 + 3000 * math.sin(2 * math.pi * 1000 * i / RATE)) for i in range(n)])
    path = make_wav("dc", x)
    for cutoff, dc_left in ((10.0, True), (None, False)):
        mic = mic_on(path, chunk=1600, n_chunks=8, dc_cutoff_hz=cutoff)
        machine.sim_advance_ms(1000)
        chunks = []
        while mic.pending():
            chunks.append(list(mic.read()))
        assert len(chunks) == 7 and mic.overruns == 3, len(chunks)  # 7 wait, 3 dropped
        last = chunks[-1]
        mean = sum(last) / len(last)
        rms = math.sqrt(sum((v - mean) ** 2 for v in last) / len(last))
        if dc_left:
            assert abs(mean) < 5, mean
        else:
            assert abs(mean - 5000) < 5, mean
        assert abs(rms - 3000 / math.sqrt(2)) < 0.01 * 3000, rms


def test_callback_mode():
    x = ramp(4000)
    got = []
    mic = mic_on(make_wav("cb", x), bits=32, chunk=400, callback=got.extend, dc_cutoff_hz=None)
    machine.sim_advance_ms(250)
    assert got == list(x[:4000]) and mic.produced == 10 and mic.overruns == 0


def test_blocking_read_waits_in_virtual_time():
    x = ramp(1600)
    machine.sim_reset()
    machine.sim_attach_i2s(0, make_wav("block", x))
    i2s = machine.I2S(0, sck=machine.Pin(41), ws=machine.Pin(42), sd=machine.Pin(2), mode=machine.I2S.RX,
                      bits=16, format=machine.I2S.MONO, rate=RATE, ibuf=4096)
    buf = array.array("h", bytes(2 * 800))
    assert i2s.readinto(buf) == 1600
    assert list(buf) == list(x[:800])
    assert machine.sim_ticks_us() == 50000  # 800 frames at 16 kHz
    with raises(ValueError, "rate"):
        machine.I2S(0, sck=41, ws=42, sd=2, mode=machine.I2S.RX, bits=16, format=machine.I2S.MONO, rate=8000)


def test_wav_reader_refuses_other_formats():
    path = wav_path("bad")
    sim_wav.write_wav(path, [0] * 10, RATE, tag=3)
    with raises(ValueError, "not PCM"):
        sim_wav.WavSource(path)
    sim_wav.write_wav(path, [0] * 10, RATE, bits=24)
    with raises(ValueError, "24-bit"):
        sim_wav.WavSource(path)
    with open(path, "wb") as f:
        f.write(b"RIFX" + bytes(40))
    with raises(ValueError, "not a RIFF/WAVE"):
        sim_wav.WavSource(path)


class _FakeI2S:
    def readinto(self, buf):
        return 0


def test_chunk_path_allocates_nothing():
    for bits in (16, 32):
        mic = mic_on(make_wav("alloc", ramp(3200)), bits=bits, chunk=320, n_chunks=3)
        fake = _FakeI2S()

        def step():
            mic._on_irq(fake)  # a DMA completion, as the I2S irq reports it
            assert mic.read() is not None

        assert heap_allocated_during(step, 200) == 0
        assert mic.chunks_read >= 200 and mic.overruns == 0
