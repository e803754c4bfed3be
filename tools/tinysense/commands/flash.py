"""`tinysense flash`: firmware at 0x0 and the filesystem image at 0x200000 in one esptool write."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinysense.errors import CommandError
from tinysense.esp_flash import add_serial_arguments, check_firmware, flash_device, serial_options
from tinysense.littlefs_image import FS_OFFSET, flash_size_name, geometry_of_image, read_files
from tinysense.releases import cached_firmware

NAME = "flash"
HELP = "write the firmware (0x0) and the filesystem image (0x200000) to a board over serial"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_serial_arguments(parser, port_required=True)
    parser.add_argument("--firmware", type=Path, help="firmware.bin to write at 0x0")
    parser.add_argument("--board", help="write the firmware `tinysense download --board BOARD` fetched")
    parser.add_argument("--fs", type=Path, metavar="IMAGE", help="filesystem image from `tinysense bundle`")


def _filesystem_flash_size(image: Path) -> int:
    """The flash size the image was built for; the image must mount with the firmware's LittleFS parameters."""
    try:
        data = image.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"filesystem image {image} does not exist; build it with `tinysense bundle`") from None
    except OSError as error:
        raise CommandError(f"cannot read filesystem image {image} ({error.strerror}); check the path") from None
    geometry = geometry_of_image(len(data))
    read_files(data, geometry)
    return geometry.flash_size


def run(args: argparse.Namespace) -> int:
    if args.firmware and args.board:
        raise CommandError("--firmware and --board both given; pass one")
    firmware = args.firmware or (cached_firmware(args.board) if args.board else None)
    if firmware is None and args.fs is None:
        raise CommandError("nothing to write; pass --firmware FILE (or --board BOARD) and/or --fs IMAGE")
    if firmware is not None:
        check_firmware(firmware, with_filesystem=args.fs is not None)
    expected = _filesystem_flash_size(args.fs) if args.fs is not None else None
    size = flash_device(serial_options(args), firmware, args.fs, expected)
    written = [f"{firmware} at 0x0"] if firmware else []
    written += [f"{args.fs} at {FS_OFFSET:#x}"] if args.fs else []
    print(f"flashed {' and '.join(written)} ({flash_size_name(size)} flash on {args.port}); verified by esptool")
    return 0
