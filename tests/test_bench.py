"""bench/run.py works end to end (it never judges speed: the tables are for people to read)."""

from __future__ import annotations

import subprocess
import sys

from tinysense.paths import REPO


def test_bench_writes_a_table_with_instruction_counts() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "arrayutils"], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    table = (REPO / "bench" / "results" / "arrayutils.md").read_text()
    rows = [line.split("|") for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row[1].strip() for row in rows] == ["python_loop", "c_linear_map"]
    for row in rows:
        assert int(row[2].replace(",", "")) > 0  # callgrind instructions per call
