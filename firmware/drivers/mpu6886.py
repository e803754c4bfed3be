# MPU-6886 6-axis IMU over machine.I2C: identity check, ranges, output data rate, temperature, burst reads
# and the 1 KB FIFO read in one burst per call into a preallocated int16 array (no allocation per read).
#
#   from drivers.mpu6886 import MPU6886
#   imu = MPU6886.from_pins(board_pins, odr_hz=100)     # or MPU6886(machine.I2C(...), addr=0x68, ...)
#   imu.fifo_start()
#   n = imu.read_fifo()        # samples since the last call, in imu.fifo_buf (x y z [gx gy gz] interleaved)
#   imu.fifo_t0_us             # timestamp of the first of them (clock ticks, us); one sample = imu.period_us
#
# FIFO overflow: the FIFO runs in "stop when full" mode (CONFIG.FIFO_MODE = 1), so what it holds stays
# contiguous with the previous read; INT_STATUS.FIFO_OFLOW_INT tells that later samples were lost. read_fifo()
# then returns what the FIFO held, resets the FIFO, counts `overflows`, sets `overflowed` and restarts the
# timestamps from the clock (the gap is the lost data).
import array
import time

from micropython import const

_SMPLRT_DIV = const(0x19)
_CONFIG = const(0x1A)
_GYRO_CONFIG = const(0x1B)
_ACCEL_CONFIG = const(0x1C)
_ACCEL_CONFIG2 = const(0x1D)
_FIFO_EN = const(0x23)
_INT_STATUS = const(0x3A)
_ACCEL_XOUT_H = const(0x3B)
_TEMP_OUT_H = const(0x41)
_USER_CTRL = const(0x6A)
_PWR_MGMT_1 = const(0x6B)
_FIFO_COUNTH = const(0x72)
_FIFO_R_W = const(0x74)
_WHO_AM_I = const(0x75)

CHIP_ID = const(0x19)
FIFO_SIZE = const(1024)
ACCEL_RANGES_G = (2, 4, 8, 16)
GYRO_RANGES_DPS = (250, 500, 1000, 2000)
_DLPF_CFG = const(1)  # gyro/temperature DLPF 176 Hz: keeps the 1 kHz / (1 + SMPLRT_DIV) sample-rate rule
_A_DLPF_CFG = const(1)  # accelerometer DLPF 218 Hz


class MPU6886Error(OSError):
    pass


def _table(pins, key):
    return pins[key] if isinstance(pins, dict) else getattr(pins, key)


