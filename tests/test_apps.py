"""The app cores (firmware/apps) in the host firmware, fed through the simulated hardware and drivers, against
independent references: the sound level app on a generated WAV vs. NumPy/SciPy A-weighting; the HAR app on real
recordings vs. scikit-learn's predictions on the same windows."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import sosfilt

from tinysense import datasets, host, trees
from tinysense.datasets import read_npy_partial
from tinysense.dsp import a_weighting_sos
from tinysense.features import extract_on_host
from tinysense.paths import REPO
from tinysense.training import FeatureSpec, window_features

PATH = [REPO / "ports" / "host" / "sim", REPO / "firmware"]
HAR_DATA = REPO.parent / "shared" / "data" / "har_exercise_1" / "data"
FS = 16000
SENSITIVITY = -26.0


def run_script(tmp_path: Path, source: str, *args: str) -> list[str]:
    script = tmp_path / "script.py"
    script.write_text(source)
    proc = host.run([str(script), *args], path=PATH)
    err = proc.stderr.decode(errors="replace")
    assert host.sanitizer_report(err) is None
    assert proc.returncode == 0, err + proc.stdout.decode(errors="replace")
    return proc.stdout.decode().splitlines()


SOUNDLEVEL_SCRIPT = """\
import sys
import machine
from drivers.i2s_mic import I2SMic
from apps.soundlevel import SoundLevelApp
wav, seconds = sys.argv[1], int(sys.argv[2])
machine.sim_attach_i2s(0, wav)
pins = {"I2S_MIC": {"id": 0, "sck": 41, "ws": 42, "sd": 2, "rate": 16000, "bits": 32}}  # boards/s3-eye
mic = I2SMic(pins, chunk=1024, n_chunks=8, dc_cutoff_hz=10.0)
app = SoundLevelApp({"samplerate": 16000, "weighting": "A", "interval_s": 1.0, "mic_sensitivity_dbfs": -26.0})
mic.start()
for _ in range(seconds * 1000 // 32 + 4):
    machine.sim_advance_ms(32)
    while True:
        chunk = mic.read()
        if chunk is None:
            break
        for m in app.process(chunk):
            print(m["t"], m["laeq"], m["lafmax"], m["lafmin"])
print("overruns", mic.overruns)
"""


def write_wav(path: Path, x: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.astype("<i2").tobytes())


@pytest.mark.parametrize("dbfs", [-20.0, -45.0])
def test_soundlevel_app_matches_a_weighted_reference(tmp_path: Path, dbfs: float) -> None:
    seconds = 4
    t = np.arange(seconds * FS + FS // 2) / FS  # half a second more: the last interval's chunks are whole
    amplitude = 32768 * 10 ** (dbfs / 20)  # AES17: a sine of peak A reads 20 log10(A / 32768) dBFS
    x = np.round(amplitude * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    wav = tmp_path / "tone.wav"
    write_wav(wav, x, FS)
    lines = run_script(tmp_path, SOUNDLEVEL_SCRIPT, str(wav), str(seconds))
    assert lines[-1] == "overruns 0"
    rows = [line.split() for line in lines[:-1]]
    assert [int(r[0]) for r in rows] == [1000 * (i + 1) for i in range(seconds)]
    weighted = sosfilt(a_weighting_sos(FS), x.astype(np.float64))
    for i, row in enumerate(rows):
        ms = np.mean(weighted[i * FS:(i + 1) * FS] ** 2)
        reference = 94 + 10 * np.log10(2 * ms / 32768**2) - SENSITIVITY
        assert abs(float(row[1]) - reference) < 0.1, (i, row, reference)
        if i >= 1:  # a steady tone: Fast max/min equal the Leq once settled
            assert abs(float(row[2]) - reference) < 0.1
            assert abs(float(row[3]) - reference) < 0.1
    assert abs(reference - (94 + dbfs - SENSITIVITY)) < 0.1  # the A-weighting is 0 dB at 1 kHz


HAR_SCRIPT = """\
import sys, array
from apps.har import HarApp
model_path, data_path, window, hop, classes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
with open(model_path, "rb") as f:
    model = f.read()
app = HarApp({"har": {"window": window, "hop": hop, "samplerate": 100, "classes": classes.split(",")}}, model)
with open(data_path, "rb") as f:
    data = f.read()
lengths = [int(v) for v in sys.argv[6:]]
x = array.array("h", data)
pos = 0
for n in lengths:  # one recording after another, each through a fresh app, in uneven FIFO-like chunks
    app = HarApp({"har": {"window": window, "hop": hop, "samplerate": 100, "classes": classes.split(",")}}, model)
    mv = memoryview(x)
    end = pos + 3 * n
    sizes = (37, 5, 120, 1)
    k = 0
    while pos < end:
        step = min(3 * sizes[k % 4], end - pos)
        for m in app.process(mv[pos:pos + step]):
            print(m["class"], m["confidence"], m["t"])
        pos += step
        k += 1
    print("end")
"""


def har_recordings(per_class: int) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {}
    for path in sorted(HAR_DATA.glob("*.npy")):
        label = path.stem.rsplit("_", 1)[-1]
        data, _problem = read_npy_partial(path)
        if data is None or data.ndim != 2 or data.shape[1] != 3 or len(data) < 300:
            continue
        if len(out.setdefault(label, [])) < per_class:
            out[label].append(np.asarray(data, dtype=np.int16))
    return out


def windows_of(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    starts = range(0, len(x) - length + 1, hop)
    return np.stack([x[s:s + length] for s in starts])


@pytest.mark.skipif(not HAR_DATA.is_dir(), reason="har_exercise_1 recordings are not available")
def test_har_app_predicts_what_scikit_learn_predicts(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    length, hop = 100, 25
    recordings = har_recordings(per_class=4)
    classes = sorted(recordings)
    assert len(classes) >= 2
    train = [(x, c) for c in classes for x in recordings[c][:3]]
    test = [x for c in classes for x in recordings[c][3:]]
    assert test
    xw = [windows_of(x, length, hop) for x, _ in train]
    X_train = extract_on_host(np.concatenate(xw), samplerate=100)
    y_train = np.concatenate([np.full(len(w), c) for w, (_, c) in zip(xw, train, strict=True)])
    rf = RandomForestClassifier(n_estimators=8, max_depth=8, random_state=0).fit(X_train, y_train)
    assert list(rf.classes_) == classes
    model = trees.convert(rf, X_train, leaves="proba")
    (tmp_path / "model.bin").write_bytes(model)
    (tmp_path / "data.bin").write_bytes(np.concatenate(test).astype("<i2").tobytes())
    lines = run_script(tmp_path, HAR_SCRIPT, str(tmp_path / "model.bin"), str(tmp_path / "data.bin"), str(length),
                       str(hop), ",".join(classes), *[str(len(x)) for x in test])
    per_file: list[list[list[str]]] = [[]]
    for line in lines:
        if line == "end":
            per_file.append([])
        else:
            per_file[-1].append(line.split())
    assert per_file[-1] == []
    total = 0
    for x, got in zip(test, per_file[:-1], strict=True):
        X = extract_on_host(windows_of(x, length, hop), samplerate=100)
        expected = rf.predict(X)
        proba = rf.predict_proba(X).max(axis=1)
        assert [g[0] for g in got] == list(expected)
        np.testing.assert_allclose([float(g[1]) for g in got], proba, atol=1e-5)
        assert [int(g[2]) for g in got] == [(length + hop * i) * 10 for i in range(len(expected))]
        total += len(expected)
    assert total >= 50


HAR_IMU_SCRIPT = """\
import sys, array
import machine, sim_mpu6886
from drivers.mpu6886 import MPU6886
from apps.har import HarApp
model_path, data_path, classes = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
with open(model_path, "rb") as f:
    model = f.read()
with open(data_path, "rb") as f:
    data = f.read()
cfg = {"window": 50, "hop": 10, "samplerate": 10, "classes": classes, "sensors": ["accel", "gyro"],
       "accel_range_g": 8, "gyro_range_dps": 2000}
pos = 0
for n in [int(v) for v in sys.argv[4:]]:  # each recording: a fresh device (simulated MPU6886 serving it, driver, app)
    rec = array.array("h", data[pos:pos + 12 * n])
    pos += 12 * n
    machine.sim_reset()
    machine.sim_attach_i2c(0, sim_mpu6886.MPU6886(rec, samplerate=10, axes=6, accel_range_g=8, gyro_range_dps=2000))
    app = HarApp(cfg, model)
    imu = MPU6886(machine.I2C(0), odr_hz=app.samplerate, gyro=True, accel_range_g=app.accel_range_g,
                  gyro_range_dps=app.gyro_range_dps, clock=machine.sim_ticks_us)
    imu.fifo_start()
    while app.samples < n:
        machine.sim_advance_ms(700)
        k = min(imu.read_fifo(), n - app.samples)  # the recording's end: no windows of held samples
        for m in app.process(imu.fifo_buf, k):
            print(m["class"], m["confidence"], m["t"])
    print("end", imu.overflows, imu.channels)
"""


def test_har_app_on_accelerometer_and_gyroscope_fifo_data(tmp_path: Path) -> None:
    # BasicMotions as MPU6886 counts (accelerometer + gyroscope) -> simulated IMU FIFO -> driver -> HarApp: the
    # classes and confidences of scikit-learn on the features of both sensors of the same windows.
    from sklearn.ensemble import RandomForestClassifier

    recordings, labels, split = datasets.basic_motions_counts()
    spec = FeatureSpec("c", 10.0, 50, 10, [[0, 1, 2], [3, 4, 5]], [f"c{i}" for i in range(6)], True)
    train = [i for i in range(len(labels)) if split[i] == "train"]
    test = [i for i in range(len(labels)) if split[i] == "test"][1::5]
    xw = [windows_of(recordings[i], spec.window, spec.hop) for i in train]
    X_train = window_features(np.concatenate(xw), spec)
    y_train = np.concatenate([np.full(len(w), labels[i]) for w, i in zip(xw, train, strict=True)])
    rf = RandomForestClassifier(n_estimators=5, max_leaf_nodes=16, random_state=0).fit(X_train, y_train)
    (tmp_path / "model.bin").write_bytes(trees.convert(rf, X_train, leaves="proba"))
    (tmp_path / "data.bin").write_bytes(np.concatenate([recordings[i] for i in test]).astype("<i2").tobytes())
    lines = run_script(tmp_path, HAR_IMU_SCRIPT, str(tmp_path / "model.bin"), str(tmp_path / "data.bin"),
                       ",".join(rf.classes_), *[str(len(recordings[i])) for i in test])
    per_file: list[list[list[str]]] = [[]]
    for line in lines:
        if line.startswith("end"):
            assert line == "end 0 6"  # no FIFO overflow; 6 values per sample
            per_file.append([])
        else:
            per_file[-1].append(line.split())
    assert per_file[-1] == []
    for i, got in zip(test, per_file[:-1], strict=True):
        X = window_features(windows_of(recordings[i], spec.window, spec.hop), spec)
        assert [g[0] for g in got] == list(rf.predict(X))
        np.testing.assert_allclose([float(g[1]) for g in got], rf.predict_proba(X).max(axis=1), atol=1e-5)
        assert [int(g[2]) for g in got] == [(50 + 10 * k) * 100 for k in range(len(got))]
    assert sum(len(g) for g in per_file) == 6 * len(test)
    assert len({g[0] for f in per_file for g in f}) >= 3  # the windows span several activities
