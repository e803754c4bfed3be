"""`tinysense download`: a board's prebuilt firmware from the CI releases, sha256-verified and cached."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from tinysense.atomic import atomic_path
from tinysense.boards import known_boards
from tinysense.errors import CommandError
from tinysense.releases import DEFAULT_RELEASES_URL, RELEASES_URL_ENV, download_firmware

NAME = "download"
HELP = "fetch a board's prebuilt firmware from the project's releases (sha256-verified, cached)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--board", required=True, help=f"board name: {', '.join(known_boards())}")
    parser.add_argument("--tag", help="release tag (default: the latest release)")
    parser.add_argument("--base-url", help=f"releases API URL (default ${RELEASES_URL_ENV} or {DEFAULT_RELEASES_URL})")
    parser.add_argument("--output", "-o", type=Path, help="also copy the firmware here")


def run(args: argparse.Namespace) -> int:
    path = download_firmware(args.board, args.tag, args.base_url)
    if args.output:
        try:
            with atomic_path(args.output) as temporary:
                shutil.copyfile(path, temporary)
        except OSError as error:
            raise CommandError(f"cannot write {args.output} ({error.strerror}); choose another --output") from None
        print(f"copied to {args.output}")
    return 0
