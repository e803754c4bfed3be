"""`tinysense simulate`: the device's app code (drivers, app cores, shell) run on recordings in the host firmware,
checked against independent references: the soundlevel app's LAeq on a generated WAV against NumPy/SciPy
A-weighting, the har app's classes on real recordings against scikit-learn's predictions on the same windows, and
the heap use of the steady-state loop (gc.mem_alloc() around sensor read → process)."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.signal import sosfilt

from tinysense import cli, datasets, simulation, trees
from tinysense.datasets import read_npy_partial
from tinysense.dsp import a_weighting_sos
from tinysense.features import extract_on_host
from tinysense.training import FeatureSpec, window_features

HAR_DATA = simulation.REPO.parent / "shared" / "data" / "har_exercise_1" / "data"
STEADY = re.compile(r"steady state: (\d+) of (\d+) loop passes without a message \(sensor read → process\) "
                    r"checked: (\d+) bytes allocated")


def write_wav(path: Path, x: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.astype("<i2").tobytes())


def tone(dbfs: float, seconds: float, rate: int = 16000) -> np.ndarray:
    amplitude = 32768 * 10 ** (dbfs / 20)  # AES17: a sine of peak A reads 20 log10(A / 32768) dBFS
    return np.round(amplitude * np.sin(2 * np.pi * 1000 * np.arange(round(seconds * rate)) / rate)).astype(np.int16)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def steady_state(out: str) -> tuple[int, int]:
    """(loop passes checked, heap bytes they allocated)"""
    found = STEADY.search(out)
    assert found, out
    return int(found.group(1)), int(found.group(3))


def windows_of(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    return np.stack([x[s:s + length] for s in range(0, len(x) - length + 1, hop)])


def write_model(folder: Path, rf: Any, X: np.ndarray, spec: FeatureSpec) -> Path:
    """A model folder as `tinysense train` writes it (model.trees + model.json), from a fitted forest."""
    folder.mkdir()
    (folder / "model.trees").write_bytes(trees.convert(rf, X, leaves="proba"))
    meta = {"classes": [str(c) for c in rf.classes_], "features": spec.to_dict()}
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


def check_har_messages(rows: list[dict[str, str]], recordings: list[tuple[Path, np.ndarray]], rf: Any,
                       spec: FeatureSpec, topic: str, model: bytes | None = None, hop: int | None = None) -> int:
    """The published classes and confidences equal scikit-learn's on the same windows (features of each sensor side
    by side) and, given the converted model, the device model's predictions on them in Python (the host firmware's
    trees, one process, no app); returns the window count."""
    total = 0
    hop = hop or spec.hop
    for path, x in recordings:
        got = [json.loads(r["payload"]) for r in rows if r["recording"] == path.name]
        assert all(r["topic"] == topic for r in rows if r["recording"] == path.name)
        X = window_features(windows_of(x, spec.window, hop), spec)
        expected = rf.predict(X)
        assert [m["class"] for m in got] == list(expected), path.name
        if model is not None:
            assert [m["class"] for m in got] == [rf.classes_[k] for k in trees.predict_on_host(model, X)], path.name
        np.testing.assert_allclose([m["confidence"] for m in got], rf.predict_proba(X).max(axis=1), atol=1e-5)
        period_ms = 1000 / spec.samplerate
        assert [m["t"] for m in got] == [round((spec.window + hop * i) * period_ms) for i in range(len(got))]
        assert [m["n"] for m in got] == list(range(len(got)))
        total += len(got)
    return total


def test_imu_predictions_per_window(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(400) / 50.0
    folder = tmp_path / "rec"
    folder.mkdir()
    for i in range(8):
        label, freq = ("slow", 0.5) if i % 2 else ("fast", 5.0)
        x = 3000 * np.sin(2 * np.pi * freq * t + i)[:, None] + rng.normal(0, 300, (400, 3))
        np.save(folder / f"2024-01-01T0000{i:02d}_{label}.npy", x.astype(np.int16))
    assert cli.main(["train", str(folder), "--samplerate", "50", "--window", "100", "--hop", "50",
                     "--n-estimators", "3", "--max-leaf-nodes", "8", "--splits", "2", "--no-instructions",
                     "-o", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    recordings = sorted(folder.glob("*.npy"))[:2]
    assert cli.main(["simulate", "--model", str(tmp_path / "m"), "-o", str(tmp_path / "p.csv"),
                     *map(str, recordings)]) == 0
    out = capsys.readouterr().out
    assert "14 windows from 2 recordings through the har app" in out and "14/14 windows (1.000)" in out
    reads, allocated = steady_state(out)
    assert reads > 100 and allocated == 0
    # every published message is printed: the retained status, then the windows
    lines = [line.split("\t") for line in out.splitlines() if line.startswith("2024-")]
    assert lines[0][1:] == ["tinysense/har/status", "online"] and len(lines) == 2 * (1 + 7)
    rows = read_csv(tmp_path / "p.csv")
    assert list(rows[0]) == ["recording", "window", "start_s", "result", "topic", "payload"] and len(rows) == 14
    first = rows[0]
    assert first["recording"].endswith("_fast.npy") and first["start_s"] == "0.000" and first["result"] == "fast"
    assert first["topic"] == "tinysense/har/activity"
    message = json.loads(first["payload"])
    assert sorted(message) == ["class", "confidence", "n", "t"]
    assert message["class"] == "fast" and message["n"] == 0 and message["t"] == 2000  # 100 samples at 50 Hz


def test_wav_levels_with_the_default_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_wav(tmp_path / "tone.wav", tone(-26.0, 1.0), 16000)  # -26 dBFS: 94 dB SPL at the default sensitivity
    assert cli.main(["simulate", str(tmp_path / "tone.wav")]) == 0
    out = capsys.readouterr().out
    rows = [line.split("\t") for line in out.splitlines() if line.startswith("tone.wav")]
    assert rows[0][1:] == ["tinysense/soundlevel/status", "online"]
    levels = [json.loads(r[2]) for r in rows[1:]]
    assert all(r[1] == "tinysense/soundlevel/level" for r in rows[1:])
    assert [m["t"] for m in levels] == [125 * (i + 1) for i in range(8)]  # 125 ms intervals by default
    assert math.isclose(levels[-1]["laeq"], 94.0, abs_tol=0.1)  # A-weighting is 0 dB at 1 kHz
    assert levels[0]["lafmin"] is None  # Lmin waits 5 Fast time constants: null in the JSON, as the device sends
    assert "8 intervals from 1 recordings through the soundlevel app" in out


@pytest.mark.parametrize("dbfs", [-20.0, -45.0])
def test_soundlevel_app_publishes_the_reference_laeq(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       dbfs: float) -> None:
    rate, seconds, sensitivity = 16000, 4, -30.0
    x = tone(dbfs, seconds + 0.3, rate)  # 0.3 s more: a fifth interval starts but does not end
    write_wav(tmp_path / "tone.wav", x, rate)
    config = {"app": "soundlevel", "sample_rate": rate, "mqtt": {"topic_prefix": "lab/node1"},
              "soundlevel": {"interval_s": 1.0, "mic_sensitivity_dbfs": sensitivity}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert cli.main(["simulate", "--config", str(tmp_path / "config.json"), "-o", str(tmp_path / "levels.csv"),
                     str(tmp_path / "tone.wav")]) == 0
    out = capsys.readouterr().out
    reads, allocated = steady_state(out)
    assert reads > 50 and allocated == 0
    rows = read_csv(tmp_path / "levels.csv")
    assert [r["topic"] for r in rows] == ["lab/node1/soundlevel/level"] * seconds
    messages = [json.loads(r["payload"]) for r in rows]
    assert all(sorted(m) == ["laeq", "lafmax", "lafmin", "n", "t"] for m in messages)
    assert [m["n"] for m in messages] == list(range(seconds))
    assert [m["t"] for m in messages] == [1000 * (i + 1) for i in range(seconds)]
    weighted = sosfilt(a_weighting_sos(rate), x.astype(np.float64))
    for i, m in enumerate(messages):
        mean_square = np.mean(weighted[i * rate:(i + 1) * rate] ** 2)
        reference = 94 + 10 * np.log10(2 * mean_square / 32768**2) - sensitivity
        assert abs(m["laeq"] - reference) < 0.1, (i, m, reference)
    assert abs(reference - (94 + dbfs - sensitivity)) < 0.1


def test_the_heap_measurement_sees_an_allocating_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # The same run with an app core that keeps a new list per chunk: the steady-state count must show it.
    firmware = tmp_path / "firmware"
    shutil.copytree(simulation.FIRMWARE_DIR, firmware)
    source = (firmware / "apps" / "soundlevel.py").read_text()
    marker = "        n = len(chunk)\n"
    assert marker in source
    (firmware / "apps" / "soundlevel.py").write_text(source.replace(marker, marker + "        self.junk = [n]\n"))
    monkeypatch.setattr(simulation, "FIRMWARE_DIR", firmware)
    write_wav(tmp_path / "tone.wav", tone(-30.0, 1.0), 16000)
    assert cli.main(["simulate", "--chunk-ms", "1000", "--alloc-checks", "0", str(tmp_path / "tone.wav")]) == 0
    reads, allocated = steady_state(capsys.readouterr().out)
    assert reads > 10 and allocated >= 16 * 10


def test_basic_motions_are_mpu6886_counts() -> None:
    # m/s² and rad/s -> int16 counts at ±8 g and ±2000 deg/s, the driver's scale (range / 32768 per count)
    physical, labels, _ = datasets.basic_motions()
    counts, labels2, _ = datasets.basic_motions_counts()
    assert list(labels) == list(labels2) and all(c.dtype == np.int16 and c.shape == (100, 6) for c in counts)
    imu = datasets.BASIC_MOTIONS_IMU
    r, c = physical[0].astype(np.float64), counts[0].astype(np.float64)
    np.testing.assert_allclose(c[:, :3] * imu["accel_range_g"] / 32768 * 9.80665, r[:, :3], atol=0.5 * 8 / 32768 * 9.81)
    np.testing.assert_allclose(c[:, 3:] * imu["gyro_range_dps"] / 32768 * math.pi / 180, r[:, 3:],
                               atol=0.5 * 2000 / 32768 * math.pi / 180)
    largest = max(int(np.abs(x).max()) for x in counts)
    assert largest < 32767  # nothing saturates at these ranges
    assert datasets.load("basicmotions").imu == imu


def test_har_app_from_a_bundled_image_on_basic_motions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Accelerometer + gyroscope counts -> model -> bundle writes the har section from the model's metadata ->
    # simulated MPU6886 (both sensors in the FIFO) -> driver -> HarApp -> shell: the published classes are the
    # converted model's (and scikit-learn's) on the same windows.
    from sklearn.ensemble import RandomForestClassifier

    recordings, labels, split = datasets.basic_motions_counts()
    spec = FeatureSpec("c", 10.0, 50, 10, [[0, 1, 2], [3, 4, 5]], ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y",
                                                                      "gyro_z"], True, imu=datasets.BASIC_MOTIONS_IMU)
    train = [i for i in range(len(labels)) if split[i] == "train"]
    xw = [windows_of(recordings[i], spec.window, spec.hop) for i in train]
    X = window_features(np.concatenate(xw), spec)
    y = np.concatenate([np.full(len(w), labels[i]) for w, i in zip(xw, train, strict=True)])
    rf = RandomForestClassifier(n_estimators=6, max_leaf_nodes=24, random_state=0).fit(X, y)
    model = write_model(tmp_path / "model", rf, X, spec)
    # The user's config: a topic prefix and a hop of its own (how often to classify); the rest of the har section
    # and the sample rate come from the model's metadata.
    hop = 20
    config = {"app": "har", "mqtt": {"topic_prefix": "gym/watch"}, "har": {"hop": hop}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "har.json").write_bytes((model / "model.json").read_bytes())
    (tmp_path / "har.trees").write_bytes((model / "model.trees").read_bytes())
    assert cli.main(["bundle", "--config", str(tmp_path / "config.json"), "--model", str(tmp_path / "har.trees"),
                     "--file", f"{tmp_path / 'har.json'}:/models/har.json", "--flash-size", "4MB",
                     "--output", str(tmp_path / "fs.bin")]) == 0
    test = [i for i in range(len(labels)) if split[i] == "test"][::4]  # 10 held-out recordings, all classes
    paths = []
    for i in test:
        paths.append(tmp_path / f"test_{i:02d}_{labels[i]}.npy")
        np.save(paths[-1], recordings[i])
    capsys.readouterr()
    image_config = json.loads(simulation.read_image(tmp_path / "fs.bin")["/config.json"])
    assert image_config["sample_rate"] == 10
    assert image_config["har"] == {"window": 50, "hop": hop, "classes": [str(c) for c in rf.classes_],
                                   "samplerate": 10, "sensors": ["accel", "gyro"], "axes": 3, "spectral": True,
                                   "accel_range_g": 8, "gyro_range_dps": 2000}
    assert cli.main(["simulate", "--image", str(tmp_path / "fs.bin"), "--quiet", "-o", str(tmp_path / "p.csv"),
                     *map(str, paths)]) == 0
    out = capsys.readouterr().out
    assert "through the har app" in out and "warning" not in out
    reads, allocated = steady_state(out)
    assert reads > 100 and allocated == 0
    rows = read_csv(tmp_path / "p.csv")
    total = check_har_messages(rows, [(p, recordings[i]) for p, i in zip(paths, test, strict=True)], rf, spec,
                               "gym/watch/har/activity", (model / "model.trees").read_bytes(), hop)
    assert total == len(test) * 3  # (100 - 50) / 20 + 1 windows per 10 s recording


def har_exercise_recordings(per_class: int) -> dict[str, list[tuple[Path, np.ndarray]]]:
    out: dict[str, list[tuple[Path, np.ndarray]]] = {}
    for path in sorted(HAR_DATA.glob("*.npy")):
        data, _problem = read_npy_partial(path)
        if data is None or data.ndim != 2 or data.shape[1] != 3 or len(data) < 1000:
            continue
        label = path.stem.rsplit("_", 1)[-1]
        if len(out.setdefault(label, [])) < per_class:
            out[label].append((path, np.asarray(data, dtype=np.int16)))
    return out


@pytest.mark.skipif(not HAR_DATA.is_dir(), reason="har_exercise_1 recordings are not available")
def test_har_app_on_har_exercise_recordings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.ensemble import RandomForestClassifier

    spec = FeatureSpec("c", 100.0, 200, 50, [[0, 1, 2]], ["x", "y", "z"], True)
    recordings = har_exercise_recordings(per_class=4)
    classes = sorted(recordings)
    assert len(classes) >= 2
    train = [(x, c) for c in classes for _, x in recordings[c][:3]]
    test = [r for c in classes for r in recordings[c][3:]]
    xw = [windows_of(x, spec.window, spec.hop) for x, _ in train]
    X = extract_on_host(np.concatenate(xw), spec.samplerate)
    y = np.concatenate([np.full(len(w), c) for w, (_, c) in zip(xw, train, strict=True)])
    rf = RandomForestClassifier(n_estimators=8, max_depth=8, random_state=0).fit(X, y)
    model = write_model(tmp_path / "model", rf, X, spec)
    assert cli.main(["simulate", "--model", str(model), "--quiet", "-o", str(tmp_path / "p.csv"),
                     *[str(p) for p, _ in test]]) == 0
    out = capsys.readouterr().out
    reads, allocated = steady_state(out)
    assert reads > 300 and allocated == 0
    total = check_har_messages(read_csv(tmp_path / "p.csv"), test, rf, spec, "tinysense/har/activity")
    assert total == len(test) * 17  # (1000 - 200) / 50 + 1 windows per 10 s recording


def test_what_the_app_cannot_run_is_replayed_directly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Float recordings (the IMU delivers int16 counts), and a channel layout that is not the IMU's (3 sensors).
    rng = np.random.default_rng(1)
    from sklearn.tree import DecisionTreeClassifier

    cases = [("floats", 6, [[0, 1, 2], [3, 4, 5]], np.float32, "the recordings are not int16 counts"),
             ("nine", 9, [[0, 1, 2], [3, 4, 5], [6, 7, 8]], np.int16, "are not what the device's IMU gives")]
    for name, n, sensors, dtype, why in cases:
        recordings = [(rng.normal(0, 1, (60, n)) * (1 if dtype == np.float32 else 3000)).astype(dtype)
                      for _ in range(2)]
        spec = FeatureSpec("c", 10.0, 30, 10, sensors, [f"c{i}" for i in range(n)], True)
        X = window_features(np.concatenate([windows_of(r, 30, 10) for r in recordings]), spec)
        tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, ["a", "b"] * (len(X) // 2))
        write_model(tmp_path / name, tree, X, spec)
        paths = []
        for i, r in enumerate(recordings):
            paths.append(tmp_path / f"r{i}_{name}_a.npy")
            np.save(paths[-1], r)
        assert cli.main(["simulate", "--model", str(tmp_path / name), *map(str, paths)]) == 0
        out = capsys.readouterr().out
        assert "not the device app: " in out and why in out, out
        assert "8 windows from 2 recordings through the C features and trees" in out
        got = [line.split("\t")[3] for line in out.splitlines() if line.startswith("r")]
        assert got == list(tree.predict(X))


def test_har_config_conflicts_with_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recordings, labels, _ = datasets.basic_motions_counts()
    spec = FeatureSpec("c", 10.0, 50, 10, [[0, 1, 2], [3, 4, 5]], [f"c{i}" for i in range(6)], True,
                       imu=datasets.BASIC_MOTIONS_IMU)
    from sklearn.tree import DecisionTreeClassifier

    X = window_features(np.concatenate([windows_of(r, 50, 10) for r in recordings[:8]]), spec)
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, np.repeat(labels[:8], 6))
    write_model(tmp_path / "m", tree, X, spec)
    np.save(tmp_path / "r.npy", recordings[0])
    for section, message in (({"window": 40}, "har.window is 40 but the model"),
                             ({"gyro_range_dps": 500}, "har.gyro_range_dps is 500 but the model"),
                             ({"sensors": ["accel"]}, "har.sensors is ['accel'] but the model")):
        (tmp_path / "c.json").write_text(json.dumps({"app": "har", "sample_rate": 10, "har": section}))
        assert cli.main(["simulate", "--model", str(tmp_path / "m"), "--config", str(tmp_path / "c.json"),
                         str(tmp_path / "r.npy")]) == 1
        err = capsys.readouterr().err
        assert message in err and "needs" in err, err


def test_bad_recordings_and_configs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.npy").write_bytes(b"")
    assert cli.main(["simulate", str(tmp_path / "a.npy")]) == 1
    assert "need a model" in capsys.readouterr().err
    assert cli.main(["simulate", str(tmp_path / "missing.wav")]) == 1
    assert "does not exist" in capsys.readouterr().err
    write_wav(tmp_path / "tone.wav", tone(-30.0, 0.5, 48000), 48000)
    assert cli.main(["simulate", "--board", "atoms3", str(tmp_path / "tone.wav")]) == 1
    assert "board atoms3 has no I2S microphone (I2S_MIC in boards/atoms3/board_pins.py)" in capsys.readouterr().err
    (tmp_path / "config.json").write_text(json.dumps({"app": "soundlevel", "sample_rate": 16000}))
    assert cli.main(["simulate", "--config", str(tmp_path / "config.json"), str(tmp_path / "tone.wav")]) == 1
    assert "48000 Hz but the config samples at 16000 Hz" in capsys.readouterr().err
    (tmp_path / "har.json").write_text(json.dumps({"app": "har"}))
    assert cli.main(["simulate", "--config", str(tmp_path / "har.json"), str(tmp_path / "tone.wav")]) == 1
    assert "runs the 'har' app" in capsys.readouterr().err


def test_training_on_physical_units_says_the_device_sees_counts() -> None:
    from tinysense import training

    rng = np.random.default_rng(3)
    floats = [rng.normal(0, 1, (40, 3)).astype(np.float32) for _ in range(4)]
    labels = np.array(["a", "b", "a", "b"])
    dataset = datasets.Dataset("g", labels, {"file": np.array(["0", "1", "2", "3"])}, 10.0, ["x", "y", "z"],
                               [[0, 1, 2]], floats)
    _, notes = training.prepare(dataset, window=20, hop=20, group_by="file")
    assert any("not integer counts" in n and "imu_counts" in n for n in notes), notes
    dataset.recordings = [datasets.imu_counts(r, 2) for r in floats]
    _, notes = training.prepare(dataset, window=20, hop=20, group_by="file")
    assert notes == []
