"""`make demo`: BasicMotions → C features → model → parity → 8 MB image → simulated through the image."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tinysense.littlefs_image import geometry_of_image, read_files
from tinysense.paths import REPO


def test_demo_runs_and_reports_real_results(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "demo.py"), "--output", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    accuracy = re.search(r"held-out test f1_micro ([\d.]+) \((\d+) windows", out)
    assert accuracy and float(accuracy.group(1)) >= 0.9, out
    parity = re.search(r"parity: (\d+)/(\d+) test windows", out)
    assert parity and parity.group(1) == parity.group(2) == accuracy.group(2), out
    # the simulation runs the device's HAR app (accelerometer + gyroscope FIFO), not a fallback
    assert "simulate: " in out and "warning" not in out and "through the har app" in out, out
    simulated = re.search(r"simulate: (\d+) windows .*agreement with the labels in the file names: (\d+)/(\d+)", out)
    assert simulated and simulated.group(1) == accuracy.group(2) and int(simulated.group(2)) >= 0.9 * int(
        simulated.group(3)), out
    size = int(re.search(r"model size: (\d+) bytes", out).group(1))
    assert re.search(r"RAM: \d+ bytes", out) and re.search(r"instructions per inference: ([\d,]+|n/a)", out)
    image = (tmp_path / "tinysense-fs.bin").read_bytes()
    assert len(image) == 8 * 1024 * 1024 - 0x200000
    files = read_files(image, geometry_of_image(len(image)))
    assert len(files["/models/har.trees"]) == size and b'"app": "har"' in files["/config.json"]
    config = json.loads(files["/config.json"])
    assert config["sample_rate"] == 10
    assert config["har"] == {"window": 50, "hop": 10, "classes": ["Badminton", "Running", "Standing", "Walking"],
                             "samplerate": 10, "sensors": ["accel", "gyro"], "axes": 3, "spectral": True,
                             "accel_range_g": 8, "gyro_range_dps": 2000}
    assert f"device config (written by bundle from the model): har {json.dumps(config['har'])}" in out
