# Register model of the InvenSense MPU-6886 6-axis IMU for the simulated machine.I2C.
#
# It serves a recording (accelerometer, optionally gyroscope) in virtual time through its data registers and
# its 1 KB FIFO, and honours the writes a driver makes:
# - PWR_MGMT_1 (0x6B): bit 7 DEVICE_RESET restores the reset values (asleep), bit 6 SLEEP stops sampling.
# - SMPLRT_DIV (0x19), CONFIG (0x1A) DLPF_CFG[2:0], GYRO_CONFIG (0x1B) FCHOICE_B[1:0]: the sample rate is
#   1 kHz / (1 + SMPLRT_DIV) when FCHOICE_B = 0 and 0 < DLPF_CFG < 7 (the datasheet's rule); otherwise the
#   internal rate (8 kHz) without the divider.
# - ACCEL_CONFIG (0x1C) ACCEL_FS_SEL[4:3] (±2/4/8/16 g) and GYRO_CONFIG FS_SEL[4:3] (±250/500/1000/2000 dps):
#   samples are rescaled from the recording's range to the configured one (rounded, saturated to int16).
# - FIFO_EN (0x23): bit 4 GYRO_FIFO_EN, bit 3 ACCEL_FIFO_EN; USER_CTRL (0x6A): bit 6 FIFO_EN, bit 2 FIFO_RST.
#   Each sample pushes one packet in register order: ACCEL_XOUT_H..ACCEL_ZOUT_L (if accel enabled), TEMP_OUT_H/L
#   (whenever accel or gyro is enabled, as on the MPU-6886), GYRO_XOUT_H..GYRO_ZOUT_L (if gyro enabled).
# - CONFIG bit 6 FIFO_MODE: 0 = when full, new data overwrites the oldest bytes; 1 = new data is dropped.
#   Either way INT_STATUS (0x3A) bit 4 FIFO_OFLOW_INT is set; reading INT_STATUS clears it.
# - FIFO_COUNTH/L (0x72/0x73): bytes in the FIFO; FIFO_R_W (0x74): burst reads pop bytes (an empty FIFO
#   reads as the last byte popped).
# Timing: sample k after the rate was last set falls at t_rate + k * period; the recording plays at its own
# `samplerate` from the first wake-up, and each sample takes the recording's value at its time (so at the
# recording's own rate, sample i is recording row i). After the end the last row is held (loop=True: replays).
# Test hooks: `nack = True` (no ACK: the bus raises OSError ENODEV), `who_am_i` (another chip id),
# `force_overflow()`, `temperature_c`, `samples_generated`, `fifo_bytes()`.
import array

ADDR = 0x68
REG_SMPLRT_DIV = 0x19
REG_CONFIG = 0x1A
REG_GYRO_CONFIG = 0x1B
REG_ACCEL_CONFIG = 0x1C
REG_ACCEL_CONFIG2 = 0x1D
REG_FIFO_EN = 0x23
REG_INT_STATUS = 0x3A
REG_ACCEL_XOUT_H = 0x3B
REG_TEMP_OUT_H = 0x41
REG_GYRO_XOUT_H = 0x43
REG_USER_CTRL = 0x6A
REG_PWR_MGMT_1 = 0x6B
REG_PWR_MGMT_2 = 0x6C
REG_FIFO_COUNTH = 0x72
REG_FIFO_COUNTL = 0x73
REG_FIFO_R_W = 0x74
REG_WHO_AM_I = 0x75

FIFO_SIZE = 1024
ACCEL_RANGES_G = (2, 4, 8, 16)
GYRO_RANGES_DPS = (250, 500, 1000, 2000)


