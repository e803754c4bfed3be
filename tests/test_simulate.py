"""`tinysense simulate`: per-window predictions and sound levels as the device computes them."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest

from tinysense import cli


def test_imu_predictions_per_window(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(400) / 50.0
    folder = tmp_path / "rec"
    folder.mkdir()
    for i in range(8):
        label, freq = ("slow", 0.5) if i % 2 else ("fast", 5.0)
        x = 3000 * np.sin(2 * np.pi * freq * t + i)[:, None] + rng.normal(0, 300, (400, 3))
        np.save(folder / f"2024-01-01T0000{i:02d}_{label}.npy", x.astype(np.int16))
    assert cli.main(["train", str(folder), "--samplerate", "50", "--window", "100", "--hop", "50",
                     "--n-estimators", "3", "--max-leaf-nodes", "8", "--splits", "2", "--no-instructions",
                     "-o", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    recordings = sorted(folder.glob("*.npy"))[:2]
    assert cli.main(["simulate", "--model", str(tmp_path / "m"), "-o", str(tmp_path / "p.csv"),
                     *map(str, recordings)]) == 0
    out = capsys.readouterr().out
    assert "14 windows from 2 recordings" in out and "14/14 windows (1.000)" in out
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "recording,window,start_s,result" and len(lines) == 15
    assert lines[1].endswith("_fast.npy,0,0.000,fast")


def test_wav_levels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rate = 16000
    amplitude = 32768 * 10 ** (-26 / 20)  # a -26 dBFS sine: 94 dB SPL at the default sensitivity
    samples = (amplitude * np.sin(2 * np.pi * 1000 * np.arange(rate) / rate)).astype("<i2")
    with wave.open(str(tmp_path / "tone.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    assert cli.main(["simulate", str(tmp_path / "tone.wav")]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines() if line.startswith("tone.wav")]
    assert len(rows) == 8
    leq = float(rows[-1][3].split()[1])
    assert math.isclose(leq, 94.0, abs_tol=0.3)  # A-weighting is 0 dB at 1 kHz


def test_bad_recordings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.npy").write_bytes(b"")
    assert cli.main(["simulate", str(tmp_path / "a.npy")]) == 1
    assert "need a model" in capsys.readouterr().err
    assert cli.main(["simulate", str(tmp_path / "missing.wav")]) == 1
    assert "does not exist" in capsys.readouterr().err
