# The MPU6886 driver (firmware/drivers/mpu6886.py) against the simulated chip (ports/host/sim/sim_mpu6886.py):
# identity and bus errors, range/ODR registers, FIFO bursts equal to the recording, overflow, timestamps,
# no allocation per FIFO read. Virtual time only: machine.sim_advance_ms() moves the simulated clock.
import sys

sys.path.insert(0, "ports/host/sim")

import array

import machine
import sim_mpu6886
from drivers.mpu6886 import MPU6886, MPU6886Error
from mptest import heap_allocated_during, raises

PINS = {"I2C": {"id": 0, "scl": 39, "sda": 38, "freq": 400_000}, "IMU": {"addr": 0x68}}  # boards/atoms3


def recording(rows, axes=3, seed=12345):
    # Deterministic pseudo-random int16 rows (LCG), distinct enough to catch reordering or skips.
    out = array.array("h", bytes(2 * rows * axes))
    x = seed
    for i in range(rows * axes):
        x = (1103515245 * x + 12345) & 0x7FFFFFFF
        out[i] = (x >> 8) % 16001 - 8000
    return out


def setup(rec=None, **kwargs):
    machine.sim_reset()
    dev = sim_mpu6886.MPU6886(rec, **kwargs)
    machine.sim_attach_i2c(0, dev)
    return dev


def imu_for(**kwargs):
    return MPU6886.from_pins(PINS, clock=machine.sim_ticks_us, **kwargs)


def test_whoami_and_wrong_chip():
    dev = setup()
    imu = imu_for()
    assert imu.whoami == 0x19
    setup().who_am_i = 0x70
    with raises(MPU6886Error, "WHO_AM_I") as e:
        imu_for()
    assert "0x70" in str(e.value) and "0x19" in str(e.value), str(e.value)
    assert dev is not None


def test_no_ack_is_a_clear_error():
    dev = setup()
    dev.nack = True
    with raises(OSError, "no ACK at I2C address 0x68"):
        imu_for()
    bus = machine.I2C(0, scl=machine.Pin(39), sda=machine.Pin(38))
    assert bus.scan() == []
    try:
        bus.readfrom_mem(0x68, 0x75, 1)
        raise AssertionError("no error without ACK")
    except OSError as e:
        assert e.errno == 19 and "ENODEV" in str(e), str(e)
    dev.nack = False
    assert bus.scan() == [0x68]
    with raises(OSError, "no ACK at I2C address 0x69"):
        MPU6886(bus, 0x69, clock=machine.sim_ticks_us)  # nothing at that address


def test_range_and_odr_writes_reach_the_registers():
    dev = setup()
    imu = imu_for(accel_range_g=8, gyro_range_dps=1000, odr_hz=50)
    assert (dev.register(0x1C) >> 3) & 3 == 2 and dev.accel_range_g() == 8
    assert (dev.register(0x1B) >> 3) & 3 == 2 and dev.gyro_range_dps() == 1000
    assert dev.register(0x1B) & 3 == 0  # FCHOICE_B = 0: the divider applies
    assert 0 < dev.register(0x1A) & 7 < 7 and dev.register(0x1A) & 0x40  # DLPF on, FIFO_MODE stop-when-full
    assert dev.register(0x19) == 19 and dev.period_us() == 20000 and imu.period_us == 20000
    for hz, div in ((1000, 0), (100, 9), (4, 249)):
        assert imu.set_odr(hz) == 1000 / (1 + div)
        assert dev.register(0x19) == div and dev.period_us() == 1000 * (1 + div)
    imu.set_accel_range(16)
    imu.set_gyro_range(250)
    assert dev.accel_range_g() == 16 and dev.gyro_range_dps() == 250
    with raises(ValueError, "accel range"):
        imu.set_accel_range(3)
    with raises(ValueError, "gyro range"):
        imu.set_gyro_range(300)
    with raises(ValueError, "odr_hz"):
        imu.set_odr(2000)
    assert dev.register(0x6B) & 0x40 == 0  # awake


def collect(imu, steps_ms):
    channels = imu.channels
    got = []
    for ms in steps_ms:
        machine.sim_advance_ms(ms)
        n = imu.read_fifo()
        got.extend(imu.fifo_buf[:n * channels])
        assert not imu.overflowed
    return got


def test_fifo_burst_returns_the_recording_in_order():
    rec = recording(400)
    setup(rec, samplerate=100)
    imu = imu_for(odr_hz=100)
    imu.fifo_start()
    got = collect(imu, (30, 70, 10, 0, 250, 1, 9, 500))  # 870 ms: 87 samples
    assert len(got) == 87 * 3
    assert got == list(rec[:87 * 3])
    assert imu.samples_read == 87


