"""Run code inside the host MicroPython firmware (ports/host) from CPython.

The host firmware carries the same C modules as the device image, so running
device code here is how the tool trains on, converts for and verifies against
exactly what the device computes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tinysense.paths import REPO, host_firmware

# Sanitizer findings that must fail a run even when the program itself "passed".
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


class HostFirmwareMissing(FileNotFoundError):
    pass


def firmware_or_raise(variant: str = "standard") -> Path:
    binary = host_firmware(variant)
    if not binary.exists():
        hint = "make host" if variant == "standard" else f"make -C ports/host VARIANT={variant}"
        raise HostFirmwareMissing(f"host firmware {binary} is missing: build it with `{hint}`")
    return binary


def run(
    args: Sequence[str],
    *,
    variant: str = "standard",
    path: Sequence[Path | str] = (),
    heapsize: str | None = None,
    timeout: float = 300,
    stdin: bytes | None = None,
    cwd: Path | str = REPO,
) -> subprocess.CompletedProcess[bytes]:
    """Run the host firmware with `args` (e.g. ["script.py", "arg"] or ["-c", code])."""
    cmd = [str(firmware_or_raise(variant))]
    if heapsize:
        cmd += ["-X", f"heapsize={heapsize}"]
    cmd += list(args)
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join(str(p) for p in path)
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, cwd=cwd, env=env)


def sanitizer_report(stderr: str) -> str | None:
    """The first sanitizer finding in a run's stderr, or None."""
    for marker in SANITIZER_MARKERS:
        index = stderr.find(marker)
        if index >= 0:
            return stderr[max(0, stderr.rfind("\n", 0, index)):][:4000]
    return None
