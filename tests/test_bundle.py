"""`tinysense bundle`: the LittleFS image mounts with the device's parameters (checked with littlefs-python itself),
every file reads back, config.json is validated, --merged puts firmware at 0x0 and the filesystem at 0x200000."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import littlefs
import pytest
from esp_rom_sim import MB, SimulatedEsp32S3

from tinysense.cli import main
from tinysense.device_config import DeviceConfig, MqttConfig
from tinysense.errors import CommandError

# What MicroPython's esp32 port uses for the vfs partition (../shared/ARCHITECTURE.md), written out independently of
# tinysense.littlefs_image.
DEVICE_LFS = {"block_size": 4096, "read_size": 32, "prog_size": 32, "lookahead_size": 32, "name_max": 255}
BLOCK_COUNTS = {"4MB": 512, "8MB": 1536, "16MB": 3584}


def mount_like_device(image: bytes, block_count: int) -> littlefs.LittleFS:
    fs = littlefs.LittleFS(context=littlefs.UserContext(buffer=bytearray(image)), mount=False,
                           block_count=block_count, **DEVICE_LFS)
    fs.mount()  # raises on a bad image (mount=False: never formats)
    return fs


def all_files(fs: littlefs.LittleFS) -> dict[str, bytes]:
    files = {}
    for top, _dirs, names in fs.walk("/"):
        for name in names:
            path = f"{top.rstrip('/')}/{name}"
            with fs.open(path, "rb") as handle:
                files[path] = handle.read()
    return files


def no_leftovers(directory: Path, expected: set[str]) -> None:
    assert {p.name for p in directory.iterdir()} == expected


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    models = tmp_path / "in"
    models.mkdir()
    (models / "har.trees").write_bytes(os.urandom(20000))
    (models / "scaler.bin").write_bytes(bytes(range(256)) * 4)
    (models / "main.py").write_text("import apps.har\napps.har.main({})\n")
    (models / "labels.txt").write_text("walk\nrun\nsit\n")
    config = {"app": "har", "mqtt": {"host": "broker.local", "port": 8883, "topic_prefix": "lab/node1"},
              "sample_rate": 50, "thresholds": {"min_confidence": 0.6}}
    (models / "config.json").write_text(json.dumps(config))
    return {name.stem if name.suffix != ".json" else "config": name for name in models.iterdir()}


@pytest.mark.parametrize("flash_size", ["4MB", "8MB", "16MB"])
def test_image_mounts_with_device_parameters_and_reads_back(tmp_path: Path, inputs: dict[str, Path],
                                                            flash_size: str) -> None:
    out = tmp_path / "out" / "fs.bin"
    status = main(["bundle", "--flash-size", flash_size, "-o", str(out), "--config", str(inputs["config"]),
                   "--model", str(inputs["har"]), "--model", str(inputs["scaler"]), "--main", str(inputs["main"]),
                   "--file", f"{inputs['labels']}:/data/labels.txt", "--threshold", "min_votes=3"])
    assert status == 0
    image = out.read_bytes()
    assert len(image) == BLOCK_COUNTS[flash_size] * 4096
    no_leftovers(out.parent, {"fs.bin"})

    fs = mount_like_device(image, BLOCK_COUNTS[flash_size])
    stat = fs.fs_stat()
    assert (stat.block_size, stat.block_count, stat.disk_version, stat.name_max) == (
        4096, BLOCK_COUNTS[flash_size], 0x00020001, 255)
    files = all_files(fs)
    assert set(files) == {"/config.json", "/main.py", "/models/har.trees", "/models/scaler.bin", "/data/labels.txt"}
    assert files["/models/har.trees"] == inputs["har"].read_bytes()
    assert files["/models/scaler.bin"] == inputs["scaler"].read_bytes()
    assert files["/main.py"] == inputs["main"].read_bytes()
    assert files["/data/labels.txt"] == inputs["labels"].read_bytes()
    assert json.loads(files["/config.json"]) == {
        "schema": 1, "app": "har", "mqtt": {"host": "broker.local", "port": 8883, "topic_prefix": "lab/node1"},
        "sample_rate": 50, "thresholds": {"min_confidence": 0.6, "min_votes": 3.0},
        "models": ["/models/har.trees", "/models/scaler.bin"],
    }

    # The superblock itself records the geometry: littlefs finds the same block count when asked to detect it.
    detected = littlefs.LittleFS(context=littlefs.UserContext(buffer=bytearray(image)), mount=False,
                                 block_count=0, **DEVICE_LFS)
    detected.mount()
    assert detected.block_count == BLOCK_COUNTS[flash_size]


def test_generated_main_and_cli_config(tmp_path: Path) -> None:
    out = tmp_path / "fs.bin"
    assert main(["bundle", "--flash-size", "4mb", "-o", str(out), "--app", "soundlevel", "--mqtt-host", "10.0.0.2",
                 "--topic-prefix", "home/kitchen", "--threshold", "alarm_db=85"]) == 0
    files = all_files(mount_like_device(out.read_bytes(), 512))
    assert set(files) == {"/config.json", "/main.py"}
    config = json.loads(files["/config.json"])
    assert config["app"] == "soundlevel"
    assert config["mqtt"] == {"host": "10.0.0.2", "port": 1883, "topic_prefix": "home/kitchen"}
    assert config["sample_rate"] == 16000
    assert config["thresholds"] == {"alarm_db": 85.0}
    compile(files["/main.py"], "main.py", "exec")  # a valid Python (and MicroPython) program
    assert b'shell.main("/config.json", "/secrets.json")' in files["/main.py"]


def test_merged_image_has_firmware_at_0_and_fs_at_0x200000(tmp_path: Path) -> None:
    firmware = tmp_path / "firmware.bin"
    firmware.write_bytes(b"\x00" + os.urandom(65535))  # not 0xE9: esptool would parse an image header
    fs_path, merged = tmp_path / "fs.bin", tmp_path / "full.bin"
    assert main(["bundle", "--flash-size", "4MB", "--app", "har", "-o", str(fs_path), "--merged", str(merged),
                 "--firmware", str(firmware)]) == 0
    full, fs_image = merged.read_bytes(), fs_path.read_bytes()
    assert len(full) == 4 * MB
    assert full[:65536] == firmware.read_bytes()
    assert full[65536:0x200000] == b"\xff" * (0x200000 - 65536)
    assert full[0x200000:] == fs_image
    assert "/config.json" in all_files(mount_like_device(full[0x200000:], 512))
    no_leftovers(tmp_path, {"firmware.bin", "fs.bin", "full.bin"})


def test_merged_with_downloaded_firmware(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = tmp_path / "cache" / "firmware" / "v1.0.0" / "atoms3-firmware.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"\x01" * 4096)
    monkeypatch.setenv("TINYSENSE_CACHE_DIR", str(tmp_path / "cache"))
    merged = tmp_path / "full.bin"
    assert main(["bundle", "--flash-size", "8MB", "--app", "har", "-o", str(tmp_path / "fs.bin"),
                 "--merged", str(merged), "--board", "atoms3"]) == 0
    full = merged.read_bytes()
    assert len(full) == 8 * MB and full[:4096] == b"\x01" * 4096


def test_flash_size_detected_from_the_device(tmp_path: Path) -> None:
    out = tmp_path / "fs.bin"
    with SimulatedEsp32S3(flash_size=8 * MB) as device:
        assert main(["bundle", "--port", device.url, "--no-stub", "--before", "no-reset", "--after", "no-reset",
                     "--app", "imageclass", "-o", str(out)]) == 0
    assert "FLASH_BEGIN" not in device.commands
    assert mount_like_device(out.read_bytes(), 1536).fs_stat().block_count == 1536


def run_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    status = main(argv)
    err = capsys.readouterr().err.strip()
    assert status == 1
    assert len(err.splitlines()) == 1, err
    return err


def test_image_bigger_than_partition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fs.bin"
    out.write_bytes(b"previous image")
    huge = tmp_path / "huge.bin"
    huge.write_bytes(os.urandom(3 * MB))
    err = run_error(["bundle", "--flash-size", "4MB", "--app", "har", "--model", str(huge), "-o", str(out)], capsys)
    assert "bigger --flash-size" in err and "4MB" in err
    assert out.read_bytes() == b"previous image"  # the old output is left as it was
    no_leftovers(tmp_path, {"fs.bin", "huge.bin"})


def test_files_that_only_fail_inside_littlefs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Smaller than the partition, but not with littlefs's metadata: the NOSPC path.
    almost = tmp_path / "almost.bin"
    almost.write_bytes(os.urandom(2 * MB - 4096))
    err = run_error(["bundle", "--flash-size", "4MB", "--app", "har", "--model", str(almost),
                     "-o", str(tmp_path / "fs.bin")], capsys)
    assert "do not fit" in err and "bigger --flash-size" in err
    no_leftovers(tmp_path, {"almost.bin"})


@pytest.mark.parametrize(("extra", "message"), [
    (["--model", "missing.trees"], "model file missing.trees does not exist"),
    (["--main", "nope.py"], "main.py nope.py does not exist"),
    (["--file", "nope.txt:/x.txt"], "file nope.txt does not exist"),
    (["--config", "nope.json"], "config file nope.json does not exist"),
    (["--mqtt-port", "70000"], "mqtt.port"),
    (["--sample-rate", "5"], "sample_rate"),
    (["--topic-prefix", "a/#"], "topic_prefix"),
    (["--threshold", "alarm"], "NAME=NUMBER"),
    (["--file", "in.txt:relative/x"], None),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch, extra: list[str],
                                                  message: str | None) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("x")
    err = run_error(["bundle", "--flash-size", "4MB", "--app", "soundlevel", "-o", "fs.bin", *extra], capsys)
    if message is not None:
        assert message in err
    no_leftovers(tmp_path, {"in.txt"})


def test_missing_flash_size_and_app(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "--flash-size" in run_error(["bundle", "--app", "har", "-o", str(tmp_path / "a.bin")], capsys)
    assert "--app" in run_error(["bundle", "--flash-size", "4MB", "-o", str(tmp_path / "a.bin")], capsys)
    no_leftovers(tmp_path, set())


def test_bad_config_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "syntax.json": ('{"app": "har",', "not valid JSON"),
        "app.json": ('{"app": "kws"}', "soundlevel, har, imageclass"),
        "typo.json": ('{"app": "har", "treshold": {}}', "unknown keys ['treshold']"),
        "port.json": ('{"app": "har", "mqtt": {"port": "1883"}}', "mqtt.port"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        err = run_error(["bundle", "--flash-size", "4MB", "--config", str(tmp_path / name),
                         "-o", str(tmp_path / "fs.bin")], capsys)
        assert message in err, err
    assert not (tmp_path / "fs.bin").exists()


def test_unknown_board_for_merged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = run_error(["bundle", "--flash-size", "4MB", "--app", "har", "-o", str(tmp_path / "fs.bin"),
                     "--merged", str(tmp_path / "full.bin"), "--board", "esp8266"], capsys)
    assert "unknown board 'esp8266'" in err
    no_leftovers(tmp_path, set())


def test_silent_port_when_detecting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SimulatedEsp32S3(mute=True) as device:
        err = run_error(["bundle", "--port", device.url, "--connect-attempts", "1", "--app", "har",
                         "-o", str(tmp_path / "fs.bin")], capsys)
    assert "does not answer" in err and "download mode" in err
    no_leftovers(tmp_path, set())


def test_device_config_validation() -> None:
    assert DeviceConfig("har").sample_rate == 100
    assert DeviceConfig.from_dict({"app": "imageclass", "sample_rate": 0.5}).sample_rate == 0.5
    for bad in [
        lambda: DeviceConfig("kws"),
        lambda: DeviceConfig("har", sample_rate=5000),
        lambda: DeviceConfig("har", thresholds={"x": float("nan")}),
        lambda: DeviceConfig("har", thresholds={"bad name": 1.0}),
        lambda: MqttConfig(port=0),
        lambda: MqttConfig(host="a host"),
        lambda: MqttConfig(topic_prefix="/abs"),
        lambda: DeviceConfig.from_dict(["app"]),
        lambda: DeviceConfig.from_dict({"app": "har", "schema": 2}),
        lambda: DeviceConfig.from_dict({"app": "har", "mqtt": {"broker": "x"}}),
    ]:
        with pytest.raises(CommandError):
            bad()
    config = DeviceConfig.from_dict({"app": "har", "mqtt": {"host": "::1"}, "thresholds": {"a": 1}})
    assert DeviceConfig.from_dict(json.loads(config.to_json())) == config


@pytest.mark.parametrize("command", ["bundle", "flash", "download"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: tinysense {command}" in capsys.readouterr().out


def test_config_carries_the_shell_settings_and_the_app_section() -> None:
    data = {"app": "har", "mqtt": {"host": "broker.lan", "qos": 0, "queue": 50},
            "har": {"window": 400, "hop": 10, "classes": ["lunge", "squat"]}}
    config = DeviceConfig.from_dict(data)
    out = config.to_dict()
    assert out["mqtt"] == {"host": "broker.lan", "port": 1883, "topic_prefix": "tinysense", "qos": 0, "queue": 50}
    assert out["har"] == data["har"]
    assert DeviceConfig.from_dict(out) == config


@pytest.mark.parametrize(("data", "message"), [
    ({"app": "har", "mqtt": {"qos": 2}}, "mqtt.qos"),
    ({"app": "har", "mqtt": {"queue": 0}}, "mqtt.queue"),
    ({"app": "har", "har": {"window": 400, "stride": 5}}, "unknown har keys ['stride']"),
    ({"app": "har", "soundlevel": {"interval_s": 1}}, 'a "soundlevel" section but the app is \'har\''),
    ({"app": "har", "har": [400]}, "har is not an object"),
])
def test_config_rejects_bad_shell_settings_and_sections(data: dict, message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        DeviceConfig.from_dict(data)


def har_model(folder: Path, **spec_changes: object) -> Path:
    """A model file with the metadata `tinysense train` writes beside it (accelerometer + gyroscope counts)."""
    from tinysense.datasets import BASIC_MOTIONS_IMU
    from tinysense.training import FeatureSpec

    spec = FeatureSpec("c", 10.0, 50, 10, [[0, 1, 2], [3, 4, 5]], ["ax", "ay", "az", "gx", "gy", "gz"], True,
                       imu=dict(BASIC_MOTIONS_IMU))
    features = {**spec.to_dict(), **spec_changes}
    folder.mkdir(exist_ok=True)
    (folder / "har.trees").write_bytes(os.urandom(600))
    (folder / "har.json").write_text(json.dumps({"classes": ["Badminton", "Running", "Standing", "Walking"],
                                                 "features": features}))
    return folder / "har.trees"


def bundled_config(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "fs.bin"
    assert main(["bundle", "--flash-size", "4MB", "-o", str(out), *args]) == 0
    return json.loads(all_files(mount_like_device(out.read_bytes(), 512))["/config.json"])


def test_har_section_comes_from_the_model_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = har_model(tmp_path / "m")
    config = bundled_config(tmp_path, "--app", "har", "--model", str(model))
    assert config["sample_rate"] == 10 and config["models"] == ["/models/har.trees"]
    assert config["har"] == {"window": 50, "hop": 10, "classes": ["Badminton", "Running", "Standing", "Walking"],
                             "samplerate": 10, "sensors": ["accel", "gyro"], "axes": 3, "spectral": True,
                             "accel_range_g": 8, "gyro_range_dps": 2000}
    assert "warning" not in capsys.readouterr().err
    # the user's keys win where they agree with the model; the hop (how often to classify) is the user's choice
    (tmp_path / "c.json").write_text(json.dumps({"app": "har", "sample_rate": 10,
                                                 "har": {"hop": 5, "window": 50, "sensors": ["accel", "gyro"]}}))
    config = bundled_config(tmp_path, "--config", str(tmp_path / "c.json"), "--model", str(model))
    assert config["har"]["hop"] == 5 and config["har"]["window"] == 50 and config["har"]["gyro_range_dps"] == 2000
    # an accelerometer-only model of the device recorder (counts at unknown ranges: the device's defaults)
    model = har_model(tmp_path / "acc", sensors=[[0, 1, 2]], channels=["x", "y", "z"], imu=None, samplerate=100.0,
                      window=400)
    config = bundled_config(tmp_path, "--app", "har", "--model", str(model))
    assert config["sample_rate"] == 100 and config["har"]["sensors"] == ["accel"] and config["har"]["window"] == 400
    assert "accel_range_g" not in config["har"]


@pytest.mark.parametrize(("config", "extra", "message"), [
    ({"har": {"window": 40}}, [], "config har.window is 40 but the model"),
    ({"har": {"classes": ["a", "b"]}}, [], "config har.classes is ['a', 'b'] but the model"),
    ({"har": {"accel_range_g": 2}}, [], "config har.accel_range_g is 2 but the model"),
    ({"sample_rate": 50}, [], "sample_rate is 50 Hz but the model"),
    ({}, ["--sample-rate", "100"], "sample_rate is 100 Hz but the model"),
])
def test_har_section_conflicts_name_both_values(tmp_path: Path, capsys: pytest.CaptureFixture[str], config: dict,
                                                 extra: list[str], message: str) -> None:
    model = har_model(tmp_path / "m")
    (tmp_path / "c.json").write_text(json.dumps({"app": "har", **config}))
    err = run_error(["bundle", "--flash-size", "4MB", "-o", str(tmp_path / "fs.bin"), "--config",
                     str(tmp_path / "c.json"), "--model", str(model), *extra], capsys)
    assert message in err and ("needs" in err or "trained at 10" in err), err
    assert not (tmp_path / "fs.bin").exists()


def test_har_models_the_device_cannot_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bundle", "--flash-size", "4MB", "-o", str(tmp_path / "fs.bin"), "--app", "har", "--model"]
    model = har_model(tmp_path / "raw", kind="raw")
    assert "ready feature rows" in run_error([*args, str(model)], capsys)
    model = har_model(tmp_path / "three", sensors=[[0, 1, 2], [3, 4, 5], [6, 7, 8]], imu=None)
    assert "not what the device's IMU gives" in run_error([*args, str(model)], capsys)
    # no metadata and no har section: bundled, with a warning that the device will refuse to start
    bare = tmp_path / "bare.trees"
    bare.write_bytes(b"x" * 100)
    assert main([*args, str(bare)]) == 0
    err = capsys.readouterr().err
    assert "warning: the har section lacks window, hop, classes" in err and "bare.json" in err


@pytest.mark.parametrize(("section", "message"), [
    ({"sensors": ["gyro"]}, "har.sensors"),
    ({"accel_range_g": 3}, "har.accel_range_g"),
    ({"gyro_range_dps": "2000"}, "har.gyro_range_dps"),
    ({"window": 2}, "har.window"),
    ({"classes": []}, "har.classes"),
    ({"samplerate": 50}, "har.samplerate"),
])
def test_har_section_values_the_app_would_refuse(section: dict, message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        DeviceConfig.from_dict({"app": "har", "sample_rate": 10, "har": section})


def test_model_metadata_goes_into_the_image_beside_the_model(tmp_path: Path) -> None:
    # The <model>.json train wrote travels with the model (simulate --image and the device read it there); an
    # explicit --file to the same destination wins.
    model = har_model(tmp_path / "model")
    out = tmp_path / "fs.bin"
    assert main(["bundle", "--flash-size", "4MB", "--app", "har", "--model", str(model), "-o", str(out)]) == 0
    files = all_files(mount_like_device(out.read_bytes(), 512))
    assert files["/models/har.json"] == model.with_suffix(".json").read_bytes()
    assert files["/models/har.trees"] == model.read_bytes()
    other = tmp_path / "other.json"
    other.write_text('{"mine": 1}')
    assert main(["bundle", "--flash-size", "4MB", "--app", "har", "--model", str(model),
                 "--file", f"{other}:/models/har.json", "-o", str(out)]) == 0
    assert json.loads(all_files(mount_like_device(out.read_bytes(), 512))["/models/har.json"]) == {"mine": 1}
