# A sensor node's DSP chain, run inside the host firmware with the device's C modules:
# 1024 int16 microphone samples (16 kHz) -> float [-1, 1] -> DC-blocking high-pass -> spectrum.
# The "microphone" here is a synthesised 1 kHz tone at -12 dBFS on a DC offset, plus a weaker 3 kHz tone.
import array
import math

import emlearn_arrayutils
import emlearn_fft
import emlearn_iir

RATE = 16000
N = 1024

mic = array.array("h", bytes(2 * N))
for i in range(N):
    t = i / RATE
    v = 2000 + 8231 * math.sin(2 * math.pi * 1000 * t) + 1000 * math.sin(2 * math.pi * 3000 * t)
    mic[i] = int(v)

samples = array.array("f", bytes(4 * N))
emlearn_arrayutils.linear_map(mic, samples, -32768, 32767, -1.0, 1.0)

# One-pole DC blocker y[n] = x[n] - x[n-1] + 0.995 y[n-1], as a biquad section (b0 b1 b2 a0 a1 a2).
dc_block = emlearn_iir.new(array.array("f", [1.0, -1.0, 0.0, 1.0, -0.995, 0.0]))
dc_block.run(samples)

fft = emlearn_fft.FFT(N)
re = array.array("f", bytes(4 * (N // 2 + 1)))
im = array.array("f", bytes(4 * (N // 2 + 1)))
fft.rfft(samples, re, im)
power = [re[k] * re[k] + im[k] * im[k] for k in range(N // 2 + 1)]
peak = max(range(1, N // 2 + 1), key=lambda k: power[k])
rms = math.sqrt(sum(s * s for s in samples[256:]) / (N - 256))  # after the filter settles

print("dsp: peak at %.0f Hz, level %.1f dBFS (1 kHz tone at -12 dBFS + 3 kHz at -30 dBFS)"
      % (peak * RATE / N, 20 * math.log10(rms * math.sqrt(2))))
