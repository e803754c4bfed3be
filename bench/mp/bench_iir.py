# IIR: 3 biquad sections (an A-weighting-like cascade) over 1024 float samples: the C module
# against the direct form II transposed loop a user would write in MicroPython.
import array

import emlearn_iir
from benchlib import main

N = 1024
# Three stable sections in scipy sos order (b0 b1 b2 a0 a1 a2).
SOS = [
    0.2343, 0.4686, 0.2343, 1.0, -0.2232, 0.0142,
    1.0, -2.0, 1.0, 1.0, -1.8938, 0.8951,
    1.0, -2.0, 1.0, 1.0, -1.9946, 0.9947,
]


def _signal():
    return array.array("f", (((i * 7919) % 2001 - 1000) / 1000 for i in range(N)))


def c_iir():
    x = _signal()
    f = emlearn_iir.new(array.array("f", SOS))
    return lambda: f.run(x)


def python_loop():
    x = _signal()
    sections = [SOS[i:i + 6] for i in range(0, len(SOS), 6)]
    state = [[0.0, 0.0] for _ in sections]

    def run():
        for n in range(len(x)):
            v = x[n]
            for s, (b0, b1, b2, a0, a1, a2) in enumerate(sections):
                z = state[s]
                y = b0 * v + z[0]
                z[0] = b1 * v - a1 * y + z[1]
                z[1] = b2 * v - a2 * y
                v = y
            x[n] = v

    return run


main([("python_loop", python_loop), ("c_iir", c_iir)])
