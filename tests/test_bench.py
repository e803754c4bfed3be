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


def test_cnn_bench_models_match_the_references_and_size_table() -> None:
    # --no-speed: writes the benchmark models, checks every case's outputs (int8 bit for bit against the NumPy
    # integer reference, float32 and the plain-MicroPython peer within 1e-4 of the float reference; it raises
    # otherwise) and writes the size table.
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "cnn_size.py"), "--no-speed"], capture_output=True,
                          text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "checked 28 cases" in proc.stderr
    table = (REPO / "bench" / "results" / "cnn_models.md").read_text()
    rows = {line.split("|")[1].strip(): line.split("|") for line in table.splitlines()
            if line.startswith("| ") and "---" not in line}
    assert set(rows) >= {"digits", "mnist", "mnist_tinymaix", "cifar32"}
    tinymaix = rows["mnist_tinymaix"]
    assert tinymaix[-2].strip() == "2,408 / 1,464"
    assert 0 < int(tinymaix[3].replace(",", "")) <= 2408   # our int8 file is no larger than TinyMaix's
