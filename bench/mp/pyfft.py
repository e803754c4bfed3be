# The FFT a MicroPython user writes without our C module: iterative radix-2 decimation in time, in place on two
# float sequences. The peer of the FFT, mel and features benchmarks (bench_fft, bench_mel, bench_features), kept in
# one place so they all compare against the same code; tests/mp/test_bench_peers.py checks it against emlearn_fft.


def fft(re, im, n, cos_t, sin_t, stride=1):
    """Forward FFT of n points (a power of two) in place. cos_t[k * stride] and sin_t[k * stride] hold
    cos(2*pi*k/n) and sin(2*pi*k/n) for k < n/2 (stride 2 lets a table made for 2n points serve)."""
    j = 0
    for i in range(1, n):
        bit = n >> 1
        while j & bit:
            j ^= bit
            bit >>= 1
        j |= bit
        if i < j:
            re[i], re[j] = re[j], re[i]
            im[i], im[j] = im[j], im[i]
    size = 2
    while size <= n:
        half = size // 2
        step = stride * (n // size)
        for start in range(0, n, size):
            k = 0
            for a in range(start, start + half):
                b = a + half
                c = cos_t[k]
                s = sin_t[k]
                tre = re[b] * c + im[b] * s
                tim = im[b] * c - re[b] * s
                re[b] = re[a] - tre
                im[b] = im[a] - tim
                re[a] += tre
                im[a] += tim
                k += step
        size *= 2