def _scale(x, num, den):
    v = x * num
    if v >= 0:
        v = (2 * v + den) // (2 * den)
    else:
        v = -((-2 * v + den) // (2 * den))
    return -32768 if v < -32768 else 32767 if v > 32767 else v


class MPU6886:
    def __init__(self, recording=None, samplerate=100, axes=3, accel_range_g=2, gyro_range_dps=250, loop=False,
                 addr=ADDR, who_am_i=0x19, temperature_c=25.0):
        """recording: array('h') of interleaved rows, `axes` = 3 (ax ay az) or 6 (ax ay az gx gy gz), in counts
        at accel_range_g / gyro_range_dps, sampled at `samplerate` Hz. None: the device lies still (1 g on z)."""
        if axes not in (3, 6):
            raise ValueError("axes must be 3 (accelerometer) or 6 (accelerometer + gyroscope)")
        if recording is None:
            recording = array.array("h", (0, 0, 32768 // accel_range_g - 1))
            axes = 3
        if len(recording) % axes or not len(recording):
            raise ValueError("recording length must be a positive multiple of axes")
        self.addr = addr
        self.recording = recording
        self.axes = axes
        self.rows = len(recording) // axes
        self.samplerate = samplerate
        self.rec_accel_range = accel_range_g
        self.rec_gyro_range = gyro_range_dps
        self.loop = loop
        self.who_am_i = who_am_i
        self.temperature_c = temperature_c
        self.nack = False
        self.pointer = 0
        self.samples_generated = 0
        self._temp_c = None
        self._temp_raw = 0
        self._now = 0
        self._fifo = bytearray(FIFO_SIZE)
        self._packet = bytearray(14)
        self._regs = bytearray(128)
        self._reset()

    # --- state -------------------------------------------------------------------------------------------
    def _reset(self):
        regs = self._regs
        for i in range(len(regs)):
            regs[i] = 0
        regs[REG_PWR_MGMT_1] = 0x40  # asleep after reset
        regs[REG_WHO_AM_I] = self.who_am_i
        self._fifo_head = 0
        self._fifo_count = 0
        self._last_pop = 0
        self._t_start = None  # virtual time of the first wake-up: the recording's time origin
        self._t_rate = self._now
        self._k = 0

    def _awake(self):
        return not self._regs[REG_PWR_MGMT_1] & 0x40

    def period_us(self):
        regs = self._regs
        dlpf = regs[REG_CONFIG] & 7
        if regs[REG_GYRO_CONFIG] & 3 == 0 and 0 < dlpf < 7:
            return 1000 * (1 + regs[REG_SMPLRT_DIV])
        return 125

    def accel_range_g(self):
        return ACCEL_RANGES_G[(self._regs[REG_ACCEL_CONFIG] >> 3) & 3]

    def gyro_range_dps(self):
        return GYRO_RANGES_DPS[(self._regs[REG_GYRO_CONFIG] >> 3) & 3]

    def fifo_bytes(self):
        return self._fifo_count

    def register(self, reg):
        return self._regs[reg]

    def force_overflow(self):
        """As if data had been lost: the oldest FIFO byte is dropped (the packets lose alignment) and
        FIFO_OFLOW_INT is set."""
        if self._fifo_count:
            self._fifo_head = (self._fifo_head + 1) % FIFO_SIZE
            self._fifo_count -= 1
        self._regs[REG_INT_STATUS] |= 0x10

    # --- time --------------------------------------------------------------------------------------------
    def advance(self, now_us):
        if now_us < self._now:
            return
        if not self._awake():
            self._now = now_us
            self._t_rate = now_us
            self._k = 0
            return
        period = self.period_us()
        while self._t_rate + (self._k + 1) * period <= now_us:
            self._k += 1
            self._sample(self._t_rate + self._k * period)
        self._now = now_us

    def _rebase(self):
        # Settings change at the current time: later samples follow the new rate from now on.
        self._t_rate = self._now
        self._k = 0

    def _row(self, t):
        index = (t - self._t_start) * self.samplerate // 1000000 - 1
        if index < 0:
            index = 0
        if index >= self.rows:
            index = index % self.rows if self.loop else self.rows - 1
        return index * self.axes

    def _sample(self, t):
        regs = self._regs
        rec = self.recording
        i = self._row(t)
        a_num, a_den = self.rec_accel_range, self.accel_range_g()
        for axis in range(3):
            v = _scale(rec[i + axis], a_num, a_den) & 0xFFFF
            regs[REG_ACCEL_XOUT_H + 2 * axis] = v >> 8
            regs[REG_ACCEL_XOUT_H + 2 * axis + 1] = v & 0xFF
        g_num, g_den = self.rec_gyro_range, self.gyro_range_dps()
        for axis in range(3):
            v = _scale(rec[i + 3 + axis], g_num, g_den) & 0xFFFF if self.axes == 6 else 0
            regs[REG_GYRO_XOUT_H + 2 * axis] = v >> 8
            regs[REG_GYRO_XOUT_H + 2 * axis + 1] = v & 0xFF
        if self.temperature_c != self._temp_c:  # cached: sampling allocates nothing
            self._temp_c = self.temperature_c
            self._temp_raw = int(round((self.temperature_c - 25.0) * 326.8)) & 0xFFFF
        temp = self._temp_raw
        regs[REG_TEMP_OUT_H] = temp >> 8
        regs[REG_TEMP_OUT_H + 1] = temp & 0xFF
        regs[REG_INT_STATUS] |= 0x01  # DATA_RDY_INT
        self.samples_generated += 1
        if regs[REG_USER_CTRL] & 0x40:
            self._push_packet()

    def _push_packet(self):
        regs = self._regs
        en = regs[REG_FIFO_EN]
        n = 0
        p = self._packet
        if en & 0x08:
            for j in range(6):
                p[n] = regs[REG_ACCEL_XOUT_H + j]
                n += 1
        if en & 0x18:
            p[n] = regs[REG_TEMP_OUT_H]
            p[n + 1] = regs[REG_TEMP_OUT_H + 1]
            n += 2
        if en & 0x10:
            for j in range(6):
                p[n] = regs[REG_GYRO_XOUT_H + j]
                n += 1
        if not n:
            return
        if self._fifo_count + n > FIFO_SIZE:
            regs[REG_INT_STATUS] |= 0x10  # FIFO_OFLOW_INT
            if regs[REG_CONFIG] & 0x40:  # FIFO_MODE = 1: further writes are not written
                return
            drop = self._fifo_count + n - FIFO_SIZE
            self._fifo_head = (self._fifo_head + drop) % FIFO_SIZE
            self._fifo_count -= drop
        tail = (self._fifo_head + self._fifo_count) % FIFO_SIZE
        for j in range(n):
            self._fifo[(tail + j) % FIFO_SIZE] = p[j]
        self._fifo_count += n

    # --- bus ---------------------------------------------------------------------------------------------
    def _read_reg(self, reg):
        regs = self._regs
        if reg == REG_FIFO_R_W:
            if self._fifo_count:
                self._last_pop = self._fifo[self._fifo_head]
                self._fifo_head = (self._fifo_head + 1) % FIFO_SIZE
                self._fifo_count -= 1
            return self._last_pop
        if reg == REG_FIFO_COUNTH:
            return (self._fifo_count >> 8) & 0x1F
        if reg == REG_FIFO_COUNTL:
            return self._fifo_count & 0xFF
        if reg == REG_INT_STATUS:
            value = regs[reg]
            regs[reg] = 0
            return value
        if reg == REG_WHO_AM_I:
            return self.who_am_i
        return regs[reg & 0x7F]

    def read_into(self, reg, buf):
        """Burst read: consecutive registers, except FIFO_R_W which streams the FIFO."""
        for i in range(len(buf)):
            buf[i] = self._read_reg(reg)
            if reg != REG_FIFO_R_W:
                reg += 1

    def read(self, reg, n):
        buf = bytearray(n)
        self.read_into(reg, buf)
        return buf

    def write(self, reg, data):
        for i in range(len(data)):
            self._write_reg(reg, data[i])
            if reg != REG_FIFO_R_W:
                reg += 1

    def _write_reg(self, reg, value):
        regs = self._regs
        if reg == REG_PWR_MGMT_1:
            if value & 0x80:
                self._reset()
                return
            was_awake = self._awake()
            regs[reg] = value
            if self._awake() and not was_awake:
                if self._t_start is None:
                    self._t_start = self._now
                self._rebase()
            return
        if reg == REG_USER_CTRL:
            if value & 0x04:  # FIFO_RST (self-clearing)
                self._fifo_head = 0
                self._fifo_count = 0
            regs[reg] = value & ~0x04
            return
        if reg in (REG_WHO_AM_I, REG_INT_STATUS, REG_FIFO_COUNTH, REG_FIFO_COUNTL):
            return  # read-only
        if reg == REG_FIFO_R_W:
            return
        if reg in (REG_SMPLRT_DIV, REG_CONFIG, REG_GYRO_CONFIG) and regs[reg] != value:
            regs[reg] = value
            self._rebase()
            return
        regs[reg & 0x7F] = value
