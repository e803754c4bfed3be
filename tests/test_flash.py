"""`tinysense flash` end to end against a simulated ESP32-S3 ROM bootloader (tests/esp_rom_sim.py) on a TCP port:
the bytes that land in the simulated flash equal the inputs at their offsets, and a flash-size mismatch is refused
before any FLASH_BEGIN reaches the device."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from esp_rom_sim import MB, SimulatedEsp32S3

from tinysense.cli import main

SIM_ARGS = ["--no-stub", "--before", "no-reset", "--after", "no-reset"]
FS_OFFSET = 0x200000


def make_firmware(path: Path, size: int = 65536) -> bytes:
    data = b"\x00" + os.urandom(size - 1)  # not 0xE9: esptool would parse (and check) an image header
    path.write_bytes(data)
    return data


def bundle(tmp_path: Path, flash_size: str) -> tuple[Path, bytes]:
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(50000))
    # The bytes are no model, so there is no metadata to fill the app's section from: give it.
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"app": "har", "har": {"window": 128, "hop": 64, "classes": ["rest", "walk"]}}))
    out = tmp_path / f"fs-{flash_size}.bin"
    assert main(["bundle", "--flash-size", flash_size, "--config", str(config), "--model", str(model),
                 "-o", str(out)]) == 0
    return out, out.read_bytes()


def run_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    status = main(argv)
    err = capsys.readouterr().err.strip()
    assert status == 1
    assert len(err.splitlines()) == 1, err
    return err


def test_flash_firmware_and_filesystem(tmp_path: Path) -> None:
    firmware = make_firmware(tmp_path / "firmware.bin")
    fs_path, fs_image = bundle(tmp_path, "4MB")
    with SimulatedEsp32S3(flash_size=4 * MB) as device:
        old = os.urandom(4 * MB)
        device.flash[:] = old  # a previously used chip: everything written must be erased first
        assert main(["flash", "--port", device.url, *SIM_ARGS, "--firmware", str(tmp_path / "firmware.bin"),
                     "--fs", str(fs_path)]) == 0
        # Read back through esptool itself (READ_FLASH_SLOW), independently of the simulator's bytearray.
        readback = tmp_path / "readback.bin"
        subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32s3", "-p", device.url, *SIM_ARGS,
                        "read-flash", hex(FS_OFFSET), "4096", str(readback)], check=True, capture_output=True)
    flash = bytes(device.flash)
    assert flash[: len(firmware)] == firmware
    assert flash[len(firmware) : FS_OFFSET] == old[len(firmware) : FS_OFFSET]  # untouched between the regions
    assert flash[FS_OFFSET:] == fs_image
    assert readback.read_bytes() == fs_image[:4096]
    assert [begin for begin in device.flash_begins if begin[1]] == [(0, len(firmware)), (FS_OFFSET, len(fs_image))]
    assert device.errors == []


def test_flash_size_mismatch_is_refused_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_firmware(tmp_path / "firmware.bin")
    fs_path, _ = bundle(tmp_path, "4MB")
    with SimulatedEsp32S3(flash_size=8 * MB) as device:
        err = run_error(["flash", "--port", device.url, *SIM_ARGS, "--firmware", str(tmp_path / "firmware.bin"),
                         "--fs", str(fs_path)], capsys)
    assert "has 8MB of flash" in err and "built for 4MB" in err and "--flash-size 8MB" in err
    assert "GET_SECURITY_INFO" in device.commands  # it did talk to the device ...
    assert "FLASH_BEGIN" not in device.commands and "FLASH_DATA" not in device.commands  # ... but wrote nothing
    assert device.flash == b"\xff" * (8 * MB)


def test_flash_firmware_only_from_download_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = tmp_path / "cache" / "firmware" / "v0.2.0" / "generic-s3-firmware.bin"
    cached.parent.mkdir(parents=True)
    firmware = make_firmware(cached, 8192)
    monkeypatch.setenv("TINYSENSE_CACHE_DIR", str(tmp_path / "cache"))
    with SimulatedEsp32S3(flash_size=16 * MB) as device:
        assert main(["flash", "--port", device.url, *SIM_ARGS, "--board", "generic-s3"]) == 0
    assert device.flash[:8192] == firmware
    assert device.flash[8192:] == b"\xff" * (16 * MB - 8192)


def image_header(chip_id: int) -> bytes:
    """An ESP-IDF image header (magic 0xE9, no segments, DIO, entry point) with its extended header's chip id."""
    common = struct.pack("<BBBBI", 0xE9, 0, 2, 0x2F, 0x40380000)
    extended = struct.pack("<BBBBHBHH4sB", 0xEE, 0, 0, 0, chip_id, 0, 0, 0xFFFF, bytes(4), 0)
    return common + extended


