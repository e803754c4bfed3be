"""boards/: each board folder configures like the esp32 port would read it, and its pin table fits the drivers.

The esp32 port cannot be configured here (no ESP-IDF), so boards/probe_board.cmake includes a board's
mpconfigboard.cmake (and variant file) in CMake script mode with the port's variables stubbed, and prints what the
port reads back. Paths relative to ports/esp32 are upstream fragments: only their names are checked, against the
files of the esp32 port at the pinned release; paths into the repository must exist. Each check is also shown to
fail on a broken copy of a board.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tinysense.boards import (
    DRIVER_REQUIRED_PINS,
    IMAGES,
    PIN_TABLE,
    board_folders,
    board_image,
    check_board,
    known_boards,
    missing_pins,
    read_pin_table,
)
from tinysense.errors import CommandError
from tinysense.paths import REPO

BOARDS = REPO / "boards"
PROBE = BOARDS / "probe_board.cmake"
STUB_PORT = "/stub/micropython/ports/esp32"
# Fragments of ports/esp32/boards/ (MicroPython v1.28) our boards may name, and the port's partition tables.
UPSTREAM_SDKCONFIG = {"sdkconfig.base", "sdkconfig.idf52", "sdkconfig.usb", "sdkconfig.ble", "sdkconfig.spiram_sx",
                      "sdkconfig.spiram_oct", "sdkconfig.240mhz"}
UPSTREAM_PARTITIONS = {"partitions-4MiBplus.csv"}
CONFIG_LINE = re.compile(r'^CONFIG_[A-Z0-9_]+=(|y|n|-?[0-9]+|0x[0-9A-Fa-f]+|"[^"]*")$')
# ESP32-S3 GPIOs (22-25 do not exist); 26-32 drive the SPI flash, 33-37 octal PSRAM.
S3_GPIOS = set(range(0, 22)) | set(range(26, 49))
FLASH_GPIOS = set(range(26, 33))
OCTAL_PSRAM_GPIOS = set(range(33, 38))
PIN_KEYS = re.compile(r"(^|_)(pin|pins|scl|sda|sck|ws|sd)$")


def probe(board_dir: Path, variant: str | None = None) -> dict[str, str]:
    cmd = ["cmake", f"-DBOARD_DIR={board_dir}", f"-DPORT_DIR={STUB_PORT}"]
    if variant:
        cmd.append(f"-DVARIANT={variant}")
    proc = subprocess.run([*cmd, "-P", str(PROBE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    values = {}
    for line in proc.stdout.splitlines():
        if "@@probe " in line:
            key, _, value = line.split("@@probe ", 1)[1].partition("=")
            values[key] = value
    return values


def board_config_problems(board_dir: Path, variant: str | None = None, repo: Path = REPO) -> list[str]:
    """What is wrong with a board folder as the esp32 port would read it (empty: nothing)."""
    values = probe(board_dir, variant)
    problems = []
    if values.get("IDF_TARGET") != "esp32s3":
        problems.append(f"IDF_TARGET is {values.get('IDF_TARGET')!r}, not esp32s3")
    defaults = [entry for entry in values.get("SDKCONFIG_DEFAULTS", "").split(";") if entry]
    if not defaults:
        problems.append("SDKCONFIG_DEFAULTS is empty")
    for entry in defaults:
        path = Path(entry)
        if not path.is_absolute():
            if path.parent != Path("boards") or path.name not in UPSTREAM_SDKCONFIG:
                problems.append(f"{entry}: not an esp32 port fragment ({', '.join(sorted(UPSTREAM_SDKCONFIG))})")
        elif path.is_relative_to(repo):
            if not path.is_file():
                problems.append(f"{entry} does not exist")
        else:
            problems.append(f"{entry}: absolute path outside the repository")
    if not any(Path(entry).is_absolute() for entry in defaults):
        problems.append("SDKCONFIG_DEFAULTS names none of the board's own fragments")
    manifest = values.get("MICROPY_FROZEN_MANIFEST", "")
    if not manifest or not Path(manifest).is_relative_to(repo) or not Path(manifest).is_file():
        problems.append(f"MICROPY_FROZEN_MANIFEST {manifest!r} is not a manifest in the repository")
    for definition in filter(None, values.get("MICROPY_DEF_BOARD", "").split(";")):
        if not re.fullmatch(r'[A-Z0-9_]+=("[^"]*"|[^"\s]+)', definition):
            problems.append(f"MICROPY_DEF_BOARD entry {definition!r} is not NAME=VALUE")
    for directory in filter(None, values.get("EXTRA_COMPONENT_DIRS", "").split(";")):
        if not (Path(directory) / "CMakeLists.txt").is_file():
            problems.append(f"EXTRA_COMPONENT_DIRS {directory} is not an IDF component")
    return problems


def sdkconfig_problems(path: Path) -> list[str]:
    problems = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#") and not CONFIG_LINE.match(line):
            problems.append(f"{path.name}:{number}: {raw!r} is not a CONFIG_...= line")
        match = re.match(r'^CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="(.*)"$', line)
        if match and match.group(1) not in UPSTREAM_PARTITIONS:
            problems.append(f"{path.name}:{number}: partition table {match.group(1)} is not one of the port's")
    return problems


def pin_problems(table: dict, octal_psram: bool) -> list[str]:
    problems = []
    drivers = table.get("DRIVERS")
    if not isinstance(drivers, tuple) or not drivers:
        return ["DRIVERS must be a non-empty tuple of driver names"]
    for driver in drivers:
        if driver not in DRIVER_REQUIRED_PINS:
            problems.append(f"unknown driver {driver!r}")
        else:
            problems += [f"{driver} needs {entry}" for entry in missing_pins(table, driver)]
    for group, entries in table.items():
        if not isinstance(entries, dict):
            continue
        for key, value in entries.items():
            if not PIN_KEYS.search(key):
                continue
            for pin in value if isinstance(value, list) else [value]:
                if pin == -1 and key in ("powerdown_pin", "reset_pin"):
                    continue
                if not isinstance(pin, int) or pin not in S3_GPIOS or pin in FLASH_GPIOS:
                    problems.append(f"{group}.{key}: {pin!r} is not a free ESP32-S3 GPIO")
                elif octal_psram and pin in OCTAL_PSRAM_GPIOS:
                    problems.append(f"{group}.{key}: GPIO{pin} belongs to the octal PSRAM")
    return problems


def uses_octal_psram(board_dir: Path) -> bool:
    return "sdkconfig.spiram_oct" in (board_dir / "mpconfigboard.cmake").read_text(encoding="utf-8")


IMAGE_NAMES = sorted(IMAGES)
FOLDERS = [folder.name for folder in board_folders()]


def test_every_planned_image_has_its_board_folder_and_variant() -> None:
    assert {"generic-s3", "generic-s3-spiram-oct", "atoms3", "s3-eye"} <= set(IMAGES)
    for image in IMAGES.values():
        folder = BOARDS / image.folder
        assert (folder / "mpconfigboard.cmake").is_file() and (folder / "mpconfigboard.h").is_file(), image
        assert (folder / PIN_TABLE).is_file() and (folder / "manifest.py").is_file(), image
        if image.variant:
            assert (folder / f"mpconfigvariant_{image.variant}.cmake").is_file(), image
    assert set(FOLDERS) <= set(known_boards())
    assert board_image("generic-s3-spiram-oct").variant == "SPIRAM_OCT"
    with pytest.raises(CommandError, match="unknown board"):
        check_board("esp32-cam")


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_board_configures_for_esp32s3_with_existing_files(name: str) -> None:
    image = IMAGES[name]
    assert board_config_problems(BOARDS / image.folder, image.variant) == []


def test_the_variant_adds_octal_psram_and_the_camera_board_its_component() -> None:
    oct_defaults = probe(BOARDS / "generic-s3", "SPIRAM_OCT")["SDKCONFIG_DEFAULTS"].split(";")
    assert "boards/sdkconfig.spiram_oct" in oct_defaults
    assert "boards/sdkconfig.spiram_oct" not in probe(BOARDS / "generic-s3")["SDKCONFIG_DEFAULTS"].split(";")
    eye = probe(BOARDS / "s3-eye")
    assert eye["MICROPY_CAMERA_MODEL"] == "ESP32S3_EYE"
    component = Path(eye["EXTRA_COMPONENT_DIRS"]) / "idf_component.yml"
    assert re.search(r'espressif/esp32-camera:\s*"==\d+\.\d+\.\d+"', component.read_text(encoding="utf-8"))


def test_config_check_fails_on_a_broken_board(tmp_path: Path) -> None:
    board = tmp_path / "boards" / "broken"
    shutil.copytree(BOARDS / "atoms3", board)
    (board / "sdkconfig.board").unlink()
    assert any("sdkconfig.board does not exist" in p for p in board_config_problems(board, repo=tmp_path))
    cmake = board / "mpconfigboard.cmake"
    text = cmake.read_text(encoding="utf-8")
    cmake.write_text(text.replace("boards/sdkconfig.usb", "boards/sdkconfig.nousb")
                     .replace("set(IDF_TARGET esp32s3)", "set(IDF_TARGET esp32)"), encoding="utf-8")
    problems = board_config_problems(board, repo=tmp_path)
    assert any("IDF_TARGET is 'esp32'" in p for p in problems)
    assert any("boards/sdkconfig.nousb: not an esp32 port fragment" in p for p in problems)
    (board / "manifest.py").unlink()
    assert any("MICROPY_FROZEN_MANIFEST" in p for p in board_config_problems(board, repo=tmp_path))


@pytest.mark.parametrize("folder", FOLDERS)
def test_sdkconfig_fragments_hold_only_config_lines(folder: str) -> None:
    fragments = sorted((BOARDS / folder).glob("sdkconfig.*"))
    assert fragments
    for fragment in fragments:
        assert sdkconfig_problems(fragment) == []


def test_sdkconfig_check_fails_on_other_lines(tmp_path: Path) -> None:
    fragment = tmp_path / "sdkconfig.board"
    fragment.write_text('CONFIG_SPIRAM=y\nSPIRAM=y\nCONFIG_X = 1\n'
                        'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="mine.csv"\n', encoding="utf-8")
    problems = sdkconfig_problems(fragment)
    assert len(problems) == 3 and "SPIRAM=y" in problems[0] and "mine.csv" in problems[2]


@pytest.mark.parametrize("folder", FOLDERS)
def test_pin_table_gives_each_driver_its_pins(folder: str) -> None:
    table = read_pin_table(BOARDS / folder / PIN_TABLE)
    assert table["BOARD"] in known_boards()
    assert pin_problems(table, uses_octal_psram(BOARDS / folder)) == []
    # machine.I2C(0)'s default pins in mpconfigboard.h are the table's I2C pins.
    header = (BOARDS / folder / "mpconfigboard.h").read_text(encoding="utf-8")
    for key in ("scl", "sda"):
        match = re.search(rf"MICROPY_HW_I2C0_{key.upper()}\s+\((\d+)\)", header)
        assert match and int(match.group(1)) == table["I2C"][key], (folder, key)


def test_board_drivers_match_the_hardware() -> None:
    assert "mpu6886" in read_pin_table(BOARDS / "atoms3" / PIN_TABLE)["DRIVERS"]
    eye = read_pin_table(BOARDS / "s3-eye" / PIN_TABLE)
    assert {"i2s_mic", "camera"} <= set(eye["DRIVERS"]) and len(eye["CAMERA"]["data_pins"]) == 8


def test_pin_check_fails_on_a_broken_table(tmp_path: Path) -> None:
    pins = tmp_path / PIN_TABLE
    text = (BOARDS / "s3-eye" / PIN_TABLE).read_text(encoding="utf-8")
    pins.write_text(text.replace('"sck": 41, ', "").replace('"vsync_pin": 6', '"vsync_pin": 35'), encoding="utf-8")
    problems = pin_problems(read_pin_table(pins), octal_psram=True)
    assert "i2s_mic needs I2S_MIC.sck" in problems
    assert any("GPIO35 belongs to the octal PSRAM" in p for p in problems)
    pins.write_text('DRIVERS = ("mpu6886", "lidar")\nI2C = {"scl": 23, "sda": 8}\n', encoding="utf-8")
    problems = pin_problems(read_pin_table(pins), octal_psram=False)
    assert "unknown driver 'lidar'" in problems and "mpu6886 needs IMU.addr" in problems
    assert any("I2C.scl: 23" in p for p in problems)
    pins.write_text("import machine\nI2C = machine.I2C(0)\n", encoding="utf-8")
    with pytest.raises(ValueError, match="only `NAME = literal`"):
        read_pin_table(pins)


CAMERA_STUB = """\
# Stand-in for micropython-camera-API's micropython.cmake: what matters here is that it overrides the manifest.
include(${MICROPY_DIR}/py/py.cmake)
set(MICROPY_FROZEN_MANIFEST ${CMAKE_CURRENT_LIST_DIR}/manifest.py)
add_library(usermod_mp_camera INTERFACE)
idf_component_get_property(camera_dir esp32-camera COMPONENT_DIR)
target_include_directories(usermod_mp_camera INTERFACE ${camera_dir}/driver/include)
target_link_libraries(usermod INTERFACE usermod_mp_camera)
micropy_gather_target_properties(usermod_mp_camera)
"""

PROJECT = """\
cmake_minimum_required(VERSION 3.12)
project(usermods_probe NONE)
add_library(usermod INTERFACE)
function(idf_component_get_property var component property)
    set(${var} /stub/managed_components/espressif__esp32-camera PARENT_SCOPE)
