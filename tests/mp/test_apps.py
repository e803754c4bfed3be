# The app processing cores (firmware/apps) in the host firmware: message timing and content, chunking
# independence, the sensor drivers feeding them through the simulator, and no allocation without a message.
import sys

sys.path.insert(0, "ports/host/sim")

import array
import math

import machine
import sim_mpu6886
from apps.har import HarApp, model_capacity
from apps.soundlevel import SoundLevelApp
from drivers.mpu6886 import MPU6886
from mptest import heap_allocated_during, raises

FS = 16000


def tone(freq, n, amplitude, fs=FS):
    return array.array("h", [int(round(amplitude * math.sin(2 * math.pi * freq * i / fs))) for i in range(n)])


def spl(amplitude, sensitivity=-26.0):
    return 94.0 + 20 * math.log10(amplitude / 32768) - sensitivity


def feed(app, x, sizes):
    mv = memoryview(x)
    out = []
    pos = 0
    k = 0
    while pos < len(x):
        size = sizes[k % len(sizes)]
        out.extend(app.process(mv[pos:pos + size]))
        pos += size
        k += 1
    return out


def test_soundlevel_messages_per_interval():
    x = tone(1000, FS, 1000.0)
    app = SoundLevelApp({"soundlevel": {"samplerate": FS, "interval_s": 0.25, "mic_sensitivity_dbfs": -30.0}})
    msgs = feed(app, x, (300, 1, 1699, 4000))
    assert [m["t"] for m in msgs] == [250, 500, 750, 1000]
    for m in msgs:
        assert sorted(m) == ["laeq", "lafmax", "lafmin", "t"]
        assert abs(m["laeq"] - spl(1000.0, -30.0)) < 0.1, m
    for m in msgs[2:]:
        for key in ("lafmax", "lafmin"):
            assert abs(m[key] - spl(1000.0, -30.0)) < 0.1, (key, m)
    # Lmin waits 5 Fast time constants (625 ms) after the start; Lmax sees the Fast level still rising.
    assert msgs[0]["lafmin"] is None and msgs[1]["lafmin"] is None
    assert msgs[0]["lafmax"] < msgs[0]["laeq"] - 0.3


def test_soundlevel_chunking_does_not_change_messages():
    x = tone(440, 12000, 5000.0)
    cfg = {"samplerate": FS, "interval_s": 0.1, "weighting": "C"}
    a = feed(SoundLevelApp(cfg), x, (12000,))
    b = feed(SoundLevelApp(cfg), x, (7, 1600, 333, 1))
    assert len(a) == len(b) == 7
    for ma, mb in zip(a, b):
        assert ma["t"] == mb["t"]
        for key in ("laeq", "lafmax", "lafmin"):
            if ma[key] is None or mb[key] is None:
                assert ma[key] is None and mb[key] is None, (key, ma, mb)
            else:
                assert abs(ma[key] - mb[key]) < 1e-3, (key, ma, mb)


def test_soundlevel_process_allocates_nothing_between_messages():
    app = SoundLevelApp({"samplerate": FS, "interval_s": 3600})
    chunk = tone(1000, 512, 2000.0)
    assert heap_allocated_during(lambda: app.process(chunk), 200) == 0


# A one-node tree on the first feature (x_mean): x_mean < 0 -> "down", else "up".
CSV = "f,%d\nc,2\nlb,0\nr,0\nn,0,0,-1,-2\nl,0\nl,1\n"
N_FEATURES_3AXES = 4 * 17  # x, y, z, mag channels x 17 features


def har_config(**kw):
    cfg = {"window": 20, "hop": 5, "samplerate": 100, "classes": ["down", "up"]}
    cfg.update(kw)
    return cfg


def test_har_windows_hops_and_classes():
    app = HarApp({"har": har_config()}, CSV % N_FEATURES_3AXES)
    x = array.array("h", bytes(2 * 3 * 60))
    for i in range(60):
        x[3 * i] = -500 if i < 30 else 700  # x-axis mean flips sign
        x[3 * i + 2] = 1000
    msgs = []
    for start in range(0, 60, 7):
        n = min(7, 60 - start)
        msgs.extend(app.process(memoryview(x)[3 * start:3 * (start + n)]))
    assert [m["t"] for m in msgs] == [200, 250, 300, 350, 400, 450, 500, 550, 600]
    # A window's x_mean is negative while most of its 20 samples are before sample 30.
    expected = []
    for end in range(20, 61, 5):
        mean = sum(x[3 * i] for i in range(end - 20, end)) / 20
        expected.append("down" if mean < 0 else "up")
    assert [m["class"] for m in msgs] == expected
    assert all(m["confidence"] == 1.0 for m in msgs)


def test_har_rejects_a_mismatched_model():
    with raises(ValueError, "features"):
        HarApp(har_config(), CSV % 5)
    with raises(ValueError, "classes"):
        HarApp(har_config(classes=["a", "b", "c"]), CSV % N_FEATURES_3AXES)
    assert model_capacity(CSV % 7) == (1, 1, 2, 7, 2)


def test_har_process_allocates_nothing_between_windows():
    app = HarApp(har_config(window=400, hop=400), CSV % N_FEATURES_3AXES)
    chunk = array.array("h", range(30))
    app.process(array.array("h", bytes(2 * 3 * 400)))  # the first window
    assert app.windows == 1
    assert heap_allocated_during(lambda: app.process(chunk), 12) == 0  # 130 samples: no window completes
    assert app.windows == 1


