"""The boards tinysense builds firmware for (one CI release asset `<board>-firmware.bin` each)."""

from __future__ import annotations

from tinysense.errors import CommandError
from tinysense.paths import REPO

# The planned boards (see boards/README.md). A folder boards/<name>/ with mpconfigboard.cmake adds a board too.
PLANNED_BOARDS: dict[str, str] = {
    "generic-s3": "generic ESP32-S3 module (DevKitC-1 style)",
    "atoms3": "M5Stack AtomS3 (MPU6886 IMU)",
    "s3-eye": "Espressif ESP32-S3-EYE (camera, microphone)",
}


def known_boards() -> list[str]:
    boards = set(PLANNED_BOARDS)
    boards_dir = REPO / "boards"
    if boards_dir.is_dir():
        boards |= {path.parent.name for path in boards_dir.glob("*/mpconfigboard.cmake")}
    return sorted(boards)


def check_board(name: str) -> str:
    boards = known_boards()
    if name not in boards:
        raise CommandError(f"unknown board {name!r}; use one of {', '.join(boards)}")
    return name
