"""Every DSP module survives random arguments and inputs in the ASan/UBSan build (tests/mp/dsp_fuzz.py).

TINYSENSE_DSP_FUZZ sets the number of rounds (default 2,000 in `make test`; each round constructs one object and
makes a few calls, so the call count is several times larger)."""

from __future__ import annotations

import os
import re

import pytest

from tinysense.host import run, sanitizer_report
from tinysense.paths import REPO

ROUNDS = int(os.environ.get("TINYSENSE_DSP_FUZZ", "2000"))


@pytest.mark.parametrize("seed", [1, 2])
def test_dsp_modules_survive_random_input_under_sanitizers(seed: int) -> None:
    proc = run([str(REPO / "tests" / "mp" / "dsp_fuzz.py"), str(seed), str(ROUNDS)], variant="sanitize", timeout=600)
    stderr = proc.stderr.decode(errors="replace")
    assert sanitizer_report(stderr) is None, sanitizer_report(stderr)
    assert proc.returncode == 0, stderr
    counts = re.search(r"calls (\d+) raised (\d+)", proc.stdout.decode())
    assert counts, proc.stdout
    calls, raised = int(counts.group(1)), int(counts.group(2))
    # The fuzzer must exercise both paths: calls that work and calls rejected with an exception.
    assert calls >= ROUNDS
    assert 0 < raised < calls
