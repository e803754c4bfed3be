# Fuzzes every DSP entry point with random constructor arguments and random inputs (wrong
# typecodes, lengths, NaN/inf, zero or negative rates, random coefficients). Every call must
# either work or raise a Python exception; run in the sanitize build, any memory error is a
# sanitizer report. Usage: dsp_fuzz.py SEED ROUNDS  -> prints "calls N raised M".
import array
import sys

import emlearn_arrayutils
import emlearn_fft
import emlearn_iir
import tinysense_features
import tinysense_mel
import tinysense_soundlevel

seed, rounds = int(sys.argv[1]), int(sys.argv[2])
state = [seed or 1]


def rand(n):
    # xorshift32: the host firmware has no random module.
    x = state[0]
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    state[0] = x
    return x % n


SPECIAL = (0.0, -0.0, 1.0, -1.0, 1e30, -1e30, 1e-30, float("nan"), float("inf"), float("-inf"), 0.5, 2.0)
TYPECODES = "bBhHiIfd"
ITEMSIZE = {"b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "f": 4, "d": 8}
SIZES = (0, 1, 2, 3, 4, 7, 8, 16, 31, 64, 128, 255, 256, 400, 512, 1024)


def number():
    k = rand(4)
    if k == 0:
        return SPECIAL[rand(len(SPECIAL))]
    if k == 1:
        return rand(70000) - 35000
    if k == 2:
        return (rand(2001) - 1000) / 500
    return SIZES[rand(len(SIZES))]


def make_array(typecode=None, size=None):
    typecode = typecode or TYPECODES[rand(len(TYPECODES))]
    size = SIZES[rand(len(SIZES))] if size is None else size
    a = array.array(typecode, bytes(size * ITEMSIZE[typecode]))
    for i in range(size):
        v = number()
        try:
            a[i] = v if typecode in "fd" else int(v) if v == v and abs(v) < 1e9 else 0
        except (OverflowError, ValueError):
            a[i] = 0
    return a


def argument():
    k = rand(5)
    if k == 0:
        return make_array()
    if k == 1:
        return number()
    if k == 2:
        return None
    if k == 3:
        return make_array("f")
    return make_array("h")


def try_call(fn, *args):
    global calls, raised
    calls += 1
    try:
        fn(*args)
    except Exception:
        raised += 1


def sane(n):
    return SIZES[rand(len(SIZES))] if rand(3) == 0 else n


def good_or_random(typecodes, size):
    # Half the time a well-formed argument (right typecode and length, random contents incl. NaN/inf),
    # so the fuzz reaches the processing code and not only the argument checks.
    if rand(2):
        return make_array(typecodes[rand(len(typecodes))], size)
    return argument()


def new_iir():
    return emlearn_iir.new(make_array("f", 6 * rand(4))), 0


def new_fft():
    n = sane(256)
    return emlearn_fft.FFT(n), n


def new_mel():
    n = sane(256)
    return tinysense_mel.Mel(n, [16000, 0, -1, 8000.5][rand(4)], sane(20)), n


def new_mfcc():
    n = sane(256)
    return tinysense_mel.MFCC(n, 16000, sane(20), sane(13)), n


def new_soundlevel():
    return tinysense_soundlevel.SoundLevel([16000, 32000, 48000, 0, -5, 44100][rand(6)], "ACZQ"[rand(4)]), 0


def new_features():
    length, axes = sane(128), rand(5)
    return tinysense_features.Features(length, axes, samplerate=[100, 0, -1][rand(3)]), length * axes


CONSTRUCTORS = (("iir", new_iir), ("fft", new_fft), ("mel", new_mel), ("mfcc", new_mfcc), ("sl", new_soundlevel),
                ("feat", new_features))

calls = raised = 0
for _ in range(rounds):
    kind = rand(len(CONSTRUCTORS) + 1)
    if kind == len(CONSTRUCTORS):
        size = SIZES[rand(len(SIZES))]
        try_call(emlearn_arrayutils.linear_map, good_or_random("bBhHif", size), good_or_random("bBhHif", size),
                 number(), number(), number(), number())
        continue
    name, ctor = CONSTRUCTORS[kind]
    try:
        obj, n = ctor()
    except Exception:
        calls += 1
        raised += 1
        continue
    for _ in range(3):
        if name == "iir":
            size = SIZES[rand(len(SIZES))]
            if rand(2):
                try_call(obj.run, good_or_random("fh", size))
            else:
                try_call(obj.run, good_or_random("fh", size), good_or_random("f", size))
        elif name == "fft":
            if rand(2):
                try_call(obj.run, good_or_random("f", n), good_or_random("f", n))
            else:
                try_call(obj.rfft, good_or_random("fh", n), good_or_random("f", n // 2 + 1),
                         good_or_random("f", n // 2 + 1))
        elif name == "mel":
            try_call(obj.run, good_or_random("fh", n), good_or_random("f", 20))
        elif name == "mfcc":
            try_call(obj.run, good_or_random("fh", n), good_or_random("f", 13))
        elif name == "sl":
            try_call(obj.process, good_or_random("h", SIZES[rand(len(SIZES))]))
            try_call(obj.leq)
            try_call(obj.fast)
        else:
            try_call(obj.compute, good_or_random("hf", n), good_or_random("f", obj.n_features()))
print("calls", calls, "raised", raised)
