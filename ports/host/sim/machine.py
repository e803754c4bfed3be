# Simulated `machine` module for the host firmware (which has no `machine` of its own).
#
# Put ports/host/sim on MICROPYPATH (or sys.path) and `import machine` gives Pin, I2C and I2S with
# MicroPython's API, backed by device models instead of hardware. The real drivers in firmware/drivers
# run against it unchanged.
#
# Virtual time: nothing here depends on the wall clock. The simulator keeps one clock in microseconds,
# advanced only by the test (sim_advance_us / sim_advance_ms) or by a blocking I2S read waiting for its
# data. Devices see the clock through their `advance(now_us)` method, so FIFO fill levels, overflows,
# DMA completions and overruns are deterministic. Drivers that need time take a clock function:
# pass `machine.sim_ticks_us` (the driver's default on the device is time.ticks_us).
#
#   import machine, sim_mpu6886
#   imu = sim_mpu6886.MPU6886(recording, samplerate=100)
#   machine.sim_attach_i2c(0, imu)                 # bus id 0, the model's own address (0x68)
#   machine.sim_attach_i2s(0, "tone.wav")          # I2S id 0 fed from a RIFF/WAVE file (or a WavSource)
#   machine.sim_advance_ms(100)                    # 100 ms of virtual time pass: the devices produce data
#   machine.sim_reset()                            # forget every device, clock back to 0
import array

from sim_wav import WavSource

_now_us = 0
_i2c_devices = {}  # bus id -> {addr: model}
_i2s_sources = {}  # I2S id -> WavSource
_clients = []  # objects with advance(now_us): device models and active I2S instances


def sim_ticks_us():
    return _now_us


def sim_ticks_ms():
    return _now_us // 1000


def sim_advance_us(us):
    """Let `us` microseconds of virtual time pass; every device catches up in order."""
    global _now_us
    if us < 0:
        raise ValueError("time cannot go backwards")
    _now_us += us
    for client in _clients:
        client.advance(_now_us)


def sim_advance_ms(ms):
    sim_advance_us(ms * 1000)


def sim_reset():
    global _now_us
    _now_us = 0
    _i2c_devices.clear()
    _i2s_sources.clear()
    del _clients[:]


def sim_attach_i2c(bus_id, device, addr=None):
    """Put a register model (see sim_mpu6886) on I2C bus `bus_id` at `addr` (default: device.addr)."""
    if addr is None:
        addr = device.addr
    _i2c_devices.setdefault(bus_id, {})[addr] = device
    if device not in _clients:
        _clients.append(device)
    device.advance(_now_us)
    return device


def sim_detach_i2c(bus_id, addr):
    device = _i2c_devices.get(bus_id, {}).pop(addr, None)
    if device is not None and device in _clients:
        _clients.remove(device)


def sim_attach_i2s(i2s_id, source, loop=False):
    """Feed I2S `i2s_id` from a WAV file path or a WavSource; samples play at the file's sample rate."""
    if not isinstance(source, WavSource):
        source = WavSource(source, loop=loop)
    _i2s_sources[i2s_id] = source
    return source


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=-1, pull=-1, *, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        self._value = 1 if pull == Pin.PULL_UP else 0
        if value is not None:
            self._value = 1 if value else 0

    def init(self, mode=-1, pull=-1, *, value=None):
        self.__init__(self.id, mode, pull, value=value)

    def value(self, v=None):
        if v is None:
            return self._value
        self._value = 1 if v else 0

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self._value = 1

    def off(self):
        self._value = 0

    def __repr__(self):
        return "Pin(%d)" % self.id


def _pin_id(pin):
    return pin.id if isinstance(pin, Pin) else pin


def _enodev():
    return OSError(19)  # [Errno 19] ENODEV, as the esp32 port reports a device that does not ACK