class MPU6886:
    def __init__(self, i2c, addr=0x68, *, accel_range_g=2, gyro_range_dps=250, odr_hz=100, gyro=False,
                 clock=None):
        """gyro: put the gyroscope in the FIFO too (6 values per sample instead of 3).
        clock: function giving microsecond ticks for timestamps (default time.ticks_us; on the host
        simulator pass machine.sim_ticks_us)."""
        self.i2c = i2c
        self.addr = addr
        self.clock = clock or time.ticks_us
        self._b1 = bytearray(1)
        self._b2 = bytearray(2)
        self._b14 = bytearray(14)
        try:
            self.i2c.readfrom_mem_into(addr, _WHO_AM_I, self._b1)
        except OSError as e:
            raise MPU6886Error("MPU6886: no ACK at I2C address 0x%02x (%s): check wiring and pins" % (addr, e))
        if self._b1[0] != CHIP_ID:
            raise MPU6886Error("MPU6886: WHO_AM_I at 0x%02x reads 0x%02x, expected 0x%02x: wrong chip"
                               % (addr, self._b1[0], CHIP_ID))
        self._write(_PWR_MGMT_1, 0x80)  # DEVICE_RESET
        time.sleep_ms(10)
        self._write(_PWR_MGMT_1, 0x01)  # awake, auto-selected clock
        time.sleep_ms(1)
        self._write(_CONFIG, 0x40 | _DLPF_CFG)  # FIFO_MODE = 1: a full FIFO keeps its (contiguous) data
        self._write(_ACCEL_CONFIG2, _A_DLPF_CFG)
        self._write(_FIFO_EN, 0)
        self._write(_USER_CTRL, 0)
        self.gyro = bool(gyro)
        self.channels = 6 if self.gyro else 3
        self.packet = 14 if self.gyro else 8  # accel (6) + temperature (2) [+ gyro (6)]
        self.max_samples = FIFO_SIZE // self.packet
        self._fifo_raw = bytearray(self.max_samples * self.packet)
        mv = memoryview(self._fifo_raw)
        self._views = [mv[0:k * self.packet] for k in range(self.max_samples + 1)]  # no slicing per read
        self.fifo_buf = array.array("h", bytes(2 * self.max_samples * self.channels))
        self.fifo_running = False
        self.overflows = 0
        self.overflowed = False
        self.samples_read = 0
        self.fifo_t0_us = 0
        self._next_t = 0
        self.set_accel_range(accel_range_g)
        self.set_gyro_range(gyro_range_dps)
        self.set_odr(odr_hz)

    @classmethod
    def from_pins(cls, pins, **kwargs):
        """Build from a board pin table (the `board_pins` module or a dict with I2C and IMU entries)."""
        from machine import I2C, Pin

        bus = _table(pins, "I2C")
        imu = _table(pins, "IMU")
        i2c = I2C(bus["id"], scl=Pin(bus["scl"]), sda=Pin(bus["sda"]), freq=bus["freq"])
        return cls(i2c, imu["addr"], **kwargs)

    # --- registers ---------------------------------------------------------------------------------------
    def _write(self, reg, value):
        self._b1[0] = value
        self.i2c.writeto_mem(self.addr, reg, self._b1)

    def _read(self, reg):
        self.i2c.readfrom_mem_into(self.addr, reg, self._b1)
        return self._b1[0]

    @property
    def whoami(self):
        return self._read(_WHO_AM_I)

    # --- configuration -----------------------------------------------------------------------------------
    def set_accel_range(self, g):
        if g not in ACCEL_RANGES_G:
            raise ValueError("accel range must be one of %s g" % (ACCEL_RANGES_G,))
        self._write(_ACCEL_CONFIG, ACCEL_RANGES_G.index(g) << 3)
        self.accel_range_g = g
        self.accel_scale = g / 32768  # g per LSB
        self._settings_changed()

    def set_gyro_range(self, dps):
        if dps not in GYRO_RANGES_DPS:
            raise ValueError("gyro range must be one of %s dps" % (GYRO_RANGES_DPS,))
        self._write(_GYRO_CONFIG, GYRO_RANGES_DPS.index(dps) << 3)  # FCHOICE_B = 0
        self.gyro_range_dps = dps
        self.gyro_scale = dps / 32768  # dps per LSB
        self._settings_changed()

    def set_odr(self, hz):
        """Output data rate 1 kHz / (1 + SMPLRT_DIV): the nearest divider is used; returns the actual rate."""
        if not 1000 / 256 <= hz <= 1000:
            raise ValueError("odr_hz must lie within 3.9..1000 Hz")
        div = int(1000 / hz + 0.5) - 1
        self._write(_SMPLRT_DIV, div)
        self.period_us = 1000 * (1 + div)
        self.odr_hz = 1000 / (1 + div)
        self._settings_changed()
        return self.odr_hz

    def _settings_changed(self):
        if getattr(self, "fifo_running", False):
            self.fifo_reset()  # never mix scales or rates inside the FIFO

    # --- direct reads (allocate their results; use the FIFO for streaming) --------------------------------
    def read_raw(self):
        """One burst of ACCEL_XOUT_H..GYRO_ZOUT_L into a reused bytearray(14)."""
        self.i2c.readfrom_mem_into(self.addr, _ACCEL_XOUT_H, self._b14)
        return self._b14

    @staticmethod
    def _s16(buf, i):
        v = (buf[i] << 8) | buf[i + 1]
        return v - 65536 if v & 0x8000 else v

    def acceleration(self):
        b = self.read_raw()
        s = self.accel_scale
        return (self._s16(b, 0) * s, self._s16(b, 2) * s, self._s16(b, 4) * s)

    def gyroscope(self):
        b = self.read_raw()
        s = self.gyro_scale
        return (self._s16(b, 8) * s, self._s16(b, 10) * s, self._s16(b, 12) * s)

    def temperature(self):
        self.i2c.readfrom_mem_into(self.addr, _TEMP_OUT_H, self._b2)
        return self._s16(self._b2, 0) / 326.8 + 25.0

    # --- FIFO --------------------------------------------------------------------------------------------
    def fifo_start(self):
        self._write(_FIFO_EN, 0x18 if self.gyro else 0x08)  # GYRO_FIFO_EN (bit 4), ACCEL_FIFO_EN (bit 3)
        self._write(_USER_CTRL, 0x40)  # FIFO_EN
        self.fifo_running = True
        self.fifo_reset()

    def fifo_stop(self):
        self._write(_USER_CTRL, 0)
        self._write(_FIFO_EN, 0)
        self.fifo_running = False

    def fifo_reset(self):
        self._write(_USER_CTRL, 0x44)  # FIFO_EN | FIFO_RST
        self._read(_INT_STATUS)  # clear a stale overflow flag
        self._next_t = time.ticks_add(self.clock(), self.period_us)

    def fifo_count(self):
        self.i2c.readfrom_mem_into(self.addr, _FIFO_COUNTH, self._b2)
        return ((self._b2[0] & 0x1F) << 8) | self._b2[1]

    def read_fifo(self, out=None):
        """Every whole sample in the FIFO (up to what `out` holds), in one burst, as int16 counts at the
        current ranges into out (default self.fifo_buf): x y z [gx gy gz] per sample. Returns the number of
        samples; fifo_t0_us is the first one's timestamp. Allocates nothing."""
        if out is None:
            out = self.fifo_buf
        overflow = self._read(_INT_STATUS) & 0x10
        n = self.fifo_count() // self.packet
        room = len(out) // self.channels
        if n > room:
            n = room
        if n > self.max_samples:
            n = self.max_samples
        self.fifo_t0_us = self._next_t
        if n:
            raw = self._views[n]
            self.i2c.readfrom_mem_into(self.addr, _FIFO_R_W, raw)
            gyro = self.gyro
            packet = self.packet
            end = n * packet
            i = 0
            j = 0
            while i < end:  # big-endian int16: ax ay az (temp skipped) [gx gy gz]
                for k in range(i, i + 6, 2):
                    v = (raw[k] << 8) | raw[k + 1]
                    out[j] = v - 65536 if v & 0x8000 else v
                    j += 1
                if gyro:
                    for k in range(i + 8, i + 14, 2):
                        v = (raw[k] << 8) | raw[k + 1]
                        out[j] = v - 65536 if v & 0x8000 else v
                        j += 1
                i += packet
            self.samples_read += n
            self._next_t = time.ticks_add(self._next_t, n * self.period_us)
        self.overflowed = bool(overflow)
        if overflow:
            self.overflows += 1
            self.fifo_reset()  # the lost samples lie between these and the next read's
        return n

    def deinit(self):
        if self.fifo_running:
            self.fifo_stop()
        self._write(_PWR_MGMT_1, 0x40)  # sleep
