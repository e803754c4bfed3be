"""`/config.json` on the device filesystem: which app runs, where it publishes, how fast it samples, its thresholds.

Schema (version 1), every key but `app` optional:

    {
      "schema": 1,
      "app": "soundlevel" | "har" | "imageclass",
      "mqtt": {"host": "192.168.1.10", "port": 1883, "topic_prefix": "tinysense/node1",
               # optional, the device shell's (firmware/apps/shell.py) sending behaviour:
               "qos": 1, "keepalive": 30, "max_rate": 10, "burst": 10, "queue": 100, "inflight": 8,
               "max_payload": 2048, "stats_interval_s": 60},
      "sample_rate": 16000,                 # Hz: audio rate, IMU rate, or camera frames per second
      "thresholds": {"alarm_db": 85.0},     # app-specific names -> numbers
      "models": ["/models/har.trees"],      # filled in by `tinysense bundle` from --model
      "har": {"window": 400, "hop": 10, "classes": ["jumpingjack", ...]}   # the app's own section (optional)
    }

The "har" section (firmware/apps/har.py) is written by `tinysense bundle` from the model's metadata (the .json
beside the model file, as `train` writes it): window, hop, classes, samplerate, sensors (["accel"] or
["accel", "gyro"]), axes, spectral and, for datasets converted to MPU6886 counts, accel_range_g / gyro_range_dps
(the model's inputs are int16 counts at those full-scale ranges; the device sets its IMU to them). Keys given in
the user's config win; a value that contradicts the model (all but hop, which only sets how often to classify) is
an error naming both.

The "imageclass" section (firmware/apps/imageclass.py): labels (the CNN's classes in output order), input ([h, w, 1],
checked against the model), normalize (null | "minmax" | "mean_std", as trained) -- `tinysense bundle` writes these
from the model.json of `train --model cnn` beside the model file -- and threshold (0..1), interval_s + max_messages
(the rate limit: at most max_messages per interval_s), mean/std (for mean_std), frame_size (a camera.FrameSize name,
default R96X96), pixel_format ("GRAYSCALE" | "RGB565"), byteswap. sample_rate is the frame rate (frames/s).

Wi-Fi and broker credentials are not in config.json: they go in `/secrets.json`
(`{"wifi": {"ssid": ..., "password": ...}, "mqtt": {"user": ..., "password": ..., "client_id": ...}}`),
bundled with `--file secrets.json:/secrets.json`.

MQTT topics are `<topic_prefix>/<app>/<kind>` (for example `tinysense/node1/soundlevel/level`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tinysense.errors import CommandError

SCHEMA_VERSION = 1

# app -> (default sample rate, lowest, highest) in Hz
APPS: dict[str, tuple[float, float, float]] = {
    "soundlevel": (16000, 8000, 48000),
    "har": (100, 1, 1000),
    "imageclass": (1, 0.01, 30),
}

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.\-]*[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:]+\]?$")
_TOPIC = re.compile(r"^[A-Za-z0-9_\-./]+$")
_THRESHOLD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(CommandError):
    """A config value that the firmware would not accept."""


def _fail(where: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"config {where}: {problem}; {fix}")


# Optional mqtt keys the device shell reads, with their lowest allowed value (firmware/apps/shell.py DEFAULTS).
MQTT_SHELL_KEYS: dict[str, int] = {
    "qos": 0, "keepalive": 0, "max_rate": 0, "burst": 1, "queue": 1, "inflight": 1, "max_payload": 1,
    "stats_interval_s": 0,
}
# Per-app sections: the keys each app core reads (firmware/apps/*.py, firmware/apps/shell.py).
APP_SECTION_KEYS: dict[str, set[str]] = {
    "soundlevel": {"interval_s", "weighting", "mic_sensitivity_dbfs", "chunk", "n_chunks"},
    "har": {"window", "hop", "classes", "axes", "spectral", "magnitude", "samplerate", "sensors", "accel_range_g",
            "gyro_range_dps"},
    "imageclass": {"labels", "threshold", "interval_s", "max_messages", "normalize", "mean", "std", "input",
                   "frame_size", "pixel_format", "byteswap"},
}


@dataclass(frozen=True)
class MqttConfig:
    host: str = "localhost"
    port: int = 1883
    topic_prefix: str = "tinysense"
    shell: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not _HOST.match(self.host):
            raise _fail("mqtt.host", f"{self.host!r} is not a host name or IP address", "set the broker's address")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise _fail("mqtt.port", f"{self.port!r} is not a TCP port", "use an integer 1-65535 (1883 is MQTT's)")
        prefix = self.topic_prefix
        if not isinstance(prefix, str) or not prefix or not _TOPIC.match(prefix) or prefix.startswith("/") or (
            prefix.endswith("/") or "//" in prefix
        ):
            raise _fail(
                "mqtt.topic_prefix",
                f"{prefix!r} is not a usable topic prefix",
                "use letters, digits, '_', '-', '.' and '/' between levels (no wildcards, no leading/trailing '/')",
            )
        for key, value in self.shell.items():
            low = MQTT_SHELL_KEYS[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (key == "qos" and value > 1):
                raise _fail(f"mqtt.{key}", f"{value!r} is not allowed", f"use an integer >= {low}"
                            + (" (0 or 1)" if key == "qos" else ""))


@dataclass(frozen=True)
class DeviceConfig:
    app: str
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    sample_rate: float | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    models: tuple[str, ...] = ()
    app_settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.app not in APPS:
            raise _fail("app", f"{self.app!r} is not a tinysense app", f"choose one of {', '.join(APPS)}")
        default, low, high = APPS[self.app]
        rate = default if self.sample_rate is None else self.sample_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
            raise _fail("sample_rate", f"{rate!r} is not a number", f"give a rate in Hz between {low:g} and {high:g}")
        if not low <= rate <= high:
            raise _fail(
                "sample_rate", f"{rate:g} Hz is out of range for {self.app}", f"use {low:g} to {high:g} Hz"
            )
        object.__setattr__(self, "sample_rate", rate)
        if not isinstance(self.thresholds, Mapping):
            raise _fail("thresholds", "is not an object", 'write it as {"name": number, ...}')
        for name, value in self.thresholds.items():
            if not isinstance(name, str) or not _THRESHOLD_NAME.match(name):
                raise _fail("thresholds", f"{name!r} is not a valid name", "use letters, digits and '_'")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise _fail(f"thresholds.{name}", f"{value!r} is not a finite number", "give a number")
        object.__setattr__(self, "thresholds", {name: float(value) for name, value in self.thresholds.items()})
        object.__setattr__(self, "models", tuple(self.models))
        if self.app == "har":
            check_har_section(self.app_settings, rate)
        if self.app == "imageclass":
            check_imageclass_section(self.app_settings)

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> DeviceConfig:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: the top level is not a JSON object; write it as {{\"app\": ..., ...}}")
        known = {"schema", "app", "mqtt", "sample_rate", "thresholds", "models", *APP_SECTION_KEYS}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown keys {unknown}; the known keys are {sorted(known)}")
        if data.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise ConfigError(
                f"{source}: schema {data['schema']!r} is not supported; write schema {SCHEMA_VERSION} (or leave it out)"
            )
        if "app" not in data:
            raise ConfigError(f"{source}: no app; add \"app\": one of {', '.join(APPS)} (or pass --app)")
        mqtt = data.get("mqtt", {})
        if not isinstance(mqtt, Mapping):
            raise ConfigError(f"{source}: mqtt is not an object; write it as {{\"host\": ..., \"port\": ...}}")
        unknown = sorted(set(mqtt) - {"host", "port", "topic_prefix", *MQTT_SHELL_KEYS})
        if unknown:
            raise ConfigError(f"{source}: unknown mqtt keys {unknown}; use host, port, topic_prefix, "
                              f"{', '.join(MQTT_SHELL_KEYS)}")
        app = data["app"]
        section = data.get(app, {}) if isinstance(app, str) else {}
        for other in APP_SECTION_KEYS:
            if other != app and other in data:
                raise ConfigError(f"{source}: a \"{other}\" section but the app is {app!r}; remove it or change app")
        if not isinstance(section, Mapping):
            raise ConfigError(f"{source}: {app} is not an object; write it as {{\"key\": value, ...}}")
        unknown = sorted(set(section) - APP_SECTION_KEYS.get(app, set()))
        if unknown:
            raise ConfigError(f"{source}: unknown {app} keys {unknown}; use {sorted(APP_SECTION_KEYS.get(app, ()))}")
        models = data.get("models", ())
        if not isinstance(models, list | tuple) or not all(isinstance(m, str) for m in models):
            raise ConfigError(f"{source}: models is not a list of paths; leave it out, bundle fills it in")
        return cls(
            app=data["app"],
            mqtt=MqttConfig(host=mqtt.get("host", "localhost"), port=mqtt.get("port", 1883),
                            topic_prefix=mqtt.get("topic_prefix", "tinysense"),
                            shell={k: v for k, v in mqtt.items() if k in MQTT_SHELL_KEYS}),
            sample_rate=data.get("sample_rate"),
            thresholds=data.get("thresholds", {}),
            models=tuple(models),
            app_settings=dict(section),
        )

    @classmethod
    def load(cls, path: Path) -> DeviceConfig:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise CommandError(f"config file {path} does not exist; pass the right --config path") from None
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read config file {path} ({error}); check the file") from None
        except json.JSONDecodeError as error:
            raise CommandError(
                f"config file {path} is not valid JSON (line {error.lineno}: {error.msg}); fix the syntax"
            ) from None
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["models"] = list(self.models)
        data["mqtt"].update(data["mqtt"].pop("shell"))
        settings = data.pop("app_settings")
        if settings:
            data[self.app] = settings
        return {"schema": SCHEMA_VERSION, **data}

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n").encode()


# --- the har app's section ---------------------------------------------------------------------------------------

HAR_SENSORS = (["accel"], ["accel", "gyro"])  # what the MPU6886 FIFO can deliver, in its order (firmware/apps/har.py)
ACCEL_RANGES_G = (2, 4, 8, 16)  # firmware/drivers/mpu6886.py
GYRO_RANGES_DPS = (250, 500, 1000, 2000)
HAR_FLEXIBLE = {"hop"}  # model-derived keys a config may change: the hop only sets how often a window is classified


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_har_section(section: Mapping[str, Any], sample_rate: float) -> None:
    """The values HarApp would refuse (or misread), as a ConfigError naming the key."""
    ints = {"window": (4, 4096), "hop": (1, 1 << 30), "axes": (1, 3)}
    for key, (low, high) in ints.items():
        if key in section and not (_is_int(section[key]) and low <= section[key] <= high):
            raise _fail(f"har.{key}", f"{section[key]!r} is not allowed", f"use an integer {low}..{high}")
    classes = section.get("classes", ["x"])
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise _fail("har.classes", f"{classes!r} is not a list of labels", "list the model's classes in its order")
    if "sensors" in section and section["sensors"] not in HAR_SENSORS:
        raise _fail("har.sensors", f"{section['sensors']!r} is not what the MPU6886 FIFO delivers",
                    'use ["accel"] or ["accel", "gyro"]')
    for key, allowed in (("accel_range_g", ACCEL_RANGES_G), ("gyro_range_dps", GYRO_RANGES_DPS)):
        if key in section and (not _is_int(section[key]) or section[key] not in allowed):
            raise _fail(f"har.{key}", f"{section[key]!r} is not a range of the MPU6886",
                        f"use one of {', '.join(map(str, allowed))}")
    for key in ("spectral",):
        if key in section and not isinstance(section[key], bool):
            raise _fail(f"har.{key}", f"{section[key]!r} is not true or false", "write true or false")
    if "samplerate" in section and section["samplerate"] != sample_rate:
        raise _fail("har.samplerate", f"{section['samplerate']!r} Hz differs from sample_rate {sample_rate:g} Hz",
                    "the IMU samples at sample_rate: make them equal (the model's rate)")


def har_section_from_model(meta: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The "har" section that runs a model of `tinysense train` on the device, from its metadata (model.json)."""
    spec = meta.get("features") if isinstance(meta, Mapping) else None
    if not isinstance(spec, Mapping) or "classes" not in meta:
        raise ConfigError(f"{source} is not model metadata from `tinysense train`; put the model.json train wrote "
                          "beside the model file")
    if spec.get("kind") != "c":
        raise ConfigError(f"{source}: the model was trained on ready feature rows, not recordings; the har app needs "
                          "a model trained on IMU recordings")
    groups = [list(g) for g in spec.get("sensors", [])]
    imu = spec.get("imu") or {}
    axes = len(groups[0]) if groups else 0
    names = list(imu.get("sensors") or ["accel", "gyro"][:len(groups)])
    layout = [list(range(k * axes, (k + 1) * axes)) for k in range(len(groups))]
    if not 1 <= axes <= 3 or groups != layout or names not in HAR_SENSORS or len(names) != len(groups):
        raise ConfigError(f"{source}: the model's sensors {groups} (channels {spec.get('channels')}) are not what "
                          "the device's IMU gives (accelerometer x, y, z [+ gyroscope x, y, z]); train on "
                          "recordings in that layout")
    rate = float(spec["samplerate"])
    section: dict[str, Any] = {
        "window": int(spec["window"]), "hop": int(spec["hop"]), "classes": [str(c) for c in meta["classes"]],
        "samplerate": int(rate) if rate.is_integer() else rate, "sensors": names, "axes": axes,
        "spectral": bool(spec.get("spectral", True)),
    }
    for key in ("accel_range_g", "gyro_range_dps"):
        if key in imu:
            section[key] = imu[key]
    return section


