# Mel spectrogram of one 512-sample int16 frame (16 kHz) into 40 HTK bands: the C module (mel energies, and MFCC
# on top) against the same algorithm in MicroPython (periodic Hann window, iterative radix-2 real FFT through a
# 512-point complex FFT, power spectrum, sparse triangular filterbank precomputed once).
# One call covers one hop of 256 samples at 16 kHz (16 ms, frames overlapping by half).
import array
import math

import tinysense_mel
from benchlib import main
from pyfft import fft

N = 512
FS = 16000
N_MELS = 40
HOP_US = 256 * 1000000 // FS


def _frame():
    return array.array("h", (int(8000 * math.sin(0.05 * i) + 2000 * math.sin(0.9 * i)) for i in range(N)))


def c_mel():
    m = tinysense_mel.Mel(N, FS, N_MELS)
    x = _frame()
    out = array.array("f", bytes(4 * N_MELS))
    return lambda: m.run(x, out)


def c_mel_db():
    m = tinysense_mel.Mel(N, FS, N_MELS, log="db")
    x = _frame()
    out = array.array("f", bytes(4 * N_MELS))
    return lambda: m.run(x, out)


def c_mfcc():
    m = tinysense_mel.MFCC(N, FS, N_MELS, 13)
    x = _frame()
    out = array.array("f", bytes(4 * 13))
    return lambda: m.run(x, out)


def _python_filterbank():
    # HTK triangles as (first bin, weights) per band.
    def to_mel(f):
        return 2595 * math.log10(1 + f / 700)

    top = to_mel(FS / 2)
    corners = [700 * (10 ** (top * i / (N_MELS + 1) / 2595) - 1) for i in range(N_MELS + 2)]
    bands = []
    for i in range(N_MELS):
        f0, f1, f2 = corners[i], corners[i + 1], corners[i + 2]
        first, weights = None, []
        for j in range(N // 2 + 1):
            f = j * FS / N
            w = min((f - f0) / (f1 - f0), (f2 - f) / (f2 - f1))
            if w > 0:
                if first is None:
                    first = j
                weights.append(w)
        bands.append((first or 0, array.array("f", weights)))
    return bands


def python_mel():
    x = _frame()
    window = array.array("f", ((0.5 - 0.5 * math.cos(2 * math.pi * k / N)) / 32768 for k in range(N)))
    m = N // 2
    cos_t = array.array("f", (math.cos(2 * math.pi * k / N) for k in range(N // 2)))
    sin_t = array.array("f", (math.sin(2 * math.pi * k / N) for k in range(N // 2)))
    re = array.array("f", bytes(4 * m))
    im = array.array("f", bytes(4 * m))
    power = array.array("f", bytes(4 * (m + 1)))
    bands = _python_filterbank()
    out = array.array("f", bytes(4 * N_MELS))

    def run():
        # Window and pack even/odd samples into an m-point complex sequence.
        for j in range(m):
            re[j] = x[2 * j] * window[2 * j]
            im[j] = x[2 * j + 1] * window[2 * j + 1]
        fft(re, im, m, cos_t, sin_t, stride=2)
        # Split into the real spectrum's bins 0..m and square.
        power[0] = (re[0] + im[0]) ** 2
        power[m] = (re[0] - im[0]) ** 2
        for k in range(1, m // 2 + 1):
            q = m - k
            e_re, e_im = 0.5 * (re[k] + re[q]), 0.5 * (im[k] - im[q])
            o_re, o_im = 0.5 * (im[k] + im[q]), 0.5 * (re[q] - re[k])
            c, s = cos_t[k], sin_t[k]
            t_re, t_im = c * o_re + s * o_im, c * o_im - s * o_re
            power[k] = (e_re + t_re) ** 2 + (e_im + t_im) ** 2
            power[q] = (e_re - t_re) ** 2 + (t_im - e_im) ** 2
        for i in range(N_MELS):
            first, weights = bands[i]
            acc = 0.0
            for j in range(len(weights)):
                acc += weights[j] * power[first + j]
            out[i] = acc

    return run


main([("python_mel", python_mel), ("c_mel", c_mel), ("c_mel_db", c_mel_db), ("c_mfcc", c_mfcc)],
     realtime_us=HOP_US)