def test_har_fed_by_the_mpu6886_fifo():
    # Recording -> simulated MPU6886 -> driver FIFO bursts -> app: the same messages as feeding the recording.
    rows = 300
    rec = array.array("h", bytes(2 * 3 * rows))
    for i in range(rows):
        rec[3 * i] = int(3000 * math.sin(i / 15))
        rec[3 * i + 1] = (i * 13) % 200
        rec[3 * i + 2] = 16000
    direct = HarApp(har_config(window=50, hop=10), CSV % N_FEATURES_3AXES).process(rec)
    machine.sim_reset()
    machine.sim_attach_i2c(0, sim_mpu6886.MPU6886(rec, samplerate=100))
    imu = MPU6886(machine.I2C(0), odr_hz=100, clock=machine.sim_ticks_us)
    imu.fifo_start()
    app = HarApp(har_config(window=50, hop=10), CSV % N_FEATURES_3AXES)
    msgs = []
    for _ in range(10):
        machine.sim_advance_ms(300)
        msgs.extend(app.process(imu.fifo_buf, imu.read_fifo()))
    assert imu.overflows == 0 and len(direct) == 26
    assert msgs[:26] == direct


# Accelerometer + gyroscope: features of each sensor side by side (68 + 68); this tree splits on the gyroscope's
# x_mean (feature 68): < 0 -> "down", else "up".
CSV_GYRO = "f,%d\nc,2\nlb,0\nr,0\nn,%d,0,-1,-2\nl,0\nl,1\n"
N_FEATURES_TWO_SENSORS = 2 * N_FEATURES_3AXES


def two_sensor_recording(rows):
    """accel x y z, gyro x y z per row; the gyroscope's x flips sign at row 100, the accelerometer's never."""
    rec = array.array("h", bytes(2 * 6 * rows))
    for i in range(rows):
        rec[6 * i] = int(3000 * math.sin(i / 15))
        rec[6 * i + 1] = (i * 13) % 200
        rec[6 * i + 2] = 4096
        rec[6 * i + 3] = -800 + (i % 7) if i < 100 else 900 - (i % 5)
        rec[6 * i + 4] = (i * 7) % 300 - 150
        rec[6 * i + 5] = 20
    return rec


def test_har_accel_and_gyro_windows_use_each_sensor():
    cfg = har_config(window=40, hop=10, sensors=["accel", "gyro"])
    app = HarApp(cfg, CSV_GYRO % (N_FEATURES_TWO_SENSORS, N_FEATURES_3AXES))
    assert app.channels == 6
    rec = two_sensor_recording(200)
    msgs = []
    for start in range(0, 200, 13):  # chunks that do not line up with the hop
        n = min(13, 200 - start)
        msgs.extend(app.process(memoryview(rec)[6 * start:6 * (start + n)]))
    expected = []
    for end in range(40, 201, 10):
        mean = sum(rec[6 * i + 3] for i in range(end - 40, end)) / 40
        expected.append("down" if mean < 0 else "up")
    assert [m["class"] for m in msgs] == expected
    assert "down" in expected and "up" in expected
    # the accelerometer features alone would not split the windows this way: the model really reads the gyroscope
    accel_only = HarApp(har_config(window=40, hop=10), CSV % N_FEATURES_3AXES).process(
        array.array("h", [rec[6 * i + a] for i in range(200) for a in range(3)]))
    assert [m["class"] for m in accel_only] != expected


def test_har_two_sensors_reject_mismatches():
    model = CSV % N_FEATURES_TWO_SENSORS
    with raises(ValueError, "features"):
        HarApp(har_config(), model)  # accelerometer only: 68 features, the model takes 136
    with raises(ValueError, "sensors"):
        HarApp(har_config(sensors=["gyro"]), model)
    with raises(ValueError, "axes"):
        HarApp(har_config(sensors=["accel", "gyro"], axes=4), model)
    app = HarApp(har_config(sensors=["accel", "gyro"], axes=1), CSV % (2 * 11 + 2 * 6))  # x only: no magnitude
    assert app.channels == 6


def test_har_two_sensors_allocate_nothing_between_windows():
    app = HarApp(har_config(window=400, hop=400, sensors=["accel", "gyro"]), CSV % N_FEATURES_TWO_SENSORS)
    app.process(array.array("h", bytes(2 * 6 * 400)))  # the first window
    assert app.windows == 1
    chunk = array.array("h", range(60))
    assert heap_allocated_during(lambda: app.process(chunk), 12) == 0  # 120 samples: no window completes
    assert app.windows == 1


def test_har_accel_and_gyro_fed_by_the_mpu6886_fifo():
    # 6-axis recording -> simulated MPU6886 (gyroscope in the FIFO, +-8 g / +-2000 dps) -> driver -> app: the same
    # messages as feeding the recording directly.
    rows = 300
    rec = two_sensor_recording(rows)
    model = CSV_GYRO % (N_FEATURES_TWO_SENSORS, N_FEATURES_3AXES)
    cfg = har_config(window=50, hop=10, sensors=["accel", "gyro"], accel_range_g=8, gyro_range_dps=2000)
    direct = HarApp(cfg, model).process(rec)
    machine.sim_reset()
    machine.sim_attach_i2c(0, sim_mpu6886.MPU6886(rec, samplerate=100, axes=6, accel_range_g=8,
                                                  gyro_range_dps=2000))
    app = HarApp(cfg, model)
    imu = MPU6886(machine.I2C(0), odr_hz=100, gyro=True, accel_range_g=app.accel_range_g,
                  gyro_range_dps=app.gyro_range_dps, clock=machine.sim_ticks_us)
    assert imu.channels == app.channels == 6
    imu.fifo_start()
    msgs = []
    for _ in range(10):
        machine.sim_advance_ms(300)
        msgs.extend(app.process(imu.fifo_buf, imu.read_fifo()))
    assert imu.overflows == 0 and len(direct) == 26
    assert msgs[:26] == direct
    assert {m["class"] for m in direct} == {"down", "up"}
