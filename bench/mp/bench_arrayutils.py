# linear_map of 1024 int16 microphone samples to float in [-1, 1]: the C module against the
# loop a user would write in MicroPython.
import array

import emlearn_arrayutils
from benchlib import main

N = 1024


def _arrays():
    inp = array.array("h", ((i * 37) % 65536 - 32768 for i in range(N)))
    return inp, array.array("f", bytes(4 * N))


def c_linear_map():
    inp, out = _arrays()
    return lambda: emlearn_arrayutils.linear_map(inp, out, -32768, 32767, -1.0, 1.0)


def python_loop():
    inp, out = _arrays()

    def run():
        scale = 2.0 / 65535
        for i in range(len(inp)):
            out[i] = (inp[i] + 32768) * scale - 1.0

    return run


main([("python_loop", python_loop), ("c_linear_map", c_linear_map)])