endfunction()
set(MICROPY_FROZEN_MANIFEST ${OUR_MANIFEST})
include(${USERMODS})
get_target_property(libs usermod INTERFACE_LINK_LIBRARIES)
message(STATUS "@@probe MICROPY_FROZEN_MANIFEST=${MICROPY_FROZEN_MANIFEST}")
message(STATUS "@@probe LIBS=${libs}")
"""


def configure_usermods(tmp_path: Path, usermods: Path, camera_dir: Path | None) -> subprocess.CompletedProcess[str]:
    """Configure (CMake, no compiler) a project that includes a board's USER_C_MODULES file as the port would."""
    stub_mpy = tmp_path / "micropython"
    (stub_mpy / "py").mkdir(parents=True, exist_ok=True)
    (stub_mpy / "py" / "py.cmake").write_text("function(micropy_gather_target_properties target)\nendfunction()\n")
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "CMakeLists.txt").write_text(PROJECT, encoding="utf-8")
    emlearn = REPO / ".cache" / "emlearn-0.23.2" / "emlearn"
    if not (emlearn / "eml_common.h").is_file():
        emlearn = Path(subprocess.run(["python3", str(REPO / "tools" / "fetch_sources.py"), "emlearn"],
                                      capture_output=True, text=True, check=True, timeout=300).stdout.strip())
    cmd = ["cmake", "-S", str(project), "-B", str(tmp_path / "build"), f"-DUSERMODS={usermods}",
           f"-DOUR_MANIFEST={BOARDS / 's3-eye' / 'manifest.py'}", f"-DMICROPY_DIR={stub_mpy}",
           f"-DEMLEARN_INCLUDE_DIR={emlearn}"]
    if camera_dir is not None:
        cmd.append(f"-DTINYSENSE_CAMERA_API_DIR={camera_dir}")
    env = {"PATH": "/usr/bin:/bin"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def test_camera_board_keeps_our_frozen_manifest_after_the_camera_module(tmp_path: Path) -> None:
    camera = tmp_path / "micropython-camera-API"
    camera.mkdir()
    (camera / "micropython.cmake").write_text(CAMERA_STUB, encoding="utf-8")
    proc = configure_usermods(tmp_path, BOARDS / "s3-eye" / "usermods.cmake", camera)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"@@probe MICROPY_FROZEN_MANIFEST={BOARDS / 's3-eye' / 'manifest.py'}\n" in proc.stdout
    libs = re.search(r"@@probe LIBS=(.*)", proc.stdout)
    assert libs and "usermod_mp_camera" in libs.group(1) and "usermod_emlearn_trees" in libs.group(1)

    # Without the line that puts the manifest back, the camera module's manifest would win.
    broken = tmp_path / "usermods.cmake"
    text = (BOARDS / "s3-eye" / "usermods.cmake").read_text(encoding="utf-8")
    broken.write_text(text.replace('set(MICROPY_FROZEN_MANIFEST "${_tinysense_frozen_manifest}")', "")
                      .replace("${CMAKE_CURRENT_LIST_DIR}/../../usermods", str(REPO / "usermods")), encoding="utf-8")
    shutil.rmtree(tmp_path / "build")
    proc = configure_usermods(tmp_path, broken, camera)
    assert f"@@probe MICROPY_FROZEN_MANIFEST={camera / 'manifest.py'}\n" in proc.stdout


def test_camera_board_without_the_camera_module_says_how_to_get_it(tmp_path: Path) -> None:
    proc = configure_usermods(tmp_path, BOARDS / "s3-eye" / "usermods.cmake", None)
    assert proc.returncode != 0
    assert "the camera module was not found" in proc.stderr and "tinysense build s3-eye" in proc.stderr
