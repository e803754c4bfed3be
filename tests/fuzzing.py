"""Shared driver for the model-loader fuzz tests: mutated files run through one sanitizer-build process.

The cases are packed into one file (3-byte little-endian length + bytes, per case) that the MicroPython side reads
with tests/mp/fuzzcases.py; the script prints its counts on one line, which is returned split into words."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from tinysense import host

MP_TESTS = Path(__file__).parent / "mp"


def fuzz_cases(seeds: Sequence[bytes], mutate: Callable[[bytes, random.Random], bytes], count: int,
               seed: int) -> list[bytes]:
    """The seeds themselves first, then mutations of them, `count` cases in all."""
    rng = random.Random(seed)
    return [seeds[i % len(seeds)] if i < len(seeds) else mutate(seeds[i % len(seeds)], rng) for i in range(count)]


def edit_bytes(data: bytearray, rng: random.Random, edit: str | Callable[[bytearray, int], None]) -> None:
    """1 to 4 edits of one kind at random places: "set" a random byte, "flip" one bit, "delete" or "insert" a
    byte, or a callable(data, i) for a format's own kind of damage at i."""
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(data))
        if edit == "set":
            data[i] = rng.randrange(256)
        elif edit == "flip":
            data[i] ^= 1 << rng.randrange(8)
        elif edit == "delete":
            del data[i]
        elif edit == "insert":
            data.insert(i, rng.randrange(256))
        else:
            assert callable(edit), edit
            edit(data, i)


def run_fuzz_script(script: str, cases: Sequence[bytes], timeout: float = 1800) -> list[str]:
    """Run `script` (argv: cases file, count) in the sanitize build; fail on a sanitizer report or a crash."""
    blob = b"".join(len(c).to_bytes(3, "little") + c for c in cases)
    with tempfile.TemporaryDirectory(prefix="tinysense-fuzz-") as tmp:
        d = Path(tmp)
        (d / "cases").write_bytes(blob)
        (d / "fuzz.py").write_text(script)
        proc = host.run([str(d / "fuzz.py"), str(d / "cases"), str(len(cases))], variant="sanitize",
                        path=[MP_TESTS], timeout=timeout)
    stderr = proc.stderr.decode(errors="replace")
    assert host.sanitizer_report(stderr) is None, stderr
    assert proc.returncode == 0, stderr
    return proc.stdout.decode().split()