class I2C:
    """machine.I2C over register models. A model provides: addr, read(reg, n) -> bytes, read_into(reg, buf),
    write(reg, data), advance(now_us) and a `nack` flag (True: the device does not acknowledge)."""

    def __init__(self, id=0, *, scl=None, sda=None, freq=400000, timeout=50000):
        self.id = id
        self.scl = _pin_id(scl)
        self.sda = _pin_id(sda)
        self.freq = freq

    def init(self, *, scl=None, sda=None, freq=400000, timeout=50000):
        self.__init__(self.id, scl=scl, sda=sda, freq=freq)

    def deinit(self):
        pass

    def _device(self, addr):
        bus = _i2c_devices.get(self.id)
        device = bus.get(addr) if bus is not None else None
        if device is None or device.nack:
            raise _enodev()
        return device

    def scan(self):
        return sorted(a for a, d in _i2c_devices.get(self.id, {}).items() if not d.nack)

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        return bytes(self._device(addr).read(memaddr, nbytes))

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        self._device(addr).read_into(memaddr, buf)  # no allocation: drivers' steady-state path

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        self._device(addr).write(memaddr, buf)

    def writeto(self, addr, buf, stop=True):
        buf = bytes(buf)
        device = self._device(addr)
        if len(buf) > 1:
            device.write(buf[0], buf[1:])
        elif len(buf) == 1:
            device.pointer = buf[0]
        return len(buf)

    def readfrom(self, addr, nbytes, stop=True):
        device = self._device(addr)
        return bytes(device.read(getattr(device, "pointer", 0), nbytes))

    def readfrom_into(self, addr, buf, stop=True):
        buf[:] = self.readfrom(addr, len(buf))


class SoftI2C(I2C):
    def __init__(self, scl=None, sda=None, *, freq=400000, timeout=50000):
        super().__init__(-1, scl=scl, sda=sda, freq=freq)


