"""Where the repository keeps its build outputs, shared by the CLI and the tests."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The host firmware variants built by ports/host (see its Makefile).
HOST_VARIANTS = ("standard", "32", "sanitize")


def host_firmware(variant: str = "standard") -> Path:
    """Path of the host MicroPython binary for a variant (override with TINYSENSE_HOST_DIR)."""
    if variant not in HOST_VARIANTS:
        raise ValueError(f"unknown host variant {variant!r}; choose one of {', '.join(HOST_VARIANTS)}")
    build_dir = Path(os.environ.get("TINYSENSE_HOST_DIR", REPO / "build"))
    return build_dir / f"host-{variant}" / "micropython"
