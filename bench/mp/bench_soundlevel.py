# Sound level meter: one 1600-sample int16 chunk (0.1 s at 16 kHz) through the whole chain -- A-weighting
# (3 biquad sections), squaring, Fast and Slow exponential averagers, Leq sum, Lmax/Lmin -- in the C module
# against the same chain written in MicroPython, with the fraction of real time each takes on this host.
import array
import math

import tinysense_soundlevel
from benchlib import main

FS = 16000
N = 1600
# The built-in 16 kHz A-weighting (usermods/tinysense_soundlevel/weightings.h), scipy sos rows.
SOS_A_16000 = [
    0.846696615, -1.69339323, 0.846696615, 1.0, -1.70550966, 0.715987563,
    1.0, -2.0, 1.0, 1.0, -1.98388672, 0.983951688,
    0.46601218, 1.07079792, -0.0758728758, 1.0, 0.204745799, -0.0433503389,
]


def _chunk():
    return array.array("h", (int(8000 * math.sin(2 * math.pi * 1000 * i / FS)) + (i * 7919) % 2001 - 1000
                             for i in range(N)))


def python_chain():
    x = _chunk()
    sections = [SOS_A_16000[i:i + 6] for i in range(0, len(SOS_A_16000), 6)]
    state = [[0.0, 0.0] for _ in sections]
    alpha_fast = 1 - math.exp(-1 / (0.125 * FS))
    alpha_slow = 1 - math.exp(-1 / (1.0 * FS))
    levels = [0.0, 0.0, 0.0, -1.0, 1e30]  # fast, slow, interval sum, max fast, min fast

    def run():
        fast, slow, total, hi, lo = levels
        for n in range(len(x)):
            v = x[n]
            for s, (b0, b1, b2, _a0, a1, a2) in enumerate(sections):
                z = state[s]
                y = b0 * v + z[0]
                z[0] = b1 * v - a1 * y + z[1]
                z[1] = b2 * v - a2 * y
                v = y
            e = v * v
            total += e
            fast += alpha_fast * (e - fast)
            slow += alpha_slow * (e - slow)
            if fast > hi:
                hi = fast
            if fast < lo:
                lo = fast
        levels[:] = [fast, slow, total, hi, lo]

    return run


def c_soundlevel_a():
    x = _chunk()
    m = tinysense_soundlevel.SoundLevel(FS, "A")
    return lambda: m.process(x)


def c_soundlevel_c():
    x = _chunk()
    m = tinysense_soundlevel.SoundLevel(FS, "C")
    return lambda: m.process(x)


def c_soundlevel_z():
    x = _chunk()
    m = tinysense_soundlevel.SoundLevel(FS, "Z")
    return lambda: m.process(x)


main([("python_chain", python_chain), ("c_soundlevel_a", c_soundlevel_a), ("c_soundlevel_c", c_soundlevel_c),
      ("c_soundlevel_z", c_soundlevel_z)], realtime_us=N * 1_000_000 // FS)
