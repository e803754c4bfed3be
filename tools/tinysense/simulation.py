"""Replay recordings through the device's own app code in the host firmware and collect what it would publish.

The recordings go behind the simulated hardware of ports/host/sim and the frozen firmware code runs unchanged:

* audio (.wav, 16-bit PCM): WAV → simulated I2S (machine.sim_attach_i2s) → drivers.i2s_mic.I2SMic →
  apps.soundlevel.SoundLevelApp → one message per interval {"laeq", "lafmax", "lafmin", "t", "n"}.
* IMU (.npy, (samples, 3) accelerometer or (samples, 6) accelerometer + gyroscope int16 counts, as the device
  recorder writes them and as `train` converts datasets to): rows → simulated MPU6886 (sim_mpu6886, at the model's
  full-scale ranges) on the board's I2C bus → drivers.mpu6886 FIFO reads → apps.har.HarApp with the model →
  one message per window {"class", "confidence", "t", "n"}.

The core and sensor come from apps.shell.device_app(config) with the board's pins, and the topics, numbering and
JSON encoding from apps.shell.Shell (ports/host/sim/run_app.py drives them on the simulated clock). The config is
the device's: a config.json, the /config.json of a bundled image, or one made from the model metadata / options.

What the device cannot run is replayed window by window through the C features and C trees directly instead, with
a note saying so: a model whose channels are not the IMU's layout (accelerometer [+ gyroscope], 1-3 axes each),
recordings that are not int16 counts, or a rate the simulated IMU cannot keep.
"""

from __future__ import annotations

import json
import re
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from tinysense import host, trees
from tinysense.datasets import read_npy_partial
from tinysense.device_config import DeviceConfig, har_section_from_model, merge_app_section
from tinysense.errors import CommandError
from tinysense.paths import REPO
from tinysense.training import FeatureSpec, window_features
from tinysense.windowing import make_windows

SIM_DIR = REPO / "ports" / "host" / "sim"
RUNNER = SIM_DIR / "run_app.py"
FIRMWARE_DIR = REPO / "firmware"
BOARDS_DIR = REPO / "boards"
DEFAULT_BOARD = "generic-s3"
DEFAULT_ALLOC_CHECKS = 100  # per recording: gc.mem_alloc() walks the heap (~1 ms), so the checks are spread
# board_pins entry each app's sensor needs
SENSOR_PINS = {"soundlevel": ("I2S_MIC", "I2S microphone"), "har": ("IMU", "MPU6886 IMU"),
               "imageclass": ("CAMERA", "camera")}


@dataclass
class DeviceModel:
    model: bytes
    meta: dict[str, Any]
    source: str

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec.from_dict(self.meta["features"])

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.meta["classes"]]


def _check_meta(meta: Any, where: str) -> dict[str, Any]:
    if not isinstance(meta, dict) or "classes" not in meta or "features" not in meta:
        raise CommandError(f"{where} is not model metadata from `tinysense train`; pass the model.json it wrote")
    return meta


def model_from_folder(path: Path) -> DeviceModel:
    """A train output folder, or a .trees file with its .json beside it."""
    trees_path = path / "model.trees" if path.is_dir() else path
    meta_path = trees_path.with_suffix(".json")
    try:
        model = trees_path.read_bytes()
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError as error:
        raise CommandError(f"{error.filename} does not exist; pass the folder `tinysense train` wrote") from None
    except (OSError, json.JSONDecodeError) as error:
        raise CommandError(f"cannot read the model in {path} ({error}); retrain or pass another --model") from None
    if model[:4] != trees.MAGIC:
        raise CommandError(f"{trees_path} is not a device model file; make it with `tinysense convert`")
    return DeviceModel(model, _check_meta(meta, str(meta_path)), str(trees_path))


def read_image(image_path: Path) -> dict[str, bytes]:
    """Every file of a bundled image (mounted with the device's parameters), by absolute path."""
    from tinysense.littlefs_image import geometry_of_image, read_files

    try:
        image = image_path.read_bytes()
        return read_files(image, geometry_of_image(len(image)))
    except FileNotFoundError:
        raise CommandError(f"image {image_path} does not exist; build it with `tinysense bundle`") from None
    except Exception as error:  # littlefs raises its own errors for a bad image
        raise CommandError(f"{image_path} does not mount as a tinysense filesystem image ({error}); "
                           "rebuild it with `tinysense bundle`") from None


