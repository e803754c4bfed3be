"""Talking to an ESP32-S3 through esptool's library API (esptool 5.x): connect, detect flash size, write, merge.

One connection does everything `tinysense flash` needs: detect the chip, read the flash id, refuse a mismatched
filesystem image before anything is written, then a single esptool `write_flash` of firmware (0x0) and filesystem
(0x200000), which erases, writes and verifies every region by MD5.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from esptool.cmds import attach_flash, detect_chip, detect_flash_size, merge_bin, reset_chip, run_stub, write_flash
from esptool.loader import ESPLoader
from esptool.util import FatalError, NotImplementedInROMError, flash_size_bytes
from serial import SerialException

from tinysense.atomic import atomic_path
from tinysense.errors import CommandError
from tinysense.littlefs_image import FIRMWARE_OFFSET, FS_OFFSET, flash_size_name

CHIP = "ESP32-S3"
ESPTOOL_CHIP = "esp32s3"
ROM_BAUD = 115200
# An ESP-IDF image starts with 0xE9; its extended header holds the chip id (uint16 at byte 12; 9 = ESP32-S3).
IMAGE_MAGIC = 0xE9
IMAGE_HEADER_SIZE = 24
ESP32S3_IMAGE_CHIP_ID = 9
BEFORE_MODES = ("default-reset", "usb-reset", "no-reset")
AFTER_MODES = ("hard-reset", "watchdog-reset", "no-reset")
DOWNLOAD_MODE_HINT = (
    "check the --port, the USB cable, and that the board is in download mode (hold BOOT while pressing RESET)"
)


@dataclass(frozen=True)
class SerialOptions:
    port: str
    baud: int = 460800
    before: str = "default-reset"
    after: str = "hard-reset"
    stub: bool = True
    connect_attempts: int = 7


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.contextmanager
def connect(options: SerialOptions) -> Iterator[ESPLoader]:
    """An ESP32-S3 in download mode, flash attached; the port is closed afterwards."""
    try:
        esp = detect_chip(
            options.port,
            min(ROM_BAUD, options.baud),  # as esptool does: sync at the ROM's rate, then change it
            options.before,
            connect_attempts=options.connect_attempts,
        )
    except (FatalError, SerialException, OSError) as error:
        problem = f"serial port {options.port} does not answer ({_first_line(error)})"
        raise CommandError(f"{problem}; {DOWNLOAD_MODE_HINT}") from None
    try:
        if esp.CHIP_NAME != CHIP:
            raise CommandError(
                f"the device on {options.port} is an {esp.CHIP_NAME}, not an {CHIP}; "
                "connect a tinysense (ESP32-S3) board"
            )
        try:
            if options.stub:
                esp = run_stub(esp)
            if options.baud > ROM_BAUD:
                with contextlib.suppress(NotImplementedInROMError):
                    esp.change_baud(options.baud)
            attach_flash(esp)
        except (FatalError, SerialException, OSError) as error:
            raise CommandError(
                f"the device on {options.port} stopped answering while preparing its flash "
                f"({_first_line(error)}); {DOWNLOAD_MODE_HINT}, or try --no-stub / a lower --baud"
            ) from None
        yield esp
    finally:
        with contextlib.suppress(Exception):
            esp._port.close()


def device_flash_size(esp: ESPLoader, port: str) -> int:
    """Flash size in bytes from the chip's JEDEC id."""
    try:
        name = detect_flash_size(esp)
    except (FatalError, SerialException, OSError) as error:
        problem = f"cannot read the flash id on {port} ({_first_line(error)})"
        raise CommandError(f"{problem}; {DOWNLOAD_MODE_HINT}") from None
    if name is None:
        raise CommandError(
            f"the flash chip on {port} reports an unknown size; pass --flash-size to bundle and check the board"
        )
    return flash_size_bytes(name)


def detect_device_flash_size(options: SerialOptions) -> int:
    with connect(options) as esp:
        size = device_flash_size(esp, options.port)
        _reset(esp, options)
        return size


def _reset(esp: ESPLoader, options: SerialOptions) -> None:
    with contextlib.suppress(FatalError, SerialException, OSError):
        reset_chip(esp, options.after)


