# The host port itself: numerics like the ESP32-S3, modules the apps rely on, files, imports.
import array
import math
import struct

from mptest import raises, requires_gc, variant


def test_float_is_single_precision():
    # float32 has a 24-bit mantissa: 1 + 2**-24 rounds back to 1, unlike float64.
    assert 1.0 + 2.0**-24 == 1.0
    assert 1.0 + 2.0**-23 != 1.0
    assert struct.unpack("<f", struct.pack("<f", 0.1))[0] == 0.1


def test_word_size_matches_variant():
    pointer_bytes = 4 if variant() == "32" else 8
    assert struct.calcsize("P") == pointer_bytes


def test_core_modules_present():
    import cmath
    import collections
    import io
    import micropython
    import time

    assert abs(cmath.sqrt(-1) - 1j) < 1e-6
    assert collections.OrderedDict([("a", 1)])["a"] == 1
    assert io.BytesIO(b"xy").read() == b"xy"
    assert micropython.const(3) == 3
    assert math.isclose(math.sin(math.pi / 2), 1.0)
    assert array.array("f", [1.5, 2.5])[1] == 2.5


def test_time_ticks():
    import time

    start_us = time.ticks_us()
    start_ms = time.ticks_ms()
    time.sleep_ms(20)
    assert 15_000 <= time.ticks_diff(time.ticks_us(), start_us) < 2_000_000
    assert 15 <= time.ticks_diff(time.ticks_ms(), start_ms) < 2_000
    # The ticks ring wraps: adding then diffing returns the delta, also across the wrap.
    near_wrap = time.ticks_add(0, -5)
    assert time.ticks_diff(time.ticks_add(near_wrap, 10), near_wrap) == 10


def test_open_write_read_roundtrip():
    path = "build/mptest_port_file.bin"
    data = bytes(range(256))
    with open(path, "wb") as f:
        assert f.write(data) == 256
    with open(path, "rb") as f:
        assert f.read(10) == data[:10]
        f.seek(250)
        assert f.tell() == 250
        assert f.read() == data[250:]
        buf = bytearray(4)
        f.seek(0)
        assert f.readinto(buf) == 4 and buf == data[:4]
    with open(path, "w") as f:
        f.write("one\ntwo\n")
    with open(path) as f:
        assert list(f) == ["one\n", "two\n"]


def test_open_errors_name_the_problem():
    with raises(OSError):
        open("build/does/not/exist.txt")
    with raises(ValueError, "invalid mode"):
        open("build/x.txt", "q")
    f = open("build/mptest_port_closed.txt", "w")
    f.close()
    with raises(ValueError, "closed file"):
        f.write("x")


def test_gc_heap_accounting():
    requires_gc()
    import gc

    gc.collect()
    before = gc.mem_alloc()
    block = bytearray(10_000)
    assert gc.mem_alloc() - before >= 10_000
    del block