def image_config(image_path: Path, files: dict[str, bytes]) -> dict[str, Any]:
    """The image's /config.json (as the device reads it)."""
    if "/config.json" not in files:
        raise CommandError(f"{image_path} has no /config.json; bundle one with --app or --config")
    try:
        data = json.loads(files["/config.json"])
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CommandError(f"{image_path}:/config.json is not valid JSON ({error}); rebuild the image") from None
    return DeviceConfig.from_dict(data, source=f"{image_path}:/config.json").to_dict()


def _first_model(image_path: Path, files: dict[str, bytes]) -> tuple[dict[str, Any], str, str]:
    """(/config.json, the model it names first, that model's metadata path) of a bundled image."""
    config = json.loads(files.get("/config.json", b"{}"))
    models = config.get("models") or []
    if not models:
        raise CommandError(f"{image_path}: /config.json lists no model; bundle one with --model")
    return config, models[0], str(PurePosixPath(models[0]).with_suffix(".json"))


def model_from_image(image_path: Path, files: dict[str, bytes] | None = None) -> DeviceModel:
    """The model named first in /config.json of a bundled image, with its metadata /models/<name>.json."""
    files = read_image(image_path) if files is None else files
    config, name, meta_name = _first_model(image_path, files)
    if name not in files or meta_name not in files:
        raise CommandError(f"{image_path}: {name} or its metadata {meta_name} is missing; bundle both "
                           "(--model FILE --file model.json:" + meta_name + ")")
    meta = _check_meta(json.loads(files[meta_name]), f"{image_path}:{meta_name}")
    return DeviceModel(files[name], meta, f"{image_path}:{name}")


def load_config(path: Path) -> dict[str, Any]:
    """A config.json as `tinysense bundle` would store it (validated against the device's schema)."""
    return DeviceConfig.load(path).to_dict()


def boards() -> list[str]:
    return sorted(p.parent.name for p in BOARDS_DIR.glob("*/board_pins.py"))


def board_dir(board: str, app: str) -> Path:
    """boards/<board>, checked to have the sensor the app reads."""
    pins = BOARDS_DIR / board / "board_pins.py"
    if not pins.is_file():
        raise CommandError(f"board {board!r} has no boards/{board}/board_pins.py; choose one of {', '.join(boards())}")
    key, what = SENSOR_PINS[app]
    if not re.search(rf"^{key}\s*=", pins.read_text(), re.MULTILINE):
        fitting = [b for b in boards() if re.search(rf"^{key}\s*=", (BOARDS_DIR / b / "board_pins.py").read_text(),
                                                    re.MULTILINE)]
        raise CommandError(f"board {board} has no {what} ({key} in {pins.relative_to(REPO)}); the {app} app needs "
                           f"one: choose --board {' or '.join(fitting)}")
    return pins.parent


@dataclass
class WindowResult:
    recording: str
    index: int
    start_s: float
    value: str  # predicted class, or levels
    topic: str = ""  # what the device publishes ("" when replayed without the app)
    payload: str = ""


@dataclass
class Published:
    recording: str
    topic: str
    payload: str
    qos: int
    retain: bool


@dataclass
class SimRun:
    results: list[WindowResult] = field(default_factory=list)  # the app's data messages
    published: list[Published] = field(default_factory=list)  # everything published, in order (status, stats)
    notes: list[str] = field(default_factory=list)
    device: bool = True  # False: replayed through the C features + trees directly, not the app
    steady_passes: int = 0  # loop passes (sensor reads of one poll → process) that produced no message
    steady_checked: int = 0  # how many of them were checked with gc.mem_alloc() before/after
    steady_bytes: int = 0  # heap bytes the checked passes allocated
    steady_changed: int = 0  # checked passes that changed gc.mem_alloc() at all
    overruns: int = 0
    dropped: int = 0


def _to_literal(value: Any) -> str:
    """A Python literal MicroPython's eval() reads (JSON types only)."""
    return repr(value)


POLL_MS = 10  # apps.shell.Shell's poll_ms: one loop pass of the simulation


