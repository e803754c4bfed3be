"""The boards tinysense builds firmware for (one CI release asset `<board>-firmware.bin` each).

A board *image* name (what `download`, `flash` and `build` take) is a folder in boards/ in the esp32 port's own
format, optionally with a variant of that folder (mpconfigvariant_<VARIANT>.cmake): `generic-s3-spiram-oct` is
boards/generic-s3 built with BOARD_VARIANT=SPIRAM_OCT. Any other folder boards/<name>/ with mpconfigboard.cmake is
an image of its own name.

Each board folder has a pin table, board_pins.py, frozen into its image: the one place the drivers and apps read
pins from. DRIVER_REQUIRED_PINS says which entries a driver needs; read_pin_table() parses the file with `ast`
(board_pins.py is MicroPython code: it is never imported on the host).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinysense.errors import CommandError
from tinysense.paths import REPO

BOARDS_DIR = REPO / "boards"
PIN_TABLE = "board_pins.py"


@dataclass(frozen=True)
class BoardImage:
    name: str
    folder: str
    variant: str | None
    description: str


# The images CI builds and releases. The first one is the default prebuilt download.
IMAGES: dict[str, BoardImage] = {
    image.name: image
    for image in (
        BoardImage("generic-s3", "generic-s3", None, "generic ESP32-S3 module (DevKitC-1 style), any flash size"),
        BoardImage("generic-s3-spiram-oct", "generic-s3", "SPIRAM_OCT", "generic ESP32-S3 module with octal SPIRAM"),
        BoardImage("atoms3", "atoms3", None, "M5Stack AtomS3 (MPU6886 IMU)"),
        BoardImage("s3-eye", "s3-eye", None, "Espressif ESP32-S3-EYE (camera, I2S microphone)"),
    )
}
DEFAULT_BOARD = "generic-s3"

# Kept for callers of the first version of this module.
PLANNED_BOARDS: dict[str, str] = {name: image.description for name, image in IMAGES.items()}

# What each frozen driver reads from board_pins.py: "TABLE.key" entries that must be present.
DRIVER_REQUIRED_PINS: dict[str, list[str]] = {
    "mpu6886": ["I2C.id", "I2C.scl", "I2C.sda", "I2C.freq", "IMU.addr"],
    "i2s_mic": ["I2S_MIC.id", "I2S_MIC.sck", "I2S_MIC.ws", "I2S_MIC.sd", "I2S_MIC.rate", "I2S_MIC.bits"],
    "camera": ["CAMERA.data_pins", "CAMERA.vsync_pin", "CAMERA.href_pin", "CAMERA.pclk_pin", "CAMERA.xclk_pin",
               "CAMERA.sda_pin", "CAMERA.scl_pin", "CAMERA.powerdown_pin", "CAMERA.reset_pin", "CAMERA.xclk_freq"],
}


def board_folders(boards_dir: Path = BOARDS_DIR) -> list[Path]:
    """Every board folder (one with mpconfigboard.cmake)."""
    if not boards_dir.is_dir():
        return []
    return sorted(path.parent for path in boards_dir.glob("*/mpconfigboard.cmake"))


def known_boards() -> list[str]:
    boards = set(IMAGES)
    boards |= {folder.name for folder in board_folders()}
    return sorted(boards)


def check_board(name: str) -> str:
    boards = known_boards()
    if name not in boards:
        raise CommandError(f"unknown board {name!r}; use one of {', '.join(boards)}")
    return name


def board_image(name: str) -> BoardImage:
    """The folder and variant of a board image name (a plain folder in boards/ is an image without variant)."""
    check_board(name)
    if name in IMAGES:
        return IMAGES[name]
    return BoardImage(name, name, None, f"boards/{name}")


def read_pin_table(path: Path) -> dict[str, Any]:
    """The top-level constant assignments of a board_pins.py (literals only), without importing it."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as error:
        raise ValueError(f"{path}: not valid Python ({error.msg}, line {error.lineno})") from None
    table: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            try:
                table[name] = ast.literal_eval(node.value)
            except ValueError:
                raise ValueError(f"{path}:{node.lineno}: {name} is not a literal; pin tables hold constants") from None
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # docstring
        else:
            raise ValueError(f"{path}:{getattr(node, 'lineno', '?')}: only `NAME = literal` lines belong here")
    return table


def missing_pins(table: dict[str, Any], driver: str) -> list[str]:
    """The entries `driver` needs that the pin table lacks."""
    missing = []
    for entry in DRIVER_REQUIRED_PINS[driver]:
        group, key = entry.split(".", 1)
        if not isinstance(table.get(group), dict) or key not in table[group]:
            missing.append(entry)
    return missing