def merge_app_section(user: Mapping[str, Any], derived: Mapping[str, Any], app: str, source: str) -> dict[str, Any]:
    """derived (from the model) completed by the user's keys; a user value that contradicts the model is an error."""
    out = dict(derived)
    for key, value in user.items():
        if key in derived and key not in HAR_FLEXIBLE and value != derived[key]:
            raise ConfigError(f"config {app}.{key} is {value!r} but the model {source} needs {derived[key]!r}; "
                              f"remove {app}.{key} from the config or bundle a model trained that way")
        out[key] = value
    return out


# --- the imageclass app's section --------------------------------------------------------------------------------

IMAGECLASS_FRAME_SIZES = ("R96X96", "QQVGA", "R128x128", "QCIF", "HQVGA", "R240X240", "QVGA", "R320X320", "CIF",
                          "HVGA", "VGA", "SVGA", "XGA", "HD", "SXGA", "UXGA")  # camera.FrameSize names (OV2640)
IMAGECLASS_NORMALIZE = (None, "minmax", "mean_std")  # tinysense_image.preprocess


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_imageclass_section(section: Mapping[str, Any]) -> None:
    """The values apps.imageclass / apps.shell would refuse, as a ConfigError naming the key
    (firmware/apps/imageclass.py documents them)."""
    labels = section.get("labels", ["x"])
    if not isinstance(labels, list) or not labels or not all(isinstance(c, str) for c in labels):
        raise _fail("imageclass.labels", f"{labels!r} is not a list of labels", "list the model's classes in order")
    if "threshold" in section and not (_number(section["threshold"]) and 0 <= section["threshold"] <= 1):
        raise _fail("imageclass.threshold", f"{section['threshold']!r} is not a probability", "use 0..1")
    if "interval_s" in section and not (_number(section["interval_s"]) and section["interval_s"] > 0):
        raise _fail("imageclass.interval_s", f"{section['interval_s']!r} is not a positive number", "give seconds")
    if "max_messages" in section and not (_is_int(section["max_messages"]) and section["max_messages"] >= 1):
        raise _fail("imageclass.max_messages", f"{section['max_messages']!r} is not allowed", "use an integer >= 1")
    if section.get("normalize") not in IMAGECLASS_NORMALIZE:
        raise _fail("imageclass.normalize", f"{section['normalize']!r} is not a normalisation",
                    'use null, "minmax" or "mean_std" (as the model was trained)')
    for key, low, high in (("mean", 0, 255), ("std", 1, 255)):
        if key in section and not (_is_int(section[key]) and low <= section[key] <= high):
            raise _fail(f"imageclass.{key}", f"{section[key]!r} is not allowed", f"use an integer {low}..{high}")
    if "frame_size" in section and section["frame_size"] not in IMAGECLASS_FRAME_SIZES:
        raise _fail("imageclass.frame_size", f"{section['frame_size']!r} is not a camera frame size",
                    f"use one of {', '.join(IMAGECLASS_FRAME_SIZES)}")
    if "pixel_format" in section and section["pixel_format"] not in ("GRAYSCALE", "RGB565"):
        raise _fail("imageclass.pixel_format", f"{section['pixel_format']!r} cannot be preprocessed",
                    'use "GRAYSCALE" or "RGB565"')
    shape = section.get("input", [1, 1, 1])
    if not isinstance(shape, list) or len(shape) not in (2, 3) or not all(_is_int(v) and v >= 1 for v in shape) or (
        len(shape) == 3 and shape[2] != 1
    ):
        raise _fail("imageclass.input", f"{shape!r} is not an input size", "write [height, width] or [h, w, 1]")


def imageclass_section_from_model(meta: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The "imageclass" keys a CNN of `tinysense train --model cnn` fixes, from its metadata (model.json)."""
    if not isinstance(meta, Mapping) or meta.get("format") != "tinysense-cnn/1" or "labels" not in meta:
        raise ConfigError(f"{source} is not CNN metadata from `tinysense train --model cnn`; put the model.json "
                          "train wrote beside the model file")
    section: dict[str, Any] = {"labels": [str(c) for c in meta["labels"]], "input": list(meta["input_shape"])}
    if meta.get("normalize"):
        section["normalize"] = meta["normalize"]
    return section
