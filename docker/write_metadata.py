"""Writes firmware.bin.sha256 and firmware.json next to a built firmware.bin (run by build-firmware.sh).

Standard library only: it runs in the build image's Python and is tested on the host (tests/test_docker.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path

FLASH_OFFSET = "0x0"  # ESP32-S3: bootloader, partition table and app in one image written at 0x0
_INCLUDE = re.compile(r"^\s*include\(\s*\$\{CMAKE_CURRENT_LIST_DIR\}/([^/\s)]+)/micropython\.cmake\s*\)", re.M)


def c_modules(user_c_modules: Path, repo: Path) -> list[str]:
    """Module folders included by usermods/micropython.cmake, plus `camera` for a board wrapper that adds it."""
    text = (repo / "usermods" / "micropython.cmake").read_text(encoding="utf-8")
    modules = _INCLUDE.findall(text)
    if user_c_modules.resolve() != (repo / "usermods" / "micropython.cmake").resolve():
        wrapper = user_c_modules.read_text(encoding="utf-8")
        if "TINYSENSE_CAMERA_API_DIR" in wrapper:
            modules.append("camera")
    return modules


def frozen_modules(build_dir: Path | None) -> list[str]:
    """Names of the .mpy files the build froze (the esp32 build keeps them under frozen_mpy/)."""
    if build_dir is None or not (build_dir / "frozen_mpy").is_dir():
        return []
    root = build_dir / "frozen_mpy"
    return sorted(str(p.relative_to(root).with_suffix("")).replace(os.sep, ".") for p in root.rglob("*.mpy"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dist", type=Path, required=True, help="folder holding firmware.bin")
    parser.add_argument("--image", required=True)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--variant")
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--user-c-modules", type=Path, required=True)
    parser.add_argument("--build-dir", type=Path)
    args = parser.parse_args(argv)

    firmware = args.dist / "firmware.bin"
    if not firmware.is_file():
        print(f"{firmware} does not exist", file=sys.stderr)
        return 1
    data = firmware.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    (args.dist / "firmware.bin.sha256").write_text(f"{digest}  firmware.bin\n", encoding="ascii")
    uses_camera = "camera" in (modules := c_modules(args.user_c_modules, args.repo))
    metadata = {
        "board": args.image,
        "board_folder": f"boards/{args.folder}",
        "variant": args.variant,
        "micropython": os.environ.get("TINYSENSE_MICROPYTHON_TAG"),
        "esp_idf": os.environ.get("TINYSENSE_ESP_IDF_VERSION"),
        "emlearn": os.environ.get("TINYSENSE_EMLEARN_VERSION"),
        "camera_api": os.environ.get("TINYSENSE_CAMERA_API_TAG") if uses_camera else None,
        "git_commit": os.environ.get("TINYSENSE_GIT_COMMIT"),
        "c_modules": modules,
        "frozen_modules": frozen_modules(args.build_dir),
        "flash_offset": FLASH_OFFSET,
        "size": len(data),
        "sha256": digest,
    }
    (args.dist / "firmware.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
