# Helpers for MicroPython-side tests (run inside the host firmware or the unix runtime).
# A test file is plain MicroPython: top-level `def test_*()` functions; each one
# becomes a pytest item per runtime (see tests/conftest.py).
import sys


class SkipTest(Exception):
    pass


def variant():
    """'standard', '32', 'sanitize' (host firmware) or 'unix' (stock runtime)."""
    build = sys.implementation._build
    if build == "standard" and "linux [" in sys.implementation._machine:
        return "unix"
    return build


def requires_gc():
    """Skip in the sanitizer build, which runs without the GC (see ports/host/variants/sanitize)."""
    try:
        import gc

        gc.mem_alloc()
    except (ImportError, AttributeError):
        raise SkipTest("needs the GC heap (not in the sanitize build)")


class raises:
    """with raises(ValueError, "length"): ...  -- the message must contain `match`."""

    def __init__(self, exc_type, match=None):
        self.exc_type = exc_type
        self.match = match
        self.value = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            raise AssertionError("did not raise " + self.exc_type.__name__)
        if not issubclass(exc_type, self.exc_type):
            return False
        message = str(exc)
        if self.match is not None and self.match not in message:
            raise AssertionError("%s message %r lacks %r" % (exc_type.__name__, message, self.match))
        if not message:
            raise AssertionError("%s raised without a message" % exc_type.__name__)
        self.value = exc
        return True


def heap_allocated_during(fn, repeat=1000):
    """Bytes allocated on the MicroPython heap while calling fn() `repeat` times."""
    requires_gc()
    import gc

    fn()  # warm up: first calls may intern or cache
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        for _ in range(repeat):
            fn()
        return gc.mem_alloc() - before
    finally:
        gc.enable()


# CRC-32 (IEEE, as zlib/binascii.crc32) for model files the tests write by hand: the firmware has no binascii.
def crc32(data, crc=0):
    crc = ~crc & 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return ~crc & 0xFFFFFFFF
