# Features: one 128-sample 3-axis int16 window (x, y, z + magnitude; 11 time-domain and 6 spectral
# features per channel, 68 in all): the C module against the same feature set written in MicroPython
# (sorted() for the quartiles, a radix-2 FFT with precomputed twiddles for the spectrum).
import array
import math

import tinysense_features
from benchlib import main
from pyfft import fft

N = 128
AXES = 3
SAMPLERATE = 100.0
BAND_EDGES = (0.0, 1.0, 3.0, 8.0)
OUTPUTS = {}  # case -> its output array (to check that both cases compute the same features)


def _window():
    out = array.array("h", bytes(2 * N * AXES))
    for i in range(N):
        t = i / SAMPLERATE
        out[3 * i] = int(300 * math.sin(2 * math.pi * 1.7 * t) + ((i * 7919) % 61) - 30)
        out[3 * i + 1] = int(-200 + 150 * math.sin(2 * math.pi * 3.1 * t) + ((i * 104729) % 41) - 20)
        out[3 * i + 2] = int(4096 + 800 * math.sin(2 * math.pi * 0.9 * t) + ((i * 1299709) % 31) - 15)
    return out


def c_features():
    f = tinysense_features.Features(N, AXES, samplerate=SAMPLERATE)
    window = _window()
    out = OUTPUTS["c_features"] = array.array("f", bytes(4 * f.n_features()))
    return lambda: f.compute(window, out)


def python_features():
    window = _window()
    m = 1
    while m < N:
        m *= 2
    cos_t = [math.cos(2 * math.pi * k / m) for k in range(m // 2)]
    sin_t = [math.sin(2 * math.pi * k / m) for k in range(m // 2)]
    starts = [max(1, min(m // 2 + 1, math.ceil(e * m / SAMPLERATE))) for e in BAND_EDGES] + [m // 2 + 1]
    bin_hz = SAMPLERATE / m
    out = OUTPUTS["python_features"] = array.array("f", bytes(4 * 4 * 17))

    def quartile(v, q):
        pos = (len(v) - 1) * q / 4
        lo = int(pos)
        t = pos - lo
        return v[lo] if t == 0 else v[lo] + (v[lo + 1] - v[lo]) * t

    def channel(x, o):
        n = len(x)
        mean = sum(x) / n
        d = [v - mean for v in x]
        var = sum(v * v for v in d) / n
        ms = sum(v * v for v in x) / n
        s = sorted(x)
        crossings = 0
        last = 0
        for v in d:
            sign = (v > 0) - (v < 0)
            if sign:
                if last and sign != last:
                    crossings += 1
                last = sign
        q25 = quartile(s, 1)
        q75 = quartile(s, 3)
        values = [mean, math.sqrt(var), s[0], s[-1], quartile(s, 2), q25, q75, q75 - q25, math.sqrt(ms), ms,
                  crossings]
        re = d + [0.0] * (m - n)
        im = [0.0] * m
        fft(re, im, m, cos_t, sin_t)
        power = [re[k] * re[k] + im[k] * im[k] for k in range(m // 2 + 1)]
        total = sum(power[1:])
        if total > 0:
            peak = 1
            for k in range(2, m // 2 + 1):
                if power[k] > power[peak]:
                    peak = k
            centroid = sum(k * power[k] for k in range(1, m // 2 + 1)) / total * bin_hz
            values += [peak * bin_hz, centroid]
            values += [sum(power[starts[b]:starts[b + 1]]) / total for b in range(4)]
        else:
            values += [0.0] * 6
        for j, v in enumerate(values):
            out[o + j] = v

    def run():
        xs = [[window[i * AXES + a] for i in range(N)] for a in range(AXES)]
        for a in range(AXES):
            channel(xs[a], 17 * a)
        mag = [math.sqrt(xs[0][i] ** 2 + xs[1][i] ** 2 + xs[2][i] ** 2) for i in range(N)]
        channel(mag, 17 * AXES)

    return run


main([("python_features", python_features), ("c_features", c_features)])
