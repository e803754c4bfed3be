# I2S MEMS microphone (standard/Philips mode) over machine.I2S RX, non-blocking: the I2S irq fills a ring of
# preallocated raw buffers; the consumer takes fixed-size int16 chunks with DC offset removed. Conversion
# (32-bit frames -> int16) runs in C through emlearn_arrayutils.linear_map, DC removal through a first-order
# high-pass in emlearn_iir. Nothing is allocated per chunk.
#
#   from drivers.i2s_mic import I2SMic
#   mic = I2SMic(board_pins, chunk=1024)    # pins, rate and bits from the I2S_MIC entry
#   mic.start()
#   chunk = mic.read()                      # array('h') of `chunk` samples (reused), or None if none is ready
#   mic.overruns                            # chunks lost because the consumer did not keep up
#
# Or: I2SMic(..., callback=fn) calls fn(chunk) from the I2S irq for every chunk (no queue), or
# `async for chunk in mic:` in an asyncio task (polls every `poll_ms`).
import array

import emlearn_arrayutils
from micropython import const

_INT16_MIN = const(-32768)


def _table(pins, key):
    return pins[key] if isinstance(pins, dict) else getattr(pins, key)


def dc_blocker(cutoff_hz, rate):
    """sos coefficients (b0 b1 b2 a0 a1 a2) of y[n] = g (x[n] - x[n-1]) + p y[n-1], unity gain at Nyquist."""
    import math

    p = math.exp(-2 * math.pi * cutoff_hz / rate)
    g = (1 + p) / 2
    return array.array("f", (g, -g, 0.0, 1.0, -p, 0.0))


class I2SMic:
    def __init__(self, pins, *, chunk=512, n_chunks=4, dc_cutoff_hz=10.0, callback=None, ibuf=None, poll_ms=10):
        """pins: the board pin table (`board_pins` module or a dict) with
        I2S_MIC = {"id", "sck", "ws", "sd", "rate", "bits"}; bits 16 or 32 (32: 24/32-bit microphones,
        the top 16 bits are kept). n_chunks >= 2 raw buffers: up to n_chunks - 1 chunks wait for the
        consumer while the next one fills. dc_cutoff_hz=None keeps the DC offset."""
        cfg = _table(pins, "I2S_MIC")
        self.i2s_id = cfg["id"]
        self.sck = cfg["sck"]
        self.ws = cfg["ws"]
        self.sd = cfg["sd"]
        self.rate = cfg["rate"]
        self.bits = cfg["bits"]
        if self.bits not in (16, 32):
            raise ValueError("I2S_MIC bits must be 16 or 32")
        if n_chunks < 2:
            raise ValueError("n_chunks must be at least 2")
        if chunk < 1:
            raise ValueError("chunk must be positive")
        self.chunk = chunk
        self.n_chunks = n_chunks
        typecode = "h" if self.bits == 16 else "i"
        self._raw = [array.array(typecode, bytes(self.bits // 8 * chunk)) for _ in range(n_chunks)]
        self._seq = array.array("i", bytes(4 * n_chunks))
        self.out = array.array("h", bytes(2 * chunk))
        self.ibuf = ibuf or max(4096, 2 * self.bits // 8 * chunk)
        self.callback = callback
        self.poll_ms = poll_ms
        if self.bits == 16:
            self._in_min, self._in_max = -32768.0, 32768.0
        else:
            self._in_min, self._in_max = -2147483648.0, 2147483648.0
        self._dc = None
        if dc_cutoff_hz:
            import emlearn_iir

            self._dc = emlearn_iir.new(dc_blocker(dc_cutoff_hz, self.rate))
        self.i2s = None
        self._w = 0  # buffer the I2S is filling
        self._r = 0  # oldest ready buffer
        self._ready = 0
        self.produced = 0  # chunks completed by the I2S (including dropped ones)
        self.overruns = 0  # chunks dropped: the consumer had not taken the n_chunks - 1 waiting ones
        self.chunks_read = 0
        self.seq = -1  # sequence number (0, 1, ...) of the chunk read() returned last; gaps = overruns

    def start(self):
        from machine import I2S, Pin

        self.i2s = I2S(self.i2s_id, sck=Pin(self.sck), ws=Pin(self.ws), sd=Pin(self.sd), mode=I2S.RX,
                       bits=self.bits, format=I2S.MONO, rate=self.rate, ibuf=self.ibuf)
        self.i2s.irq(self._on_irq)  # non-blocking from here on
        self.i2s.readinto(self._raw[self._w])

    def stop(self):
        if self.i2s is not None:
            self.i2s.deinit()
            self.i2s = None

    deinit = stop

    def reset_dc(self):
        if self._dc is not None:
            self._dc.reset()

    def _on_irq(self, i2s):
        # The buffer self._w is full.
        filled = self._w
        self._seq[filled] = self.produced
        self.produced += 1
        if self.callback is not None:
            self._w = (filled + 1) % self.n_chunks
            i2s.readinto(self._raw[self._w])
            self.callback(self._convert(filled))
            return
        if self._ready < self.n_chunks - 1:
            self._ready += 1
            self._w = (filled + 1) % self.n_chunks
        else:
            self.overruns += 1  # drop this chunk: refill the same buffer, the waiting ones stay
        i2s.readinto(self._raw[self._w])

    def _convert(self, index):
        out = self.out
        emlearn_arrayutils.linear_map(self._raw[index], out, self._in_min, self._in_max, _INT16_MIN, 32768.0)
        if self._dc is not None:
            self._dc.run(out)
        self.seq = self._seq[index]
        self.chunks_read += 1
        return out

    def pending(self):
        return self._ready

    def read(self):
        """The oldest waiting chunk as int16 (the same array every call, valid until the next read), or None."""
        if not self._ready:
            return None
        index = self._r
        out = self._convert(index)
        self._r = (index + 1) % self.n_chunks
        self._ready -= 1
        return out

    def __aiter__(self):
        return self

    async def __anext__(self):
        import asyncio

        while True:
            chunk = self.read()
            if chunk is not None:
                return chunk
            await asyncio.sleep_ms(self.poll_ms)
