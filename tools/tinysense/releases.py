"""Prebuilt firmware from the project's CI releases (GitHub releases API), verified by sha256 and cached.

Each release carries, per board, `<board>-firmware.bin` and `<board>-firmware.bin.sha256` (the `sha256sum` line:
64 hex digits, optionally followed by the file name). The API base URL is
https://api.github.com/repos/tinysense/tinysense/releases unless `--base-url` or TINYSENSE_RELEASES_URL says otherwise;
`<base>/latest` and `<base>/tags/<tag>` must answer the GitHub release JSON (`tag_name`, `assets[].name`,
`assets[].browser_download_url`). Downloads are cached in `$TINYSENSE_CACHE_DIR` (default ~/.cache/tinysense) under
`firmware/<tag>/<board>-firmware.bin`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tinysense import __version__
from tinysense.atomic import atomic_path
from tinysense.boards import check_board
from tinysense.errors import CommandError

DEFAULT_RELEASES_URL = "https://api.github.com/repos/tinysense/tinysense/releases"
RELEASES_URL_ENV = "TINYSENSE_RELEASES_URL"
CACHE_DIR_ENV = "TINYSENSE_CACHE_DIR"
TIMEOUT_S = 30
CHUNK = 64 * 1024
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def releases_url(override: str | None = None) -> str:
    return (override or os.environ.get(RELEASES_URL_ENV) or DEFAULT_RELEASES_URL).rstrip("/")


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tinysense"


def firmware_asset(board: str) -> str:
    return f"{board}-firmware.bin"


def _request(url: str, accept: str) -> urllib.request.Request:
    return urllib.request.Request(url, headers={"Accept": accept, "User-Agent": f"tinysense/{__version__}"})


def _open(url: str, accept: str, what: str, fix_404: str) -> Any:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise CommandError(f"{what} URL {url!r} is not http(s); check --base-url or {RELEASES_URL_ENV}")
    try:
        return urllib.request.urlopen(_request(url, accept), timeout=TIMEOUT_S)  # noqa: S310 (scheme checked above)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise CommandError(f"{what} not found at {url} (HTTP 404); {fix_404}") from None
        raise CommandError(
            f"{url} answered HTTP {error.code} {error.reason} for the {what}; try again later or check --base-url"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CommandError(
            f"cannot reach {url} ({reason}); check the network connection, or --base-url / {RELEASES_URL_ENV}"
        ) from None


def fetch_release(base_url: str, tag: str | None) -> dict[str, Any]:
    url = f"{base_url}/latest" if tag is None else f"{base_url}/tags/{urllib.parse.quote(tag, safe='')}"
    what = "latest release" if tag is None else f"release {tag}"
    with _open(url, "application/vnd.github+json", what, "check --tag against the project's releases page") as response:
        body = response.read()
    try:
        release = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        release = None
    if not isinstance(release, dict) or not isinstance(release.get("tag_name"), str) or not isinstance(
        release.get("assets"), list
    ):
        raise CommandError(f"{url} did not answer a GitHub release (tag_name, assets); check --base-url")
    return release


def _asset(release: dict[str, Any], name: str) -> dict[str, Any] | None:
    for asset in release["assets"]:
        if isinstance(asset, dict) and asset.get("name") == name and isinstance(asset.get("browser_download_url"), str):
            return asset
    return None


def _expected_sha256(release: dict[str, Any], board: str) -> str:
    name = firmware_asset(board) + ".sha256"
    asset = _asset(release, name)
    if asset is None:
        raise CommandError(
            f"release {release['tag_name']} has no {name}, so its firmware cannot be verified; pick another --tag"
        )
    with _open(asset["browser_download_url"], "application/octet-stream", name, "pick another --tag") as response:
        text = response.read(4096).decode("ascii", errors="replace")
    fields = text.split()
    if not fields or not _SHA256.match(fields[0]):
        raise CommandError(f"{name} of release {release['tag_name']} holds no sha256 digest; pick another --tag")
    digest = fields[0].lower()
    # GitHub also publishes its own digest of every asset: it must agree with the checksum file.
    published = _asset(release, firmware_asset(board)) or {}
    github_digest = published.get("digest")
    if isinstance(github_digest, str) and github_digest.startswith("sha256:") and github_digest[7:].lower() != digest:
        raise CommandError(
            f"release {release['tag_name']}: {name} and GitHub's digest of {firmware_asset(board)} disagree; "
            "the release is inconsistent: pick another --tag and report it"
        )
    return digest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_firmware(board: str, tag: str | None = None, base_url: str | None = None, quiet: bool = False) -> Path:
    """The verified firmware of `board` from release `tag` (default: latest), from the cache or downloaded."""
    check_board(board)
    base = releases_url(base_url)
    release = fetch_release(base, tag)
    tag_name = release["tag_name"]
    name = firmware_asset(board)
    asset = _asset(release, name)
    if asset is None:
        boards = sorted(a["name"][: -len("-firmware.bin")] for a in release["assets"]
                        if isinstance(a, dict) and str(a.get("name", "")).endswith("-firmware.bin"))
        raise CommandError(
            f"release {tag_name} has no firmware for board {board} (it has: {', '.join(boards) or 'none'}); "
            f"pick another --tag, or build it with `make firmware BOARD={board}`"
        )
    expected = _expected_sha256(release, board)
    if "/" in tag_name or tag_name in ("", ".", ".."):
        raise CommandError(f"release tag {tag_name!r} cannot name a cache folder; check --base-url")
    target = cache_dir() / "firmware" / tag_name / name
    if target.is_file() and sha256_of(target) == expected:
        if not quiet:
            print(f"{name} {tag_name} is already cached: {target}")
        return target
    digest = hashlib.sha256()
    with atomic_path(target) as temporary:
        with _open(asset["browser_download_url"], "application/octet-stream", name, "pick another --tag") as response:
            total = response.headers.get("Content-Length")
            with open(temporary, "wb") as file, tqdm(
                total=int(total) if total and total.isdigit() else asset.get("size"),
                unit="B", unit_scale=True, desc=f"{name} {tag_name}", disable=True if quiet else None,
            ) as bar:
                try:
                    for chunk in iter(lambda: response.read(CHUNK), b""):
                        file.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
                except OSError as error:
                    raise CommandError(f"the download of {name} broke off ({error}); run the command again") from None
        if digest.hexdigest() != expected:
            raise CommandError(
                f"{name} from release {tag_name} has sha256 {digest.hexdigest()} but the release says {expected}; "
                "nothing was saved: run the command again, and report a corrupt release asset if it persists"
            )
    if not quiet:
        print(f"{name} {tag_name}: sha256 verified, saved to {target}")
    return target


def cached_firmware(board: str) -> Path:
    """The most recently downloaded firmware of `board` (by `tinysense download`)."""
    check_board(board)
    candidates = sorted((cache_dir() / "firmware").glob(f"*/{firmware_asset(board)}"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise CommandError(
            f"no downloaded firmware for board {board}; run `tinysense download --board {board}` first, "
            "or pass --firmware PATH"
        )
    return candidates[-1]
