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
    "har": {"window", "hop", "classes", "axes", "spectral", "magnitude"},
    "imageclass": {"labels", "threshold", "min_interval_s"},
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