def test_real_image_header_is_written_unchanged(tmp_path: Path) -> None:
    firmware = image_header(9) + os.urandom(8192 - 24)
    (tmp_path / "firmware.bin").write_bytes(firmware)
    with SimulatedEsp32S3() as device:
        assert main(["flash", "--port", device.url, *SIM_ARGS, "--firmware", str(tmp_path / "firmware.bin")]) == 0
    assert device.flash[:8192] == firmware  # flash mode/size/freq "keep": esptool did not rewrite the header


def test_firmware_for_another_chip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "firmware.bin").write_bytes(image_header(0) + os.urandom(8192 - 24))  # chip id 0: ESP32
    with SimulatedEsp32S3() as device:
        err = run_error(["flash", "--port", device.url, *SIM_ARGS, "--firmware", str(tmp_path / "firmware.bin")],
                        capsys)
    assert "chip id 0, not an ESP32-S3" in err
    assert device.commands == []


def test_silent_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_firmware(tmp_path / "firmware.bin")
    with SimulatedEsp32S3(mute=True) as device:
        err = run_error(["flash", "--port", device.url, *SIM_ARGS, "--connect-attempts", "1",
                         "--firmware", str(tmp_path / "firmware.bin")], capsys)
    assert f"serial port {device.url} does not answer" in err and "download mode" in err


def test_closed_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_firmware(tmp_path / "firmware.bin")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    err = run_error(["flash", "--port", f"socket://127.0.0.1:{port}", *SIM_ARGS,
                     "--firmware", str(tmp_path / "firmware.bin")], capsys)
    assert "does not answer" in err


@pytest.mark.parametrize("case", ["not-littlefs", "odd-size", "missing-fs", "missing-firmware", "huge-firmware",
                                  "nothing", "unknown-board", "not-downloaded"])
def test_bad_input_refused_before_connecting(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    monkeypatch.setenv("TINYSENSE_CACHE_DIR", str(tmp_path / "cache"))
    make_firmware(tmp_path / "firmware.bin")
    fw = ["--firmware", str(tmp_path / "firmware.bin")]
    (tmp_path / "random.bin").write_bytes(os.urandom(2 * MB))
    (tmp_path / "odd.bin").write_bytes(b"\xff" * 1000)
    (tmp_path / "huge.bin").write_bytes(b"\x00" * (FS_OFFSET + 1))
    fs_path, _ = bundle(tmp_path, "4MB")
    args, message = {
        "not-littlefs": ([*fw, "--fs", str(tmp_path / "random.bin")], "does not mount as LittleFS"),
        "odd-size": ([*fw, "--fs", str(tmp_path / "odd.bin")], "fills no vfs partition"),
        "missing-fs": ([*fw, "--fs", str(tmp_path / "nope.bin")], "does not exist"),
        "missing-firmware": (["--firmware", str(tmp_path / "nope.bin")], "tinysense download"),
        "huge-firmware": (["--firmware", str(tmp_path / "huge.bin"), "--fs", str(fs_path)], "overwrite"),
        "nothing": ([], "nothing to write"),
        "unknown-board": (["--board", "esp8266"], "unknown board"),
        "not-downloaded": (["--board", "s3-eye"], "tinysense download --board s3-eye"),
    }[case]
    with SimulatedEsp32S3() as device:
        err = run_error(["flash", "--port", device.url, *SIM_ARGS, *args], capsys)
    assert message in err
    assert device.commands == []
