"""`tinysense bundle`: the LittleFS image (models, config.json, main.py, extra files) the firmware mounts at boot."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tinysense.device_config import APPS, DeviceConfig
from tinysense.errors import CommandError
from tinysense.esp_flash import (
    add_serial_arguments,
    check_firmware,
    detect_device_flash_size,
    merge_images,
    serial_options,
)
from tinysense.fs_bundle import collect_files, fill_app_section, write_image
from tinysense.littlefs_image import FLASH_SIZES, FS_OFFSET, geometry_for, parse_flash_size
from tinysense.releases import cached_firmware

NAME = "bundle"
HELP = "build the LittleFS filesystem image (models, config.json, main.py) the firmware mounts at boot"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", type=Path, default=Path("tinysense-fs.bin"),
                        help="filesystem image to write (default tinysense-fs.bin), flashed at 0x200000")
    parser.add_argument("--flash-size", choices=list(FLASH_SIZES), type=str.upper,
                        help="the board's flash size; the image fills 0x200000..end of flash (or give --port)")
    add_serial_arguments(parser, port_required=False)
    content = parser.add_argument_group("content")
    content.add_argument("--config", type=Path, help="config.json to start from (see the README for its keys)")
    content.add_argument("--app", choices=list(APPS), help="the app to run (overrides the config's)")
    content.add_argument("--mqtt-host", help="MQTT broker host")
    content.add_argument("--mqtt-port", type=int, help="MQTT broker port (default 1883)")
    content.add_argument("--topic-prefix", help="MQTT topic prefix (default tinysense)")
    content.add_argument("--sample-rate", type=float, help="sample rate in Hz (app-specific default)")
    content.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE",
                         help="an app threshold, repeatable")
    content.add_argument("--model", action="append", default=[], type=Path, metavar="FILE",
                         help="model file, stored as /models/<name>; repeatable")
    content.add_argument("--main", type=Path, metavar="FILE",
                         help="main.py to store (default: a generated one that starts the configured app)")
    content.add_argument("--file", action="append", default=[], metavar="SRC[:DEST]",
                         help="extra file, stored at DEST (default /<name>); repeatable")
    merged = parser.add_argument_group("full-flash image")
    merged.add_argument("--merged", type=Path, metavar="OUT",
                        help="also write one image of the whole flash: firmware at 0x0, filesystem at 0x200000")
    merged.add_argument("--firmware", type=Path, help="firmware.bin for --merged")
    merged.add_argument("--board", help="for --merged: use the firmware `tinysense download --board` fetched")


def _config(args: argparse.Namespace) -> tuple[DeviceConfig, list[str]]:
    data: dict[str, Any] = DeviceConfig.load(args.config).to_dict() if args.config else {}
    if args.app:
        data["app"] = args.app
    if "app" not in data:
        raise CommandError(f"no app chosen; pass --app ({', '.join(APPS)}) or a --config with \"app\"")
    mqtt = dict(data.get("mqtt", {}))
    for key, value in (("host", args.mqtt_host), ("port", args.mqtt_port), ("topic_prefix", args.topic_prefix)):
        if value is not None:
            mqtt[key] = value
    data["mqtt"] = mqtt
    if args.sample_rate is not None:
        data["sample_rate"] = int(args.sample_rate) if args.sample_rate.is_integer() else args.sample_rate
    thresholds = dict(data.get("thresholds", {}))
    for spec in args.threshold:
        name, sep, value = spec.partition("=")
        try:
            thresholds[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise CommandError(f"--threshold {spec!r} is not NAME=NUMBER; write it like --threshold alarm_db=85")
    data["thresholds"] = thresholds
    # the app's section from the model's metadata (window, hop, classes, sensors, ranges, ...): the image must run
    rate_given = args.sample_rate is not None or (args.config is not None
                                                  and "sample_rate" in json.loads(args.config.read_text()))
    warnings = fill_app_section(data, args.model, rate_given)
    return DeviceConfig.from_dict(data, source="config"), warnings


def _flash_size(args: argparse.Namespace) -> int:
    if args.flash_size and args.port:
        raise CommandError("--flash-size and --port both given; pass one (--port reads the size from the board)")
    if args.flash_size:
        return parse_flash_size(args.flash_size)
    if args.port:
        return detect_device_flash_size(serial_options(args))
    raise CommandError(f"the flash size is unknown; pass --flash-size ({'|'.join(FLASH_SIZES)}) or --port PORT")


def run(args: argparse.Namespace) -> int:
    config, warnings = _config(args)
    firmware = None
    if args.merged:
        if bool(args.firmware) == bool(args.board):
            raise CommandError("--merged needs the firmware: pass --firmware FILE or --board BOARD (not both)")
        firmware = args.firmware or cached_firmware(args.board)
        check_firmware(firmware, with_filesystem=True)
    elif args.firmware or args.board:
        raise CommandError("--firmware/--board only make sense with --merged OUT; add --merged or drop them")
    config, files = collect_files(config, args.model, args.main, args.file)
    geometry = geometry_for(_flash_size(args))
    write_image(files, geometry, args.output)
    print(f"{args.output}: {geometry.name} flash, LittleFS {geometry.block_count} x {geometry.block_size} B at "
          f"{FS_OFFSET:#x}, {len(files)} files ({sum(map(len, files.values()))} B), app {config.app}; "
          "verified by mounting it with the device's parameters")
    for warning in warnings:  # after the image: an error stays the one line it is
        print(f"tinysense bundle: warning: {warning}", file=sys.stderr)
    if args.merged:
        assert firmware is not None
        merge_images(firmware, args.output, args.merged)
        print(f"{args.merged}: firmware at 0x0 + filesystem at {FS_OFFSET:#x}, {geometry.flash_size} B")
    return 0
