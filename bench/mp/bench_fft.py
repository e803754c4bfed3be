# FFT of 256 and 1024 points: the C module (complex and real-input transforms) against an iterative
# radix-2 FFT written in MicroPython.
import array
import math

import emlearn_fft
from benchlib import main
from pyfft import fft


def _signal(N):
    return array.array("f", (math.sin(0.05 * i) + 0.25 * math.sin(0.9 * i) for i in range(N)))


def c_fft(N):
    fft = emlearn_fft.FFT(N)
    x = _signal(N)
    zeros = array.array("f", bytes(4 * N))
    re = array.array("f", x)
    im = array.array("f", zeros)

    def run():
        re[:] = x
        im[:] = zeros
        fft.run(re, im)

    return run


def c_rfft(N):
    fft = emlearn_fft.FFT(N)
    x = _signal(N)
    out_re = array.array("f", bytes(4 * (N // 2 + 1)))
    out_im = array.array("f", bytes(4 * (N // 2 + 1)))
    return lambda: fft.rfft(x, out_re, out_im)


def python_fft(N):
    x = _signal(N)
    zeros = array.array("f", bytes(4 * N))
    re = array.array("f", x)
    im = array.array("f", zeros)
    cos_t = [math.cos(2 * math.pi * i / N) for i in range(N // 2)]
    sin_t = [math.sin(2 * math.pi * i / N) for i in range(N // 2)]

    def run():
        re[:] = x
        im[:] = zeros
        fft(re, im, N, cos_t, sin_t)

    return run


cases = []
for n in (1024, 256):
    for name, setup in (("python_fft", python_fft), ("c_fft", c_fft), ("c_rfft", c_rfft)):
        cases.append(("%s_%d" % (name, n), (lambda setup, n: lambda: setup(n))(setup, n)))
main(cases)
