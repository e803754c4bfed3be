# FFT of 256 and 1024 points: the C module (complex and real-input transforms) against an iterative
# radix-2 FFT written in MicroPython.
import array
import math

import emlearn_fft
from benchlib import main

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
        j = 0
        for i in range(1, N):
            bit = N >> 1
            while j & bit:
                j ^= bit
                bit >>= 1
            j |= bit
            if i < j:
                re[i], re[j] = re[j], re[i]
        size = 2
        while size <= N:
            half = size // 2
            step = N // size
            for start in range(0, N, size):
                k = 0
                for m in range(start, start + half):
                    tre = re[m + half] * cos_t[k] + im[m + half] * sin_t[k]
                    tim = -re[m + half] * sin_t[k] + im[m + half] * cos_t[k]
                    re[m + half] = re[m] - tre
                    im[m + half] = im[m] - tim
                    re[m] += tre
                    im[m] += tim
                    k += step
            size *= 2

    return run


cases = []
for n in (1024, 256):
    for name, setup in (("python_fft", python_fft), ("c_fft", c_fft), ("c_rfft", c_rfft)):
        cases.append(("%s_%d" % (name, n), (lambda setup, n: lambda: setup(n))(setup, n)))
main(cases)
