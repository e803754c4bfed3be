"""`make demo` keeps working: its DSP numbers are right and the device agrees with scikit-learn."""

from __future__ import annotations

import re
import subprocess
import sys

from tinysense.paths import REPO


def test_demo_runs_and_reports_real_results() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "demo.py")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # The synthesised tone is at 1 kHz; its RMS level (with the -30 dBFS tone on top) is -11.9 dBFS.
    peak = re.search(r"peak at (\d+) Hz, level (-?[\d.]+) dBFS", out)
    assert peak, out
    assert int(peak.group(1)) == 1000
    assert abs(float(peak.group(2)) - (-11.94)) < 0.1
    agree = re.search(r"on (\d+) test images: (\d+)/(\d+) agree", out)
    assert agree, out
    assert agree.group(1) == agree.group(2) == agree.group(3) == "450"