class I2S:
    """machine.I2S receive side fed from a WAV file at its sample rate.

    The "DMA" is a ring of `ibuf` bytes filled in virtual time. Blocking `readinto` takes from the ring
    and, when it runs dry, lets virtual time pass until the buffer is full. After `irq(handler)` the
    object is non-blocking: `readinto(buf)` returns 0 at once and queues buf; as time passes the buffer
    is filled and `handler(self)` is called (on the device the handler is scheduled the same way).
    Frames that arrive while the ring is full are lost (counted in `sim_dropped_frames`).
    MONO takes the WAV's first channel; bits=32 gives the 16-bit sample left-aligned (s << 16), as the
    esp32 port delivers a 24/32-bit microphone's frames. After the file ends the input is silence.
    """

    RX = 0
    TX = 1
    MONO = 0
    STEREO = 1

    def __init__(self, id, *, sck=None, ws=None, sd=None, mck=None, mode=0, bits=16, format=0, rate=16000,
                 ibuf=8192):
        if mode != I2S.RX:
            raise ValueError("the simulator supports I2S.RX only")
        if bits not in (16, 32):
            raise ValueError("bits must be 16 or 32")
        if format not in (I2S.MONO, I2S.STEREO):
            raise ValueError("format must be I2S.MONO or I2S.STEREO")
        source = _i2s_sources.get(id)
        if source is None:
            raise OSError(19)
        if source.rate != rate:
            raise ValueError("I2S rate %d differs from the simulated source's %d Hz" % (rate, source.rate))
        self.id = id
        self.pins = (_pin_id(sck), _pin_id(ws), _pin_id(sd))
        self.bits = bits
        self.format = format
        self.rate = rate
        self._source = source
        self._channels = 2 if format == I2S.STEREO else 1
        self._frame_bytes = bits // 8 * self._channels
        self._cap = max(1, ibuf // self._frame_bytes)  # ring capacity in frames
        self._ring = array.array("h", bytes(2 * self._cap * self._channels))  # as 16-bit source samples
        self._head = 0  # oldest frame in the ring
        self._count = 0  # frames in the ring
        self._handler = None
        self._pending = None
        self._pending_fill = 0
        self._frames_produced = 0  # frames the microphone produced since start (at `rate`)
        self.sim_dropped_frames = 0
        self.sim_frames_delivered = 0
        self._frame = array.array("h", (0, 0))
        self._isz_cache = {}
        self._in_complete = False
        self._pending_need = 0
        self._last_us = _now_us
        self._rem = 0
        _clients.append(self)

    def deinit(self):
        if self in _clients:
            _clients.remove(self)
        self._pending = None
        self._handler = None

    def irq(self, handler):
        self._handler = handler

    def _produce(self, now_us):
        # Frames due since the last call (kept as a remainder: no big integers), one by one; a pending
        # non-blocking buffer is completed as soon as the ring holds what it still needs, as DMA would.
        num = (now_us - self._last_us) * self.rate + self._rem
        self._last_us = now_us
        due = num // 1000000
        self._rem = num - due * 1000000
        frame = self._frame
        while due > 0:
            due -= 1
            self._frames_produced += 1
            self._source.read_frame(frame)
            if self._count == self._cap:
                self.sim_dropped_frames += 1
            else:
                i = (self._head + self._count) % self._cap * self._channels
                self._ring[i] = frame[0]
                if self._channels == 2:
                    self._ring[i + 1] = frame[1]
                self._count += 1
            if self._pending is not None and not self._in_complete and self._count >= self._pending_need:
                self._complete()

    def _drain_into(self, buf, start_byte):
        """Copy whole frames from the ring into buf from start_byte on; returns the new fill in bytes.
        buf: bytearray (little-endian bytes), array('h') or array('i') (whole samples per item)."""
        isz = self._itemsize(buf)
        n = len(buf) * isz
        pos = start_byte
        sb = self.bits // 8
        while self._count and pos + self._frame_bytes <= n:
            i = self._head * self._channels
            for c in range(self._channels):
                s = self._ring[i + c]
                if isz == sb:
                    buf[pos // isz] = s if sb == 2 else s << 16
                elif isz == 1:
                    v = (s if sb == 2 else s << 16) & (0xFFFF if sb == 2 else 0xFFFFFFFF)
                    for k in range(sb):
                        buf[pos + k] = (v >> (8 * k)) & 0xFF
                elif isz == 2:  # 32-bit frames into an int16 array: low half 0, high half the sample
                    buf[pos // 2] = 0
                    buf[pos // 2 + 1] = s
                else:
                    raise ValueError("bits=16 frames cannot be read into a 32-bit array")
                pos += sb
            self._head = (self._head + 1) % self._cap
            self._count -= 1
            self.sim_frames_delivered += 1
        return pos

    def _itemsize(self, buf):
        key = id(buf)
        isz = self._isz_cache.get(key)
        if isz is None:
            if isinstance(buf, (bytearray, bytes, memoryview)):
                isz = 1
            else:
                isz = len(bytes(buf[:1])) if len(buf) else 1
            self._isz_cache[key] = isz
        return isz

    def advance(self, now_us):
        self._produce(now_us)

    def _complete(self):
        if self._in_complete:
            return  # a handler queued the next buffer: the running loop below fills it
        self._in_complete = True
        try:
            while self._pending is not None:
                buf = self._pending
                self._pending_fill = self._drain_into(buf, self._pending_fill)
                total = len(buf) * self._itemsize(buf)
                if self._pending_fill + self._frame_bytes <= total:
                    self._pending_need = (total - self._pending_fill) // self._frame_bytes
                    break
                self._pending = None
                self._pending_fill = 0
                if self._handler is not None:
                    self._handler(self)  # may queue the next buffer, which this loop goes on filling
        finally:
            self._in_complete = False

    def readinto(self, buf):
        nbytes = len(buf) * self._itemsize(buf) // self._frame_bytes * self._frame_bytes
        if self._handler is not None:
            if self._pending is not None:
                raise OSError(16)  # EBUSY: a non-blocking read is already in progress
            self._pending = buf
            self._pending_fill = 0
            self._pending_need = 1
            self._complete()  # takes what the ring holds now; the rest arrives as time passes
            return 0
        fill = 0
        while True:
            self._produce(_now_us)
            fill = self._drain_into(buf, fill)
            if fill >= nbytes:
                return fill
            missing = (nbytes - fill) // self._frame_bytes
            step = (missing * 1000000 + self.rate - 1) // self.rate
            sim_advance_us(max(1, step))  # a blocking read waits: virtual time passes

    def shift(self, *args, **kwargs):
        raise NotImplementedError("I2S.shift is not simulated")




def freq(hz=None):
    return 240000000


def unique_id():
    return b"\x00\x01\x02\x03\x04\x05"


def reset():
    raise SystemExit("machine.reset() in the simulator")