def flash_device(
    options: SerialOptions,
    firmware: Path | None,
    filesystem: Path | None,
    expected_flash_size: int | None,
) -> int:
    """Write firmware at 0x0 and the filesystem at 0x200000 in one esptool write; returns the device's flash size.

    If `expected_flash_size` is given (the size the filesystem image was built for), a device with another flash size
    is refused before anything is written.
    """
    regions: list[tuple[int, str]] = []
    if firmware is not None:
        regions.append((FIRMWARE_OFFSET, str(firmware)))
    if filesystem is not None:
        regions.append((FS_OFFSET, str(filesystem)))
    end = max(offset + Path(path).stat().st_size for offset, path in regions)
    with connect(options) as esp:
        size = device_flash_size(esp, options.port)
        if expected_flash_size is not None and size != expected_flash_size:
            raise CommandError(
                f"the device on {options.port} has {flash_size_name(size)} of flash but the filesystem image was "
                f"built for {flash_size_name(expected_flash_size)}; nothing was written: rebuild it with "
                f"`tinysense bundle --flash-size {flash_size_name(size)}` (or `--port {options.port}`)"
            )
        if end > size:
            raise CommandError(
                f"the images end at {end:#x}, beyond the device's {flash_size_name(size)} of flash; "
                "nothing was written: use a smaller firmware or filesystem image"
            )
        try:
            write_flash(esp, regions, flash_size="keep")
        except (FatalError, SerialException, OSError) as error:
            raise CommandError(
                f"writing the flash of {options.port} failed ({_first_line(error)}); the device may hold a partial "
                f"image: {DOWNLOAD_MODE_HINT} and run the same command again"
            ) from None
        _reset(esp, options)
        return size


def check_firmware(firmware: Path, with_filesystem: bool) -> None:
    """The firmware file exists, is not empty and, if a filesystem follows, ends before 0x200000."""
    if not firmware.is_file():
        raise CommandError(
            f"firmware file {firmware} does not exist; pass the right --firmware path, "
            "or fetch one with `tinysense download --board BOARD`"
        )
    size = firmware.stat().st_size
    if size == 0:
        raise CommandError(f"firmware file {firmware} is empty; download or build it again")
    with open(firmware, "rb") as file:
        header = file.read(IMAGE_HEADER_SIZE)
    if header[:1] == bytes([IMAGE_MAGIC]) and len(header) == IMAGE_HEADER_SIZE:
        chip_id = int.from_bytes(header[12:14], "little")
        if chip_id != ESP32S3_IMAGE_CHIP_ID:
            raise CommandError(
                f"firmware file {firmware} is an image for chip id {chip_id}, not an {CHIP} (id "
                f"{ESP32S3_IMAGE_CHIP_ID}); use a tinysense ESP32-S3 firmware (`tinysense download --board BOARD`)"
            )
    if with_filesystem and FIRMWARE_OFFSET + size > FS_OFFSET:
        raise CommandError(
            f"firmware file {firmware} is {size} bytes and would overwrite the filesystem at {FS_OFFSET:#x}; "
            "use a tinysense firmware image (firmware.bin, at most 2 MiB)"
        )


def merge_images(firmware: Path, filesystem: Path, output: Path) -> None:
    """One raw image of the whole flash: firmware at 0x0, filesystem at 0x200000 (esptool merge-bin)."""
    with atomic_path(output) as temporary:
        try:
            merge_bin(
                [(FIRMWARE_OFFSET, str(firmware)), (FS_OFFSET, str(filesystem))],
                ESPTOOL_CHIP,
                output=str(temporary),
                format="raw",
            )
        except FatalError as error:
            raise CommandError(f"esptool merge-bin failed ({_first_line(error)}); check the firmware file") from None


def add_serial_arguments(parser: argparse.ArgumentParser, port_required: bool) -> None:
    """The serial options shared by the commands that talk to a board."""
    parser.add_argument("--port", "-p", required=port_required, metavar="PORT",
                        help="serial port of the board (/dev/ttyACM0, COM3, socket://HOST:PORT)")
    parser.add_argument("--baud", "-b", type=int, default=460800, help="baud rate for the transfer (default 460800)")
    parser.add_argument("--before", choices=BEFORE_MODES, default="default-reset",
                        help="how to put the chip into download mode (default default-reset)")
    parser.add_argument("--after", choices=AFTER_MODES, default="hard-reset",
                        help="what to do with the chip afterwards (default hard-reset: run the new firmware)")
    parser.add_argument("--no-stub", action="store_true",
                        help="talk to the ROM bootloader only (slower; for boards where the flasher stub fails)")
    parser.add_argument("--connect-attempts", type=int, default=7, metavar="N",
                        help="connection attempts before giving up (default 7)")


def serial_options(args: argparse.Namespace) -> SerialOptions:
    if args.baud <= 0:
        raise CommandError(f"--baud {args.baud} is not a baud rate; use e.g. 115200 or 460800")
    if args.connect_attempts < 1:
        raise CommandError(f"--connect-attempts {args.connect_attempts} must be at least 1")
    return SerialOptions(port=args.port, baud=args.baud, before=args.before, after=args.after,
                         stub=not args.no_stub, connect_attempts=args.connect_attempts)
