"""Replay recordings through the device's C code in the host firmware, window by window.

* IMU (.npy, (samples, axes)): windows as the model's metadata says → C features → C trees → class per window.
* audio (.wav, int16 PCM): chunks → C sound level meter (tinysense_soundlevel) → Leq, Lmax (Fast) per chunk in dB SPL.

The model comes from a `tinysense train` folder (model.trees + model.json) or from a bundled LittleFS image
(/config.json names the model; its metadata is /models/<name>.json).
"""

from __future__ import annotations

import json
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from tinysense import host, trees
from tinysense.datasets import read_npy_partial
from tinysense.errors import CommandError
from tinysense.training import FeatureSpec, window_features
from tinysense.windowing import make_windows


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


def model_from_image(image_path: Path) -> DeviceModel:
    """The model named first in /config.json of a bundled image (mounted with the device's parameters)."""
    from tinysense.littlefs_image import geometry_of_image, read_files

    try:
        image = image_path.read_bytes()
        files = read_files(image, geometry_of_image(len(image)))
    except FileNotFoundError:
        raise CommandError(f"image {image_path} does not exist; build it with `tinysense bundle`") from None
    except Exception as error:  # littlefs raises its own errors for a bad image
        raise CommandError(f"{image_path} does not mount as a tinysense filesystem image ({error}); "
                           "rebuild it with `tinysense bundle`") from None
    config = json.loads(files.get("/config.json", b"{}"))
    models = config.get("models") or []
    if not models:
        raise CommandError(f"{image_path}: /config.json lists no model; bundle one with --model")
    name = models[0]
    meta_name = str(PurePosixPath(name).with_suffix(".json"))
    if name not in files or meta_name not in files:
        raise CommandError(f"{image_path}: {name} or its metadata {meta_name} is missing; bundle both "
                           "(--model FILE --file model.json:" + meta_name + ")")
    meta = _check_meta(json.loads(files[meta_name]), f"{image_path}:{meta_name}")
    return DeviceModel(files[name], meta, f"{image_path}:{name}")


@dataclass
class WindowResult:
    recording: str
    index: int
    start_s: float
    value: str  # predicted class, or levels


def simulate_imu(model: DeviceModel, paths: list[Path], *, variant: str = "standard") -> tuple[list[WindowResult],
                                                                                                 list[str]]:
    """Predictions per window of every .npy recording, computed by the C features and C trees in the host firmware."""
    spec = model.spec
    if spec.kind != "c":
        raise CommandError(f"{model.source} was trained on ready feature rows, not recordings; simulate needs a "
                           "model trained on .npy/.csv recordings")
    results: list[WindowResult] = []
    notes: list[str] = []
    for path in paths:
        array, problem = read_npy_partial(path)
        if array is None:
            notes.append(f"{path} {problem}; skipped")
            continue
        if problem:
            notes.append(f"{path} {problem}")
        array = array[:, None] if array.ndim == 1 else array
        if array.ndim != 2 or array.shape[1] != len(spec.channels):
            raise CommandError(f"{path} has shape {array.shape}; the model needs (samples, {len(spec.channels)}) "
                               f"recordings ({', '.join(spec.channels)})")
        if not np.isfinite(np.asarray(array, dtype=np.float64)).all():
            raise CommandError(f"{path} holds NaN or inf samples; drop or interpolate them")
        cut = make_windows([array], spec.window, spec.hop)
        if len(cut.data) == 0:
            notes.append(f"{path}: {len(array)} samples, shorter than the {spec.window}-sample window; no windows")
            continue
        X = window_features(cut.data, spec, variant)
        predicted = trees.predict_on_host(model.model, X, variant=variant)
        for k, (start, p) in enumerate(zip(cut.start, predicted, strict=True)):
            results.append(WindowResult(path.name, k, float(start) / spec.samplerate, model.classes[int(p)]))
    return results, notes


SOUNDLEVEL_SCRIPT = """\
import sys, array, tinysense_soundlevel
x_path, rate, chunk, weighting = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
meter = tinysense_soundlevel.SoundLevel(rate, weighting=weighting, mic_sensitivity_dbfs=float(sys.argv[5]))
buf = array.array('h', bytes(2 * chunk))
with open(x_path, 'rb') as f:
    while True:
        n = f.readinto(buf)
        if n != 2 * chunk:
            break
        meter.reset_interval()
        meter.process(buf)
        print(meter.leq(), meter.lmax())
"""


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


def simulate_audio(paths: list[Path], *, chunk_s: float = 0.125, weighting: str = "A",
                   mic_sensitivity_dbfs: float = -26.0, variant: str = "standard") -> list[WindowResult]:
    """Leq and Lmax (Fast) per chunk of every .wav, computed by the C sound level meter in the host firmware."""
    results: list[WindowResult] = []
    for path in paths:
        samples, rate = read_wav(path)
        chunk = max(1, round(chunk_s * rate))
        with tempfile.TemporaryDirectory(prefix="tinysense-sim-") as tmp:
            d = Path(tmp)
            (d / "x.bin").write_bytes(samples.astype("<i2").tobytes())
            (d / "run.py").write_text(SOUNDLEVEL_SCRIPT)
            proc = host.run([str(d / "run.py"), str(d / "x.bin"), str(rate), str(chunk), weighting,
                             repr(mic_sensitivity_dbfs)], variant=variant)
        if proc.returncode != 0:
            error = proc.stderr.decode(errors="replace").strip().splitlines()
            raise CommandError(f"{path}: the sound level meter refused it ({error[-1] if error else proc.returncode}); "
                               "use 16, 32 or 48 kHz audio")
        for k, line in enumerate(proc.stdout.decode().splitlines()):
            leq, lmax = line.split()
            results.append(WindowResult(path.name, k, k * chunk / rate, f"Leq {_db(leq)} dB, Lmax {_db(lmax)} dB"))
    return results


def _db(text: str) -> str:
    return text if text in ("None", "-inf") else f"{float(text):.1f}"


def label_from_name(name: str, classes: list[str]) -> str | None:
    """The label in a recorder file name (<time>_<label>.npy), when it is one of the model's classes."""
    stem = Path(name).stem
    label = stem.rsplit("_", 1)[-1]
    return label if label in classes else None