def test_fifo_samples_are_scaled_per_range():
    rec = recording(200)
    rec[0], rec[1], rec[2] = 10000, -10000, 3  # saturate at +-2 g, round half away from zero
    setup(rec, samplerate=100, accel_range_g=8)
    imu = imu_for(odr_hz=100, accel_range_g=2)
    imu.fifo_start()
    got = collect(imu, (200, 300))
    assert len(got) == 50 * 3
    expected = [max(-32768, min(32767, 4 * v)) for v in rec[:150]]
    assert got == expected
    assert got[0] == 32767 and got[1] == -32768 and got[2] == 12
    imu.set_accel_range(16)  # resets the FIFO: no mixed scales
    got = collect(imu, (300,))
    start = 50 * 3  # samples keep their place in the recording
    ref = [(abs(v) + 1) // 2 * (1 if v >= 0 else -1) for v in rec[start:start + 90]]
    assert got == ref, (got[:6], ref[:6])


def test_gyro_in_the_fifo():
    rec = recording(100, axes=6)
    setup(rec, samplerate=100, axes=6)
    imu = imu_for(odr_hz=100, gyro=True)
    assert imu.packet == 14 and imu.channels == 6
    imu.fifo_start()
    got = collect(imu, (120, 200))
    assert got == list(rec[:32 * 6])


def test_odr_below_the_recording_rate_decimates():
    rec = recording(300)
    setup(rec, samplerate=100)
    imu = imu_for(odr_hz=50)
    imu.fifo_start()
    got = collect(imu, (400,))  # 20 samples at 50 Hz, every other recording row
    assert len(got) == 60
    for k in range(20):
        row = 2 * k + 1  # sample k+1 falls at (k+1) * 20 ms: row (k+1) * 2 - 1
        assert got[3 * k:3 * k + 3] == list(rec[3 * row:3 * row + 3]), k


def test_overflow_is_detected_and_reported():
    rec = recording(400)
    dev = setup(rec, samplerate=100)
    imu = imu_for(odr_hz=100)
    imu.fifo_start()
    machine.sim_advance_ms(2000)  # 200 samples x 8 bytes > 1024
    assert dev.fifo_bytes() == 1024
    n = imu.read_fifo()
    assert n == 128 and imu.overflowed and imu.overflows == 1
    assert list(imu.fifo_buf[:n * 3]) == list(rec[:128 * 3])  # what the FIFO kept is contiguous
    assert imu.fifo_t0_us == 10000
    machine.sim_advance_ms(100)
    n = imu.read_fifo()
    assert n == 10 and not imu.overflowed and imu.overflows == 1
    assert list(imu.fifo_buf[:30]) == list(rec[200 * 3:210 * 3])
    assert imu.fifo_t0_us == 2_010_000  # restarted from the clock: row 200 is sampled at 2.01 s


def test_forced_overflow_resynchronises():
    rec = recording(200)
    dev = setup(rec, samplerate=100)
    imu = imu_for(odr_hz=100)
    imu.fifo_start()
    machine.sim_advance_ms(100)
    dev.force_overflow()  # one byte lost: the packets in the FIFO are misaligned
    imu.read_fifo()
    assert imu.overflowed and imu.overflows == 1 and dev.fifo_bytes() == 0
    got = collect(imu, (50, 50))
    assert got == list(rec[10 * 3:20 * 3])


def test_timestamps_follow_the_odr():
    rec = recording(600)
    setup(rec, samplerate=100)
    imu = imu_for(odr_hz=100)
    machine.sim_advance_ms(3)
    imu.fifo_start()  # at 3 ms; samples fall at 10, 20, ... ms
    t_expected = None
    total = 0
    for ms in (25, 40, 5, 100, 333, 7, 90):
        machine.sim_advance_ms(ms)
        n = imu.read_fifo()
        if n:
            if t_expected is not None:
                assert imu.fifo_t0_us == t_expected, (imu.fifo_t0_us, t_expected)
            last = imu.fifo_t0_us + (n - 1) * imu.period_us
            assert last <= machine.sim_ticks_us() < last + imu.period_us  # the newest sample is the last due
            t_expected = imu.fifo_t0_us + n * imu.period_us
        total += n
    assert total == 60
    assert t_expected == 3000 + 10000 + 60 * 10000  # anchored at the FIFO start: within one period


def test_direct_reads_and_temperature():
    rec = array.array("h", (4096, -8192, 16384, 131, -262, 655))
    dev = setup(rec, samplerate=100, axes=6, accel_range_g=2, gyro_range_dps=250)
    dev.temperature_c = 36.5
    imu = imu_for(odr_hz=100)
    machine.sim_advance_ms(10)
    ax, ay, az = imu.acceleration()
    assert (ax, ay, az) == (0.25, -0.5, 1.0)
    gx, gy, gz = imu.gyroscope()
    assert abs(gx - 131 * 250 / 32768) < 1e-9 and abs(gz - 655 * 250 / 32768) < 1e-9
    assert abs(imu.temperature() - 36.5) < 1 / 326.8


def test_fifo_read_allocates_nothing():
    setup(recording(50), samplerate=100, loop=True)
    imu = imu_for(odr_hz=100, gyro=False)
    imu.fifo_start()

    def step():
        machine.sim_advance_ms(70)
        imu.read_fifo()

    assert heap_allocated_during(step, 100) == 0
    assert imu.samples_read >= 700 and imu.overflows == 0
