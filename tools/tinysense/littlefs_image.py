"""The flash layout of a tinysense ESP32-S3 and the LittleFS image its firmware mounts at boot.

MicroPython's esp32 port (default partition table) puts the `vfs` partition from 0x200000 to the end of flash and
mounts it as LittleFS v2 with block_size 4096, block_count = partition size / 4096 (exactly), read/prog size 32,
lookahead 32, name_max 255, on-disk version 2.1. An image with any other geometry makes the firmware report a corrupt
filesystem, so every image is built and checked with exactly these parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import littlefs
from littlefs.errors import LittleFSError

from tinysense.errors import CommandError

MB = 1024 * 1024
FIRMWARE_OFFSET = 0x0
FS_OFFSET = 0x200000
BLOCK_SIZE = 4096
FLASH_SIZES = {"4MB": 4 * MB, "8MB": 8 * MB, "16MB": 16 * MB}
DISK_VERSION_2_1 = 0x00020001


def flash_size_name(size: int) -> str:
    for name, value in FLASH_SIZES.items():
        if value == size:
            return name
    return f"{size} bytes"


def parse_flash_size(text: str) -> int:
    """'4MB' / '8MB' / '16MB' (case-insensitive) in bytes."""
    size = FLASH_SIZES.get(text.strip().upper())
    if size is None:
        raise CommandError(f"flash size {text!r} is not supported; use one of {', '.join(FLASH_SIZES)}")
    return size


@dataclass(frozen=True)
class Geometry:
    """LittleFS parameters of the firmware's vfs partition for one flash size."""

    flash_size: int
    block_size: int = BLOCK_SIZE
    read_size: int = 32
    prog_size: int = 32
    lookahead_size: int = 32
    name_max: int = 255
    disk_version: int = DISK_VERSION_2_1

    @property
    def partition_size(self) -> int:
        return self.flash_size - FS_OFFSET

    @property
    def block_count(self) -> int:
        return self.partition_size // self.block_size

    @property
    def name(self) -> str:
        return flash_size_name(self.flash_size)

    def lfs_options(self) -> dict[str, int]:
        return {
            "block_size": self.block_size,
            "block_count": self.block_count,
            "read_size": self.read_size,
            "prog_size": self.prog_size,
            "lookahead_size": self.lookahead_size,
            "name_max": self.name_max,
            "disk_version": self.disk_version,
        }


def geometry_for(flash_size: int) -> Geometry:
    if flash_size not in FLASH_SIZES.values():
        raise CommandError(
            f"flash size {flash_size_name(flash_size)} is not supported; use one of {', '.join(FLASH_SIZES)}"
        )
    return Geometry(flash_size)


def geometry_of_image(image_size: int) -> Geometry:
    """The geometry whose partition an image of this size fills exactly (what `bundle` writes)."""
    for size in FLASH_SIZES.values():
        if Geometry(size).partition_size == image_size:
            return Geometry(size)
    sizes = ", ".join(f"{Geometry(size).partition_size} bytes for {name}" for name, size in FLASH_SIZES.items())
    raise CommandError(
        f"filesystem image is {image_size} bytes, which fills no vfs partition ({sizes}); "
        "build it with `tinysense bundle --flash-size …`"
    )


ProgressFn = Callable[[str], None]


def _no_progress(_: str) -> None:
    pass


def build_image(files: Mapping[str, bytes], geometry: Geometry, progress: ProgressFn = _no_progress) -> bytes:
    """A LittleFS image of the whole vfs partition holding `files` (absolute paths like '/models/har.trees')."""
    needed = sum(len(data) for data in files.values())
    if needed > geometry.partition_size:
        raise CommandError(
            f"the files need {needed // 1024} KiB but the {geometry.name} flash's filesystem holds "
            f"{geometry.partition_size // 1024} KiB; bundle fewer or smaller files, or use a bigger --flash-size"
        )
    fs = littlefs.LittleFS(mount=False, **geometry.lfs_options())
    fs.format()
    fs.mount()
    for path, data in sorted(files.items()):
        progress(path)
        parent = path.rsplit("/", 1)[0]
        try:
            if parent:
                fs.makedirs(parent, exist_ok=True)
            with fs.open(path, "wb") as handle:
                handle.write(data)
        except LittleFSError as error:
            if error.code == LittleFSError.Error.LFS_ERR_NOSPC:
                raise CommandError(
                    f"the files do not fit in the {geometry.name} flash's filesystem "
                    f"({geometry.partition_size // 1024} KiB, ran out at {path}); "
                    "bundle fewer or smaller files, or use a bigger --flash-size"
                ) from None
            raise CommandError(f"cannot write {path} into the LittleFS image ({error}); check the file name") from None
    fs.unmount()
    image = bytes(fs.context.buffer)
    if len(image) != geometry.partition_size:
        raise AssertionError(f"littlefs produced {len(image)} bytes, expected {geometry.partition_size}")
    return image


def mount(image: bytes, geometry: Geometry) -> littlefs.LittleFS:
    """Mount an image with the device's parameters (never formats: a bad image raises CommandError)."""
    if len(image) != geometry.partition_size:
        raise CommandError(
            f"filesystem image is {len(image)} bytes but the {geometry.name} flash's vfs partition is "
            f"{geometry.partition_size} bytes; rebuild it with `tinysense bundle --flash-size {geometry.name}`"
        )
    context = littlefs.UserContext(buffer=bytearray(image))
    fs = littlefs.LittleFS(context=context, mount=False, **geometry.lfs_options())
    try:
        fs.mount()
    except LittleFSError as error:
        raise CommandError(
            f"the image does not mount as LittleFS with the firmware's parameters ({error}); "
            "rebuild it with `tinysense bundle`"
        ) from None
    stat = fs.fs_stat()
    if (stat.block_size, stat.block_count, stat.disk_version) != (
        geometry.block_size,
        geometry.block_count,
        geometry.disk_version,
    ):
        raise CommandError(
            f"the image's superblock says block_size {stat.block_size}, block_count {stat.block_count}, "
            f"disk version {stat.disk_version:#x}; the firmware needs {geometry.block_size}, {geometry.block_count}, "
            f"{geometry.disk_version:#x}: rebuild it with `tinysense bundle`"
        )
    return fs


def read_files(image: bytes, geometry: Geometry) -> dict[str, bytes]:
    """Every file in the image, by absolute path, read back through littlefs."""
    fs = mount(image, geometry)
    files: dict[str, bytes] = {}
    for top, _dirs, names in fs.walk("/"):
        for name in names:
            path = f"{top.rstrip('/')}/{name}"
            with fs.open(path, "rb") as handle:
                files[path] = handle.read()
    fs.unmount()
    return files


def verify_image(image: bytes, geometry: Geometry, expected: Mapping[str, bytes]) -> None:
    """Mount the image as the device will and check every file reads back byte for byte (and nothing else is there)."""
    found = read_files(image, geometry)
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    changed = sorted(path for path in set(expected) & set(found) if expected[path] != found[path])
    if missing or extra or changed:
        raise CommandError(
            f"the image does not read back as written (missing {missing}, unexpected {extra}, different {changed}); "
            "this is a bug in tinysense or littlefs-python: please report it"
        )