def run_app(jobs: list[tuple[str, dict[str, Any]]], board: str, *, alloc_checks: int = DEFAULT_ALLOC_CHECKS,
            variant: str = "standard", timeout: float = 600, heapsize: str | None = None) -> SimRun:
    """Run each (recording name, job entry) through run_app.py; entry: {"config", "path"[, "rows", "rate", "axes"],
    "seconds"}. alloc_checks: loop passes per recording checked with gc.mem_alloc(), spread evenly (0: all)."""
    run = SimRun()
    if not jobs:
        return run
    for _, entry in jobs:
        passes = int(entry.pop("seconds") * 1000 / POLL_MS)
        entry["check_every"] = max(1, passes // alloc_checks) if alloc_checks > 0 else 1
    app = jobs[0][1]["config"]["app"]
    path = [SIM_DIR, FIRMWARE_DIR, board_dir(board, app)]
    with tempfile.TemporaryDirectory(prefix="tinysense-sim-") as tmp:
        job_file = Path(tmp) / "job.py"
        job_file.write_text(_to_literal({"recordings": [entry for _, entry in jobs]}))
        proc = host.run([str(RUNNER), str(job_file)], variant=variant, path=path, timeout=timeout, heapsize=heapsize)
    out = proc.stdout.decode(errors="replace").splitlines()
    if proc.returncode != 0:
        error = proc.stderr.decode(errors="replace").strip().splitlines()
        started = [line for line in out if line.startswith("rec ")]
        name = jobs[int(started[-1].split()[1])][0] if started else "the simulation"
        raise CommandError(f"{name}: the device code stopped: {error[-1] if error else proc.returncode}; "
                           "check the config and recording (see the message)")
    current = 0
    k = 0
    for line in out:
        kind, _, rest = line.partition(" ")
        name, entry = jobs[current]
        if kind == "rec":
            current, k = int(rest), 0
        elif kind == "pub":
            qos, retain, topic, payload = rest.split(" ", 3)
            run.published.append(Published(name, topic, payload, int(qos), retain == "1"))
            if topic.endswith("/status") or topic.endswith("/stats"):
                continue
            run.results.append(_result(name, k, topic, payload, entry["config"]))
            k += 1
        elif kind == "steady":
            passes, checked, allocated, changed = (int(v) for v in rest.split())
            run.steady_passes += passes
            run.steady_checked += checked
            run.steady_bytes += allocated
            run.steady_changed += changed
        elif kind == "end":
            _i, _samples, overruns, dropped = (int(v) for v in rest.split())
            run.overruns += overruns
            run.dropped += dropped
            if overruns:
                run.notes.append(f"{name}: {overruns} sensor overruns (samples lost: the loop did not keep up)")
            if dropped:
                run.notes.append(f"{name}: {dropped} messages dropped from the outbox (more than mqtt.max_rate "
                                 "allows, for longer than mqtt.queue holds)")
    return run


def _device_rate(config: dict[str, Any]) -> float:
    section = config.get(config["app"]) or {}
    return float(config.get("sample_rate") or section.get("samplerate") or 100)


def _result(name: str, k: int, topic: str, payload: str, config: dict[str, Any]) -> WindowResult:
    msg = json.loads(payload)
    section = config.get(config["app"]) or {}
    t_s = float(msg.get("t", 0)) / 1000
    if config["app"] == "har":
        start = t_s - float(section["window"]) / _device_rate(config)
        value = str(msg.get("class"))
    elif config["app"] == "imageclass":  # "t" is the frame's time
        start = t_s
        value = f"{msg.get('class')} ({float(msg.get('confidence') or 0):.3f})"
    else:
        start = t_s - float(section.get("interval_s", 1.0))
        w = section.get("weighting", "A")
        value = ", ".join(f"L{w}{key} {_db(msg.get(f'la{key}'))} dB" for key in ("eq", "fmax", "fmin"))
    return WindowResult(name, k, round(start, 6), value, topic, payload)


def _db(value: Any) -> str:
    return "None" if value is None else f"{float(value):.1f}"


# --- audio -----------------------------------------------------------------------------------------------------


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono int16 samples (the first channel) and the sample rate."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise CommandError(f"{path} has {8 * w.getsampwidth()}-bit samples; convert it to 16-bit PCM")
            frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
            return frames[:, 0].copy(), w.getframerate()
    except FileNotFoundError:
        raise CommandError(f"recording {path} does not exist; pass existing .wav files") from None
    except (wave.Error, EOFError) as error:
        raise CommandError(f"{path} is not a PCM .wav file ({error}); convert it to 16-bit PCM WAV") from None


def soundlevel_config(base: dict[str, Any] | None, rate: int, *, interval_s: float | None = None,
                      weighting: str | None = None, mic_sensitivity_dbfs: float | None = None) -> dict[str, Any]:
    """The device config for a recording: `base` (config.json) or a new one at the recording's rate; options given
    override its soundlevel keys."""
    data = dict(base) if base else {"app": "soundlevel", "sample_rate": rate}
    if data.get("app") != "soundlevel":
        raise CommandError(f"the config runs the {data.get('app')!r} app; .wav recordings need \"app\": "
                           "\"soundlevel\" (or pass .npy recordings)")
    section = dict(data.get("soundlevel") or {})
    if base is None:
        section["interval_s"] = 0.125  # `simulate`'s default interval without a config
    for key, value in (("interval_s", interval_s), ("weighting", weighting),
                       ("mic_sensitivity_dbfs", mic_sensitivity_dbfs)):
        if value is not None:
            section[key] = value
    data["soundlevel"] = section
    return DeviceConfig.from_dict(data, source="config").to_dict()


def simulate_audio(paths: list[Path], *, config: dict[str, Any] | None = None, board: str = DEFAULT_BOARD,
                   interval_s: float | None = None, weighting: str | None = None,
                   mic_sensitivity_dbfs: float | None = None, alloc_checks: int = DEFAULT_ALLOC_CHECKS,
                   variant: str = "standard") -> SimRun:
    """The messages the soundlevel app publishes for every .wav, run by the device code in the host firmware."""
    jobs = []
    for path in paths:
        samples, rate = read_wav(path)
        cfg = soundlevel_config(config, rate, interval_s=interval_s, weighting=weighting,
                                mic_sensitivity_dbfs=mic_sensitivity_dbfs)
        if cfg.get("sample_rate") not in (None, rate):
            raise CommandError(f"{path} is {rate} Hz but the config samples at {cfg['sample_rate']:g} Hz; resample "
                               "the recording or change sample_rate")
        jobs.append((path.name, {"config": cfg, "path": str(path.resolve()), "seconds": len(samples) / rate}))
    return run_app(jobs, board, alloc_checks=alloc_checks, variant=variant)


# --- IMU -------------------------------------------------------------------------------------------------------


def har_config(base: dict[str, Any] | None, model: DeviceModel, model_file: Path,
               notes: list[str]) -> dict[str, Any]:
    """The device config running `model` (read from model_file): `base` (config.json) with its model paths pointing
    at model_file, or a new one; its "har" section completed from the model's metadata as `bundle` does (a value
    contradicting the model is an error)."""
    derived = har_section_from_model(model.meta, model.source)
    data = dict(base) if base else {"app": "har", "sample_rate": derived["samplerate"]}
    if data.get("app") != "har":
        raise CommandError(f"the config runs the {data.get('app')!r} app; .npy recordings need \"app\": \"har\" "
                           "(or pass .wav recordings)")
    section = dict(data.get("har") or {})
    missing = [key for key in ("window", "hop", "classes") if key not in section]
    if base is not None and missing:
        notes.append(f"the config's \"har\" section lacks {', '.join(missing)}: the device would refuse to start; "
                     "taken from the model metadata here (`tinysense bundle` writes them from the model)")
    data["har"] = merge_app_section(section, derived, "har", model.source)
    data["models"] = [str(model_file)]
    device_rate = _device_rate(data)
    if device_rate != float(model.spec.samplerate):
        raise CommandError(f"the config samples at {device_rate:g} Hz, the model was trained at "
                           f"{model.spec.samplerate:g} Hz; set sample_rate to the model's rate")
    return DeviceConfig.from_dict(data, source="config").to_dict()


def _read_recording(path: Path, spec: FeatureSpec, notes: list[str]) -> np.ndarray | None:
    array, problem = read_npy_partial(path)
    if array is None:
        notes.append(f"{path} {problem}; skipped")
        return None
    if problem:
        notes.append(f"{path} {problem}")
    array = array[:, None] if array.ndim == 1 else array
    if array.ndim != 2 or array.shape[1] != len(spec.channels):
        raise CommandError(f"{path} has shape {array.shape}; the model needs (samples, {len(spec.channels)}) "
                           f"recordings ({', '.join(spec.channels)})")
    if not np.isfinite(np.asarray(array, dtype=np.float64)).all():
        raise CommandError(f"{path} holds NaN or inf samples; drop or interpolate them")
    return array


def _why_not_device(model: DeviceModel, arrays: list[np.ndarray]) -> str | None:
    """Why the device's HarApp cannot run this model on these recordings (None: it can)."""
    spec = model.spec
    try:
        har_section_from_model(model.meta, model.source)
    except CommandError as error:
        return str(error).split(": ", 1)[-1]
    if not float(spec.samplerate).is_integer():
        return f"the recordings' rate {spec.samplerate:g} Hz is not a whole number for the simulated IMU"
    for a in arrays:
        values = np.asarray(a, dtype=np.float64)
        if values.size and (np.any(values != np.round(values)) or values.min() < -32768 or values.max() > 32767):
            return "the recordings are not int16 counts (the MPU6886 delivers int16); record them with the device"
    return None


def imu_rows(array: np.ndarray, section: dict[str, Any]) -> np.ndarray:
    """A recording's channels laid out as the MPU6886 FIFO delivers them: 3 values per sensor (axes beyond the
    model's, absent from the recording, read 0)."""
    axes, n_sensors = int(section["axes"]), len(section["sensors"])
    rows = np.zeros((len(array), 3 * n_sensors), dtype="<i2")
    for k in range(n_sensors):
        rows[:, 3 * k:3 * k + axes] = array[:, k * axes:(k + 1) * axes]
    return rows


def simulate_imu(model: DeviceModel, paths: list[Path], *, config: dict[str, Any] | None = None,
                 board: str = DEFAULT_BOARD, alloc_checks: int = DEFAULT_ALLOC_CHECKS,
                 variant: str = "standard") -> SimRun:
    """The messages the har app publishes for every .npy recording, run by the device code in the host firmware
    (or, for a model the app cannot run, the class per window from the C features and C trees directly)."""
    spec = model.spec
    if spec.kind != "c":
        raise CommandError(f"{model.source} was trained on ready feature rows, not recordings; simulate needs a "
                           "model trained on .npy/.csv recordings")
    notes: list[str] = []
    recordings: list[tuple[Path, np.ndarray]] = []
    for path in paths:
        array = _read_recording(path, spec, notes)
        if array is not None and len(array) == 0:
            notes.append(f"{path} holds no samples; skipped")
        elif array is not None:
            recordings.append((path, array))
    with tempfile.TemporaryDirectory(prefix="tinysense-sim-") as tmp:
        model_file = Path(tmp) / "model.trees"
        model_file.write_bytes(model.model)
        why = _why_not_device(model, [a for _, a in recordings])
        if why is not None:
            run = _imu_direct(model, recordings, variant)
            run.notes = notes + run.notes + [f"replayed through the C features and C trees directly, not the device "
                                             f"app: {why}"]
            return run
        cfg = har_config(config, model, model_file, notes)
        section = cfg["har"]
        jobs = []
        for i, (path, array) in enumerate(recordings):
            if len(array) < int(cfg["har"]["window"]):
                notes.append(f"{path}: {len(array)} samples, shorter than the {cfg['har']['window']}-sample window; "
                             "no windows")
            data = Path(tmp) / f"{i}.bin"
            rows = imu_rows(array, section)
            data.write_bytes(rows.tobytes())
            # the recording's counts are at the model's ranges: the simulated IMU serves them as they are
            jobs.append((path.name, {"config": cfg, "path": str(data), "rows": len(array),
                                     "rate": int(spec.samplerate), "axes": rows.shape[1],
                                     "accel_range_g": section.get("accel_range_g", 2),
                                     "gyro_range_dps": section.get("gyro_range_dps", 250),
                                     "seconds": len(array) / spec.samplerate}))
        run = run_app(jobs, board, alloc_checks=alloc_checks, variant=variant)
    run.notes = notes + run.notes
    return run


def _imu_direct(model: DeviceModel, recordings: list[tuple[Path, np.ndarray]], variant: str) -> SimRun:
    spec = model.spec
    run = SimRun(device=False)
    for path, array in recordings:
        cut = make_windows([array], spec.window, spec.hop)
        if len(cut.data) == 0:
            run.notes.append(f"{path}: {len(array)} samples, shorter than the {spec.window}-sample window; "
                             "no windows")
            continue
        X = window_features(cut.data, spec, variant)
        predicted = trees.predict_on_host(model.model, X, variant=variant)
        for k, (start, p) in enumerate(zip(cut.start, predicted, strict=True)):
            run.results.append(WindowResult(path.name, k, float(start) / spec.samplerate, model.classes[int(p)]))
    return run


def label_from_name(name: str, classes: list[str]) -> str | None:
    """The label in a recorder file name (<time>_<label>.npy), when it is one of the model's classes."""
    stem = Path(name).stem
    label = stem.rsplit("_", 1)[-1]
    return label if label in classes else None


# --- images (imageclass) ------------------------------------------------------------------------------------------

CAMERA_BOARD = "s3-eye"  # the board with a camera in boards/
MAX_SIM_HEAP_MB = 1024


@dataclass
class CnnModel:
    model: bytes
    meta: dict[str, Any]
    source: str

    @property
    def labels(self) -> list[str]:
        return [str(c) for c in self.meta["labels"]]


def _cnn_meta(meta: Any, where: str) -> dict[str, Any]:
    from tinysense.device_config import imageclass_section_from_model

    imageclass_section_from_model(meta, where)  # raises with what to do
    return dict(meta)


def cnn_model_from_folder(path: Path) -> CnnModel:
    """A `train --model cnn` output folder, or a .tscn file with its .json beside it."""
    model_path = path / "model.tscn" if path.is_dir() else path
    try:
        model = model_path.read_bytes()
        meta = json.loads(model_path.with_suffix(".json").read_text())
    except FileNotFoundError as error:
        raise CommandError(f"{error.filename} does not exist; pass the folder `tinysense train --model cnn` "
                           "wrote") from None
    except (OSError, json.JSONDecodeError) as error:
        raise CommandError(f"cannot read the model in {path} ({error}); retrain or pass another --model") from None
    if model[:4] != b"TSCN":
        raise CommandError(f"{model_path} is not a CNN model file; make it with `tinysense train --model cnn`")
    return CnnModel(model, _cnn_meta(meta, str(model_path.with_suffix(".json"))), str(model_path))


def cnn_model_from_image(image_path: Path, files: dict[str, bytes]) -> CnnModel:
    """The CNN named first in /config.json of a bundled image, with its metadata /models/<name>.json."""
    config, name, meta_name = _first_model(image_path, files)
    if name not in files:
        raise CommandError(f"{image_path}: {name} is missing; rebuild the image with --model")
    if meta_name in files:
        meta = _cnn_meta(json.loads(files[meta_name]), f"{image_path}:{meta_name}")
    else:  # the device needs only the config's labels
        meta = {"labels": (config.get("imageclass") or {}).get("labels", [])}
    return CnnModel(files[name], meta, f"{image_path}:{name}")


def image_files(paths: list[Path]) -> list[Path] | None:
    """The image files named (folders: their images, sorted), or None when these are not images."""
    from tinysense.imagefiles import IMAGE_SUFFIXES

    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                return None
            out += found
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            out.append(path)
        else:
            return None
    return out


def imageclass_config(base: dict[str, Any] | None, model: CnnModel, model_file: Path, frame: tuple[int, int],
                      notes: list[str]) -> dict[str, Any]:
    """The device config running `model` on frames of `frame` (width, height): `base` (config.json) or a new one;
    its "imageclass" section completed from the model's metadata (a contradicting value is an error)."""
    from tinysense.device_config import imageclass_section_from_model, merge_app_section
    from tinysense.imagefiles import frame_size_name

    data = dict(base) if base else {"app": "imageclass", "sample_rate": 1}
    if data.get("app") != "imageclass":
        raise CommandError(f"the config runs the {data.get('app')!r} app; images need \"app\": \"imageclass\"")
    section = dict(data.get("imageclass") or {})
    if "format" in model.meta:
        section = merge_app_section(section, imageclass_section_from_model(model.meta, model.source), "imageclass",
                                    model.source)
    name = frame_size_name(*frame)
    if "frame_size" not in section:
        if name is None:
            raise CommandError(f"the images are {frame[0]}x{frame[1]}, not a camera frame size; resize them to one "
                               "(e.g. 96x96 or 320x240) or set imageclass.frame_size")
        section["frame_size"] = name
    elif section["frame_size"] != name:
        raise CommandError(f"the images are {frame[0]}x{frame[1]} but the config's camera delivers "
                           f"{section['frame_size']} frames; resize the images or change imageclass.frame_size")
    if base is None:
        section.setdefault("threshold", 0.0)
        notes.append("no config: every frame is published (threshold 0, one message per frame at 1 frame/s)")
        section.setdefault("interval_s", 1.0)
    data["imageclass"] = section
    data["models"] = [str(model_file)]
    return DeviceConfig.from_dict(data, source="config").to_dict()


def simulate_images(model: CnnModel, paths: list[Path], *, config: dict[str, Any] | None = None,
                    board: str = CAMERA_BOARD, alloc_checks: int = DEFAULT_ALLOC_CHECKS,
                    variant: str = "standard") -> SimRun:
    """The messages the imageclass app publishes for a sequence of camera frames (PGM/PPM/PNG files of one camera
    frame size; PNG is converted to PGM/PPM here), captured one after another at the config's frame rate by the
    simulated camera and classified by the device code in the host firmware."""
    from tinysense.imagefiles import read_image, write_pnm

    if not paths:
        raise CommandError("no image files given; pass .pgm/.ppm/.png files or folders holding them")
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tinysense-sim-") as tmp:
        frames: list[str] = []
        size = None
        for i, path in enumerate(paths):
            image = read_image(path)
            h, w = image.shape[:2]
            if size is None:
                size = (w, h)
            elif size != (w, h):
                raise CommandError(f"{path} is {w}x{h}, the first image {size[0]}x{size[1]}; a camera delivers one "
                                   "frame size: resize the images to one size")
            if path.suffix.lower() == ".png":
                converted = Path(tmp) / f"{i}{'.pgm' if image.shape[2] == 1 else '.ppm'}"
                write_pnm(converted, image)
                path = converted
            frames.append(str(path.resolve()))
        assert size is not None
        model_file = Path(tmp) / "model.tscn"
        model_file.write_bytes(model.model)
        cfg = imageclass_config(config, model, model_file, size, notes)
        fps = float(cfg["sample_rate"])
        name = paths[0].parent.name if len(paths) > 1 else paths[0].name
        job = {"config": cfg, "frames": frames, "seconds": len(frames) / fps}
        # the simulated camera decodes every frame at init (then captures allocate nothing): heap room for them
        bpp = 2 if cfg["imageclass"].get("pixel_format") == "RGB565" else 1
        heap_mb = 4 + 2 * len(frames) * size[0] * size[1] * bpp // (1 << 20)
        if heap_mb > MAX_SIM_HEAP_MB:
            raise CommandError(f"{len(frames)} frames of {size[0]}x{size[1]} do not fit the simulator's memory "
                               f"(it holds every frame); simulate at most "
                               f"{len(frames) * MAX_SIM_HEAP_MB // heap_mb} frames at a time")
        run = run_app([(name, job)], board, alloc_checks=alloc_checks, variant=variant, heapsize=f"{heap_mb}M")
    for r in run.results:  # name each message after the frame it classified ("t" is the frame's time)
        k = int(round(json.loads(r.payload).get("t", 0) * fps / 1000))
        if 0 <= k < len(paths):
            r.recording = paths[k].name
    data_messages = iter(run.results)
    for p in run.published:
        if not (p.topic.endswith("/status") or p.topic.endswith("/stats")):
            p.recording = next(data_messages).recording
    run.notes = notes + run.notes
    return run
